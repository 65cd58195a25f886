import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createCsr, createRootCa, generateKeyPem, issueServerCertificate, signSvid, formatSpiffeId, parseSpiffeId, spiffeIdOfCertificate, SkeinError } from '@skein/core';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinTokenLedger, createJoinToken, joinTokenKey, verifyJoinToken } from '../src/identity/join-token.js';

const ca = createRootCa('example.org', 3_600_000);
const id = { trustDomain: 'example.org', namespace: 'shop', appId: 'orders' };

describe('SPIFFE IDs', function () {
  it('round-trips the Skein shape and refuses everything else', function () {
    assert.deepEqual(parseSpiffeId(formatSpiffeId(id)), id);
    for (const bad of ['spiffe://example.org/orders', 'spiffe://example.org/ns/shop/orders/extra', 'https://example.org/ns/shop/orders', 'spiffe://Example.org/ns/shop/orders', 'spiffe://example.org/ns/Shop/orders', 'spiffe://example.org/ns/shop/or.ders', 'spiffe://example.org/ns/shop/']) {
      assert.equal(parseSpiffeId(bad), undefined, bad);
    }
  });
});

describe('the CA', function () {
  it('signs a CSR into an SVID carrying only the SPIFFE URI, verifiable with the CA', function () {
    const { privateKeyPem } = generateKeyPem();
    const cert = new X509Certificate(signSvid(ca, createCsr(privateKeyPem, 'orders'), id, 60_000));
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/shop/orders');
    assert.deepEqual(spiffeIdOfCertificate(cert), id);
    assert.ok(cert.verify(new X509Certificate(ca.certPem).publicKey));
    assert.ok(cert.checkPrivateKey(createPrivateKey(privateKeyPem)));
  });

  it('refuses a malformed CSR and one whose signature does not match its key', function () {
    assert.throws(() => signSvid(ca, 'garbage', id, 60_000), (error: unknown) => error instanceof SkeinError && /not a PEM PKCS#10/.test(error.message));
    const { privateKeyPem } = generateKeyPem();
    const pem = createCsr(privateKeyPem, 'orders');
    // Flip one byte inside the signed body: the signature no longer verifies.
    const body = pem.split('\n').slice(1, -2).join('');
    const bytes = Buffer.from(body, 'base64');
    bytes[40] = (bytes[40] as number) ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${bytes.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    assert.throws(() => signSvid(ca, tampered, id, 60_000), SkeinError);
  });

  it('never issues a certificate that outlives the CA', function () {
    const { privateKeyPem } = generateKeyPem();
    const cert = new X509Certificate(signSvid(ca, createCsr(privateKeyPem, 'orders'), id, 10 * 3_600_000));
    assert.ok(Date.parse(cert.validTo) <= Date.parse(new X509Certificate(ca.certPem).validTo));
  });

  it('issues serving certificates for names and IP addresses', function () {
    const serving = new X509Certificate(issueServerCertificate(ca, 'nats', ['localhost', '127.0.0.1', '::1'], 60_000).certPem);
    assert.equal(serving.checkHost('localhost'), 'localhost');
    assert.equal(serving.checkIP('127.0.0.1'), '127.0.0.1');
  });
});

describe('join tokens', function () {
  it('entitle exactly one identity', async function () {
    const token = await createJoinToken(ca.keyPem, id, 60);
    await verifyJoinToken(token, joinTokenKey(ca.keyPem), id);
    await assert.rejects(verifyJoinToken(token, joinTokenKey(ca.keyPem), { ...id, appId: 'payments' }), /is for spiffe:\/\/example.org\/ns\/shop\/orders/);
    await assert.rejects(verifyJoinToken(`${token}x`, joinTokenKey(ca.keyPem), id), /join token rejected/);
    await assert.rejects(verifyJoinToken('a.b.c', joinTokenKey(ca.keyPem), id), /join token rejected/);
  });
});

describe('the ledger of used join tokens', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'skein-ledger-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts each token once, and a restarted sentry (a new ledger on the same file) still refuses it', async function () {
    const file = join(dir, 'sentry', 'used.json');
    const verified = await verifyJoinToken(await createJoinToken(ca.keyPem, id, 60), joinTokenKey(ca.keyPem), id);
    const ledger = new JoinTokenLedger(file);
    assert.equal(ledger.claim(verified), true);
    assert.equal(ledger.claim(verified), false);
    assert.equal(new JoinTokenLedger(file).claim(verified), false);
    const other = await verifyJoinToken(await createJoinToken(ca.keyPem, id, 60), joinTokenKey(ca.keyPem), id);
    assert.notEqual(other.jti, verified.jti);
    assert.equal(new JoinTokenLedger(file).claim(other), true);
  });

  it('forgets tokens once they expired (they are refused as expired then)', function () {
    let now = 1_000;
    const ledger = new JoinTokenLedger(join(dir, 'used.json'), () => now);
    ledger.claim({ jti: 'a', expiresAtMs: 2_000 });
    now = 3_000;
    ledger.claim({ jti: 'b', expiresAtMs: 9_000 });
    assert.equal(ledger.size, 1);
  });

  it('refuses to start on a damaged file rather than accept a token twice', function () {
    const file = join(dir, 'used.json');
    writeFileSync(file, '{not json');
    assert.throws(() => new JoinTokenLedger(file), /are not JSON .*refusing to start rather than accept a token twice/);
  });

  it('refuses tokens without a jti, and tokens longer than a day', async function () {
    const { SignJWT } = await import('jose');
    const legacy = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject(formatSpiffeId(id)).setAudience('skein-sentry').setExpirationTime('60s').sign(createPrivateKey(ca.keyPem));
    await assert.rejects(verifyJoinToken(legacy, joinTokenKey(ca.keyPem), id), /no jti or exp, so it cannot be used only once/);
    await assert.rejects(createJoinToken(ca.keyPem, id, 2 * 24 * 3600), /at most 24 h/);
  });
});
