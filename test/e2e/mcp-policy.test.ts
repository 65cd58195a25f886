import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { TestIssuer } from '../src/issuer.js';

const MCP_SERVER = fileURLToPath(new URL('../../../samples/mcp-server/dist/server.js', import.meta.url));
const INVENTORY_POLICY = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));

const ACL = `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: mcp-server
spec:
  accessControl:
    defaultAction: deny
    trustDomain: public
    policies:
    - { appId: analyst-agent, namespace: default, defaultAction: allow }
    - { appId: ops-agent, namespace: default, defaultAction: allow }
    - { appId: admin-agent, namespace: default, defaultAction: allow }
`;

/** An official MCP SDK client that reaches `target` through `sidecar` by App ID. */
async function connectAgent(sidecar: SidecarHandle, target: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'policy-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${sidecar.url}/v1.0/invoke/${target}/method/mcp`), { requestInit: { headers } }));
  return client;
}

function textOf(result: Record<string, unknown>): string {
  return ((result['content'] as Array<{ text?: string }> | undefined) ?? []).map((part) => part.text ?? '').join('');
}

/** Posts raw JSON-RPC through a sidecar (for what the SDK will not send: batches, mismatched headers, garbage). */
function rawPost(sidecar: SidecarHandle, target: string, body: string, headers: Record<string, string> = {}): ReturnType<typeof httpRequest> {
  return httpRequest(`${sidecar.url}/v1.0/invoke/${target}/method/mcp`, { method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } });
}

describe('MCP tool policy between real sidecars, official SDK client and server', function () {
  const harness = new Harness();
  const agents: Record<string, SidecarHandle> = {};
  let serverSidecar: SidecarHandle;
  let resourcesDir: string;
  after(() => harness.cleanup());

  before(async function () {
    await harness.controlPlane();
    const dir = harness.dir('mcp-policy');
    writeFileSync(join(dir, 'config.yaml'), ACL);
    const resources = harness.dir('mcp-policy-resources');
    resourcesDir = resources;
    copyFileSync(INVENTORY_POLICY, join(resources, 'inventory-tools.yaml'));
    const server = harness.start('mcp-server', process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
    const port = Number((JSON.parse(await server.waitFor(/^\{"listening":\d+/)) as { listening: number }).listening);
    serverSidecar = await harness.sidecar({ appId: 'mcp-server', appPort: port, args: ['--config', join(dir, 'config.yaml'), '--resources-path', resources] });
    const names = ['analyst-agent', 'ops-agent', 'admin-agent', 'other-agent'];
    const started = await Promise.all(names.map((appId) => harness.sidecar({ appId })));
    names.forEach((name, i) => (agents[name] = started[i] as SidecarHandle));
  });

  const agent = (name: string): SidecarHandle => agents[name] as SidecarHandle;

  it('filters tools/list to what each caller may call', async function () {
    const lists: Record<string, string[]> = {};
    for (const name of ['analyst-agent', 'ops-agent', 'admin-agent']) {
      const client = await connectAgent(agent(name), 'mcp-server');
      lists[name] = (await client.listTools()).tools.map((tool) => tool.name).sort();
      await client.close();
    }
    assert.deepEqual(lists, {
      'analyst-agent': ['get_inventory', 'get_schema'],
      'ops-agent': ['get_inventory', 'get_schema', 'update_stock'],
      'admin-agent': ['drop_table', 'get_inventory', 'get_schema', 'update_stock'],
    });
  });

  it('lets allowed calls through and refuses the rest with a JSON-RPC error naming the rule; nothing refused reaches the server', async function () {
    const analyst = await connectAgent(agent('analyst-agent'), 'mcp-server');
    const stock = async (): Promise<number> => (JSON.parse(textOf(await analyst.callTool({ name: 'get_inventory', arguments: { sku: 'C-300' } }))) as Array<{ stock: number }>)[0]?.stock ?? -1;
    const before = await stock();
    const refused = await analyst.callTool({ name: 'update_stock', arguments: { sku: 'C-300', delta: 5 } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof McpError, String(refused));
    assert.equal(refused.code, -31003);
    assert.match(refused.message, /denied by tool-policy rule "default"/);
    assert.equal((refused.data as { errorCode: string }).errorCode, 'ERR_MCP_TOOL_DENIED');
    assert.equal(await stock(), before, 'the refused update never reached the server');

    const ops = await connectAgent(agent('ops-agent'), 'mcp-server');
    assert.match(textOf(await ops.callTool({ name: 'update_stock', arguments: { sku: 'C-300', delta: 5 } })), /"stock":/);
    assert.equal(await stock(), before + 5);
    await assert.rejects(ops.callTool({ name: 'drop_table', arguments: { table: 'orders' } }), /denied by tool-policy rule/);
    await Promise.all([analyst.close(), ops.close()]);
  });

  it('keeps App-ID access control in front: an unlisted agent never gets a session', async function () {
    await assert.rejects(connectAgent(agent('other-agent'), 'mcp-server'), /403|access control policy has denied/);
  });

  it('judges a batch entry by entry: the forbidden call is answered by the sidecar and never forwarded', async function () {
    const analyst = agent('analyst-agent');
    const init = await rawPost(analyst, 'mcp-server', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }));
    assert.equal(init.status, 200, init.body);
    const session = String(init.headers['mcp-session-id']);
    const headers = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-03-26' };
    assert.equal((await rawPost(analyst, 'mcp-server', JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers)).status, 202);
    const batch = JSON.stringify([
      { jsonrpc: '2.0', id: 10, method: 'tools/call', params: { name: 'get_schema', arguments: { table: 'items' } } },
      { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'drop_table', arguments: { table: 'items' } } },
    ]);
    const res = await rawPost(analyst, 'mcp-server', batch, headers);
    assert.equal(res.status, 200, res.body);
    const text = res.headers['content-type']?.startsWith('text/event-stream') ? res.body.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)) : [res.body];
    const answers = text.flatMap((part) => [JSON.parse(part) as unknown].flat()) as Array<{ id: number; result?: unknown; error?: { code: number; data?: { rule: string } } }>;
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    assert.ok(byId.get(10)?.result, JSON.stringify(answers));
    assert.equal(byId.get(11)?.error?.code, -31003);
    // drop_table never ran: the admin can still drop the table, for the first time.
    const admin = await connectAgent(agent('admin-agent'), 'mcp-server');
    assert.equal(textOf(await admin.callTool({ name: 'drop_table', arguments: { table: 'items' } })), 'dropped items');
    await admin.close();
  });

  it('refuses JSON-RPC smuggled in the body of a GET or DELETE; a bodyless DELETE still reaches the server', async function () {
    const analyst = agent('analyst-agent');
    const client = await connectAgent(analyst, 'mcp-server');
    const stock = async (): Promise<number> => (JSON.parse(textOf(await client.callTool({ name: 'get_inventory', arguments: { sku: 'C-300' } }))) as Array<{ stock: number }>)[0]?.stock ?? -1;
    const before = await stock();
    const smuggled = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'update_stock', arguments: { sku: 'C-300', delta: 1000 } } });
    for (const method of ['DELETE', 'GET']) {
      const res = await httpRequest(`${analyst.url}/v1.0/invoke/mcp-server/method/mcp`, { method, body: smuggled, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } });
      assert.equal(res.status, 400, `${method}: ${res.body}`);
      const answer = res.json<{ error: { code: number; message: string; data: { errorCode: string } } }>();
      assert.equal(answer.error.code, -32600);
      assert.equal(answer.error.data.errorCode, 'ERR_MALFORMED_REQUEST');
      assert.match(answer.error.message, new RegExp(`an MCP ${method} request carries no JSON-RPC messages`));
    }
    assert.equal(await stock(), before, 'the smuggled call never ran');
    // The SDK ends its session with a bodyless DELETE, which the policy lets through.
    const session = (client.transport as StreamableHTTPClientTransport | undefined)?.sessionId;
    assert.ok(session, 'the client has a session');
    const ended = await httpRequest(`${analyst.url}/v1.0/invoke/mcp-server/method/mcp`, { method: 'DELETE', headers: { 'mcp-session-id': session } });
    assert.notEqual(ended.status, 400, ended.body);
    assert.ok(ended.status < 300, `the server ended the session: ${ended.status} ${ended.body}`);
    await client.close();
  });

  it('refuses a 2026-07-28 request whose Mcp-Method header disagrees with the body (400, -32020)', async function () {
    const res = await rawPost(agent('analyst-agent'), 'mcp-server', JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'drop_table', arguments: { table: 'orders' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } }), {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/list',
    });
    assert.equal(res.status, 400);
    assert.equal(res.json<{ error: { code: number } }>().error.code, -32020);
  });

  it('refuses malformed, truncated, deeply nested and oversized JSON-RPC with precise errors, and keeps serving', async function () {
    const analyst = agent('analyst-agent');
    const notJson = await rawPost(analyst, 'mcp-server', 'this is not json');
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json<{ error: { code: number } }>().error.code, -32700);
    const truncated = await rawPost(analyst, 'mcp-server', '{"jsonrpc":"2.0","id":1,"method":"tools/ca');
    assert.equal(truncated.json<{ error: { code: number } }>().error.code, -32700);
    const deep = await rawPost(analyst, 'mcp-server', `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_schema","arguments":${'{"a":'.repeat(200)}1${'}'.repeat(200)}}}`);
    assert.equal(deep.status, 400);
    assert.match(deep.json<{ error: { message: string } }>().error.message, /deep|nest/i);
    const invalid = await rawPost(analyst, 'mcp-server', JSON.stringify({ jsonrpc: '1.0', id: 1, method: 7 }));
    assert.equal(invalid.json<{ error: { code: number } }>().error.code, -32600);
    const client = await connectAgent(analyst, 'mcp-server');
    assert.ok((await client.listTools()).tools.length > 0);
    await client.close();
  });
  it('reloads an edited policy; an invalid edit is rejected, naming file and reason, and the previous policy stays in force', async function () {
    const file = join(resourcesDir, 'inventory-tools.yaml');
    const original = readFileSync(file, 'utf8');
    const analyst = await connectAgent(agent('analyst-agent'), 'mcp-server');
    const from = serverSidecar.proc.lines.length;
    writeFileSync(file, original.replace('tools: [get_inventory, get_schema]', 'tools: [get_inventory, get_schema]\n      when: "args.table =="'));
    const rejected = await serverSidecar.proc.waitForRecord('policy reload rejected; the previous policies stay in force', {}, 20_000, from);
    assert.match(String(rejected['reason']), /inventory-tools\.yaml: \/spec\/rules\/1\/when: CEL does not compile/);
    assert.match(textOf(await analyst.callTool({ name: 'get_inventory', arguments: {} })), /"sku":/);
    await assert.rejects(analyst.callTool({ name: 'update_stock', arguments: { sku: 'A-100', delta: 1 } }), /denied by tool-policy rule/);

    const next = serverSidecar.proc.lines.length;
    writeFileSync(file, original.replace('tools: [get_inventory, get_schema]\n', 'tools: [get_inventory, get_schema, update_stock]\n'));
    await serverSidecar.proc.waitForRecord('policies reloaded', {}, 20_000, next);
    assert.match(textOf(await analyst.callTool({ name: 'update_stock', arguments: { sku: 'A-100', delta: 1 } })), /"stock":/);
    writeFileSync(file, original);
    await analyst.close();
  });
});

describe('bearer JWT on an MCP server (middleware.http.bearer, RFC 9728)', function () {
  const harness = new Harness();
  let tokens: TestIssuer;
  let issuer: string;
  const sign = (claims: Record<string, unknown>, options: { audience?: string; expiresIn?: string } = {}): Promise<string> =>
    tokens.sign(claims, { audience: options.audience ?? 'inventory-api', ...(options.expiresIn ? { expiresIn: options.expiresIn } : {}) });
  let caller: SidecarHandle;
  after(async () => {
    await tokens?.close();
    await harness.cleanup();
  });

  before(async function () {
    tokens = await TestIssuer.start();
    issuer = tokens.url;

    await harness.controlPlane();
    const dir = harness.dir('bearer');
    writeFileSync(join(dir, 'config.yaml'), `apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: secure\nspec:\n  appHttpPipeline:\n    handlers:\n    - name: oauth\n      type: middleware.http.bearer\n`);
    writeFileSync(join(dir, 'oauth.yaml'), `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: oauth\nspec:\n  type: middleware.http.bearer\n  version: v1\n  metadata:\n  - name: issuer\n    value: "${issuer}"\n  - name: audience\n    value: inventory-api\n  - name: jwksURL\n    value: "${issuer}/jwks.json"\n`);
    writeFileSync(
      join(dir, 'policy.yaml'),
      `apiVersion: skein.dev/v1alpha1\nkind: MCPToolPolicy\nmetadata:\n  name: scoped\nscopes: [secure-mcp]\nspec:\n  defaultAction: deny\n  rules:\n  - name: handshake\n    methods: [initialize, notifications/initialized, tools/list]\n    action: allow\n  - name: readers\n    methods: [tools/call]\n    tools: [get_*]\n    action: allow\n  - name: writers\n    methods: [tools/call]\n    tools: [update_stock]\n    requiredScopes: [inventory:write]\n    action: allow\n`,
    );
    // The same bearer pipeline in front of a plain echo app shows exactly what reaches an app.
    const echo = await harness.app('echo-app');
    await harness.sidecar({ appId: 'secure-echo', appPort: echo.port, args: ['--config', join(dir, 'config.yaml'), '--resources-path', dir] });
    const server = harness.start('secure-mcp-server', process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
    const port = Number((JSON.parse(await server.waitFor(/^\{"listening":\d+/)) as { listening: number }).listening);
    await harness.sidecar({ appId: 'secure-mcp', appPort: port, args: ['--config', join(dir, 'config.yaml'), '--resources-path', dir] });
    caller = await harness.sidecar({ appId: 'agent' });
  });

  it('answers a call without a token with 401 and a resource_metadata URL that the caller can fetch', async function () {
    const res = await rawPost(caller, 'secure-mcp', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }));
    assert.equal(res.status, 401);
    const challenge = String(res.headers['www-authenticate']);
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    assert.ok(metadataUrl, challenge);
    const metadata = (await httpRequest(metadataUrl)).json<{ resource: string; authorization_servers: string[] }>();
    assert.deepEqual(metadata.authorization_servers, [issuer]);
    assert.equal(metadata.resource, `${caller.url}/v1.0/invoke/secure-mcp/method/mcp`);
  });

  it('refuses expired, wrong-audience, alg:none and tampered tokens; accepts a valid one', async function () {
    const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    const expired = await sign({ sub: 'alice' }, { expiresIn: '-10m' });
    assert.equal((await rawPost(caller, 'secure-mcp', initialize, { authorization: `Bearer ${expired}` })).status, 401);
    const wrongAudience = await sign({ sub: 'alice' }, { audience: 'someone-else' });
    assert.equal((await rawPost(caller, 'secure-mcp', initialize, { authorization: `Bearer ${wrongAudience}` })).status, 401);
    const valid = await sign({ sub: 'alice', scope: 'inventory:read' });
    const [head, payload] = valid.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
    assert.equal((await rawPost(caller, 'secure-mcp', initialize, { authorization: `Bearer ${none}` })).status, 401);
    const tampered = `${head}.${Buffer.from(JSON.stringify({ sub: 'mallory', iss: issuer, aud: 'inventory-api', exp: 9_999_999_999 })).toString('base64url')}.${valid.split('.')[2]}`;
    assert.equal((await rawPost(caller, 'secure-mcp', initialize, { authorization: `Bearer ${tampered}` })).status, 401);

    const client = await connectAgent(caller, 'secure-mcp', { authorization: `Bearer ${valid}` });
    // update_stock needs inventory:write, which this token lacks: it is not even listed.
    assert.deepEqual((await client.listTools()).tools.map((tool) => tool.name).sort(), ['get_inventory', 'get_schema']);
    assert.match(textOf(await client.callTool({ name: 'get_schema', arguments: { table: 'items' } })), /sku TEXT/);
    await client.close();
  });

  it('never passes the token on to the app', async function () {
    const token = await sign({ sub: 'alice' });
    const res = await httpRequest(`${caller.url}/v1.0/invoke/secure-echo/method/anything`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200, res.body);
    const seen = res.json<{ headers: Record<string, string> }>().headers;
    assert.equal(seen['authorization'], undefined);
    assert.equal(seen['dapr-caller-app-id'], 'agent');
    assert.equal((await httpRequest(`${caller.url}/v1.0/invoke/secure-echo/method/anything`)).status, 401);
  });

  it('answers a tool that needs a scope the token lacks with 403 insufficient_scope', async function () {
    const reader = await sign({ sub: 'alice', scope: 'inventory:read' });
    const client = await connectAgent(caller, 'secure-mcp', { authorization: `Bearer ${reader}` });
    await assert.rejects(client.callTool({ name: 'update_stock', arguments: { sku: 'A-100', delta: 1 } }), /403|insufficient_scope|inventory:write/);
    await client.close();
    const writer = await sign({ sub: 'bob', scope: 'inventory:read inventory:write' });
    const allowed = await connectAgent(caller, 'secure-mcp', { authorization: `Bearer ${writer}` });
    assert.match(textOf(await allowed.callTool({ name: 'update_stock', arguments: { sku: 'A-100', delta: 1 } })), /"stock":1201/);
    await allowed.close();
  });
});
