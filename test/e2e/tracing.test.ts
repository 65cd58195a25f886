import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as GrpcClient, credentials, Metadata } from '@grpc/grpc-js';
import { daprService, dapr } from '@skein/proto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { OtlpReceiver, type ReceivedSpan } from '../src/otlp-receiver.js';
import { freePort } from '../src/ports.js';

const MCP_SERVER = fileURLToPath(new URL('../../../samples/mcp-server/dist/server.js', import.meta.url));
const INVENTORY_POLICY = fileURLToPath(new URL('../../../samples/policies/inventory-tools.yaml', import.meta.url));

function configuration(otlp: string, withAcl: boolean): string {
  return [
    'apiVersion: dapr.io/v1alpha1',
    'kind: Configuration',
    'metadata:',
    '  name: traced',
    'spec:',
    '  tracing:',
    '    samplingRate: "1"',
    '    otel:',
    `      endpointAddress: "${otlp}"`,
    '      isSecure: false',
    '      protocol: http',
    ...(withAcl ? ['  accessControl:', '    defaultAction: deny', '    trustDomain: public', '    policies:', '    - { appId: analyst-agent, namespace: default, defaultAction: allow }'] : []),
    '',
  ].join('\n');
}

describe('end-to-end tracing of an MCP tool call', function () {
  const harness = new Harness();
  const receiver = new OtlpReceiver();
  let agent: SidecarHandle;
  after(async () => {
    await harness.cleanup();
    await receiver.stop();
  });

  before(async function () {
    await receiver.start();
    await harness.controlPlane();
    const dir = harness.dir('traced');
    writeFileSync(join(dir, 'server.yaml'), configuration(`127.0.0.1:${receiver.port}`, true));
    writeFileSync(join(dir, 'agent.yaml'), configuration(`127.0.0.1:${receiver.port}`, false));
    const resources = harness.dir('traced-resources');
    copyFileSync(INVENTORY_POLICY, join(resources, 'inventory-tools.yaml'));
    const server = harness.start('mcp-server', process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
    const port = Number((JSON.parse(await server.waitFor(/^\{"listening":\d+/)) as { listening: number }).listening);
    [, agent] = await Promise.all([
      harness.sidecar({ appId: 'mcp-server', appPort: port, args: ['--config', join(dir, 'server.yaml'), '--resources-path', resources] }),
      harness.sidecar({ appId: 'analyst-agent', args: ['--config', join(dir, 'agent.yaml')] }),
    ]);
  });

  const inTrace = (traceId: string) => (spans: ReceivedSpan[]) => spans.filter((span) => span.traceId === traceId);

  it('produces one connected trace across both sidecars and the server call, with MCP attributes and the policy decisions', async function () {
    const traceId = randomBytes(16).toString('hex');
    const rootSpan = randomBytes(8).toString('hex');
    const client = new Client({ name: 'traced-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${agent.url}/v1.0/invoke/mcp-server/method/mcp`), { requestInit: { headers: { traceparent: `00-${traceId}-${rootSpan}-01` } } }));
    await client.callTool({ name: 'get_inventory', arguments: { sku: 'A-100' } });
    await client.close();

    const isCall = (span: ReceivedSpan): boolean => span.name === 'tools/call get_inventory';
    const spans = inTrace(traceId)(
      await receiver.waitFor((all) => {
        const mine = inTrace(traceId)(all);
        return mine.filter(isCall).length === 2 && mine.some((span) => span.name === 'call app mcp-server' && span.attributes['http.request.method'] === 'POST' && mine.some(isCall));
      }),
    );
    const byId = new Map(spans.map((span) => [span.spanId, span]));
    const callerServer = spans.find((span) => isCall(span) && span.service === 'analyst-agent');
    const calleeServer = spans.find((span) => isCall(span) && span.service === 'mcp-server');
    assert.ok(callerServer && calleeServer, spans.map((s) => `${s.service}:${s.name}`).join(', '));
    // The caller's server span continues the trace the agent started.
    assert.equal(callerServer.parentSpanId, rootSpan);
    // caller server → client hop → callee server: parent links cross the mTLS hop through gRPC metadata.
    const hop = byId.get(calleeServer.parentSpanId);
    assert.ok(hop, 'the callee span has the caller hop as parent');
    assert.equal(hop.service, 'analyst-agent');
    assert.equal(hop.name, 'invoke mcp-server');
    assert.equal(hop.parentSpanId, callerServer.spanId);
    for (const span of [callerServer, calleeServer]) {
      assert.equal(span.attributes['mcp.method.name'], 'tools/call');
      assert.equal(span.attributes['gen_ai.tool.name'], 'get_inventory');
      assert.ok(span.attributes['jsonrpc.request.id'] !== undefined);
      assert.ok(String(span.attributes['mcp.session.id'] ?? '').length > 0);
      assert.equal(JSON.stringify(span.attributes).includes('A-100'), false, 'tool arguments never go into spans');
    }
    // Each policy stage is a span under the callee's server span, carrying its decision as an event.
    const acl = spans.find((span) => span.name === 'skein access-control' && span.service === 'mcp-server' && span.parentSpanId === calleeServer.spanId);
    assert.ok(acl, 'access-control stage span');
    const aclDecision = acl.events.find((event) => event.name === 'skein.decision');
    assert.equal(aclDecision?.attributes['skein.decision.allowed'], true);
    assert.equal(aclDecision?.attributes['skein.decision.source'], 'acl');
    const policy = spans.find((span) => span.name === 'skein mcp-tool-policy' && span.parentSpanId === acl.spanId);
    assert.ok(policy, 'tool-policy stage span nested in access control');
    assert.equal(policy.events.find((event) => event.name === 'skein.decision')?.attributes['skein.decision.rule'], 'analyst-agent-tools');
    const appCall = spans.find((span) => span.name === 'call app mcp-server' && span.parentSpanId === policy.spanId);
    assert.ok(appCall, 'the app call is the innermost span');

    // The same trace reaches the telemetry stream, where `skein traces` shows it as a waterfall.
    const natsUrl = harness.natsHandle?.url ?? '';
    let shown = '';
    for (let attempt = 0; attempt < 20 && !shown.includes('call app mcp-server'); attempt++) {
      const cli = harness.skein('traces', ['traces', traceId, '--home', harness.home, '--nats-url', natsUrl]);
      await cli.exited;
      shown = cli.output();
    }
    for (const name of ['tools/call get_inventory', 'invoke mcp-server', 'skein access-control', 'skein mcp-tool-policy', 'call app mcp-server']) assert.ok(shown.includes(name), `${name} in:\n${shown}`);
  });

  it('records a tool result with isError: true as error.type=tool_error', async function () {
    const traceId = randomBytes(16).toString('hex');
    const client = new Client({ name: 'traced-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${agent.url}/v1.0/invoke/mcp-server/method/mcp`), { requestInit: { headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } } }));
    const result = await client.callTool({ name: 'get_schema', arguments: { table: 'no-such-table' } });
    assert.equal(result['isError'], true);
    await client.close();
    const spans = await receiver.waitFor((all) => all.some((span) => span.traceId === traceId && span.service === 'mcp-server' && span.name === 'tools/call get_schema'));
    const callee = spans.find((span) => span.traceId === traceId && span.service === 'mcp-server' && span.name === 'tools/call get_schema');
    assert.equal(callee?.attributes['error.type'], 'tool_error');
    assert.equal(callee?.status.code, 2);
  });

  it('marks a call the tool policy denied as an error of its trace, naming the rule; an allowed call is not', async function () {
    const traceId = randomBytes(16).toString('hex');
    const client = new Client({ name: 'traced-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${agent.url}/v1.0/invoke/mcp-server/method/mcp`), { requestInit: { headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } } }));
    await client.callTool({ name: 'get_inventory', arguments: { sku: 'A-100' } });
    await assert.rejects(client.callTool({ name: 'drop_table', arguments: { table: 'items' } }), /denied by tool-policy rule/);
    await client.close();
    const calleeSpan = (all: ReceivedSpan[], name: string): ReceivedSpan | undefined => all.find((span) => span.traceId === traceId && span.service === 'mcp-server' && span.name === name);
    const spans = await receiver.waitFor((all) => calleeSpan(all, 'tools/call drop_table') !== undefined && calleeSpan(all, 'tools/call get_inventory') !== undefined);
    const denied = calleeSpan(spans, 'tools/call drop_table');
    assert.equal(denied?.attributes['error.type'], 'ERR_MCP_TOOL_DENIED');
    assert.equal(denied?.status.code, 2);
    assert.match(denied?.status.message ?? '', /^denied by tool-policy rule /);
    assert.notEqual(calleeSpan(spans, 'tools/call get_inventory')?.status.code, 2, 'the allowed call is no error');
  });

  it('continues a trace a caller of the gRPC API started, as it does for HTTP callers', async function () {
    const traceId = randomBytes(16).toString('hex');
    const rootSpan = randomBytes(8).toString('hex');
    const ready = await agent.proc.waitForRecord('ready', { what: 'sidecar' });
    const grpc = new GrpcClient(`127.0.0.1:${Number(ready['grpcPort'])}`, credentials.createInsecure());
    try {
      const metadata = new Metadata();
      metadata.set('traceparent', `00-${traceId}-${rootSpan}-01`);
      const method = daprService.invokeService;
      const request = { id: 'mcp-server', message: { method: 'health', httpExtension: { verb: dapr.proto.common.v1.HTTPExtension.Verb.GET } } };
      // Whatever the MCP server answers to this path, the call crosses both sidecars.
      await new Promise<void>((resolve) => grpc.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata, () => resolve()));
    } finally {
      grpc.close();
    }
    const spans = inTrace(traceId)(
      await receiver.waitFor((all) => {
        const mine = inTrace(traceId)(all);
        return mine.some((span) => span.service === 'mcp-server' && span.name === 'GET /health') && mine.some((span) => span.service === 'analyst-agent' && span.name === 'GET invoke mcp-server');
      }),
    );
    const callerServer = spans.find((span) => span.service === 'analyst-agent' && span.name === 'GET invoke mcp-server');
    assert.ok(callerServer, spans.map((span) => `${span.service}:${span.name}`).join(', '));
    assert.equal(callerServer.parentSpanId, rootSpan, "the caller's server span is a child of the gRPC caller's span");
    const calleeServer = spans.find((span) => span.service === 'mcp-server' && span.name === 'GET /health');
    assert.equal(calleeServer?.traceId, traceId);
  });

  it('ignores a malformed traceparent and starts a fresh trace', async function () {
    const before = new Set(receiver.spans.map((span) => span.traceId));
    const res = await httpRequest(`${agent.url}/v1.0/invoke/mcp-server/method/mcp`, {
      method: 'POST',
      headers: { traceparent: '00-not-a-trace-01', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    assert.equal(res.status, 200, res.body);
    const spans = await receiver.waitFor((all) => all.some((span) => span.name === 'initialize' && span.service === 'analyst-agent' && !before.has(span.traceId)));
    const fresh = spans.find((span) => span.name === 'initialize' && span.service === 'analyst-agent' && !before.has(span.traceId));
    assert.match(fresh?.traceId ?? '', /^[0-9a-f]{32}$/);
    assert.equal(fresh?.parentSpanId, '');
  });

  it('keeps serving when the OTLP endpoint is down', async function () {
    const dead = await freePort();
    const dir = harness.dir('dead-otlp');
    writeFileSync(join(dir, 'config.yaml'), configuration(`127.0.0.1:${dead}`, false));
    const app = await harness.app('echo-app');
    const [, caller] = await Promise.all([
      harness.sidecar({ appId: 'lonely', appPort: app.port, args: ['--config', join(dir, 'config.yaml')] }),
      harness.sidecar({ appId: 'lonely-caller', args: ['--config', join(dir, 'config.yaml')] }),
    ]);
    for (let i = 0; i < 50; i++) assert.equal((await httpRequest(`${caller.url}/v1.0/invoke/lonely/method/ping`)).status, 200);
  });
});
