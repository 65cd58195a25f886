import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { createJoinToken, requestCertificate } from '@skein/runtime';
import { createCsr, createRootCa, generateKeyPem, signSvid, formatSpiffeId } from '@skein/core';
import { Harness, type ManagedProcess } from '../src/harness.js';
import { httpRequest, openStream } from '../src/http.js';

/**
 * Tries a TLS handshake against `port` presenting `cert`/`key`, then sends the HTTP/2 preface: a server that
 * accepted us answers with its SETTINGS frame. (TLS 1.3 reports a refused client certificate only after the
 * client's side of the handshake, as an alert on the first read.)
 */
function handshake(port: number, options: { cert?: string; key?: string; ca: string }): Promise<{ ok: boolean; error?: string; peer?: PeerCertificate }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: options.ca, ...(options.cert ? { cert: options.cert, key: options.key } : {}), ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    const done = (result: { ok: boolean; error?: string; peer?: PeerCertificate }): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      socket.once('data', () => done({ ok: true, peer }));
    });
    socket.once('error', (error: Error) => done({ ok: false, error: error.message }));
    socket.once('close', () => done({ ok: false, error: 'closed by the server' }));
  });
}

describe('sentry', function () {
  const harness = new Harness();
  let sentryAddress: string;
  let production: string;
  let productionProc: ManagedProcess;
  after(() => harness.cleanup());
  before(async function () {
    const [development, productionSentry] = await Promise.all([harness.sentry(['--workload-cert-ttl', '2h']), harness.sentry(['--mode', 'production'])]);
    sentryAddress = development.address;
    production = productionSentry.address;
    productionProc = productionSentry.proc;
  });

  const csr = (): string => createCsr(generateKeyPem().privateKeyPem, 'app');

  it('signs a CSR into an X.509 SVID with the SPIFFE URI SAN and the configured lifetime', async function () {
    const response = await requestCertificate(sentryAddress, harness.ca.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop' });
    const cert = new X509Certificate(response.certificatePem ?? '');
    assert.equal(cert.subjectAltName, 'URI:spiffe://public/ns/shop/orders');
    assert.equal(response.spiffeId, 'spiffe://public/ns/shop/orders');
    assert.ok(cert.verify(new X509Certificate(harness.ca.certPem).publicKey), 'signed by the CA');
    const lifetime = Date.parse(cert.validTo) - Date.now();
    assert.ok(lifetime > 1.9 * 3_600_000 && lifetime <= 2 * 3_600_000, `lifetime ${lifetime} ms`);
    assert.equal(cert.ca, false);
  });

  it('refuses malformed CSRs and invalid identities with a precise reason, and keeps serving', async function () {
    await assert.rejects(requestCertificate(sentryAddress, harness.ca.certPem, { csrPem: 'not a csr', appId: 'orders', namespace: 'shop' }), /CSR is not a PEM/);
    await assert.rejects(requestCertificate(sentryAddress, harness.ca.certPem, { csrPem: csr(), appId: 'bad id!', namespace: 'shop' }), /invalid App ID/);
    await assert.rejects(requestCertificate(sentryAddress, harness.ca.certPem, { csrPem: csr(), appId: 'x', namespace: 'skein-system' }), /reserved/);
    const response = await requestCertificate(sentryAddress, harness.ca.certPem, { csrPem: csr(), appId: 'still-ok', namespace: 'default' });
    assert.match(response.spiffeId ?? '', /still-ok$/);
  });

  it('in production mode, signs only with a valid join token for the claimed identity', async function () {
    const id = { trustDomain: 'public', namespace: 'shop', appId: 'orders' };
    await assert.rejects(requestCertificate(production, harness.ca.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop' }), /join token is required/);
    const otherApp = await createJoinToken(harness.ca.keyPem, { ...id, appId: 'payments' }, 60);
    await assert.rejects(requestCertificate(production, harness.ca.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop', token: otherApp }), /is for spiffe:\/\/public\/ns\/shop\/payments/);
    const expired = await createJoinToken(harness.ca.keyPem, id, -120);
    await assert.rejects(requestCertificate(production, harness.ca.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop', token: expired }), /ERR_JWT_EXPIRED/);
    const foreign = createRootCa('public', 3_600_000);
    const forged = await createJoinToken(foreign.keyPem, id, 60);
    await assert.rejects(requestCertificate(production, harness.ca.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop', token: forged }), /signature verification failed/);
    const valid = await createJoinToken(harness.ca.keyPem, id, 60);
    const response = await requestCertificate(production, harness.ca.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop', token: valid });
    assert.equal(response.spiffeId, formatSpiffeId(id));
    // Single use: whoever copied the token gets nothing with it, and the sentry says so in its log.
    await assert.rejects(requestCertificate(production, harness.ca.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop', token: valid }), /this join token \(jti [0-9a-f-]+\) was used already/);
    await productionProc.waitForRecord('join token replayed', { spiffeId: formatSpiffeId(id) });
  });

  it('is verified by its SPIFFE identity: a client trusting another CA refuses it', async function () {
    const foreign = createRootCa('public', 3_600_000);
    await assert.rejects(requestCertificate(sentryAddress, foreign.certPem, { csrPem: csr(), appId: 'orders', namespace: 'shop' }), /did not sign/);
  });
});

describe('sidecar mTLS', function () {
  const harness = new Harness();
  let internalPort: number;
  let callerUrl: string;
  let serverProc: ManagedProcess;
  after(() => harness.cleanup());
  before(async function () {
    await harness.controlPlane();
    const app = await harness.app('echo-app');
    const [server, caller] = await Promise.all([harness.sidecar({ appId: 'echo', appPort: app.port }), harness.sidecar({ appId: 'caller' })]);
    internalPort = server.internalPort;
    callerUrl = caller.url;
    serverProc = server.proc;
  });

  const svidFrom = (ca: { certPem: string; keyPem: string }, appId: string, ttlMs: number, now = Date.now()): { cert: string; key: string } => {
    const { privateKeyPem } = generateKeyPem();
    return { key: privateKeyPem, cert: signSvid(ca, createCsr(privateKeyPem, appId), { trustDomain: 'public', namespace: 'default', appId }, ttlMs, now) };
  };

  it('accepts a peer with a valid SVID from our CA', async function () {
    const result = await handshake(internalPort, { ...svidFrom(harness.ca, 'tester', 3_600_000), ca: harness.ca.certPem });
    assert.equal(result.ok, true, result.error);
  });

  it('refuses, and logs, a peer presenting a certificate from another CA', async function () {
    const from = serverProc.lines.length;
    const foreign = createRootCa('public', 3_600_000);
    const result = await handshake(internalPort, { ...svidFrom(foreign, 'intruder', 3_600_000), ca: harness.ca.certPem });
    assert.equal(result.ok, false);
    const record = await serverProc.waitForRecord('TLS handshake refused', {}, 10_000, from);
    assert.match(String(record['reason']), /not signed by this trust domain's CA/);
  });

  it('refuses, and logs, a peer presenting an expired certificate from our CA', async function () {
    const from = serverProc.lines.length;
    const expired = svidFrom(harness.ca, 'stale', 3_600_000, Date.now() - 3 * 3_600_000);
    const result = await handshake(internalPort, { ...expired, ca: harness.ca.certPem });
    assert.equal(result.ok, false);
    const record = await serverProc.waitForRecord('TLS handshake refused', {}, 10_000, from);
    assert.match(String(record['reason']), /expired/i);
  });

  it('refuses, and logs, a peer presenting no certificate at all', async function () {
    const from = serverProc.lines.length;
    const result = await handshake(internalPort, { ca: harness.ca.certPem });
    assert.equal(result.ok, false);
    const record = await serverProc.waitForRecord('TLS handshake refused', {}, 10_000, from);
    assert.equal(record['reason'], 'the peer presented no client certificate');
  });

  it('keeps serving after refused handshakes', async function () {
    const res = await httpRequest(`${callerUrl}/v1.0/invoke/echo/method/after-attacks`);
    assert.equal(res.status, 200);
  });
});

describe('SVID renewal', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('in production mode, renews with the current SVID long after the join token expired', async function () {
    await Promise.all([harness.nats(), harness.sentry(['--mode', 'production', '--workload-cert-ttl', '4s'])]);
    // The token is good for 3 seconds; renewals at half of the 4-second lifetime keep going for far longer.
    const token = await createJoinToken(harness.ca.keyPem, { trustDomain: 'public', namespace: 'default', appId: 'long-lived' }, 3);
    const sidecar = await harness.sidecar({ appId: 'long-lived', args: ['--join-token', token] });
    const installs = (): number => sidecar.proc.records().filter((record) => record.msg === 'SVID installed').length;
    await sidecar.proc.waitFor((_line, record) => record?.msg === 'SVID installed' && installs() >= 5, 30_000);
    assert.equal(sidecar.proc.records().filter((record) => record.msg === 'SVID renewal failed; retrying').length, 0);
  });

  it('refuses to run a development-mode sentry beyond loopback unless told to accept the risk', async function () {
    const exposed = harness.skein('exposed-sentry', ['sentry', '--home', harness.home, '--port', '0', '--host', '0.0.0.0']);
    assert.equal((await exposed.exited).code, 2);
    assert.match(exposed.output(), /development mode, where anyone who reaches it gets any identity\. Use --mode production/);
  });

  it('renews at half-life without dropping live connections', async function () {
    // Four-second SVIDs: each sidecar renews about every two seconds.
    await Promise.all([harness.nats(), harness.sentry(['--workload-cert-ttl', '4s'])]);
    const app = await harness.app('echo-app');
    const [server, caller] = await Promise.all([harness.sidecar({ appId: 'echo', appPort: app.port }), harness.sidecar({ appId: 'caller' })]);
    const probe = (): Promise<X509Certificate> => {
      const { privateKeyPem } = generateKeyPem();
      const cert = signSvid(harness.ca, createCsr(privateKeyPem, 'probe'), { trustDomain: 'public', namespace: 'default', appId: 'probe' }, 60_000);
      return handshake(server.internalPort, { cert, key: privateKeyPem, ca: harness.ca.certPem }).then((result) => {
        assert.equal(result.ok, true, result.error);
        return new X509Certificate(result.peer?.raw ?? Buffer.alloc(0));
      });
    };
    const original = await probe();
    const stream = await openStream(`${caller.url}/v1.0/invoke/echo/method/sse?id=renew`);
    assert.equal(await stream.nextEvent(), 'data: event 0');
    // Wait until each sidecar has installed a certificate after the one the stream started with expired (two or
    // three rotations at half-life; counting rotations instead undercounts on a loaded machine).
    const expiredAt = Date.parse(original.validTo) + 1000;
    const rotatedAfterExpiry = (proc: typeof server.proc): Promise<unknown> => proc.waitFor((_line, record) => record?.msg === 'SVID installed' && Date.now() > expiredAt, 30_000, proc.lines.length);
    await Promise.all([rotatedAfterExpiry(server.proc), rotatedAfterExpiry(caller.proc)]);
    assert.ok(Date.parse(original.validTo) < Date.now(), 'the original certificate has expired');
    // The stream opened before the rotations still delivers.
    await httpRequest(`http://127.0.0.1:${app.port}/sse/next?id=renew&n=1&last=1`);
    assert.equal(await stream.nextEvent(), 'data: event 1');
    assert.equal(await stream.nextEvent(), undefined);
    // New calls succeed, and new handshakes see a newer certificate.
    const res = await httpRequest(`${caller.url}/v1.0/invoke/echo/method/after-rotation`);
    assert.equal(res.status, 200);
    const current = await probe();
    assert.notEqual(current.serialNumber, original.serialNumber);
    assert.ok(Date.parse(current.validTo) > Date.parse(original.validTo));
  });
});
