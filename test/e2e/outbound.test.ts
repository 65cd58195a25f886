import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createRootCa, issueServerCertificate } from '@skein/core';
import { Harness, type AppHandle, type ManagedProcess, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { freePort } from '../src/ports.js';

const MCP_SERVER = fileURLToPath(new URL('../../../samples/mcp-server/dist/server.js', import.meta.url));
const DAY_MS = 24 * 3_600_000;

interface DaprError {
  errorCode: string;
  message: string;
}

interface GateStats {
  accepted: number;
  refused: number;
  tokens: string[];
}

// Long random values, so finding one in a log line cannot be a coincidence.
const SECRETS = {
  agentClient: 'agent-client-secret-5f1c2e9a7d3b',
  shortClient: 'short-client-secret-8e2d4c6b1a0f',
  downClient: 'down-client-secret-3c7a9e1f5b2d',
  garbageClient: 'garbage-client-secret-0b4d8f2a6c1e',
  apiKey: 'remote-api-key-9d3f7b1e5a2c',
};

const yaml = (lines: string): string => `${lines.trim()}\n`;

function oauth2Component(name: string, clientId: string, secret: string, tokenUrl: string, extra = ''): string {
  return yaml(`
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: ${name}
spec:
  type: middleware.http.oauth2clientcredentials
  version: v1
  metadata:
  - name: clientId
    value: ${clientId}
  - name: clientSecret
${secret}
  - name: tokenURL
    value: "${tokenUrl}"
  - name: scopes
    value: "mcp.read,mcp.write"
${extra}`);
}

function endpoint(name: string, baseUrl: string, rest = ''): string {
  return yaml(`
apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint
metadata:
  name: ${name}
spec:
  baseUrl: ${baseUrl}
${rest}`);
}

function pipelineConfig(handlers: string[]): string {
  return yaml(`
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: agent
spec:
  httpPipeline:
    handlers:${handlers.map((name) => `\n    - name: ${name}\n      type: middleware.http.oauth2clientcredentials`).join('') || ' []'}`);
}

/** An official MCP SDK client that reaches `endpoint` through the caller's sidecar. */
async function connect(sidecar: SidecarHandle, endpointName: string, style: 'header' | 'path'): Promise<Client> {
  const client = new Client({ name: 'outbound-test', version: '1.0.0' });
  const transport =
    style === 'header'
      ? new StreamableHTTPClientTransport(new URL(`${sidecar.url}/mcp`), { requestInit: { headers: { 'dapr-app-id': endpointName } } })
      : new StreamableHTTPClientTransport(new URL(`${sidecar.url}/v1.0/invoke/${endpointName}/method/mcp`));
  await client.connect(transport);
  return client;
}

function textOf(result: Record<string, unknown>): string {
  return ((result['content'] as Array<{ text?: string }> | undefined) ?? []).map((part) => part.text ?? '').join('');
}

describe('Outbound: HTTPEndpoints and OAuth2 client credentials', function () {
  const harness = new Harness();
  let tokenServer: AppHandle;
  let gate: AppHandle;
  let tlsGate: AppHandle;
  let agent: SidecarHandle;
  let shortAgent: SidecarHandle;
  let echo: SidecarHandle;
  let clientKeyPem = '';
  const tokenUrl = (): string => `http://127.0.0.1:${tokenServer.port}/token`;
  const stats = async (app: AppHandle): Promise<GateStats> => (await httpRequest(`http://127.0.0.1:${app.port}/_stats`)).json<GateStats>();
  const tokenRequests = async (client: string): Promise<number> => (await httpRequest(`http://127.0.0.1:${tokenServer.port}/_stats`)).json<{ requests: Record<string, number> }>().requests[client] ?? 0;
  const write = (dir: string, name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  before(async function () {
    const closedPort = await freePort();
    const [, server, token] = await Promise.all([
      harness.controlPlane(),
      (async () => {
        const proc = harness.start('mcp-server', process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
        return Number((JSON.parse(await proc.waitFor(/^\{"listening":\d+/)) as { listening: number }).listening);
      })(),
      harness.app('oauth2-token-server', {
        CLIENTS: JSON.stringify({
          'agent-client': { secret: SECRETS.agentClient },
          'short-client': { secret: SECRETS.shortClient, expiresIn: 1 },
          'garbage-client': { secret: SECRETS.garbageClient, mode: 'garbage' },
        }),
      }),
    ]);
    tokenServer = token;

    // Our own CA for the remote server and the agent's client certificate; a second CA the server does not use.
    const ca = createRootCa('outbound-test', DAY_MS);
    const otherCa = createRootCa('someone-else', DAY_MS);
    const serving = issueServerCertificate(ca, 'bearer-gate', ['127.0.0.1', 'localhost'], DAY_MS);
    const clientCert = issueServerCertificate(ca, 'skein-agent', ['agent.outbound.test'], DAY_MS);
    clientKeyPem = clientCert.keyPem;
    const tlsDir = harness.dir('gate-tls');
    const introspect = `http://127.0.0.1:${tokenServer.port}/introspect`;
    [gate, tlsGate] = await Promise.all([
      harness.app('bearer-gate', { UPSTREAM: `http://127.0.0.1:${server}`, INTROSPECT_URL: introspect }),
      harness.app('bearer-gate', {
        UPSTREAM: `http://127.0.0.1:${server}`,
        INTROSPECT_URL: introspect,
        TLS_CERT_FILE: write(tlsDir, 'cert.pem', serving.certPem),
        TLS_KEY_FILE: write(tlsDir, 'key.pem', serving.keyPem),
        TLS_CA_FILE: write(tlsDir, 'ca.pem', ca.certPem),
      }),
    ]);

    const secretsFile = write(harness.dir('secrets'), 'secrets.json', JSON.stringify({ oauth2: { clientSecret: SECRETS.agentClient }, mcp: { apiKey: SECRETS.apiKey }, tls: { clientKey: clientCert.keyPem } }));
    const resources = harness.dir('agent-resources');
    write(resources, 'ca.pem', ca.certPem);
    write(
      resources,
      'secretstore.yaml',
      yaml(`
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: local-secrets
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: ${secretsFile}
  - name: multiValued
    value: "true"`),
    );
    write(resources, 'oauth2.yaml', `${oauth2Component('oauth2', 'agent-client', '    secretKeyRef: { name: oauth2, key: clientSecret }', tokenUrl())}auth:\n  secretStore: local-secrets\n`);
    write(resources, 'oauth2-down.yaml', oauth2Component('oauth2-down', 'down-client', '    envRef: DOWN_CLIENT_SECRET', `http://127.0.0.1:${closedPort}/token`, '  - name: pathFilter\n    value: "^/down/"'));
    write(resources, 'oauth2-garbage.yaml', oauth2Component('oauth2-garbage', 'garbage-client', `    value: ${SECRETS.garbageClient}`, tokenUrl(), '  - name: pathFilter\n    value: "^/garbage/"\n  - name: authStyle\n    value: 1'));
    const apiKeyHeader = '  headers:\n  - name: X-Api-Key\n    secretKeyRef: { name: mcp, key: apiKey }\n  - name: X-Plain\n    value: plain-value';
    write(resources, 'remote-mcp.yaml', `${endpoint('remote-mcp', `http://127.0.0.1:${gate.port}`, apiKeyHeader)}auth:\n  secretStore: local-secrets\n`);
    write(resources, 'dead-endpoint.yaml', endpoint('dead-endpoint', `http://127.0.0.1:${closedPort}`, apiKeyHeader));
    const clientTls = (rootCA: string): string =>
      `  clientTLS:\n    rootCA:\n${rootCA}\n    certificate:\n      value: |\n${clientCert.certPem.trim().replace(/^/gm, '        ')}\n    privateKey:\n      secretKeyRef: { name: tls, key: clientKey }`;
    write(resources, 'remote-mcp-tls.yaml', endpoint('remote-mcp-tls', `https://127.0.0.1:${tlsGate.port}`, clientTls('      file: ca.pem')));
    write(resources, 'tls-wrong-ca.yaml', endpoint('tls-wrong-ca', `https://127.0.0.1:${tlsGate.port}`, clientTls(`      value: |\n${otherCa.certPem.trim().replace(/^/gm, '        ')}`)));
    const config = write(harness.dir('agent-config'), 'config.yaml', pipelineConfig(['oauth2-down', 'oauth2-garbage', 'oauth2']));

    const shortResources = harness.dir('short-resources');
    write(shortResources, 'oauth2.yaml', oauth2Component('oauth2-short', 'short-client', `    value: ${SECRETS.shortClient}`, tokenUrl()));
    write(shortResources, 'remote-mcp.yaml', endpoint('remote-mcp', `http://127.0.0.1:${gate.port}`));
    const shortConfig = write(harness.dir('short-config'), 'config.yaml', pipelineConfig(['oauth2-short']));

    // Debug logs of every module on: secrets must stay out of those too.
    const env = { SKEIN_LOG: '*', DOWN_CLIENT_SECRET: SECRETS.downClient };
    const echoApp = await harness.app('echo-app');
    [agent, shortAgent, echo] = await Promise.all([
      harness.sidecar({ appId: 'agent', args: ['--config', config, '--resources-path', resources], env }),
      harness.sidecar({ appId: 'short-agent', args: ['--config', shortConfig, '--resources-path', shortResources], env }),
      harness.sidecar({ appId: 'echo', appPort: echoApp.port }),
    ]);
  });
  after(() => harness.cleanup());

  it('lets the official MCP SDK client list and call tools on a remote server named by an HTTPEndpoint, with one token', async function () {
    for (const style of ['header', 'path'] as const) {
      const client = await connect(agent, 'remote-mcp', style);
      const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
      assert.deepEqual(tools, ['drop_table', 'get_inventory', 'get_schema', 'update_stock']);
      const result = await client.callTool({ name: 'get_inventory', arguments: { sku: 'A-100' } });
      assert.match(textOf(result), /bolts/);
      await client.close();
    }
    const seen = await stats(gate);
    assert.equal(seen.refused, 0);
    assert.equal(seen.tokens.length, 1, 'every call carried the same token');
    assert.equal(await tokenRequests('agent-client'), 1, 'the token was fetched once and reused');

    // What reached the remote server: the configured headers (one from the secret store), none of the sidecar's.
    const last = (await httpRequest(`http://127.0.0.1:${gate.port}/_last`)).json<{ headers: Record<string, string> }>();
    assert.equal(last.headers['x-api-key'], SECRETS.apiKey);
    assert.equal(last.headers['x-plain'], 'plain-value');
    assert.equal(last.headers['dapr-app-id'], undefined);
  });

  it('leaves calls within the mesh alone: they go to the App ID, without the token', async function () {
    const res = await httpRequest(`${agent.url}/v1.0/invoke/${echo.appId}/method/hello`, { headers: { authorization: 'Bearer the-apps-own' } });
    assert.equal(res.status, 200, res.body);
    const seen = res.json<{ url: string; headers: Record<string, string> }>();
    assert.equal(seen.url, '/hello');
    assert.equal(seen.headers['authorization'], 'Bearer the-apps-own');
    assert.equal(seen.headers['dapr-caller-app-id'], 'agent');
  });

  it('streams SSE answers from the endpoint and passes its statuses through', async function () {
    const init = await httpRequest(`${agent.url}/mcp`, {
      method: 'POST',
      headers: { 'dapr-app-id': 'remote-mcp', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    assert.equal(init.status, 200);
    assert.match(String(init.headers['content-type']), /text\/event-stream/);
    assert.match(init.body, /^event: message\ndata: .*"serverInfo"/m);
    assert.ok(init.headers['mcp-session-id'], 'the session header came back');

    const teapot = await httpRequest(`${agent.url}/v1.0/invoke/remote-mcp/method/_status/418`);
    assert.equal(teapot.status, 418);
    assert.equal(teapot.body, 'as you asked');
    assert.equal(teapot.headers['x-gate'], 'yes');
  });

  it('refreshes the token before it expires and sends the new one', async function () {
    const whoami = async (): Promise<string> => {
      const res = await httpRequest(`${shortAgent.url}/v1.0/invoke/remote-mcp/method/_whoami`);
      assert.equal(res.status, 200, res.body);
      return res.json<{ token: string }>().token;
    };
    const first = await whoami();
    assert.equal(await whoami(), first);
    assert.equal(await tokenRequests('short-client'), 1);
    // The token lives one second; the sidecar fetches the next one ahead of expiry because this one was in use.
    await tokenServer.proc.waitFor((line) => line.includes('"issued":2,"client":"short-client"'));
    const second = await whoami();
    assert.notEqual(second, first);
  });

  it('answers a clear 502 naming the component when the token endpoint is down, failing or answering garbage', async function () {
    const before = (await stats(gate)).accepted;
    const down = await httpRequest(`${agent.url}/v1.0/invoke/remote-mcp/method/down/x`, { method: 'POST', body: '{}' });
    assert.equal(down.status, 502);
    const downBody = down.json<DaprError>();
    assert.equal(downBody.errorCode, 'ERR_OAUTH2_TOKEN_UNAVAILABLE');
    assert.match(downBody.message, /"oauth2-down" could not get a token from http:\/\/127\.0\.0\.1:\d+\/token: the token endpoint is unreachable \(ECONNREFUSED\)/);

    const garbage = await httpRequest(`${agent.url}/v1.0/invoke/remote-mcp/method/garbage/x`);
    assert.equal(garbage.status, 502);
    assert.match(garbage.json<DaprError>().message, /"oauth2-garbage" could not get a token .*: the answer is not JSON/);
    assert.ok(!garbage.body.includes(SECRETS.garbageClient), 'the token endpoint echoed the secret; the error must not');

    await httpRequest(`http://127.0.0.1:${tokenServer.port}/_mode?client=garbage-client&mode=fail`, { method: 'POST' });
    const failing = await httpRequest(`${agent.url}/v1.0/invoke/remote-mcp/method/garbage/x`);
    assert.equal(failing.status, 502);
    assert.match(failing.json<DaprError>().message, /"oauth2-garbage" .*answered HTTP 500/);
    assert.equal((await stats(gate)).accepted, before, 'nothing reached the endpoint without a token');
  });

  it('answers a 502 naming an unreachable endpoint, never its secret headers', async function () {
    const res = await httpRequest(`${agent.url}/v1.0/invoke/dead-endpoint/method/mcp`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 502);
    const body = res.json<DaprError>();
    assert.equal(body.errorCode, 'ERR_DIRECT_INVOKE');
    assert.match(body.message, /HTTP endpoint dead-endpoint at http:\/\/127\.0\.0\.1:\d+ cannot be reached: .*ECONNREFUSED/);
    assert.ok(!res.body.includes(SECRETS.apiKey));
  });

  it('reaches an HTTPS endpoint with its own CA and a client certificate, and refuses a server the CA did not sign', async function () {
    const client = await connect(agent, 'remote-mcp-tls', 'header');
    assert.match(textOf(await client.callTool({ name: 'get_schema', arguments: { table: 'items' } })), /sku TEXT PRIMARY KEY/);
    await client.close();
    // The remote server saw the agent's client certificate (it refuses connections without one).
    const whoami = await httpRequest(`${agent.url}/v1.0/invoke/remote-mcp-tls/method/_whoami`);
    assert.equal(whoami.status, 200, whoami.body);
    assert.equal(whoami.json<{ clientCertificate: string }>().clientCertificate, 'skein-agent');

    const wrong = await httpRequest(`${agent.url}/v1.0/invoke/tls-wrong-ca/method/mcp`, { method: 'POST', body: '{}' });
    assert.equal(wrong.status, 502);
    assert.match(wrong.json<DaprError>().message, /HTTP endpoint tls-wrong-ca at https:\/\/127\.0\.0\.1:\d+ cannot be reached: .*certificate/);
  });

  it('keeps every secret out of the metadata API and every sidecar log line', async function () {
    const metadata = await httpRequest(`${agent.url}/v1.0/metadata`);
    assert.equal(metadata.status, 200);
    const snapshot = metadata.json<{ httpEndpoints: Array<{ name: string }>; components: Array<{ name: string; type: string; version: string }> }>();
    assert.deepEqual(snapshot.httpEndpoints.map(({ name }) => name).sort(), ['dead-endpoint', 'remote-mcp', 'remote-mcp-tls', 'tls-wrong-ca']);
    assert.deepEqual(
      snapshot.components.map(({ name, type, version }) => `${name} ${type} ${version}`).sort(),
      [
        'local-secrets secretstores.local.file v1',
        'oauth2 middleware.http.oauth2clientcredentials v1',
        'oauth2-down middleware.http.oauth2clientcredentials v1',
        'oauth2-garbage middleware.http.oauth2clientcredentials v1',
      ],
    );

    // The TLS endpoint got the same token as the plain one: one component, one token.
    const tokens = (await stats(gate)).tokens;
    assert.ok(tokens.length >= 3, 'tokens of both agents were issued');
    const keyLine = clientKeyPem.split('\n')[5] ?? '';
    const secrets = [...Object.values(SECRETS), ...tokens, keyLine];
    const sidecars: ManagedProcess[] = [agent.proc, shortAgent.proc];
    assert.ok(sidecars.every((proc) => proc.lines.some((line) => line.includes('"logger":"skein.oauth2"'))), 'debug logs of the token source were written');
    for (const text of [metadata.body, ...sidecars.flatMap((proc) => proc.lines)]) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked: ${text.slice(0, 200)}`);
    }
  });

  it('refuses to start with a handler naming no Component, or a secret that does not resolve', async function () {
    const run = async (name: string, config: string, resources: string): Promise<string> => {
      const proc = harness.skein(name, ['run', '--app-id', name, '--trust-anchors-file', harness.trustBundle, '--config', config, '--resources-path', resources]);
      const { code } = await proc.exited;
      assert.equal(code, 1, proc.output());
      return proc.output();
    };
    const dir = harness.dir('bad');
    const empty = harness.dir('bad-empty');
    const config = write(dir, 'config.yaml', pipelineConfig(['nope']));
    assert.match(await run('bad-handler', config, empty), new RegExp(`${config}: /spec/httpPipeline/handlers/0/name: no Component named "nope"`));

    const resources = harness.dir('bad-secret');
    write(resources, 'secrets.json', JSON.stringify({ present: 'a-value-that-is-secret' }));
    write(resources, 'store.yaml', yaml(`
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: store
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: ${join(resources, 'secrets.json')}`));
    const endpointFile = write(resources, 'endpoint.yaml', endpoint('remote', 'https://mcp.example.com', '  headers:\n  - name: X-Api-Key\n    secretKeyRef: { name: missing-secret }'));
    const output = await run('bad-secret', write(dir, 'empty-config.yaml', pipelineConfig([])), resources);
    assert.match(output, new RegExp(`${endpointFile}: /spec/headers/0/secretKeyRef: secret "missing-secret" is not in secret store "store"`));
    assert.ok(!output.includes('a-value-that-is-secret'));
  });
});
