import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { loadResources } from '../src/config/load.js';
import type { ComponentResource, HTTPEndpointResource } from '../src/config/types.js';
import { ConfigError, SkeinError, createRootCa, issueServerCertificate, configureLogging, maskSecretValues, redact, registerSecretValue } from '@skein/core';
import { loadLocalFileStore, SecretStores, secretTable } from '../src/secrets/secret-stores.js';
import { compileHttpEndpoint } from '../src/outbound/http-endpoint.js';
import { endpointHeaders, endpointPath } from '../src/outbound/endpoint-client.js';
import {
  ClientCredentialsTokenSource,
  compileClientCredentialsOptions,
  parseTokenResponse,
  refreshAt,
  tokenRequest,
  type ClientCredentialsOptions,
} from '../src/outbound/oauth2-client-credentials.js';
import { compileOutbound } from '../src/outbound/outbound-config.js';
import { OutboundPipeline } from '../src/outbound/outbound.js';
import type { Call, CallResponse } from '../src/pipeline/pipeline.js';
import { configError } from './config-error.js';


function stores(secrets: Record<string, Record<string, string>> = {}, name = 'local'): SecretStores {
  return new SecretStores(new Map([[name, new Map(Object.entries(secrets).map(([secret, keys]) => [secret, new Map(Object.entries(keys))]))]]));
}

function endpointResource(spec: HTTPEndpointResource['spec'], extra: Partial<HTTPEndpointResource> = {}): HTTPEndpointResource {
  return { apiVersion: 'dapr.io/v1alpha1', kind: 'HTTPEndpoint', metadata: { name: 'remote' }, spec, ...extra };
}

function oauth2Component(metadata: Array<{ name: string; value?: string; envRef?: string; secretKeyRef?: { name: string; key?: string } }>): ComponentResource {
  return { apiVersion: 'dapr.io/v1alpha1', kind: 'Component', metadata: { name: 'oauth2' }, spec: { type: 'middleware.http.oauth2clientcredentials', version: 'v1', metadata } };
}

const BASE_METADATA = [
  { name: 'clientId', value: 'agent' },
  { name: 'clientSecret', value: 'client-secret-for-unit-tests' },
  { name: 'tokenURL', value: 'https://auth.example.com/oauth/token?tenant=a' },
];

describe('secret stores (secretstores.local.file)', function () {
  it('flattens a secrets file as Dapr does, single- and multi-valued', function () {
    const json = { redisPassword: 'p1', connectionStrings: { sql: 's1', mysql: 'm1' }, list: ['a', 'b'] };
    const single = secretTable(json, ':', false);
    assert.equal(single.get('connectionStrings:sql')?.get('connectionStrings:sql'), 's1');
    assert.equal(single.get('redisPassword')?.get('redisPassword'), 'p1');
    assert.equal(single.get('list:1')?.get('list:1'), 'b');
    const multi = secretTable(json, '.', true);
    assert.equal(multi.get('connectionStrings')?.get('mysql'), 'm1');
    assert.equal(multi.get('redisPassword')?.get('redisPassword'), 'p1');
  });

  it('reads the file named by a Component, and never quotes it when it is not JSON', function () {
    const dir = mkdtempSync(join(tmpdir(), 'skein-secrets-'));
    try {
      const component = (file: string): ComponentResource => ({
        apiVersion: 'dapr.io/v1alpha1',
        kind: 'Component',
        metadata: { name: 'local' },
        spec: { type: 'secretstores.local.file', version: 'v1', metadata: [{ name: 'secretsFile', value: file }, { name: 'multiValued', value: 'true' }] },
      });
      writeFileSync(join(dir, 'ok.json'), JSON.stringify({ db: { password: 'pw' } }));
      assert.equal(loadLocalFileStore(component('ok.json'), 'store.yaml', dir).get('db')?.get('password'), 'pw');
      writeFileSync(join(dir, 'bad.json'), '{"db": "super-secret-value" oops');
      const error = configError(() => loadLocalFileStore(component('bad.json'), 'store.yaml', dir));
      assert.match(error.message, /store\.yaml: \/spec\/metadata\/0\/value: the secrets file .*bad\.json is not valid JSON/);
      assert.ok(!error.message.includes('super-secret-value'));
      assert.match(configError(() => loadLocalFileStore(component('missing.json'), 'store.yaml', dir)).message, /cannot read the secrets file .*missing\.json: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resolves a reference, or names the secret and the store it is missing from', function () {
    const one = stores({ api: { key: 'resolved-secret-1234' } });
    const site = { file: 'endpoint.yaml', path: '/spec/headers/0/secretKeyRef' };
    assert.equal(one.resolve({ store: undefined, name: 'api', key: 'key' }, site), 'resolved-secret-1234');
    assert.equal(maskSecretValues('header resolved-secret-1234 sent'), 'header [redacted] sent', 'resolved values are masked in logs');
    assert.match(configError(() => one.resolve({ store: 'local', name: 'api', key: 'other' }, site)).message, /endpoint\.yaml: \/spec\/headers\/0\/secretKeyRef: secret "api" \(key "other"\) is not in secret store "local"/);
    assert.match(configError(() => one.resolve({ store: 'vault', name: 'api', key: 'key' }, site)).message, /secret store "vault" is not loaded \(loaded: local\)/);
    assert.match(configError(() => new SecretStores(new Map()).resolve({ store: undefined, name: 'api', key: 'api' }, site)).message, /no secret store is loaded/);
    const two = new SecretStores(new Map([['a', new Map()], ['b', new Map()]]));
    assert.match(configError(() => two.resolve({ store: undefined, name: 'api', key: 'api' }, site)).message, /several secret stores are loaded \(a, b\); name one in auth\.secretStore/);
  });
});

describe('log redaction of secret values', function () {
  it('masks registered values in messages and in any field, and forgets them on request', function () {
    const forget = registerSecretValue('a-registered-secret');
    assert.deepEqual(redact({ reason: 'failed with a-registered-secret inside', nested: [{ text: 'x a-registered-secret' }], apiKey: 'plain' }), {
      reason: 'failed with [redacted] inside',
      nested: [{ text: 'x [redacted]' }],
      apiKey: '[redacted]',
    });
    forget();
    assert.equal(maskSecretValues('a-registered-secret'), 'a-registered-secret');
  });
});

describe('HTTPEndpoint compilation', function () {
  it('resolves header values from plain text, the environment and a secret store', function () {
    const compiled = compileHttpEndpoint(
      endpointResource({
        baseUrl: 'https://mcp.example.com/api/',
        headers: [
          { name: 'Accept', value: 'text/event-stream' },
          { name: 'X-Tenant', envRef: 'SKEIN_TEST_TENANT' },
          { name: 'X-Api-Key', secretKeyRef: { name: 'mcp', key: 'apiKey' } },
        ],
      }),
      'endpoint.yaml',
      stores({ mcp: { apiKey: 'endpoint-api-key-5678' } }),
      { SKEIN_TEST_TENANT: 'tenant-one' },
    );
    assert.deepEqual(compiled.headers, [['accept', 'text/event-stream'], ['x-tenant', 'tenant-one'], ['x-api-key', 'endpoint-api-key-5678']]);
    assert.equal(compiled.display, 'https://mcp.example.com/api');
    assert.equal(JSON.stringify(compiled), '{"name":"remote","baseUrl":"https://mcp.example.com/api"}', 'serialising it shows no header value');
  });

  it('refuses base URLs with credentials, queries or other schemes, and headers the sidecar owns', function () {
    const compile = (spec: HTTPEndpointResource['spec']): ConfigError => configError(() => compileHttpEndpoint(endpointResource(spec), 'e.yaml', stores()));
    assert.match(compile({ baseUrl: 'https://user:pw@mcp.example.com' }).message, /e\.yaml: \/spec\/baseUrl: baseUrl must not carry credentials/);
    assert.match(compile({ baseUrl: 'https://mcp.example.com/?key=1' }).message, /must not have a query or fragment/);
    assert.match(compile({ baseUrl: 'ftp://mcp.example.com' }).message, /must use http or https/);
    assert.match(compile({ baseUrl: 'http://a', headers: [{ name: 'Content-Length', value: '1' }] }).message, /\/spec\/headers\/0\/name: header "Content-Length" is set by the sidecar/);
    assert.match(compile({ baseUrl: 'http://a', headers: [{ name: 'X-A', value: '1' }, { name: 'x-a', value: '2' }] }).message, /\/spec\/headers\/1\/name: header "x-a" is already set/);
    assert.match(compile({ baseUrl: 'http://a', headers: [{ name: 'X-A', value: 'one\r\nX-Injected: yes' }] }).message, /contains characters not allowed/);
    assert.match(compile({ baseUrl: 'http://a', headers: [{ name: 'X-A', envRef: 'SKEIN_TEST_UNSET_VARIABLE' }] }).message, /\/spec\/headers\/0\/envRef: environment variable SKEIN_TEST_UNSET_VARIABLE is not set/);
    assert.match(compile({ baseUrl: 'http://a', clientTLS: { rootCA: { value: 'x' } } }).message, /\/spec\/clientTLS: clientTLS needs an https baseUrl/);
  });

  it('checks the client TLS material at load: PEM, a certificate with its own key', function () {
    const ca = createRootCa('unit', 3_600_000);
    const leaf = issueServerCertificate(ca, 'client', ['client.test'], 3_600_000);
    const other = issueServerCertificate(ca, 'other', ['other.test'], 3_600_000);
    const compile = (clientTLS: NonNullable<HTTPEndpointResource['spec']['clientTLS']>): ReturnType<typeof compileHttpEndpoint> =>
      compileHttpEndpoint(endpointResource({ baseUrl: 'https://mcp.example.com', clientTLS }), 'e.yaml', stores({ tls: { key: leaf.keyPem } }));
    const compiled = compile({ rootCA: { value: ca.certPem }, certificate: { value: leaf.certPem }, privateKey: { secretKeyRef: { name: 'tls', key: 'key' } } });
    assert.equal(compiled.tls?.key, leaf.keyPem);
    assert.ok(!JSON.stringify(compiled).includes('PRIVATE KEY'));
    assert.match(configError(() => compile({ rootCA: { value: 'not a certificate' } })).message, /\/spec\/clientTLS\/rootCA: rootCA is not a PEM certificate/);
    assert.match(configError(() => compile({ certificate: { value: leaf.certPem } })).message, /certificate needs a privateKey/);
    assert.match(configError(() => compile({ certificate: { value: leaf.certPem }, privateKey: { value: other.keyPem } })).message, /privateKey does not belong to the certificate/);
    assert.match(configError(() => compile({ rootCA: { file: 'no-such-ca.pem' } })).message, /\/spec\/clientTLS\/rootCA\/file: cannot read .*no-such-ca\.pem: ENOENT/);
  });

  it('builds the request path and headers sent to the endpoint', function () {
    assert.equal(endpointPath(new URL('https://a.example/api'), 'mcp/x', 'q=1'), '/api/mcp/x?q=1');
    assert.equal(endpointPath(new URL('https://a.example/'), 'mcp', ''), '/mcp');
    const headers = endpointHeaders(
      [['dapr-app-id', 'remote'], ['dapr-api-token', 't'], ['dapr-caller-app-id', 'forged'], ['x-api-key', 'from-the-app'], ['accept', 'application/json']],
      [['x-api-key', 'configured']],
    );
    assert.deepEqual(headers, [['accept', 'application/json'], ['x-api-key', 'configured']]);
  });
});

describe('OAuth2 client credentials (middleware.http.oauth2clientcredentials)', function () {
  it('compiles Dapr metadata, case-insensitively, with defaults', function () {
    const options = compileClientCredentialsOptions(
      oauth2Component([...BASE_METADATA, { name: 'Scopes', value: 'a,b c' }, { name: 'endpointParamsQuery', value: 'audience=mcp&resource=x' }, { name: 'authStyle', value: '2' }]),
      'c.yaml',
      stores(),
    );
    assert.deepEqual(options.scopes, ['a', 'b', 'c']);
    assert.equal(options.headerName, 'authorization');
    assert.equal(options.authStyle, 'header');
    assert.deepEqual(options.endpointParams, [['audience', 'mcp'], ['resource', 'x']]);
    assert.equal(JSON.stringify(options), '{"component":"oauth2","tokenUrl":"https://auth.example.com/oauth/token"}', 'no secret, no query');
    assert.equal(maskSecretValues('x client-secret-for-unit-tests'), 'x [redacted]', 'the client secret is masked in logs');
  });

  it('refuses what would misbehave: missing settings, a token URL in the clear, grant parameters, bad values', function () {
    const compile = (metadata: Parameters<typeof oauth2Component>[0]): ConfigError => configError(() => compileClientCredentialsOptions(oauth2Component(metadata), 'c.yaml', stores()));
    assert.match(compile(BASE_METADATA.slice(0, 2)).message, /c\.yaml: \/spec\/metadata: missing required metadata "tokenURL"/);
    assert.match(compile([...BASE_METADATA.slice(0, 2), { name: 'tokenURL', value: 'http://auth.example.com/token' }]).message, /tokenURL must use https \(plain http only to localhost\)/);
    assert.match(compile([...BASE_METADATA, { name: 'endpointParamsQuery', value: 'scope=admin' }]).message, /endpointParamsQuery cannot set "scope"/);
    assert.match(compile([...BASE_METADATA, { name: 'authStyle', value: '3' }]).message, /\/spec\/metadata\/3\/value: authStyle must be 0/);
    assert.match(compile([...BASE_METADATA, { name: 'pathFilter', value: '(' }]).message, /pathFilter is not a valid regular expression/);
    assert.match(compile([...BASE_METADATA, { name: 'authURL', value: 'x' }]).message, /\/spec\/metadata\/3\/name: unknown metadata "authURL"/);
    assert.match(compile([...BASE_METADATA.slice(0, 1), { name: 'clientSecret', secretKeyRef: { name: 'oauth' } }, BASE_METADATA[2] as { name: string; value: string }]).message, /\/spec\/metadata\/1\/secretKeyRef: secret "oauth" is not in secret store "local"/);
  });

  it('parses token responses and refuses what is not one, without quoting it', function () {
    assert.deepEqual(parseTokenResponse('application/json', '{"access_token":"abc","token_type":"bearer","expires_in":"60"}'), { accessToken: 'abc', tokenType: 'Bearer', expiresInMs: 60_000 });
    assert.deepEqual(parseTokenResponse('application/x-www-form-urlencoded', 'access_token=abc&token_type=mac'), { accessToken: 'abc', tokenType: 'MAC', expiresInMs: undefined });
    assert.equal(parseTokenResponse('text/html', '<html>secret</html>'), 'the answer is not JSON');
    assert.equal(parseTokenResponse('application/json', '{"token":"x"}'), 'the answer has no access_token');
    assert.equal(parseTokenResponse('application/json', '{"access_token":"a\\r\\nb"}'), 'the access_token holds characters a header cannot carry');
    assert.equal(parseTokenResponse('application/json', '{"access_token":"a","expires_in":-1}'), 'the expires_in is not a number of seconds');
  });

  it('refreshes ahead of expiry: 10 s early, a fifth of the life for short tokens', function () {
    assert.equal(refreshAt(1000, 3_600_000), 1000 + 3_600_000 - 10_000);
    assert.equal(refreshAt(0, 1000), 800);
    assert.equal(refreshAt(0, undefined), 3_600_000 - 10_000);
  });

  it('sends the client credentials by HTTP Basic (form-encoded first) or in the body', function () {
    const options = compileClientCredentialsOptions(oauth2Component([{ name: 'clientId', value: 'a b' }, { name: 'clientSecret', value: 's:&cret' }, BASE_METADATA[2] as { name: string; value: string }, { name: 'scopes', value: 'x,y' }]), 'c.yaml', stores());
    const header = tokenRequest(options, 'header');
    assert.equal(header.headers['authorization'], `Basic ${Buffer.from('a+b:s%3A%26cret').toString('base64')}`);
    assert.equal(header.body, 'grant_type=client_credentials&scope=x+y');
    const params = new URLSearchParams(tokenRequest(options, 'params').body);
    assert.deepEqual([params.get('client_id'), params.get('client_secret'), params.get('scope')], ['a b', 's:&cret', 'x y']);
  });

  describe('token source', function () {
    let clock = 0;
    const options = (): ClientCredentialsOptions => compileClientCredentialsOptions(oauth2Component([...BASE_METADATA, { name: 'authStyle', value: '0' }]), 'c.yaml', stores());
    /** A token endpoint in memory: answers each request with the next scripted answer. */
    function fakeEndpoint(answers: Array<() => Response | Promise<Response>>): { fetch: typeof fetch; requests: Array<{ authorization: string | undefined; body: string }> } {
      const requests: Array<{ authorization: string | undefined; body: string }> = [];
      const fetchImpl = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
        const headers = (init?.headers ?? {}) as Record<string, string>;
        requests.push({ authorization: headers['authorization'], body: String(init?.body as string | undefined) });
        const answer = answers.shift();
        if (!answer) throw new Error('no more answers');
        return answer();
      };
      return { fetch: fetchImpl, requests };
    }
    const token = (value: string, expiresIn = 100): (() => Response) => () => Response.json({ access_token: value, token_type: 'Bearer', expires_in: expiresIn });

    beforeEach(() => (clock = 1_000_000));
    // The failures below are logged as warnings; they are expected here.
    before(() => configureLogging({ level: 'error' }));
    after(() => configureLogging({ level: 'info' }));

    it('fetches once for concurrent callers, reuses the token, and fetches again when it is due', async function () {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const endpoint = fakeEndpoint([
        async () => {
          await gate;
          return token('first-token-value')();
        },
        token('second-token-value'),
      ]);
      const source = new ClientCredentialsTokenSource(options(), { fetch: endpoint.fetch, now: () => clock });
      try {
        const waiting = Promise.all(Array.from({ length: 20 }, () => source.headerValue()));
        release();
        assert.deepEqual(new Set(await waiting), new Set(['Bearer first-token-value']));
        assert.equal(endpoint.requests.length, 1);
        clock += 50_000;
        assert.equal(await source.headerValue(), 'Bearer first-token-value');
        clock += 40_001;
        assert.equal(await source.headerValue(), 'Bearer second-token-value');
        assert.equal(endpoint.requests.length, 2);
        assert.match(endpoint.requests[0]?.authorization ?? '', /^Basic /, 'auto-detection tries HTTP Basic first');
      } finally {
        source.close();
      }
    });

    it('falls back to credentials in the body when Basic is refused, and remembers it', async function () {
      const endpoint = fakeEndpoint([() => Response.json({ error: 'invalid_client' }, { status: 401 }), token('body-token-value', 1), token('body-token-value-2')]);
      const source = new ClientCredentialsTokenSource(options(), { fetch: endpoint.fetch, now: () => clock });
      try {
        assert.equal(await source.headerValue(), 'Bearer body-token-value');
        clock += 5_000;
        assert.equal(await source.headerValue(), 'Bearer body-token-value-2');
        assert.deepEqual(endpoint.requests.map((request) => (request.authorization ? 'basic' : new URLSearchParams(request.body).get('client_id'))), ['basic', 'agent', 'agent']);
      } finally {
        source.close();
      }
    });

    it('fails with a 502 naming the component and endpoint, never the secret; a token not yet expired still serves', async function () {
      const endpoint = fakeEndpoint([
        () => {
          throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
        },
        token('kept-token-value', 100),
        () => new Response('<html>client-secret-for-unit-tests</html>', { status: 200, headers: { 'content-type': 'text/html' } }),
      ]);
      const source = new ClientCredentialsTokenSource(options(), { fetch: endpoint.fetch, now: () => clock });
      try {
        const error = await source.headerValue().then(
          () => assert.fail('expected a failure'),
          (failure: unknown) => failure,
        );
        assert.ok(error instanceof SkeinError);
        assert.equal(error.code, 'ERR_OAUTH2_TOKEN_UNAVAILABLE');
        assert.equal(error.httpStatus, 502);
        assert.equal(error.message, 'the middleware.http.oauth2clientcredentials component "oauth2" could not get a token from https://auth.example.com/oauth/token: the token endpoint is unreachable (ECONNREFUSED)');
        assert.equal(await source.headerValue(), 'Bearer kept-token-value');
        clock += 95_000;
        assert.equal(await source.headerValue(), 'Bearer kept-token-value', 'the refresh failed, but the token has 5 s left');
        clock += 5_000;
        await assert.rejects(source.headerValue(), /no more answers|unreachable/);
      } finally {
        source.close();
      }
    });
  });
});

describe('outbound compilation and pipeline', function () {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'skein-outbound-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const component = (name: string, type: string, extra = ''): string =>
    `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${name}\nspec:\n  type: ${type}\n  version: v1\n  metadata:\n  - name: clientId\n    value: a\n  - name: clientSecret\n    value: unit-test-client-secret\n  - name: tokenURL\n    value: http://127.0.0.1:1/token\n${extra}`;
  const configuration = (handlers: Array<[string, string]>) => ({
    apiVersion: 'dapr.io/v1alpha1' as const,
    kind: 'Configuration' as const,
    metadata: { name: 'c' },
    spec: { httpPipeline: { handlers: handlers.map(([name, type]) => ({ name, type })) } },
  });
  const compile = (handlers: Array<[string, string]>, appId = 'agent'): ReturnType<typeof compileOutbound> =>
    compileOutbound({ appId, namespace: 'default', configuration: configuration(handlers), configFile: 'config.yaml', resources: loadResources([dir]) });

  it('resolves handlers to Components and refuses names, types and scopes that do not fit', function () {
    write('oauth2.yaml', component('oauth2', 'middleware.http.oauth2clientcredentials'));
    write('code-flow.yaml', component('code-flow', 'middleware.http.oauth2'));
    write('other-app.yaml', `${component('other', 'middleware.http.oauth2clientcredentials')}scopes: [other-app]\n`);
    assert.deepEqual(compile([['oauth2', 'middleware.http.oauth2clientcredentials']]).stages.map((stage) => stage.options.component), ['oauth2']);
    assert.match(configError(() => compile([['nope', 'middleware.http.oauth2clientcredentials']])).message, /config\.yaml: \/spec\/httpPipeline\/handlers\/0\/name: no Component named "nope" was loaded/);
    assert.match(configError(() => compile([['oauth2', 'middleware.http.bearer']])).message, /handlers\/0\/type: Component "oauth2" is middleware\.http\.oauth2clientcredentials, not middleware\.http\.bearer/);
    assert.match(configError(() => compile([['code-flow', 'middleware.http.oauth2']])).message, /middleware\.http\.oauth2 is not a middleware Skein runs on calls from the app \(the authorization-code flow needs a browser/);
    assert.match(configError(() => compile([['other', 'middleware.http.oauth2clientcredentials']])).message, /Component "other" is not scoped to app agent/);
    assert.deepEqual(compile([['other', 'middleware.http.oauth2clientcredentials']], 'other-app').components.map((c) => c.name).sort(), ['code-flow', 'oauth2', 'other']);
  });

  it('loads the HTTPEndpoints in scope, once each', function () {
    write('a.yaml', 'apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: remote\nspec:\n  baseUrl: http://127.0.0.1:1\n');
    write('b.yaml', 'apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: elsewhere\n  namespace: prod\nspec:\n  baseUrl: http://127.0.0.1:1\n');
    write('c.yaml', 'apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: theirs\nspec:\n  baseUrl: http://127.0.0.1:1\nscopes: [someone-else]\n');
    assert.deepEqual([...compile([]).endpoints.keys()], ['remote']);
    write('d.yaml', 'apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: remote\nspec:\n  baseUrl: http://127.0.0.1:2\n');
    assert.match(configError(() => compile([])).message, /d\.yaml: \/metadata\/name: an HTTPEndpoint named "remote" is already loaded from .*a\.yaml/);
  });

  it('adds the token to calls that leave the mesh only, and sends mesh calls to the Invoker untouched', async function () {
    const seen: IncomingHttpHeaders[] = [];
    const server: Server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      res.writeHead(207, { 'x-upstream': 'yes' }).end(`you asked for ${req.url ?? ''}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    write('remote.yaml', `apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: remote.api\nspec:\n  baseUrl: http://127.0.0.1:${port}/base\n`);
    write('oauth2.yaml', component('oauth2', 'middleware.http.oauth2clientcredentials'));
    const meshCalls: Call[] = [];
    const mesh = {
      invoke: (request: Call): Promise<CallResponse> => {
        meshCalls.push(request);
        const body = new PassThrough();
        body.end('from the mesh');
        return Promise.resolve({ status: 200, headers: [], body });
      },
    };
    const fetchImpl = (async () => Response.json({ access_token: 'pipeline-token', expires_in: 3600 })) as typeof fetch;
    const pipeline = new OutboundPipeline(compile([['oauth2', 'middleware.http.oauth2clientcredentials']]), mesh, { namespace: 'default' }, { fetch: fetchImpl });
    try {
      const call = (appId: string, namespace: string): Promise<CallResponse> =>
        pipeline.invoke({
          caller: undefined,
          target: { appId, namespace },
          verb: 'POST',
          method: 'mcp',
          query: 'a=1',
          headers: [['authorization', 'Bearer from-the-app']],
          body: Buffer.from('{}'),
          decisions: [],
          signal: new AbortController().signal,
        });
      // The API layer splits "remote.api" into App ID "remote", namespace "api"; the endpoint is still found.
      const answer = await call('remote', 'api');
      assert.equal(answer.status, 207);
      assert.ok(answer.headers.some(([name, value]) => name === 'x-upstream' && value === 'yes'));
      let text = '';
      for await (const chunk of answer.body) text += String(chunk);
      assert.equal(text, 'you asked for /base/mcp?a=1');
      assert.equal(seen[0]?.authorization, 'Bearer pipeline-token', "the app's own Authorization header was replaced");

      await call('other-app', 'default');
      assert.equal(meshCalls.length, 1);
      assert.deepEqual(meshCalls[0]?.headers, [['authorization', 'Bearer from-the-app']], 'no token for a call inside the mesh');
    } finally {
      pipeline.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
