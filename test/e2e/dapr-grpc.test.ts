import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { CommunicationProtocolEnum, DaprClient, GRPCClient, HttpMethod, LogLevel } from '@dapr/dapr';
import { daprService, dapr, google } from '@skein/proto';
import { Harness, TEST_APPS, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  bodySize: number;
  bodySha256: string;
}

const Verb = dapr.proto.common.v1.HTTPExtension.Verb;

/** The port of the sidecar's gRPC API, from its ready announcement. */
async function grpcPortOf(sidecar: SidecarHandle): Promise<number> {
  const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
  const port = Number(ready['grpcPort']);
  assert.ok(port > 0, `the ready record names no gRPC port: ${JSON.stringify(ready)}`);
  return port;
}

function grpcClient(port: number): DaprClient {
  return new DaprClient({ daprHost: '127.0.0.1', daprPort: String(port), communicationProtocol: CommunicationProtocolEnum.GRPC, logger: { level: LogLevel.Error } });
}

/** What a plain grpc-js caller of `InvokeService` sees: the reply or the error, and the response headers. */
interface RawResult {
  response?: dapr.proto.common.v1.IInvokeResponse;
  error?: ServiceError;
  headers: Metadata;
}

/** Calls `InvokeService` with grpc-js and Skein's own copy of Dapr's messages, to reach fields the SDK never sets. */
function rawInvoke(client: Client, request: dapr.proto.runtime.v1.IInvokeServiceRequest, metadata = new Metadata()): Promise<RawResult> {
  const method = daprService.invokeService;
  return new Promise((resolve) => {
    let headers = new Metadata();
    const call = client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata, (error, response) =>
      resolve(error ? { error, headers } : { ...(response ? { response } : {}), headers }),
    );
    call.on('metadata', (received: Metadata) => (headers = received));
  });
}

function rawGetMetadata(client: Client, metadata = new Metadata()): Promise<{ response?: dapr.proto.runtime.v1.IGetMetadataResponse; error?: ServiceError }> {
  const method = daprService.getMetadata;
  return new Promise((resolve) => {
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, {}, metadata, (error, response) => resolve(error ? { error } : { ...(response ? { response } : {}) }));
  });
}

describe("Dapr's gRPC API", function () {
  const harness = new Harness();
  let app: AppHandle;
  let caller: SidecarHandle;
  let guarded: SidecarHandle;
  let callerGrpc: number;
  let sdk: DaprClient;
  let raw: Client;

  before(async function () {
    await harness.controlPlane();
    app = await harness.app('echo-app');
    let server: SidecarHandle;
    [server, caller, guarded] = await Promise.all([
      harness.sidecar({ appId: 'echo', appPort: app.port }),
      harness.sidecar({ appId: 'caller' }),
      harness.sidecar({ appId: 'guarded', env: { DAPR_API_TOKEN: 'secret-token' } }),
    ]);
    assert.ok(server);
    callerGrpc = await grpcPortOf(caller);
    sdk = grpcClient(callerGrpc);
    raw = new Client(`127.0.0.1:${callerGrpc}`, credentials.createInsecure());
  });
  after(async function () {
    raw?.close();
    await sdk?.stop();
    await harness.cleanup();
  });

  const count = async (): Promise<number> => (await httpRequest(`http://127.0.0.1:${app.port}/_count`)).json<{ requests: number }>().requests;

  it('serves the official DaprClient in gRPC mode: invocation by App ID through two sidecars, verb, body and query kept', async function () {
    for (const verb of [HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]) {
      const payload = { order: 42, verb };
      const echo = (await sdk.invoker.invoke('echo', 'orders/42?x=1&y=two', verb, payload)) as Echo;
      assert.equal(echo.method, verb.toUpperCase());
      assert.equal(echo.url, '/orders/42?x=1&y=two');
      assert.equal(echo.bodySize, Buffer.byteLength(JSON.stringify(payload)), verb);
      assert.equal(echo.headers['content-type'], 'application/json');
      assert.equal(echo.headers['dapr-caller-app-id'], 'caller');
      assert.equal(echo.headers['dapr-caller-namespace'], 'default');
      assert.equal(echo.headers['dapr-callee-app-id'], 'echo');
    }
    const namespaced = (await sdk.invoker.invoke('echo.default', 'ping', HttpMethod.GET)) as Echo;
    assert.equal(namespaced.url, '/ping');
  });

  it('answers GetMetadata, which the client calls at start-up, with what the HTTP metadata API returns', async function () {
    const metadata = await sdk.metadata.get();
    const http = (await httpRequest(`${caller.url}/v1.0/metadata`)).json<{ id: string; extended: Record<string, string> }>();
    assert.equal(metadata.id, 'caller');
    assert.deepEqual(metadata.extended, http.extended);
    // The client's own generated stub decodes every field with Dapr's field numbers.
    const stub = await (sdk.daprClient as GRPCClient).getClient();
    const full = await stub.getMetadata({});
    const json = (await httpRequest(`${caller.url}/v1.0/metadata`)).json<{ runtimeVersion: string; enabledFeatures: string[]; appConnectionProperties: { protocol: string } }>();
    assert.equal(full.runtimeVersion, json.runtimeVersion);
    assert.deepEqual(full.enabledFeatures, json.enabledFeatures);
    assert.equal(full.actorRuntime?.runtimeStatus, dapr.proto.runtime.v1.ActorRuntime.ActorRuntimeStatus.DISABLED);
    assert.equal(full.appConnectionProperties?.protocol, json.appConnectionProperties.protocol);
    assert.equal(full.appConnectionProperties?.channelAddress, '127.0.0.1');
    assert.deepEqual(full.httpEndpoints, []);
  });

  it('fails clearly for an unknown App ID', async function () {
    await assert.rejects(sdk.invoker.invoke('nobody', 'anything', HttpMethod.GET), (error: Error) => {
      assert.match(error.message, /not_found/);
      assert.match(error.message, /failed to invoke, id: nobody, err: no instance of app "nobody" is registered in namespace "default"/);
      return true;
    });
    const { error } = await rawInvoke(raw, { id: 'nobody', message: { method: 'x', httpExtension: { verb: Verb.GET } } });
    assert.equal(error?.code, status.NOT_FOUND);
  });

  it('keeps the querystring, content type and request metadata as headers; stamps identity over forged headers', async function () {
    const metadata = new Metadata();
    metadata.set('x-custom', 'kept');
    metadata.set('dapr-caller-app-id', 'forged');
    const before = await count();
    const { response, headers, error } = await rawInvoke(
      raw,
      { id: 'echo', message: { method: '/orders/a b', data: { value: Buffer.from('plain body') }, contentType: 'text/plain', httpExtension: { verb: Verb.PUT, querystring: 'q=1&r=%2F' } } },
      metadata,
    );
    assert.equal(error, undefined, error?.details);
    const echo = JSON.parse(Buffer.from(response?.data?.value ?? []).toString('utf8')) as Echo;
    assert.equal(echo.method, 'PUT');
    assert.equal(echo.url, '/orders/a%20b?q=1&r=%2F');
    assert.equal(echo.bodySize, 'plain body'.length);
    assert.equal(echo.headers['content-type'], 'text/plain');
    assert.equal(echo.headers['x-custom'], 'kept');
    assert.equal(echo.headers['dapr-caller-app-id'], 'caller');
    assert.equal(echo.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === 'dapr-caller-app-id').length, 1);
    assert.equal(response?.contentType, 'application/json');
    assert.deepEqual(headers.get('dapr-http-status'), ['200']);
    assert.deepEqual(headers.get('x-echo'), ['yes']);
    assert.equal(await count(), before + 1);
  });

  it('carries a body larger than one internal frame intact', async function () {
    const body = Buffer.alloc(3 * 1024 * 1024 + 5, 9);
    const { response, error } = await rawInvoke(raw, { id: 'echo', message: { method: 'upload', data: { value: body }, contentType: 'application/octet-stream', httpExtension: { verb: Verb.POST } } });
    assert.equal(error, undefined, error?.details);
    const echo = JSON.parse(Buffer.from(response?.data?.value ?? []).toString('utf8')) as Echo;
    assert.equal(echo.bodySize, body.length);
    assert.equal(echo.bodySha256, createHash('sha256').update(body).digest('hex'));
  });

  it("maps an app's non-2xx status to Dapr's gRPC status, with the HTTP status and body in an ErrorInfo", async function () {
    const { error, headers } = await rawInvoke(raw, { id: 'echo', message: { method: 'status/404', httpExtension: { verb: Verb.GET } } });
    assert.equal(error?.code, status.NOT_FOUND);
    assert.equal(error?.details, 'Not Found');
    assert.deepEqual(headers.get('dapr-http-status'), ['404']);
    const details = error?.metadata.get('grpc-status-details-bin')[0];
    assert.ok(Buffer.isBuffer(details), 'no grpc-status-details-bin trailer');
    const rich = google.rpc.Status.decode(details);
    assert.equal(rich.code, status.NOT_FOUND);
    const info = google.rpc.ErrorInfo.decode(rich.details[0]?.value ?? new Uint8Array(0));
    assert.equal(rich.details[0]?.type_url, 'type.googleapis.com/google.rpc.ErrorInfo');
    assert.deepEqual({ ...info.metadata }, { 'http.code': '404', 'http.error_message': 'as you asked' });
    const teapot = await rawInvoke(raw, { id: 'echo', message: { method: 'status/418', httpExtension: { verb: Verb.GET } } });
    assert.equal(teapot.error?.code, status.UNKNOWN);
  });

  it("carries Skein's own error code in an ErrorInfo, so gRPC callers tell failures apart as HTTP callers do", async function () {
    const errorInfoOf = (error: ServiceError | undefined): google.rpc.ErrorInfo => {
      const details = error?.metadata.get('grpc-status-details-bin')[0];
      assert.ok(Buffer.isBuffer(details), 'no grpc-status-details-bin trailer');
      const rich = google.rpc.Status.decode(details);
      assert.equal(rich.code, error?.code);
      assert.equal(rich.details[0]?.type_url, 'type.googleapis.com/google.rpc.ErrorInfo');
      return google.rpc.ErrorInfo.decode(rich.details[0]?.value ?? new Uint8Array(0));
    };
    const unknown = await rawInvoke(raw, { id: 'nobody', message: { method: 'x', httpExtension: { verb: Verb.GET } } });
    const notFound = errorInfoOf(unknown.error);
    assert.equal(notFound.reason, 'ERR_DIRECT_INVOKE');
    assert.equal(notFound.metadata['errorCode'], 'ERR_DIRECT_INVOKE_NOT_FOUND');
    assert.equal(notFound.metadata['http.code'], '404');
    const big = await rawInvoke(raw, { id: 'echo', message: { method: 'upload', data: { value: Buffer.alloc(4 * 1024 * 1024 + 1, 1) }, httpExtension: { verb: Verb.POST } } });
    assert.equal(errorInfoOf(big.error).reason, 'ERR_BODY_TOO_LARGE');
    // The HTTP API answers the same call with the same code.
    const http = await httpRequest(`${caller.url}/v1.0/invoke/nobody/method/x`);
    assert.equal(http.status, 404);
    assert.equal(http.json<{ errorCode: string }>().errorCode, notFound.reason);
  });

  it('refuses malformed requests and bodies over the limit before the app sees them', async function () {
    const before = await count();
    const noVerb = await rawInvoke(raw, { id: 'echo', message: { method: 'x' } });
    assert.equal(noVerb.error?.code, status.INVALID_ARGUMENT);
    assert.match(noVerb.error?.details ?? '', /missing HTTP extension/);
    const traversal = await rawInvoke(raw, { id: 'echo', message: { method: 'a/../admin', httpExtension: { verb: Verb.GET } } });
    assert.equal(traversal.error?.code, status.INVALID_ARGUMENT);
    const big = await rawInvoke(raw, { id: 'echo', message: { method: 'upload', data: { value: Buffer.alloc(4 * 1024 * 1024 + 1, 1) }, httpExtension: { verb: Verb.POST } } });
    assert.equal(big.error?.code, status.RESOURCE_EXHAUSTED);
    assert.equal(await count(), before);
  });

  it('requires dapr-api-token when DAPR_API_TOKEN is set', async function () {
    const port = await grpcPortOf(guarded);
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const without = await rawGetMetadata(client);
      assert.equal(without.error?.code, status.UNAUTHENTICATED);
      const wrong = new Metadata();
      wrong.set('dapr-api-token', 'secret-tokem');
      assert.equal((await rawGetMetadata(client, wrong)).error?.code, status.UNAUTHENTICATED);
      const right = new Metadata();
      right.set('dapr-api-token', 'secret-token');
      assert.equal((await rawGetMetadata(client, right)).response?.id, 'guarded');
    } finally {
      client.close();
    }
    const withToken = new DaprClient({ daprHost: '127.0.0.1', daprPort: String(port), communicationProtocol: CommunicationProtocolEnum.GRPC, daprApiToken: 'secret-token', logger: { level: LogLevel.Error } });
    try {
      const echo = (await withToken.invoker.invoke('echo', 'guarded-call', HttpMethod.POST, { a: 1 })) as Echo;
      assert.equal(echo.headers['dapr-caller-app-id'], 'guarded');
      assert.equal(echo.headers['dapr-api-token'], undefined);
    } finally {
      await withToken.stop();
    }
  });

  it('gives the app started by `skein run -- <cmd>` a DAPR_GRPC_PORT where the gRPC API answers', async function () {
    const sidecar = await harness.sidecar({
      appId: 'grpc-app',
      command: [process.execPath, join(TEST_APPS, 'dapr-grpc-client.js')],
      env: { TARGET_APP_ID: 'echo', DAPR_GRPC_PORT: '1', DAPR_GRPC_ENDPOINT: 'http://127.0.0.1:1' },
    });
    const line = await sidecar.proc.waitFor(/^\{"grpcClient"/);
    const seen = (JSON.parse(line) as { grpcClient: { grpcPort: string; grpcEndpoint?: string; appId: string; metadataId?: string; echo?: Echo; error?: string } }).grpcClient;
    assert.equal(seen.error, undefined, seen.error);
    const port = await grpcPortOf(sidecar);
    // The app's environment points at this sidecar, whatever the shell that started `skein run` had set.
    assert.equal(Number(seen.grpcPort), port);
    assert.equal(seen.grpcEndpoint, `http://127.0.0.1:${port}`);
    assert.equal(seen.appId, 'grpc-app');
    assert.equal(seen.metadataId, 'grpc-app');
    assert.equal(seen.echo?.url, '/from-app?via=grpc');
    assert.equal(seen.echo?.headers['dapr-caller-app-id'], 'grpc-app');
  });

  it('serves the same official client in HTTP mode through the HTTP API', async function () {
    const client = new DaprClient({ daprHost: '127.0.0.1', daprPort: String(caller.httpPort), communicationProtocol: CommunicationProtocolEnum.HTTP, logger: { level: LogLevel.Error } });
    try {
      assert.equal((await client.metadata.get()).id, 'caller');
      const echo = (await client.invoker.invoke('echo', 'orders/7?x=1', HttpMethod.POST, { over: 'http' })) as Echo;
      assert.equal(echo.method, 'POST');
      assert.equal(echo.url, '/orders/7?x=1');
      assert.equal(echo.bodySize, Buffer.byteLength(JSON.stringify({ over: 'http' })));
      assert.equal(echo.headers['dapr-caller-app-id'], 'caller');
    } finally {
      await client.stop();
    }
  });
});
