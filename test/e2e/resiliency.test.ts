import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Harness, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { httpRequest, type HttpResult } from '../src/http.js';
import { OtlpReceiver, type ReceivedSpan } from '../src/otlp-receiver.js';
import { freePort } from '../src/ports.js';

const MCP_SERVER = fileURLToPath(new URL('../../../samples/mcp-server/dist/server.js', import.meta.url));

interface DaprError {
  errorCode: string;
  message: string;
}

const yaml = (text: string): string => `${text.trim()}\n`;

function endpoint(name: string, port: number): string {
  return yaml(`
apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint
metadata:
  name: ${name}
spec:
  baseUrl: http://127.0.0.1:${port}
`);
}

const RESILIENCY = yaml(`
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: agent-resiliency
scopes: [agent]
spec:
  policies:
    timeouts:
      short: 400ms
    retries:
      transient:
        policy: constant
        duration: 10ms
        maxRetries: 3
        matching:
          httpStatusCodes: "502-504"
    circuitBreakers:
      mcpDown:
        maxRequests: 1
        timeout: 2s
        trip: consecutiveFailures >= 3
      failFast:
        maxRequests: 1
        timeout: 1h
        trip: consecutiveFailures >= 2
  targets:
    apps:
      flaky:
        timeout: short
        retry: transient
      flaky-direct:
        timeout: short
      flaky-guarded:
        circuitBreaker: failFast
      remote-mcp:
        circuitBreaker: mcpDown
`);

describe('Resiliency: timeouts, retries and circuit breakers on calls from the app', function () {
  const harness = new Harness();
  const receiver = new OtlpReceiver();
  let flakyApp: AppHandle;
  let agent: SidecarHandle;
  let metricsPort = 0;
  let mcpPort = 0;

  before(async function () {
    await receiver.start();
    mcpPort = await freePort();
    [, flakyApp] = await Promise.all([harness.controlPlane(), harness.app('flaky-app')]);
    const resources = harness.dir('agent-resources');
    writeFileSync(join(resources, 'resiliency.yaml'), RESILIENCY);
    writeFileSync(join(resources, 'flaky-direct.yaml'), endpoint('flaky-direct', flakyApp.port));
    writeFileSync(join(resources, 'flaky-guarded.yaml'), endpoint('flaky-guarded', flakyApp.port));
    // The MCP server's port is reserved but nothing listens there yet: the server is down.
    writeFileSync(join(resources, 'remote-mcp.yaml'), endpoint('remote-mcp', mcpPort));
    const config = join(harness.dir('agent-config'), 'config.yaml');
    writeFileSync(
      config,
      yaml(`
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: agent
spec:
  tracing:
    samplingRate: "1"
    otel:
      endpointAddress: "127.0.0.1:${receiver.port}"
      isSecure: false
      protocol: http
`),
    );
    [agent] = await Promise.all([
      harness.sidecar({ appId: 'agent', args: ['--config', config, '--resources-path', resources] }),
      harness.sidecar({ appId: 'flaky', appPort: flakyApp.port }),
    ]);
    const ready = await agent.proc.waitForRecord('ready', { what: 'sidecar' });
    metricsPort = Number(ready['metricsPort']);
  });
  after(async () => {
    await harness.cleanup();
    await receiver.stop();
  });

  const seenBy = async (key: string): Promise<number> => (await httpRequest(`http://127.0.0.1:${flakyApp.port}/_count?key=${key}`)).json<{ requests: number }>().requests;
  const call = (target: string, path: string, options: { body?: string | AsyncIterable<Buffer>; traceparent?: string } = {}): Promise<HttpResult> =>
    httpRequest(`${agent.url}/v1.0/invoke/${target}/method/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(options.traceparent ? { traceparent: options.traceparent } : {}) },
      body: options.body ?? '{"hello":"world"}',
    });
  const newTrace = (): { traceId: string; traceparent: string } => {
    const traceId = randomBytes(16).toString('hex');
    return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
  };
  const metrics = async (): Promise<string> => (await httpRequest(`http://127.0.0.1:${metricsPort}/metrics`)).body;

  it('refuses to start when a Resiliency does not compile, naming file, path and reason', async function () {
    const dir = harness.dir('bad-resiliency');
    const file = join(dir, 'resiliency.yaml');
    writeFileSync(file, RESILIENCY.replace('retry: transient', 'retry: transiant'));
    const proc = harness.skein('bad-resiliency', ['run', '--app-id', 'agent', '--trust-anchors-file', harness.trustBundle, '--resources-path', dir]);
    assert.equal((await proc.exited).code, 1, proc.output());
    assert.match(proc.output(), new RegExp(`${file}: /spec/targets/apps/flaky/retry: no retry policy named "transiant"`));

    writeFileSync(file, RESILIENCY.replace('"502-504"', '"502-"'));
    const again = harness.skein('bad-resiliency-codes', ['run', '--app-id', 'agent', '--trust-anchors-file', harness.trustBundle, '--resources-path', dir]);
    assert.equal((await again.exited).code, 1, again.output());
    assert.match(again.output(), new RegExp(`${file}: /spec/policies/retries/transient/matching/httpStatusCodes: "502-" does not parse`));
  });

  it('turns a transient 503 into success, and the retries show in the trace and the metrics', async function () {
    const { traceId, traceparent } = newTrace();
    const res = await call('flaky', 'fail-first/2?key=transient', { traceparent });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(res.json(), { attempt: 3, bytes: 17, failing: false }, 'the third attempt carried the whole body again');
    assert.equal(await seenBy('transient'), 3);

    const hopsOf = (all: ReceivedSpan[]): ReceivedSpan[] => all.filter((span) => span.traceId === traceId && span.service === 'agent' && span.name === 'invoke flaky');
    const spans = await receiver.waitFor((all) => hopsOf(all).length === 3 && all.some((span) => span.traceId === traceId && span.events.filter((event) => event.name === 'skein.retry').length === 2));
    const server = spans.find((span) => span.traceId === traceId && span.events.some((event) => event.name === 'skein.retry')) as ReceivedSpan;
    const retries = server.events.filter((event) => event.name === 'skein.retry');
    assert.deepEqual(
      retries.map((event) => [event.attributes['skein.retry.attempt'], event.attributes['skein.retry.reason'], event.attributes['skein.retry.policy'], event.attributes['skein.target.app_id']]),
      [
        [2, 'HTTP 503', 'transient', 'flaky'],
        [3, 'HTTP 503', 'transient', 'flaky'],
      ],
    );
    assert.deepEqual(
      hopsOf(spans).map((hop) => hop.attributes['http.response.status_code']).sort(),
      [200, 503, 503],
      'each attempt is a hop of its own',
    );
    assert.match(await metrics(), /skein_resiliency_retries_total\{[^}]*target="flaky",policy="transient"\} 2/);
    await agent.proc.waitForRecord('retrying call', { target: 'flaky', attempt: 3 });
  });

  it('gives up after maxRetries+1 attempts and relays the last answer', async function () {
    const res = await call('flaky', 'status/503?key=always');
    assert.equal(res.status, 503);
    assert.deepEqual(res.json(), { attempt: 4, bytes: 17 });
    assert.equal(await seenBy('always'), 4, 'maxRetries 3 → 4 attempts');

    const notMatching = await call('flaky', 'status/500?key=not-matching');
    assert.equal(notMatching.status, 500);
    assert.equal(await seenBy('not-matching'), 1, '500 is outside 502-504');
  });

  it('never retries a streamed (chunked, unknown-length) request body', async function () {
    async function* chunks(): AsyncIterable<Buffer> {
      for (let i = 0; i < 4; i++) yield Buffer.from(`chunk ${i};`);
    }
    const res = await call('flaky', 'status/503?key=streamed', { body: chunks() });
    assert.equal(res.status, 503);
    assert.deepEqual(res.json(), { attempt: 1, bytes: 32 }, 'the app received the whole stream once');
    assert.equal(await seenBy('streamed'), 1);
  });

  it('cuts a hung call at its timeout and tells the caller which target and policy', async function () {
    const started = performance.now();
    const res = await call('flaky-direct', 'hang?key=hung-endpoint');
    const elapsed = performance.now() - started;
    assert.equal(res.status, 504, res.body);
    const error = res.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_DIRECT_INVOKE');
    assert.match(error.message, /^failed to invoke, id: flaky-direct, err: timeout "short" \(400ms\) of Resiliency "agent-resiliency" expired before flaky-direct answered/);
    assert.ok(elapsed < 5000, `answered after ${Math.round(elapsed)} ms`);
    assert.equal(await seenBy('hung-endpoint'), 1, 'no retry policy on this target');

    // Through the mesh, each attempt gets the timeout and the retry policy sends it again.
    const viaMesh = await call('flaky', 'hang?key=hung-mesh');
    assert.equal(viaMesh.status, 504, viaMesh.body);
    assert.match(viaMesh.json<DaprError>().message, /timeout "short" \(400ms\) of Resiliency "agent-resiliency" expired before flaky answered \(attempt 4\)/);
    assert.equal(await seenBy('hung-mesh'), 4);
    assert.match(await metrics(), /skein_resiliency_timeouts_total\{[^}]*target="flaky",policy="short"\} 4/);
  });

  it('opens a breaker that then fails fast without calling the target', async function () {
    for (let i = 1; i <= 2; i++) assert.equal((await call('flaky-guarded', 'status/500?key=guarded')).status, 500);
    await agent.proc.waitForRecord('circuit breaker open', { target: 'flaky-guarded' });
    const res = await call('flaky-guarded', 'status/500?key=guarded');
    assert.equal(res.status, 503);
    const error = res.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_CIRCUIT_BREAKER_OPEN');
    assert.match(error.message, /^failed to invoke, id: flaky-guarded, err: circuit breaker "failFast" of Resiliency "agent-resiliency" is open/);
    assert.equal(await seenBy('guarded'), 2, 'the third call never reached the app');
  });

  it('an MCP server that is down: the breaker opens after the configured failures, fails fast, and recovers through half-open', async function () {
    for (let i = 1; i <= 3; i++) {
      const res = await call('remote-mcp', 'mcp');
      assert.equal(res.status, 502, res.body);
      assert.match(res.json<DaprError>().message, /HTTP endpoint remote-mcp .* cannot be reached/);
    }
    const opened = await agent.proc.waitForRecord('circuit breaker open', { target: 'remote-mcp' });
    assert.equal(opened['breaker'], 'mcpDown');
    assert.equal(opened['consecutiveFailures'], 3);

    const { traceId, traceparent } = newTrace();
    const started = performance.now();
    const refused = await call('remote-mcp', 'mcp', { traceparent });
    const elapsed = performance.now() - started;
    assert.equal(refused.status, 503);
    const error = refused.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_CIRCUIT_BREAKER_OPEN');
    assert.match(error.message, /^failed to invoke, id: remote-mcp, err: circuit breaker "mcpDown" of Resiliency "agent-resiliency" is open: calls to remote-mcp fail fast/);
    assert.ok(elapsed < 500, `refused after ${Math.round(elapsed)} ms`);
    const [server] = (await receiver.waitFor((all) => all.some((span) => span.traceId === traceId))).filter((span) => span.traceId === traceId);
    assert.equal(server?.status.code, 2, 'the refused call is an error in the trace');
    assert.ok(!receiver.spans.some((span) => span.traceId === traceId && span.name === 'invoke remote-mcp'), 'no hop was attempted');

    // The server comes back; the breaker lets one trial call through once its timeout has passed.
    const mcpServer = harness.start('mcp-server', process.execPath, [MCP_SERVER], { env: { PORT: String(mcpPort) } });
    await mcpServer.waitFor(/^\{"listening":\d+/);
    await agent.proc.waitForRecord('circuit breaker half-open', { target: 'remote-mcp' });

    const recovery = newTrace();
    const client = new Client({ name: 'resiliency-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${agent.url}/v1.0/invoke/remote-mcp/method/mcp`), { requestInit: { headers: { traceparent: recovery.traceparent } } }));
    await agent.proc.waitForRecord('circuit breaker closed', { target: 'remote-mcp' });
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    assert.ok(tools.includes('get_inventory'), tools.join(', '));
    await client.close();

    const events = (await receiver.waitFor((all) => all.some((span) => span.traceId === recovery.traceId && span.events.some((event) => event.name === 'skein.circuit_breaker.state'))))
      .filter((span) => span.traceId === recovery.traceId)
      .flatMap((span) => span.events.filter((event) => event.name === 'skein.circuit_breaker.state'))
      .map((event) => `${String(event.attributes['skein.circuit_breaker.from'])}>${String(event.attributes['skein.circuit_breaker.to'])}`);
    assert.deepEqual(events, ['half-open>closed'], 'the trial call closed the breaker, in its trace');
    const exposition = await metrics();
    for (const state of ['open', 'half-open', 'closed']) assert.match(exposition, new RegExp(`skein_circuit_breaker_transitions_total\\{[^}]*target="remote-mcp",policy="mcpDown",state="${state}"\\} 1`));
  });
});
