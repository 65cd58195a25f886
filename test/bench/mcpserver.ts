/**
 * The `mcpserver` part: MCP tool calls made durable by an MCPServer resource — the official SDK client calling the
 * sample MCP server through the sidecar's `/v1.0/mcp/<server>` endpoint, where each `tools/call` is a
 * `CallTool.<tool>` workflow (its call an activity) and each `tools/list` a `ListTools` workflow — against the same
 * client calling the server directly, in the same run. Also with two local beforeCallTool hooks (workflows written
 * with `@dapr/dapr`, run by a worker in this process). No assertions on numbers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LogLevel, WorkflowRuntime, type WorkflowContext } from '@dapr/dapr';
import type { Harness } from '../src/harness.js';
import { connectMcp, disconnectMcp, mcpReportOf, runMcpConcurrent, runMcpSequential, startMcpServer, type McpEndpoint, type McpReport, type ToolCall } from './mcp.js';
import { count, markdownTable, ms, say, signedMs, targetsTable, type Target } from './report.js';
import type { Settings } from './settings.js';
import { summarise, type LatencySummary } from './stats.js';

/** The speed goals of the MCPServer issue. */
const TARGETS = { addedP50Ms: 5, callsPerSecond: 300, hookedCallsPerSecond: 150, listAddedMs: 1 };
const CALL: ToolCall = { name: 'get_inventory', arguments: {} };

export interface McpServerReport {
  sequential: Record<'direct' | 'durable' | 'hooked', McpReport>;
  list: Record<'direct' | 'durable', LatencySummary>;
  concurrent: { clients: number; paths: Record<'direct' | 'durable' | 'hooked', McpReport> };
  targets: Target[];
  elapsedSeconds: number;
}

// Two pass-through beforeCallTool hooks.
const allow = async function* allow(): AsyncGenerator<unknown, null, unknown> {
  return null;
};
const audit = async function* audit(_ctx: WorkflowContext): AsyncGenerator<unknown, null, unknown> {
  return null;
};

export async function runMcpServer(harness: Harness, settings: Settings): Promise<McpServerReport> {
  const began = performance.now();
  say('mcpserver: placement, the sample MCP server, a sidecar with two MCPServers (one with two hooks)');
  const placement = await harness.placement('bench-mcpserver', ['--batch-window', '20ms']);
  await placement.proc.waitForRecord('became leader');
  const server = await startMcpServer(harness, 'bench-mcp-tools');
  const dir = harness.dir('bench-mcpserver');
  const endpoint = `  endpoint:\n    streamableHTTP:\n      url: http://127.0.0.1:${server.port}/mcp\n`;
  writeFileSync(join(dir, 'plain.yaml'), `apiVersion: dapr.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: inventory\nspec:\n${endpoint}`);
  writeFileSync(join(dir, 'hooked.yaml'), `apiVersion: dapr.io/v1alpha1\nkind: MCPServer\nmetadata:\n  name: guarded\nspec:\n${endpoint}  middleware:\n    beforeCallTool:\n      - workflow: { workflowName: allow }\n      - workflow: { workflowName: audit }\n`);
  const sidecar = await harness.sidecar({ appId: 'bench-gateway', args: ['--resources-path', dir, '--placement-address', placement.address] });
  const ready = await sidecar.proc.waitForRecord('ready', { what: 'sidecar' });
  const consoleBefore = { log: console.log, info: console.info, debug: console.debug };
  console.log = console.info = console.debug = (): void => undefined;
  const hooks = new WorkflowRuntime({ daprHost: '127.0.0.1', daprPort: String(ready['grpcPort']), logger: { level: LogLevel.Error } }).registerWorkflow(allow).registerWorkflow(audit);
  try {
    await hooks.start();
    await sidecar.proc.waitForRecord('workflow worker connected');
    const paths: Record<'direct' | 'durable' | 'hooked', McpEndpoint> = {
      direct: { label: 'direct', url: `http://127.0.0.1:${server.port}/mcp` },
      durable: { label: 'durable', url: `${sidecar.url}/v1.0/mcp/inventory` },
      hooked: { label: 'hooked', url: `${sidecar.url}/v1.0/mcp/guarded` },
    };
    await untilServed(paths.durable);
    const calls = settings.quick ? 100 : 300;
    say(`mcpserver: ${calls} sequential tools/call per path, and tools/list`);
    const sequential = {
      direct: mcpReportOf(await runMcpSequential(paths.direct, CALL, { warmup: 20, count: calls })),
      durable: mcpReportOf(await runMcpSequential(paths.durable, CALL, { warmup: 20, count: calls })),
      hooked: mcpReportOf(await runMcpSequential(paths.hooked, CALL, { warmup: 20, count: calls })),
    };
    const list = { direct: await listLatency(paths.direct, calls), durable: await listLatency(paths.durable, calls) };
    const clients = 16;
    const durationMs = settings.quick ? 3000 : 6000;
    say(`mcpserver: ${clients} clients for ${durationMs / 1000} s per path`);
    const concurrent = {
      clients,
      paths: {
        direct: mcpReportOf(await runMcpConcurrent(paths.direct, CALL, { clients, warmup: 5, durationMs })),
        durable: mcpReportOf(await runMcpConcurrent(paths.durable, CALL, { clients, warmup: 5, durationMs })),
        hooked: mcpReportOf(await runMcpConcurrent(paths.hooked, CALL, { clients, warmup: 5, durationMs })),
      },
    };
    const added = sequential.durable.latency.p50 - sequential.direct.latency.p50;
    const listAdded = list.durable.p50 - list.direct.p50;
    const targets: Target[] = [
      { what: 'CallTool workflow vs the SDK calling the server directly, added p50', target: `≤ ${TARGETS.addedP50Ms} ms`, measured: `${signedMs(added)} ms`, met: added <= TARGETS.addedP50Ms },
      { what: `CallTool workflows/s, no hooks (${clients} clients)`, target: `≥ ${TARGETS.callsPerSecond}`, measured: count(concurrent.paths.durable.callsPerSecond), met: concurrent.paths.durable.callsPerSecond >= TARGETS.callsPerSecond },
      { what: `CallTool workflows/s, two local hooks (${clients} clients)`, target: `≥ ${TARGETS.hookedCallsPerSecond}`, measured: count(concurrent.paths.hooked.callsPerSecond), met: concurrent.paths.hooked.callsPerSecond >= TARGETS.hookedCallsPerSecond },
      { what: 'tools/list from the cache, added p50', target: `≤ ${TARGETS.listAddedMs} ms`, measured: `${signedMs(listAdded)} ms`, met: listAdded <= TARGETS.listAddedMs },
    ];
    return { sequential, list, concurrent, targets, elapsedSeconds: (performance.now() - began) / 1000 };
  } finally {
    await hooks.stop().catch(() => undefined);
    Object.assign(console, consoleBefore);
    await Promise.all([sidecar.proc.stop(), server.proc.stop(), placement.proc.stop()]);
  }
}

/** The MCPServer workflow type is placed a moment after the sidecar starts: list until the endpoint answers. */
async function untilServed(endpoint: McpEndpoint): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      const client = await connectMcp(endpoint);
      await client.listTools();
      await disconnectMcp(client);
      return;
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function listLatency(endpoint: McpEndpoint, n: number): Promise<LatencySummary> {
  const client = await connectMcp(endpoint);
  try {
    for (let i = 0; i < 10; i++) await client.listTools();
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await client.listTools();
      samples.push(performance.now() - t0);
    }
    return summarise(samples);
  } finally {
    await disconnectMcp(client);
  }
}

export function renderMcpServer(report: McpServerReport): string {
  const out: string[] = ['## MCPServer tool workflows', ''];
  out.push('The official MCP SDK client calls `get_inventory` on the sample MCP server directly, and through the sidecar\'s `/v1.0/mcp/<server>` endpoint, where each `tools/call` is a durable `CallTool` workflow (the call an activity) — without hooks, and with two local beforeCallTool hooks (child workflows run by a `@dapr/dapr` worker in the benchmark process).', '');
  const header = ['path', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'ok', 'errors', 'calls/s'];
  const row = (label: string, r: McpReport): string[] => [label, ms(r.latency.p50), ms(r.latency.p90), ms(r.latency.p99), ms(r.latency.max), count(r.ok), String(r.errors), count(r.callsPerSecond)];
  out.push('### One call at a time', '');
  out.push(markdownTable(header, [row('direct', report.sequential.direct), row('CallTool workflow', report.sequential.durable), row('CallTool workflow, 2 hooks', report.sequential.hooked)]), '');
  out.push(`tools/list: direct p50 ${ms(report.list.direct.p50)} ms; through the endpoint, from the discovered tools (no list hooks, so no ListTools workflow), p50 ${ms(report.list.durable.p50)} ms.`, '');
  out.push(`### ${report.concurrent.clients} clients at once`, '');
  out.push(markdownTable(header, [row('direct', report.concurrent.paths.direct), row('CallTool workflow', report.concurrent.paths.durable), row('CallTool workflow, 2 hooks', report.concurrent.paths.hooked)]), '');
  out.push('### Targets', '', targetsTable(report.targets), '');
  return out.join('\n');
}
