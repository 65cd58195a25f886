import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createCsr, createRootCa, generateKeyPem, GrpcStatus, logger, signSvid, spiffeIdOfCertificate, type KeyPair } from '@skein/core';
import { GrpcChannel, GrpcCallError, type ClientCall } from '../src/transport/grpc-channel.js';
import { GrpcServer } from '../src/transport/grpc-server.js';

const log = logger('test');

function svid(ca: KeyPair, appId: string): { key: string; cert: string } {
  const { privateKeyPem } = generateKeyPem();
  return { key: privateKeyPem, cert: signSvid(ca, createCsr(privateKeyPem, appId), { trustDomain: 'test', namespace: 'default', appId }, 3_600_000) };
}

/** Starts a unary call; `ended` resolves with how it ended. */
async function startCall(channel: GrpcChannel, path: string): Promise<{ call: ClientCall; ended: Promise<GrpcCallError | undefined> }> {
  let settle!: (error: GrpcCallError | undefined) => void;
  const ended = new Promise<GrpcCallError | undefined>((resolve) => (settle = resolve));
  const call = await channel.start(path, { message: () => undefined, end: (error) => settle(error) });
  call.end(Buffer.from('request'));
  return { call, ended };
}

/**
 * Whether a failed call may be sent to another instance: only when it provably never reached the peer. Re-sending
 * one the peer may have started would run it twice.
 */
describe('internal hop: a call that dies with its connection', function () {
  const ca = createRootCa('test', 3_600_000);
  const caller = svid(ca, 'caller');
  const callee = svid(ca, 'callee');
  const channelTo = (port: number): GrpcChannel =>
    new GrpcChannel({
      address: `127.0.0.1:${port}`,
      servername: 'callee',
      credentials: () => ({ ...caller, ca: ca.certPem }),
      verifyPeer: () => undefined,
      log,
      maxStreamsPerConnection: 16,
      maxConnections: 1,
      maxQueued: 16,
      queueTimeoutMs: 1000,
      maxMessageBytes: 1024 * 1024,
    });

  /** A Skein internal server: `/t.T/Ok` answers OK, `/t.T/Slow` takes the call on and never answers. */
  async function server(onSlow: () => void): Promise<{ port: number; dropConnections(): void; close(): Promise<void> }> {
    const sockets: Array<{ destroy(): void }> = [];
    const grpc = new GrpcServer({
      tls: { ...callee, ca: ca.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
      host: '127.0.0.1',
      port: 0,
      log,
      maxMessageBytes: 1024 * 1024,
      maxStreamsPerConnection: 16,
      accept: (socket) => {
        sockets.push(socket);
        return spiffeIdOfCertificate(socket.getPeerCertificate());
      },
    });
    grpc.route('/t.T/Ok', (call) => call.receive(() => undefined, () => call.finish(GrpcStatus.OK)));
    grpc.route('/t.T/Slow', () => onSlow());
    const port = await grpc.listen();
    return { port, dropConnections: () => sockets.splice(0).forEach((socket) => socket.destroy()), close: () => grpc.close() };
  }

  it('is unsent when the peer was killed while the connection sat idle: the next call never left', async function () {
    // The peer is a real process, killed with SIGKILL: no GOAWAY, its end arrives as the next call is made.
    const script = [
      `const { GrpcServer } = await import(${JSON.stringify(new URL('../src/transport/grpc-server.js', import.meta.url).href)});`,
      `const { logger, spiffeIdOfCertificate } = await import('@skein/core');`,
      'const tls = JSON.parse(process.env.PEER_TLS);',
      "const server = new GrpcServer({ tls: { ...tls, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, host: '127.0.0.1', port: 0, log: logger('peer'), maxMessageBytes: 1048576, maxStreamsPerConnection: 16, accept: (socket) => spiffeIdOfCertificate(socket.getPeerCertificate()) });",
      "server.route('/t.T/Ok', (call) => call.receive(() => undefined, () => call.finish(0)));",
      'process.stdout.write(`${await server.listen()}\\n`);',
    ].join('\n');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, PEER_TLS: JSON.stringify({ ...callee, ca: ca.certPem }) }, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const channel = channelTo(Number(line.toString('utf8').trim()));
      try {
        assert.equal(await (await startCall(channel, '/t.T/Ok')).ended, undefined, 'the connection is up');
        child.kill('SIGKILL');
        await exited;
        const error = await (await startCall(channel, '/t.T/Ok')).ended;
        assert.ok(error instanceof GrpcCallError, 'the call fails');
        assert.equal(error.unsent, true, `nothing of it reached the dead peer, so another instance may take it: ${error.details}`);
      } finally {
        channel.close();
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it('is not unsent once the peer took the call on and died: it may have run', async function () {
    let started!: () => void;
    const handlerRan = new Promise<void>((resolve) => (started = resolve));
    const peer = await server(() => started());
    const channel = channelTo(peer.port);
    try {
      const { ended } = await startCall(channel, '/t.T/Slow');
      await handlerRan;
      peer.dropConnections();
      const error = await ended;
      assert.ok(error instanceof GrpcCallError, 'the call fails');
      assert.equal(error.unsent, false, 'a call the peer started is never re-sent elsewhere');
      assert.match(error.details, /closed during the call/);
    } finally {
      channel.close();
      await peer.close();
    }
  });

  it('is not unsent when the peer dropped the connection after reading the call, even before answering anything', async function () {
    // Its frames reached the peer, which may have begun the work before it died: the caller cannot tell.
    const peer = createSecureServer({ ...callee, ca: ca.certPem, requestCert: true, minVersion: 'TLSv1.3' });
    peer.on('stream', (stream) => stream.session?.destroy());
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const channel = channelTo((peer.address() as AddressInfo).port);
    try {
      const error = await (await startCall(channel, '/t.T/Any')).ended;
      assert.ok(error instanceof GrpcCallError, 'the call fails');
      assert.equal(error.unsent, false, error.details);
    } finally {
      channel.close();
      await new Promise<void>((resolve) => peer.close(() => resolve()));
    }
  });
});
