import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogLevel, WorkflowRuntime, type WorkflowContext } from '@dapr/dapr';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connect } from '@nats-io/transport-node';
import { mintOperatorTls, readCa } from '@skein/core';
import { Harness, type AppHandle } from '../src/harness.js';
import { nextDecisions } from '../src/decisions.js';
import { eventually } from '../src/eventually.js';
import { httpRequest } from '../src/http.js';
import { freePort } from '../src/ports.js';

interface McpServerMetadata {
  name: string;
  transport: string;
  status: string;
  tools: string[];
  error?: string;
}

function mcpServer(name: string, endpoint: string, extra = ''): string {
  return `apiVersion: dapr.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: ${name}\nspec:\n${extra}  endpoint:\n${endpoint}`;
}

describe('MCPServer resources: tool discovery at start, official SDK server', function () {
  const harness = new Harness();
  let natsUrl: string;
  let sentryAddress: string;
  let tools: AppHandle;
  let secretsFile: string;
  after(() => harness.cleanup());

  before(async () => {
    const plane = await harness.controlPlane();
    natsUrl = plane.nats.url;
    sentryAddress = plane.sentryAddress;
    tools = await harness.app('mcp-tools-server', { TOOL_PAGES: '3' });
    secretsFile = join(harness.dir('secrets'), 'secrets.json');
    writeFileSync(secretsFile, JSON.stringify({ 'mcp-token': { token: 'Bearer from-the-store' } }));
  });

  /** A resources folder holding a secret store and the given MCPServer documents. */
  function resources(name: string, ...documents: string[]): string {
    const dir = harness.dir(name);
    writeFileSync(
      join(dir, 'secrets.yaml'),
      `apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: local-secrets }\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n    - { name: secretsFile, value: ${secretsFile} }\n    - { name: multiValued, value: "true" }\n`,
    );
    documents.forEach((document, index) => writeFileSync(join(dir, `mcpserver-${index}.yaml`), document));
    return dir;
  }

  async function metadataOf(url: string): Promise<McpServerMetadata[]> {
    const answer = await httpRequest(`${url}/v1.0/metadata`);
    assert.equal(answer.status, 200);
    return (JSON.parse(answer.body.toString()) as { mcpServers: McpServerMetadata[] }).mcpServers;
  }

  /** `skein run` expected to fail: its exit code and what it printed. */
  async function failedRun(appId: string, dir: string): Promise<{ code: number | null; output: string }> {
    const proc = harness.skein(`failing ${appId}`, ['run', '--app-id', appId, '--nats-url', natsUrl, '--sentry-address', sentryAddress, '--trust-anchors-file', harness.trustBundle, '--resources-path', dir]);
    const { code } = await proc.exited;
    return { code, output: proc.output() };
  }

  it('discovers every page of tools over streamable HTTP and SSE, sending headers resolved from the secret store and the environment', async () => {
    const dir = resources(
      'discover',
      mcpServer(
        'tools-http',
        `    streamableHTTP:\n      url: http://127.0.0.1:${tools.port}/mcp\n      timeout: 10s\n      auth: { secretStore: local-secrets }\n      headers:\n        - { name: Authorization, secretKeyRef: { name: mcp-token, key: token } }\n        - { name: X-Plain, value: plain }\n        - { name: X-From-Env, envRef: MCP_TEST_KEY }\n`,
      ),
      mcpServer('tools-sse', `    sse:\n      url: http://127.0.0.1:${tools.port}/sse\n      headers:\n        - { name: X-Transport, value: sse }\n`),
    );
    const sidecar = await harness.sidecar({ appId: 'mcp-agent', args: ['--resources-path', dir], env: { MCP_TEST_KEY: 'from-env' } });
    const servers = await metadataOf(sidecar.url);
    assert.deepEqual(servers, [
      { name: 'tools-http', transport: 'streamableHTTP', status: 'ready', tools: ['tool_0', 'tool_1', 'tool_2'] },
      { name: 'tools-sse', transport: 'sse', status: 'ready', tools: ['tool_0', 'tool_1', 'tool_2'] },
    ]);
    const seen = JSON.parse((await httpRequest(`http://127.0.0.1:${tools.port}/seen-headers`)).body.toString()) as Array<Record<string, string>>;
    const viaHttp = seen.filter((headers) => headers['x-plain'] === 'plain');
    assert.ok(viaHttp.length >= 5, 'initialize, initialized and three pages');
    for (const headers of viaHttp) {
      assert.equal(headers['authorization'], 'Bearer from-the-store');
      assert.equal(headers['x-from-env'], 'from-env');
    }
    assert.ok(seen.some((headers) => headers['x-transport'] === 'sse'));
    // The secret never reaches the sidecar's logs.
    assert.doesNotMatch(sidecar.proc.output(), /from-the-store/);
    await sidecar.proc.stop();
  });

  it('stops the start with a clear error when a server is down, naming the MCPServer, its file and the reason', async () => {
    const port = await freePort();
    const dir = resources('down', mcpServer('payments-mcp', `    streamableHTTP:\n      url: http://127.0.0.1:${port}/mcp\n`));
    const { code, output } = await failedRun('mcp-down', dir);
    assert.equal(code, 1);
    assert.match(output, new RegExp(`skein: ERR_CONFIG_INVALID: .*mcpserver-0\\.yaml: /spec/endpoint/streamableHTTP/url: MCPServer "payments-mcp" could not be loaded from http://127\\.0\\.0\\.1:${port}/mcp: .*(ECONNREFUSED|fetch failed)`));
  });

  it('with ignoreErrors: true, serves and reports the server unavailable with the reason', async () => {
    const port = await freePort();
    const dir = resources(
      'ignored',
      mcpServer('optional-mcp', `    streamableHTTP:\n      url: http://127.0.0.1:${port}/mcp\n`, '  ignoreErrors: true\n'),
      mcpServer('tools-http', `    streamableHTTP:\n      url: http://127.0.0.1:${tools.port}/mcp\n`),
    );
    const sidecar = await harness.sidecar({ appId: 'mcp-tolerant', args: ['--resources-path', dir] });
    const [optional, working] = await metadataOf(sidecar.url);
    assert.equal(optional?.name, 'optional-mcp');
    assert.equal(optional.status, 'unavailable');
    assert.deepEqual(optional.tools, []);
    assert.match(optional.error ?? '', /MCPServer "optional-mcp" could not be loaded/);
    assert.equal(working?.status, 'ready');
    assert.ok(sidecar.proc.records().some((record) => record.msg.startsWith('MCPServer could not be loaded') && record.level === 'error'));
    await sidecar.proc.stop();
  });

  it('refuses a server whose tools/list never ends, naming the 500-page bound', async () => {
    const endless = await harness.app('mcp-tools-server', { ENDLESS_PAGES: '1' });
    const dir = resources('endless', mcpServer('endless-mcp', `    streamableHTTP:\n      url: http://127.0.0.1:${endless.port}/mcp\n`));
    const { code, output } = await failedRun('mcp-endless', dir);
    assert.equal(code, 1);
    assert.match(output, /MCPServer "endless-mcp" could not be loaded from .*: tools\/list needs more than 500 pages \(the limit\)/);
    await endless.proc.stop();
  });

  it('refuses a header whose secret is not in the store, before connecting', async () => {
    const dir = resources('bad-secret', mcpServer('tools-http', `    streamableHTTP:\n      url: http://127.0.0.1:${tools.port}/mcp\n      headers:\n        - { name: Authorization, secretKeyRef: { name: missing } }\n`));
    const { code, output } = await failedRun('mcp-bad-secret', dir);
    assert.equal(code, 1);
    assert.match(output, /mcpserver-0\.yaml: \/spec\/endpoint\/streamableHTTP\/headers\/0\/secretKeyRef: secret "missing" is not in secret store "local-secrets"/);
  });
});

/** A beforeCallTool hook: refuses calls for the city 'Atlantis'. */
const rbac = async function* rbac(_ctx: WorkflowContext, input: { name: string; toolName: string; arguments: { city?: string } }): AsyncGenerator<unknown, null, unknown> {
  if (input.arguments.city === 'Atlantis') throw new Error(`no calls of ${input.toolName} on ${input.name} for Atlantis`);
  return null;
};

/** A mutating afterCallTool hook: replaces the city in the result's text. */
const redact = async function* redact(_ctx: WorkflowContext, input: { arguments: { city?: string }; result: { content: Array<{ type: string; text: string }> } }): AsyncGenerator<unknown, unknown, unknown> {
  return { ...input.result, content: input.result.content.map((part) => ({ ...part, text: part.text.replaceAll(input.arguments.city ?? '', '[city]') })) };
};

describe("MCPServer workflows: ListTools and CallTool.<tool> run on the sidecar's own worker, durably", function () {
  this.timeout(60_000);
  const harness = new Harness();
  let tools: AppHandle;
  let url = '';
  let hooks: WorkflowRuntime | undefined;
  after(() => harness.cleanup());

  before(async () => {
    await harness.controlPlane();
    const placement = await harness.placement('mcp-wf', ['--batch-window', '50ms']);
    await placement.proc.waitForRecord('became leader');
    tools = await harness.app('mcp-tools-server', { TOOL_PAGES: '2' });
    const dir = harness.dir('mcp-wf-resources');
    writeFileSync(join(dir, 'weather.yaml'), mcpServer('weather', `    streamableHTTP:\n      url: http://127.0.0.1:${tools.port}/mcp\n`));
    const middleware = '  middleware:\n    beforeCallTool:\n      - workflow: { workflowName: rbac }\n    afterCallTool:\n      - workflow: { workflowName: redact }\n        mutate: true\n';
    writeFileSync(join(dir, 'guarded.yaml'), mcpServer('guarded', `    streamableHTTP:\n      url: http://127.0.0.1:${tools.port}/mcp\n`, middleware));
    // No app: the MCPServer's own workflows need none. The hooks are workflows of the app, run by its SDK worker.
    const sidecar = await harness.sidecar({ appId: 'mcp-gateway', args: ['--resources-path', dir, '--placement-address', placement.address] });
    url = sidecar.url;
    const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
    hooks = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort: String(ready['grpcPort']), logger: { level: LogLevel.Error } }).registerWorkflow(rbac).registerWorkflow(redact);
    await hooks.start();
    await sidecar.proc.waitForRecord('workflow worker connected');
  });
  after(async () => {
    await hooks?.stop().catch(() => undefined);
  });

  /** Starts a workflow over Dapr's HTTP API and waits for it to finish; its output, parsed. */
  async function run(name: string, input: unknown, instanceId: string): Promise<{ status: string; output: unknown }> {
    const started = await eventually(async () => {
      const answer = await httpRequest(`${url}/v1.0-beta1/workflows/dapr/${name}/start?instanceID=${instanceId}`, { method: 'POST', body: JSON.stringify(input) });
      return answer.status === 202 ? answer : undefined;
    }, 20_000, 'the workflow actor type to be placed');
    assert.equal(started.status, 202, started.body);
    return eventually(async () => {
      const got = (await httpRequest(`${url}/v1.0-beta1/workflows/dapr/${instanceId}`)).json<{ runtimeStatus: string; properties: Record<string, string> }>();
      if (got.runtimeStatus === 'RUNNING' || got.runtimeStatus === 'PENDING') return undefined;
      return { status: got.runtimeStatus, output: JSON.parse(got.properties['dapr.workflow.output'] ?? 'null') as unknown };
    }, 20_000, `workflow ${instanceId} to finish`);
  }

  const calls = async (): Promise<Array<{ name: string; arguments: unknown }>> => JSON.parse((await httpRequest(`http://127.0.0.1:${tools.port}/calls`)).body.toString()) as Array<{ name: string; arguments: unknown }>;

  it('answers ListTools from the tools discovered at start', async () => {
    const listed = await run('dapr.internal.mcp.weather.ListTools', {}, 'list-1');
    assert.equal(listed.status, 'COMPLETED');
    assert.deepEqual((listed.output as { tools: Array<{ name: string }> }).tools.map((tool) => tool.name), ['tool_0', 'tool_1']);
  });

  it('calls the tool as an activity and completes with its CallToolResult', async () => {
    const called = await run('dapr.internal.mcp.weather.CallTool.tool_1', { arguments: { city: 'Lisbon' } }, 'call-1');
    assert.equal(called.status, 'COMPLETED');
    assert.deepEqual(called.output, { content: [{ type: 'text', text: 'called tool_1 for {"city":"Lisbon"}' }] });
    assert.deepEqual((await calls()).filter((call) => call.name === 'tool_1'), [{ name: 'tool_1', arguments: { city: 'Lisbon' } }]);
    const { events } = (await httpRequest(`${url}/v1.0-beta1/workflows/dapr/call-1/history`)).json<{ events: Array<{ kind: string; details: { name?: string } }> }>();
    assert.ok(events.some((event) => event.kind === 'taskScheduled' && event.details.name === 'dapr.internal.mcp.callTool'), JSON.stringify(events));
  });

  it('completes with isError and never contacts the server when a required argument is missing, the tool is unknown or the input is malformed', async () => {
    const before = (await calls()).length;
    const missing = await run('dapr.internal.mcp.weather.CallTool.tool_0', { arguments: {} }, 'missing-1');
    assert.deepEqual(missing, { status: 'COMPLETED', output: { content: [{ type: 'text', text: "tool 'tool_0' needs the argument 'city'" }], isError: true } });
    const unknown = await run('dapr.internal.mcp.weather.CallTool.no.such.tool', { arguments: { city: 'x' } }, 'unknown-1');
    assert.deepEqual(unknown.output, { content: [{ type: 'text', text: `MCPServer "weather" has no tool 'no.such.tool'` }], isError: true });
    const malformed = await run('dapr.internal.mcp.weather.CallTool.tool_0', { arguments: [1, 2] }, 'malformed-1');
    assert.match((malformed.output as { content: Array<{ text: string }> }).content[0]?.text ?? '', /the input of a CallTool workflow is \{"arguments": \{\.\.\.\}\}: "arguments" must be an object/);
    const otherServer = await run('dapr.internal.mcp.nowhere.ListTools', {}, 'nowhere-1');
    assert.deepEqual(otherServer.output, { content: [{ type: 'text', text: 'MCPServer "nowhere" is not loaded on this sidecar' }], isError: true });
    assert.equal((await calls()).length, before, 'the server saw none of these');
  });

  it('runs the hooks as workflows of the app: a before-hook refuses a call the server never sees (a decision event says so), a mutating after-hook rewrites the result', async () => {
    const before = (await calls()).length;
    const natsUrl = harness.natsHandle?.url ?? '';
    const nc = await connect({ servers: natsUrl, tls: (({ certPem, keyPem, caPem }) => ({ cert: certPem, key: keyPem, ca: caPem }))(mintOperatorTls(readCa(harness.home), 'e2e-hooks')) });
    const published = await nextDecisions(nc, 'skein.decisions.default.mcp-gateway', 1, 15_000);
    const denied = await run('dapr.internal.mcp.guarded.CallTool.tool_0', { arguments: { city: 'Atlantis' } }, 'hooked-denied');
    const [made] = await published.events();
    await nc.close();
    assert.deepEqual({ ...made?.decision, reason: undefined }, { allowed: false, source: 'mcp-hook', rule: 'MCPServer/guarded/beforeCallTool/rbac', reason: undefined, caller: 'mcp-gateway', target: 'guarded', method: 'tools/call', tool: 'tool_0' });
    assert.match((made?.decision as { reason?: string } | undefined)?.reason ?? '', /no calls of tool_0 on guarded for Atlantis/);
    assert.equal(denied.status, 'COMPLETED');
    const deniedResult = denied.output as { content: Array<{ text: string }>; isError?: boolean };
    assert.equal(deniedResult.isError, true);
    assert.match(deniedResult.content[0]?.text ?? '', /hook 'rbac' stopped the call of tool 'tool_0': .*no calls of tool_0 on guarded for Atlantis/);
    assert.equal((await calls()).length, before, 'the server never saw the refused call');
    const allowed = await run('dapr.internal.mcp.guarded.CallTool.tool_0', { arguments: { city: 'Porto' } }, 'hooked-allowed');
    assert.deepEqual(allowed, { status: 'COMPLETED', output: { content: [{ type: 'text', text: 'called tool_0 for {"city":"[city]"}' }] } });
    assert.deepEqual((await calls()).slice(before), [{ name: 'tool_0', arguments: { city: 'Porto' } }], 'the server got the arguments; the caller got the redacted result');
  });

  it('serves each MCPServer back over MCP at /v1.0/mcp/<server>: an official SDK client lists and calls through the workflows, hooks included', async () => {
    const before = (await calls()).length;
    const client = new Client({ name: 'plain-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/v1.0/mcp/guarded`)));
    try {
      const listed = await client.listTools();
      assert.deepEqual(listed.tools.map((tool) => tool.name), ['tool_0', 'tool_1']);
      const called = await client.callTool({ name: 'tool_1', arguments: { city: 'Braga' } });
      assert.deepEqual(called, { content: [{ type: 'text', text: 'called tool_1 for {"city":"[city]"}' }] });
      const refused = await client.callTool({ name: 'tool_1', arguments: { city: 'Atlantis' } });
      assert.equal(refused.isError, true);
      assert.match((refused.content as Array<{ text: string }>)[0]?.text ?? '', /hook 'rbac' stopped the call of tool 'tool_1'/);
      assert.deepEqual((await calls()).slice(before), [{ name: 'tool_1', arguments: { city: 'Braga' } }], 'the refused call never reached the server');
    } finally {
      await client.close();
    }
    const unknown = await httpRequest(`${url}/v1.0/mcp/nowhere`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(unknown.status, 404, unknown.body);
    assert.match(unknown.json<{ message: string }>().message, /this sidecar has no MCPServer named "nowhere"/);
  });
});
