import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose';
import { bearerChallenge, BearerValidator, compileBearerOptions, insufficientScopeChallenge, type BearerOptions, type BearerResult } from '../src/auth/bearer.js';
import { loadResourceFile } from '../src/config/load.js';
import type { ComponentResource } from '../src/config/types.js';
import { configError } from './config-error.js';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'mcp-server';

interface KeyPair {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicKey: CryptoKey;
}

async function keyPair(kid: string, alg = 'RS256'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** Polls `check` every 10 ms until it holds; fails naming `what` after five seconds. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A JWKS endpoint of our own on 127.0.0.1:0: serves keys, counts hits, and can fail or stall on demand. */
class JwksServer {
  mode: 'ok' | 'error' | 'garbage' | 'slow' | 'huge' = 'ok';
  keys: JWK[] = [];
  hits = 0;
  discoveryHits = 0;
  discoveryIssuer: string | undefined;
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((request, response) => this.handle(request, response));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get jwksUrl(): string {
    return `${this.base}/jwks.json`;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    if (request.url === '/.well-known/openid-configuration') {
      this.discoveryHits += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: this.discoveryIssuer ?? this.base, jwks_uri: this.jwksUrl }));
      return;
    }
    if (request.url !== '/jwks.json') {
      response.writeHead(404).end();
      return;
    }
    this.hits += 1;
    switch (this.mode) {
      case 'error':
        response.writeHead(500).end('down for maintenance');
        return;
      case 'garbage':
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [ oops');
        return;
      case 'huge':
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [], padding: 'x'.repeat(600 * 1024) }));
        return;
      case 'slow': {
        const timer = setTimeout(() => response.writeHead(200).end(JSON.stringify({ keys: this.keys })), 3000);
        response.on('close', () => clearTimeout(timer));
        return;
      }
      default: {
        // Answer a little later so concurrent callers really overlap with one fetch.
        const body: JSONWebKeySet = { keys: this.keys };
        setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)), 20);
      }
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

function component(metadata: Array<{ name: string; value?: string; envRef?: string; secretKeyRef?: { name: string; key?: string } }>, name = 'bearer-validator'): ComponentResource {
  return { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name }, spec: { type: 'middleware.http.bearer', version: 'v1', metadata } };
}


async function sign(key: KeyPair, claims: JWTPayload = {}, options: { expiresIn?: string | number; notBefore?: number; issuer?: string; audience?: string | string[]; header?: Record<string, unknown> } = {}): Promise<string> {
  const jwt = new SignJWT({ sub: 'user-42', scope: 'inventory:read', ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...options.header })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt();
  if (options.expiresIn !== undefined) jwt.setExpirationTime(options.expiresIn);
  else jwt.setExpirationTime('5m');
  if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
  return jwt.sign(key.privateKey);
}

function failed(result: BearerResult): Extract<BearerResult, { ok: false }> {
  if (result.ok) assert.fail('expected the token to be refused');
  return result;
}

describe('bearer JWT validation (middleware.http.bearer)', function () {
  this.timeout(20_000);
  const server = new JwksServer();
  let k1: KeyPair;
  let k2: KeyPair;
  let rotated: KeyPair;
  let stranger: KeyPair;

  before(async () => {
    [k1, k2, rotated, stranger] = await Promise.all([keyPair('k1'), keyPair('k2', 'ES256'), keyPair('k3'), keyPair('k1')]);
    await server.start();
  });
  after(() => server.stop());
  beforeEach(() => {
    server.mode = 'ok';
    server.keys = [k1.publicJwk, k2.publicJwk];
    server.hits = 0;
    server.discoveryHits = 0;
    server.discoveryIssuer = undefined;
  });

  const options = (extra: Array<{ name: string; value: string }> = []): BearerOptions =>
    compileBearerOptions(
      component([
        { name: 'jwksURL', value: server.jwksUrl },
        { name: 'audience', value: AUDIENCE },
        { name: 'issuer', value: ISSUER },
        { name: 'jwksTimeout', value: '300ms' },
        ...extra,
      ]),
      'bearer.yaml',
    );

  describe('component metadata', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'skein-bearer-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("the seed's bearer-validator component loads unchanged", () => {
      const file = join(dir, 'bearer.yaml');
      writeFileSync(
        file,
        `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: bearer-validator
spec:
  type: middleware.http.bearer
  version: v1
  metadata:
  - name: jwksURL
    value: "https://auth.example.com/.well-known/jwks.json"
  - name: audience
    value: "mcp-server"
  - name: issuer
    value: "https://auth.example.com"
`,
      );
      const [loaded] = loadResourceFile(file);
      assert.equal(loaded?.kind, 'Component');
      const compiled = compileBearerOptions(loaded?.value, file);
      assert.equal(compiled.component, 'bearer-validator');
      assert.equal(compiled.issuer, 'https://auth.example.com');
      assert.equal(compiled.audience, 'mcp-server');
      assert.equal(compiled.jwksUrl?.href, 'https://auth.example.com/.well-known/jwks.json');
      assert.equal(compiled.clockSkewSeconds, 60);
      assert.ok(!compiled.algorithms.some((algorithm) => algorithm.startsWith('HS') || algorithm === 'none'));
      assert.ok(Object.isFrozen(compiled));
    });

    it('the schema refuses unknown fields and an entry with two sources', () => {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, 'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: b }\nspec:\n  type: middleware.http.bearer\n  version: v1\n  metdata: []\n');
      assert.match(configError(() => loadResourceFile(file)).message, /\/spec\/metdata: unknown field "metdata"/);
      writeFileSync(file, 'apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: b }\nspec:\n  type: middleware.http.bearer\n  version: v1\n  metadata:\n  - { name: audience, value: a, envRef: AUD }\n');
      assert.equal(configError(() => loadResourceFile(file)).location?.path, '/spec/metadata/0');
    });

    it("accepts Dapr's aliases and any case", () => {
      const compiled = compileBearerOptions(component([{ name: 'issuerURL', value: 'https://a.example' }, { name: 'CLIENTID', value: 'aud' }]), 'x.yaml');
      assert.equal(compiled.issuer, 'https://a.example');
      assert.equal(compiled.audience, 'aud');
      assert.equal(compiled.jwksUrl, undefined);
    });

    it('reads values from the environment and a secret resolver', () => {
      const compiled = compileBearerOptions(
        component([{ name: 'issuer', envRef: 'SKEIN_TEST_ISSUER' }, { name: 'audience', secretKeyRef: { name: 'oidc', key: 'aud' } }]),
        'x.yaml',
        { env: { SKEIN_TEST_ISSUER: 'https://env.example' }, secret: ({ name, key }) => (name === 'oidc' && key === 'aud' ? 'from-secret' : undefined) },
      );
      assert.equal(compiled.issuer, 'https://env.example');
      assert.equal(compiled.audience, 'from-secret');
      assert.equal(configError(() => compileBearerOptions(component([{ name: 'issuer', envRef: 'SKEIN_UNSET_VARIABLE' }]), 'x.yaml', { env: {} })).location?.path, '/spec/metadata/0/envRef');
      assert.equal(configError(() => compileBearerOptions(component([{ name: 'audience', secretKeyRef: { name: 's' } }]), 'x.yaml')).location?.path, '/spec/metadata/0/secretKeyRef');
    });

    const bad: Array<[string, ComponentResource, string, RegExp]> = [
      ['audience is required', component([{ name: 'issuer', value: ISSUER }]), '/spec/metadata', /missing required metadata "audience"/],
      ['issuer is required', component([{ name: 'audience', value: AUDIENCE }]), '/spec/metadata', /missing required metadata "issuer"/],
      ['an unknown name', component([{ name: 'issuer', value: ISSUER }, { name: 'audience', value: AUDIENCE }, { name: 'jwks', value: 'x' }]), '/spec/metadata/2/name', /unknown metadata "jwks"/],
      ['a repeated name', component([{ name: 'issuer', value: ISSUER }, { name: 'issuerURL', value: ISSUER }]), '/spec/metadata/1/name', /set twice/],
      ['a plain-http JWKS', component([{ name: 'issuer', value: ISSUER }, { name: 'audience', value: AUDIENCE }, { name: 'jwksURL', value: 'http://keys.example.com/jwks' }]), '/spec/metadata/2/value', /https/],
      ['a JWKS that is not a URL', component([{ name: 'issuer', value: ISSUER }, { name: 'audience', value: AUDIENCE }, { name: 'jwksURL', value: 'jwks.json' }]), '/spec/metadata/2/value', /absolute URL/],
      ['discovery from a non-URL issuer', component([{ name: 'issuer', value: 'my-issuer' }, { name: 'audience', value: AUDIENCE }]), '/spec/metadata/0/value', /discovered/],
      ['HMAC algorithms', component([{ name: 'issuer', value: ISSUER }, { name: 'audience', value: AUDIENCE }, { name: 'allowedAlgorithms', value: 'RS256, HS256' }]), '/spec/metadata/2/value', /HMAC/],
      ['alg none', component([{ name: 'issuer', value: ISSUER }, { name: 'audience', value: AUDIENCE }, { name: 'allowedAlgorithms', value: 'none' }]), '/spec/metadata/2/value', /never accepted/],
      ['a large clock skew', component([{ name: 'issuer', value: ISSUER }, { name: 'audience', value: AUDIENCE }, { name: 'clockSkew', value: '1h' }]), '/spec/metadata/2/value', /at most 300s/],
      ['a bad duration', component([{ name: 'issuer', value: ISSUER }, { name: 'audience', value: AUDIENCE }, { name: 'jwksCooldown', value: 'soon' }]), '/spec/metadata/2/value', /invalid duration/],
    ];
    for (const [title, resource, path, reason] of bad) {
      it(`refuses ${title}`, () => {
        const error = configError(() => compileBearerOptions(resource, 'bearer.yaml'));
        assert.equal(error.location?.path, path);
        assert.match(error.message, reason);
      });
    }

    it('refuses another component type', () => {
      const resource = component([]);
      assert.equal(configError(() => compileBearerOptions({ ...resource, spec: { ...resource.spec, type: 'middleware.http.oauth2' } }, 'x.yaml')).location?.path, '/spec/type');
    });
  });

  describe('tokens', () => {
    it('accepts a valid token and returns its claims and an allow decision', async () => {
      const validator = new BearerValidator(options());
      const result = await validator.validate(`Bearer ${await sign(k1, { groups: ['admins'] })}`, { caller: 'spiffe://public/ns/default/agent', target: 'mcp-server', method: 'POST /mcp' });
      assert.ok(result.ok);
      assert.equal(result.claims.sub, 'user-42');
      assert.deepEqual(result.claims['groups'], ['admins']);
      assert.ok(Object.isFrozen(result.claims));
      assert.deepEqual(result.decision, {
        allowed: true,
        source: 'jwt',
        rule: 'bearer-validator',
        reason: 'the bearer token from https://issuer.test for subject "user-42" is valid',
        caller: 'spiffe://public/ns/default/agent',
        target: 'mcp-server',
        method: 'POST /mcp',
      });
      assert.ok((await validator.validate(`bearer ${await sign(k2)}`)).ok, 'ES256 from the same set, scheme in lower case');
    });

    it('accepts an audience list that contains ours', async () => {
      assert.ok((await new BearerValidator(options()).validate(`Bearer ${await sign(k1, {}, { audience: ['other', AUDIENCE] })}`)).ok);
    });

    const now = () => Math.floor(Date.now() / 1000);
    const cases: Array<[string, () => Promise<string | undefined> | string | undefined, string, RegExp]> = [
      ['no header', () => undefined, 'missing', /no bearer token/],
      ['an empty header', () => '', 'missing', /no bearer token/],
      ['another scheme', () => 'Basic dXNlcjpwYXNz', 'missing', /does not hold a Bearer token/],
      ['a token that is not a JWS', () => 'Bearer not-a-jwt', 'malformed', /compact JWS/],
      ['a header that is not JSON', () => 'Bearer e30x.e30.', 'malformed', /cannot be decoded/],
      ['an expired token', async () => `Bearer ${await sign(k1, {}, { expiresIn: now() - 600 })}`, 'expired', /expired \d{4}-/],
      ['a token not valid yet', async () => `Bearer ${await sign(k1, {}, { notBefore: now() + 600 })}`, 'not-yet-valid', /not valid before/],
      ['the wrong audience', async () => `Bearer ${await sign(k1, {}, { audience: 'another-server' })}`, 'bad-audience', /"another-server"/],
      ['the wrong issuer', async () => `Bearer ${await sign(k1, {}, { issuer: 'https://evil.example' })}`, 'bad-issuer', /evil\.example/],
      ['an unknown kid', async () => `Bearer ${await sign(rotated)}`, 'unknown-kid', /kid "k3"/],
      ['a token signed by another key with the same kid', async () => `Bearer ${await sign(stranger)}`, 'bad-signature', /does not verify/],
      [
        'a tampered payload',
        async () => {
          const [header, , signature] = (await sign(k1)).split('.');
          return `Bearer ${header}.${base64url.encode(JSON.stringify({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }))}.${signature}`;
        },
        'bad-signature',
        /does not verify/,
      ],
      [
        'alg none',
        () => `Bearer ${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }))}.`,
        'disallowed-algorithm',
        /"none"/,
      ],
      [
        'no exp claim',
        async () =>
          `Bearer ${await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).sign(k1.privateKey)}`,
        'malformed',
        /"exp" claim is missing/,
      ],
    ];
    for (const [title, header, failure, reason] of cases) {
      it(`refuses ${title} (401, ${failure})`, async () => {
        const authorization = await header();
        const result = failed(await new BearerValidator(options()).validate(authorization, { target: 'mcp-server' }));
        assert.equal(result.failure, failure);
        assert.equal(result.error.httpStatus, 401);
        assert.equal(result.error.code, 'ERR_UNAUTHENTICATED');
        assert.equal(result.decision.allowed, false);
        assert.equal(result.decision.source, 'jwt');
        assert.equal(result.decision.rule, 'bearer-validator');
        assert.match(result.decision.reason, reason);
        assert.equal(result.error.message, result.decision.reason);
        assert.match(result.wwwAuthenticate, failure === 'missing' ? /^Bearer$/ : /^Bearer error="invalid_token", error_description="/);
        const token = authorization?.split(' ')[1];
        if (token) assert.ok(!result.decision.reason.includes(token) && !result.wwwAuthenticate.includes(token), 'the token never appears in the answer');
      });
    }

    it('refuses a token signed with an HMAC secret equal to the public key', async () => {
      const pem = await exportSPKI(k1.publicKey);
      const jwkText = JSON.stringify(k1.publicJwk);
      for (const [alg, secret] of [['HS256', pem], ['HS256', jwkText], ['HS512', pem]] as const) {
        const header = base64url.encode(JSON.stringify({ alg, kid: 'k1', typ: 'JWT' }));
        const payload = base64url.encode(JSON.stringify({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 }));
        const signature = base64url.encode(createHmac(alg === 'HS256' ? 'sha256' : 'sha512', secret).update(`${header}.${payload}`).digest());
        const result = failed(await new BearerValidator(options()).validate(`Bearer ${header}.${payload}.${signature}`));
        assert.equal(result.failure, 'disallowed-algorithm', alg);
      }
      // The same forgery claiming RS256 fails on the signature.
      const header = base64url.encode(JSON.stringify({ alg: 'RS256', kid: 'k1' }));
      const payload = base64url.encode(JSON.stringify({ sub: 'admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 }));
      const signature = base64url.encode(createHmac('sha256', pem).update(`${header}.${payload}`).digest());
      assert.equal(failed(await new BearerValidator(options()).validate(`Bearer ${header}.${payload}.${signature}`)).failure, 'bad-signature');
    });

    it('an algorithm outside a narrowed allow-list is refused before any key is fetched', async () => {
      const validator = new BearerValidator(options([{ name: 'allowedAlgorithms', value: 'RS256' }]));
      assert.equal(failed(await validator.validate(`Bearer ${await sign(k2)}`)).failure, 'disallowed-algorithm');
      assert.equal(server.hits, 0);
    });

    it('tolerates a small clock skew on exp and nbf', async () => {
      const seconds = Math.floor(Date.now() / 1000);
      const validator = new BearerValidator(options([{ name: 'clockSkew', value: '30s' }]));
      assert.ok((await validator.validate(`Bearer ${await sign(k1, {}, { expiresIn: seconds - 10 })}`)).ok);
      assert.ok((await validator.validate(`Bearer ${await sign(k1, {}, { notBefore: seconds + 10 })}`)).ok);
      assert.equal(failed(await validator.validate(`Bearer ${await sign(k1, {}, { expiresIn: seconds - 45 })}`)).failure, 'expired');
      assert.equal(failed(await validator.validate(`Bearer ${await sign(k1, {}, { notBefore: seconds + 45 })}`)).failure, 'not-yet-valid');
    });

    it('a token without kid is tried against every matching key', async () => {
      server.keys = [stranger.publicJwk, { ...k1.publicJwk, kid: 'other' }];
      const token = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').sign(k1.privateKey);
      assert.ok((await new BearerValidator(options()).validate(`Bearer ${token}`)).ok);
      const forged = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('5m').sign(rotated.privateKey);
      assert.equal(failed(await new BearerValidator(options()).validate(`Bearer ${forged}`)).failure, 'bad-signature');
    });
  });

  describe('verified tokens', () => {
    it('a token that verified answers again without a new verification, with a decision for the new call', async () => {
      const validator = new BearerValidator(options());
      const token = await sign(k1, { sub: 'alice' });
      const first = await validator.validate(`Bearer ${token}`, { caller: 'agent', target: 'tools', method: 'tools/call' });
      assert.ok(first.ok);
      assert.equal(validator.verifiedTokens, 1);
      const again = await validator.validate(`Bearer ${token}`, { caller: 'other-agent', target: 'tools', method: 'tools/list' });
      assert.ok(again.ok);
      assert.deepEqual(again.claims, first.claims);
      assert.equal(again.decision.caller, 'other-agent', 'the decision describes the call it was made for');
      assert.equal(again.decision.method, 'tools/list');
      assert.equal(validator.verifiedTokens, 1, 'remembered once');
      assert.equal(validator.signaturesChecked, 1, 'the second call checked no signature');
      assert.equal(server.hits, 1);
    });

    it('a remembered token still expires: exp is checked on every call, within the clock skew', async () => {
      let clock = Date.now();
      const validator = new BearerValidator(options([{ name: 'clockSkew', value: '10s' }]), { now: () => clock });
      const seconds = Math.floor(clock / 1000);
      const token = await sign(k1, {}, { expiresIn: seconds + 60 });
      assert.ok((await validator.validate(`Bearer ${token}`)).ok);
      clock += 65_000;
      assert.ok((await validator.validate(`Bearer ${token}`)).ok, 'within the skew after exp');
      assert.equal(validator.signaturesChecked, 1, 'answered from memory');
      clock += 10_000;
      const late = failed(await validator.validate(`Bearer ${token}`));
      assert.equal(late.failure, 'expired');
      assert.match(late.error.message, /expired \d{4}-/);
      assert.equal(validator.verifiedTokens, 0, 'an expired token is forgotten');
    });

    it('a key the issuer withdraws stops a remembered token at the next key refresh', async () => {
      let clock = Date.now();
      const validator = new BearerValidator(options([{ name: 'jwksRefreshInterval', value: '1m' }]), { now: () => clock });
      const token = await sign(k1, {}, { expiresIn: '2h' });
      assert.ok((await validator.validate(`Bearer ${token}`)).ok);
      server.keys = [k2.publicJwk];
      clock += 2 * 60_000;
      // Answered from memory while the refresh it starts is under way; refused once the new key set is in.
      assert.ok((await validator.validate(`Bearer ${token}`)).ok);
      assert.equal(validator.signaturesChecked, 1, 'answered from memory');
      await until(async () => !(await validator.validate(`Bearer ${token}`)).ok, 'the withdrawn key to take effect');
      assert.equal(failed(await validator.validate(`Bearer ${token}`)).failure, 'unknown-kid');
    });

    it('a token refused is not remembered, and a tampered copy of a remembered one is refused', async () => {
      const validator = new BearerValidator(options());
      const token = await sign(k1, { sub: 'alice' });
      assert.ok((await validator.validate(`Bearer ${token}`)).ok);
      const [header, , signature] = token.split('.');
      const payload = Buffer.from(JSON.stringify({ sub: 'mallory', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
      assert.equal(failed(await validator.validate(`Bearer ${header}.${payload}.${signature}`)).failure, 'bad-signature');
      assert.equal(validator.verifiedTokens, 1);
    });
  });

  describe('the JWKS', () => {
    it('is fetched once for many concurrent first requests', async () => {
      const validator = new BearerValidator(options());
      const token = await sign(k1);
      const results = await Promise.all(Array.from({ length: 50 }, () => validator.validate(`Bearer ${token}`)));
      assert.ok(results.every((result) => result.ok));
      assert.equal(server.hits, 1);
    });

    it('an unknown kid triggers one refetch for all concurrent callers, then none until the cooldown ends', async () => {
      let clock = Date.now();
      const validator = new BearerValidator(options(), { now: () => clock });
      assert.ok((await validator.validate(`Bearer ${await sign(k1)}`)).ok);
      assert.equal(server.hits, 1);

      // The issuer rotates in a new key after the cooldown has passed.
      server.keys = [k1.publicJwk, k2.publicJwk, rotated.publicJwk];
      clock += 31_000;
      const token = await sign(rotated);
      const results = await Promise.all(Array.from({ length: 50 }, () => validator.validate(`Bearer ${token}`, {})));
      assert.ok(results.every((result) => result.ok));
      assert.equal(server.hits, 2, 'one refetch shared by 50 callers');

      // Forged kids cannot make it fetch again within the cooldown.
      const forged = await Promise.all(Array.from({ length: 20 }, async (_, index) => validator.validate(`Bearer ${await sign({ ...stranger, kid: `forged-${index}` })}`)));
      assert.ok(forged.every((result) => !result.ok && result.failure === 'unknown-kid'));
      assert.equal(server.hits, 2);
      clock += 31_000;
      assert.equal(failed(await validator.validate(`Bearer ${await sign({ ...stranger, kid: 'forged-late' })}`)).failure, 'unknown-kid');
      assert.equal(server.hits, 3, 'one more fetch once the cooldown is over');
    });

    it('is refreshed in the background when old, and stale keys keep working while it is down', async () => {
      let clock = Date.now();
      const validator = new BearerValidator(options([{ name: 'jwksRefreshInterval', value: '1m' }]), { now: () => clock });
      const token = await sign(k1, {}, { expiresIn: '2h' });
      assert.ok((await validator.validate(`Bearer ${token}`)).ok);
      server.mode = 'error';
      clock += 2 * 60_000;
      assert.ok((await validator.validate(`Bearer ${token}`)).ok, 'served from the cached keys');
      await until(() => server.hits === 2, 'a background refresh to be attempted');
      server.mode = 'ok';
      server.keys = [rotated.publicJwk];
      clock += 60_000;
      assert.ok((await validator.validate(`Bearer ${token}`)).ok, 'served from the cached keys while the refresh runs');
      await until(async () => !(await validator.validate(`Bearer ${token}`)).ok, 'the background refresh to land');
      assert.equal(failed(await validator.validate(`Bearer ${token}`)).failure, 'unknown-kid', 'refreshed keys replace the old ones');
    });

    it('unreachable: refused with jwks-unavailable, and not retried before the cooldown', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      let clock = Date.now();
      const validator = new BearerValidator(
        compileBearerOptions(component([{ name: 'jwksURL', value: `http://127.0.0.1:${port}/jwks.json` }, { name: 'audience', value: AUDIENCE }, { name: 'issuer', value: ISSUER }]), 'x.yaml'),
        { now: () => clock },
      );
      const token = await sign(k1);
      const result = failed(await validator.validate(`Bearer ${token}`));
      assert.equal(result.failure, 'jwks-unavailable');
      assert.equal(result.error.code, 'ERR_JWKS_UNAVAILABLE');
      assert.equal(result.error.httpStatus, 401);
      assert.match(result.decision.reason, /unreachable/);
      await Promise.all(Array.from({ length: 20 }, () => validator.validate(`Bearer ${token}`)));
      assert.equal(validator.jwksFetches, 1, 'no fetch storm against a dead endpoint');
      clock += 31_000;
      await validator.validate(`Bearer ${token}`);
      assert.equal(validator.jwksFetches, 2);
    });

    it('slow: refused when the fetch times out, without waiting for it', async () => {
      server.mode = 'slow';
      const validator = new BearerValidator(options());
      const started = Date.now();
      const result = failed(await validator.validate(`Bearer ${await sign(k1)}`));
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assert.equal(result.failure, 'jwks-unavailable');
      assert.match(result.decision.reason, /did not answer within 300 ms/);
    });

    for (const [mode, reason] of [
      ['error', /HTTP 500/],
      ['garbage', /not JSON/],
      ['huge', /larger than/],
    ] as const) {
      it(`${mode}: refused with jwks-unavailable`, async () => {
        server.mode = mode;
        const result = failed(await new BearerValidator(options()).validate(`Bearer ${await sign(k1)}`));
        assert.equal(result.failure, 'jwks-unavailable');
        assert.match(result.decision.reason, reason);
      });
    }

    it('is discovered from the issuer when no jwksURL is set', async () => {
      const discovered = compileBearerOptions(component([{ name: 'issuer', value: server.base }, { name: 'audience', value: AUDIENCE }]), 'x.yaml');
      const validator = new BearerValidator(discovered);
      assert.ok((await validator.validate(`Bearer ${await sign(k1, {}, { issuer: server.base })}`)).ok);
      assert.equal(server.discoveryHits, 1);
      assert.equal(server.hits, 1);
    });

    it('discovery naming another issuer is refused', async () => {
      server.discoveryIssuer = 'https://somebody-else.example';
      const discovered = compileBearerOptions(component([{ name: 'issuer', value: server.base }, { name: 'audience', value: AUDIENCE }]), 'x.yaml');
      const result = failed(await new BearerValidator(discovered).validate(`Bearer ${await sign(k1, {}, { issuer: server.base })}`));
      assert.equal(result.failure, 'jwks-unavailable');
      assert.match(result.decision.reason, /names issuer "https:\/\/somebody-else\.example"/);
      assert.equal(server.hits, 0);
    });
  });

  it('challenges follow RFC 6750 and carry the RFC 9728 metadata pointer when given', () => {
    assert.equal(bearerChallenge('missing', 'x'), 'Bearer');
    assert.equal(bearerChallenge('missing', 'x', 'https://mcp.example/.well-known/oauth-protected-resource'), 'Bearer resource_metadata="https://mcp.example/.well-known/oauth-protected-resource"');
    assert.equal(bearerChallenge('expired', 'the "token" expired'), 'Bearer error="invalid_token", error_description="the \\"token\\" expired"');
    assert.equal(insufficientScopeChallenge(['inventory:write', 'admin']), 'Bearer error="insufficient_scope", scope="inventory:write admin"');
  });
});
