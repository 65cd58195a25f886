import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { SkeinError } from '@skein/core';
import { AppChannel } from '../src/app/channel.js';
import { readWhole } from '../src/pipeline/read-body.js';

/**
 * A real app server that keeps connections alive and, for the n-th request on a connection listed in `closeOn`,
 * drops the connection without answering — what an app does when its idle timer closes a connection just as the
 * sidecar reuses it.
 */
async function appServer(closeOn: (requestOnConnection: number) => boolean): Promise<{ server: Server; port: number; seen: string[]; connections: number }> {
  const perSocket = new WeakMap<Socket, number>();
  const state = { server: undefined as unknown as Server, port: 0, seen: [] as string[], connections: 0 };
  state.server = createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      state.seen.push(`${req.method ?? ''} ${req.url ?? ''} ${Buffer.concat(chunks).toString()}`);
      if (closeOn(n)) {
        req.socket.destroy();
        return;
      }
      res.end(`answer ${state.seen.length}`);
    });
  });
  state.server.on('connection', () => state.connections++);
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}

async function text(message: IncomingMessage): Promise<string> {
  return (await readWhole(message, 1024, 'the answer')).toString();
}

describe('the app channel (a real HTTP server on loopback)', function () {
  let app: Awaited<ReturnType<typeof appServer>>;
  let channel: AppChannel;
  afterEach(async function () {
    channel.close();
    app.server.closeAllConnections();
    await new Promise((resolve) => app.server.close(resolve));
  });

  it('sends a whole-body call once more on a new connection when the reused one is reset before any answer', async function () {
    app = await appServer((n) => n === 2);
    channel = new AppChannel({ appId: 'app', host: '127.0.0.1', port: app.port });
    assert.equal(await text(await channel.exchange('POST', '/first', [], Buffer.from('one'))), 'answer 1');
    const second = await channel.exchange('POST', '/second', [['content-type', 'text/plain']], Buffer.from('two'));
    assert.equal(second.statusCode, 200);
    assert.equal(await text(second), 'answer 3');
    assert.deepEqual(app.seen, ['POST /first one', 'POST /second two', 'POST /second two']);
    assert.equal(app.connections, 2, 'the second attempt went on a connection of its own');
  });

  it('does not send again when a new connection is reset: the caller gets the app unavailable error', async function () {
    app = await appServer(() => true);
    channel = new AppChannel({ appId: 'app', host: '127.0.0.1', port: app.port });
    const error = await channel.exchange('POST', '/once', [], Buffer.from('x')).then(() => undefined, (caught: unknown) => caught);
    assert.ok(error instanceof SkeinError);
    assert.equal(error.code, 'ERR_DIRECT_INVOKE_APP_UNAVAILABLE');
    assert.match(error.message, /^app app is not reachable at 127\.0\.0\.1:\d+: ECONNRESET$/);
    assert.deepEqual(app.seen, ['POST /once x']);
  });

  it('never sends a streamed body twice', async function () {
    app = await appServer((n) => n === 2);
    channel = new AppChannel({ appId: 'app', host: '127.0.0.1', port: app.port });
    assert.equal(await text(await channel.exchange('GET', '/warm', [], undefined)), 'answer 1');
    const { request, response } = channel.send('POST', '/streamed', []);
    const body = new PassThrough();
    body.pipe(request);
    body.end('s');
    await assert.rejects(response, (error: SkeinError) => error.code === 'ERR_DIRECT_INVOKE_APP_UNAVAILABLE');
    assert.deepEqual(app.seen, ['GET /warm ', 'POST /streamed s']);
  });

  it('does not send again a call whose signal aborted', async function () {
    app = await appServer((n) => n === 2);
    channel = new AppChannel({ appId: 'app', host: '127.0.0.1', port: app.port });
    assert.equal(await text(await channel.exchange('GET', '/warm', [], undefined)), 'answer 1');
    const controller = new AbortController();
    // The caller gives up once the app has the request on the reused connection, which the app then drops.
    app.server.prependListener('request', (req: IncomingMessage) => {
      if (req.url === '/cancelled') controller.abort();
    });
    const pending = channel.exchange('POST', '/cancelled', [], Buffer.from('c'), controller.signal);
    await assert.rejects(pending, (error: SkeinError) => error.code === 'ERR_DIRECT_INVOKE_APP_UNAVAILABLE');
    assert.equal(controller.signal.aborted, true, 'the request reached the app before the caller gave up');
    assert.equal(app.connections, 1, 'no second connection: the aborted call was not sent again');
  });
});
