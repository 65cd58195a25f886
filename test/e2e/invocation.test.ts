import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Harness, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { httpRequest, openStream } from '../src/http.js';

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  bodySize: number;
  bodySha256: string;
  appId: string;
}

describe('service invocation through two sidecars', function () {
  const harness = new Harness();
  let app: AppHandle;
  let server: SidecarHandle;
  let caller: SidecarHandle;

  before(async function () {
    await harness.controlPlane();
    app = await harness.app('echo-app');
    [server, caller] = await Promise.all([harness.sidecar({ appId: 'echo', appPort: app.port }), harness.sidecar({ appId: 'caller' })]);
  });
  after(() => harness.cleanup());

  const count = async (): Promise<number> => (await httpRequest(`http://127.0.0.1:${app.port}/_count`)).json<{ requests: number }>().requests;

  it('routes /v1.0/invoke/<appId>/method/<path> with verb, raw path, query and headers preserved', async function () {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const res = await httpRequest(caller.url, { method, path: '/v1.0/invoke/echo/method/orders/a%20b/items?x=1&y=%2F&x=2', headers: { 'x-custom': 'kept', 'content-type': 'text/plain' }, body: method === 'GET' ? undefined : 'payload' });
      assert.equal(res.status, 200, `${method}: ${res.status} ${res.body}`);
      const echo = res.json<Echo>();
      assert.equal(echo.method, method);
      assert.equal(echo.url, '/orders/a%20b/items?x=1&y=%2F&x=2');
      assert.equal(echo.headers['x-custom'], 'kept');
      assert.equal(echo.bodySize, method === 'GET' ? 0 : 7);
      assert.equal(res.headers['x-echo'], 'yes');
      assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
    }
  });

  it('routes by the dapr-app-id header, using the whole path as the method and dropping the header', async function () {
    const res = await httpRequest(caller.url, { method: 'POST', path: '/mcp?session=1', headers: { 'dapr-app-id': 'echo' }, body: '{}' });
    assert.equal(res.status, 200, res.body);
    const echo = res.json<Echo>();
    assert.equal(echo.url, '/mcp?session=1');
    assert.equal(echo.headers['dapr-app-id'], undefined);
  });

  it('strips caller-supplied identity headers and stamps the verified identity', async function () {
    const res = await httpRequest(caller.url, {
      path: '/v1.0/invoke/echo/method/whoami',
      headers: { 'dapr-caller-app-id': 'admin', 'dapr-caller-namespace': 'prod', 'dapr-callee-app-id': 'other', 'dapr-api-token': 'leak' },
    });
    const echo = res.json<Echo>();
    assert.equal(echo.headers['dapr-caller-app-id'], 'caller');
    assert.equal(echo.headers['dapr-caller-namespace'], 'default');
    assert.equal(echo.headers['dapr-callee-app-id'], 'echo');
    assert.equal(echo.headers['dapr-api-token'], undefined);
    // Exactly one of each identity header reached the app.
    assert.equal(echo.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'dapr-caller-app-id').length, 1);
  });

  it('streams an SSE response event by event, not buffered', async function () {
    const stream = await openStream(`${caller.url}/v1.0/invoke/echo/method/sse?id=s1`);
    assert.equal(stream.status, 200);
    assert.equal(stream.headers['content-type'], 'text/event-stream');
    assert.equal(await stream.nextEvent(), 'data: event 0');
    // The app sends the next event only when told to; the caller must already have the first one.
    for (let n = 1; n <= 3; n++) {
      const next = await httpRequest(`http://127.0.0.1:${app.port}/sse/next?id=s1&n=${n}${n === 3 ? '&last=1' : ''}`);
      assert.equal(next.status, 204);
      assert.equal(await stream.nextEvent(), `data: event ${n}`);
    }
    assert.equal(await stream.nextEvent(), undefined);
  });

  it('streams large request bodies of unknown length intact', async function () {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const hash = createHash('sha256');
    async function* body(): AsyncIterable<Buffer> {
      for (let i = 0; i < 48; i++) {
        hash.update(chunk);
        yield chunk;
      }
    }
    const res = await httpRequest(caller.url, { method: 'POST', path: '/v1.0/invoke/echo/method/upload', headers: { 'transfer-encoding': 'chunked' }, body: body() });
    assert.equal(res.status, 200, res.body);
    const echo = res.json<Echo>();
    assert.equal(echo.bodySize, 48 * chunk.length);
    assert.equal(echo.bodySha256, hash.digest('hex'));
  });

  it('passes upstream statuses through unchanged', async function () {
    const res = await httpRequest(`${caller.url}/v1.0/invoke/echo/method/status/418`);
    assert.equal(res.status, 418);
    assert.equal(res.body, 'as you asked');
  });

  it('refuses bodies over 4 MiB with 413 before the app sees them', async function () {
    const before = await count();
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 1);
    const declared = await httpRequest(caller.url, { method: 'POST', path: '/v1.0/invoke/echo/method/upload', body: big });
    assert.equal(declared.status, 413);
    assert.equal(declared.json<{ errorCode: string }>().errorCode, 'ERR_BODY_TOO_LARGE');
    async function* chunks(): AsyncIterable<Buffer> {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(1024 * 1024, 2);
    }
    const streamed = await httpRequest(caller.url, { method: 'POST', path: '/v1.0/invoke/echo/method/upload', headers: { 'transfer-encoding': 'chunked' }, body: chunks() });
    assert.equal(streamed.status, 413, streamed.body);
    // The declared-too-large request never left the caller; the streamed one was cut before it completed.
    const after = await count();
    assert.ok(after - before <= 1, `the app saw ${after - before} requests`);
    const ok = await httpRequest(`${caller.url}/v1.0/invoke/echo/method/still-serving`);
    assert.equal(ok.status, 200);
  });

  it('answers an unknown App ID with a Dapr-shaped 404 naming the app', async function () {
    const res = await httpRequest(`${caller.url}/v1.0/invoke/nobody/method/x`);
    assert.equal(res.status, 404);
    const body = res.json<{ errorCode: string; message: string }>();
    assert.equal(body.errorCode, 'ERR_DIRECT_INVOKE');
    assert.match(body.message, /nobody/);
  });

  it('answers a request with no App ID with Dapr\'s exact error', async function () {
    const res = await httpRequest(`${caller.url}/not/an/api`);
    assert.equal(res.status, 404);
    assert.deepEqual(res.json(), { errorCode: 'ERR_DIRECT_INVOKE', message: 'failed getting app id either from the URL path or the header dapr-app-id' });
  });

  it("answers Dapr APIs Skein does not offer with 501 naming the API, never as an invocation", async function () {
    const before = await count();
    for (const [method, path, api] of [
      ['GET', '/v1.0/state/statestore/key', 'state management'],
      ['POST', '/v1.0/publish/pubsub/orders', 'publish'],
      ['GET', '/v1.0/secrets/vault/db', 'secrets'],
      ['POST', '/v1.0-beta1/workflows/dapr/OrderFlow/start', 'workflow'],
      ['POST', '/v1.0-alpha1/lock/redis', 'distributed lock'],
    ] as const) {
      const res = await httpRequest(`${caller.url}${path}`, { method, headers: { 'dapr-app-id': 'echo' }, ...(method === 'POST' ? { body: '{}' } : {}) });
      assert.equal(res.status, 501, `${path}: ${res.body}`);
      const error = res.json<{ errorCode: string; message: string }>();
      assert.equal(error.errorCode, 'ERR_API_NOT_SUPPORTED', path);
      assert.ok(error.message.includes(`the Dapr ${api} API`), error.message);
    }
    assert.equal(await count(), before, 'nothing reached the app');
  });

  it('refuses malformed method paths (dot segments, encoded slashes) with 400 and forwards nothing', async function () {
    const before = await count();
    for (const path of ['/v1.0/invoke/echo/method/a/../admin', '/v1.0/invoke/echo/method/%2e%2e/admin', '/v1.0/invoke/echo/method/a%2Fb', '/v1.0/invoke/echo/method/a%5Cb', '/v1.0/invoke/echo/method/%zz', '/v1.0/invoke/echo/method/', '/v1.0/invoke/echo/method/admin;x/y', '/v1.0/invoke/echo/method/admin%3b/y', '/v1.0/invoke/echo/method/admin./y', '/v1.0/invoke/echo/method/admin%20/y', '/v1.0/invoke/echo/method/%EF%BD%81dmin/y']) {
      const res = await httpRequest(caller.url, { path });
      assert.equal(res.status, 400, `${path}: ${res.body}`);
      assert.equal(res.json<{ errorCode: string }>().errorCode, 'ERR_MALFORMED_REQUEST');
    }
    assert.equal(await count(), before);
  });

  it('serves healthz and Dapr-shaped metadata', async function () {
    const health = await httpRequest(`${server.url}/v1.0/healthz`);
    assert.equal(health.status, 204);
    const metadata = (await httpRequest(`${server.url}/v1.0/metadata`)).json<Record<string, unknown>>();
    assert.equal(metadata['id'], 'echo');
    for (const key of ['runtimeVersion', 'enabledFeatures', 'components', 'httpEndpoints', 'appConnectionProperties', 'actorRuntime', 'mcpServers', 'resiliencies']) assert.ok(key in metadata, key);
    assert.deepEqual(metadata['appConnectionProperties'], { port: app.port, protocol: 'http', channelAddress: '127.0.0.1' });
  });
});

describe('invocation when the callee app is down', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('returns a clear 5xx naming the app, and keeps serving', async function () {
    await harness.controlPlane();
    const app = await harness.app('echo-app');
    const [, caller] = await Promise.all([harness.sidecar({ appId: 'flaky', appPort: app.port }), harness.sidecar({ appId: 'caller' })]);
    await app.proc.stop();
    const res = await httpRequest(`${caller.url}/v1.0/invoke/flaky/method/x`);
    assert.equal(res.status, 502);
    const body = res.json<{ errorCode: string; message: string }>();
    assert.equal(body.errorCode, 'ERR_DIRECT_INVOKE');
    assert.match(body.message, /app flaky is not reachable/);
    const health = await httpRequest(`${caller.url}/v1.0/healthz`);
    assert.equal(health.status, 204);
  });
});

describe('API tokens', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('requires dapr-api-token when DAPR_API_TOKEN is set, exempts healthz, and sends APP_API_TOKEN to the app', async function () {
    await harness.controlPlane();
    const app = await harness.app('echo-app');
    const [, caller] = await Promise.all([
      harness.sidecar({ appId: 'guarded-app', appPort: app.port, env: { APP_API_TOKEN: 'app-secret' } }),
      harness.sidecar({ appId: 'guarded', env: { DAPR_API_TOKEN: 'api-secret' } }),
    ]);
    assert.equal((await httpRequest(`${caller.url}/v1.0/healthz`)).status, 204);
    const missing = await httpRequest(`${caller.url}/v1.0/metadata`);
    assert.equal(missing.status, 401);
    assert.equal(missing.json<{ errorCode: string }>().errorCode, 'ERR_UNAUTHENTICATED');
    const wrong = await httpRequest(`${caller.url}/v1.0/invoke/guarded-app/method/x`, { headers: { 'dapr-api-token': 'api-secreT' } });
    assert.equal(wrong.status, 401);
    const res = await httpRequest(`${caller.url}/v1.0/invoke/guarded-app/method/x`, { headers: { 'dapr-api-token': 'api-secret' } });
    assert.equal(res.status, 200);
    const echo = res.json<Echo>();
    // The caller's API token never travels; the callee's sidecar adds the app's own.
    assert.equal(echo.headers['dapr-api-token'], 'app-secret');
  });
});
