/**
 * What tracing costs: two sidecar pairs side by side in one run, identical but for `spec.tracing.samplingRate`
 * (1 and 0), both exporting over OTLP/HTTP to a real receiver started here. The same sequential requests go through
 * each pair in interleaved blocks: the 1 KB POST through the bare mesh, and MCP `tools/call` through the whole
 * governance chain (App-ID access control, bearer JWT, tool policy), whose stages each add a span when sampled.
 */
import { performance } from 'node:perf_hooks';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Harness, ManagedProcess, SidecarHandle } from '../src/harness.js';
import { LocalIssuer, writeGovernance } from './governance.js';
import { runInterleaved, type InterleavedPath, type InterleavedResult } from './interleave.js';
import { mergeLoadResults, runSequential, waitForPath, type HttpTarget, type LoadResult } from './load.js';
import { callSequentially, connectMcp, disconnectMcp, mergeMcpPhases, startMcpServer, type McpPhaseResult, type ToolCall } from './mcp.js';
import { natsPid } from './resources.js';
import { count, errors, markdownTable, ms, ratio, say, signedMs, targetsTable, type Target } from './report.js';
import type { Settings } from './settings.js';
import { logLines, logSummary, type LogSummary } from './sidecar-log.js';
import { summarise, type LatencySummary } from './stats.js';

const METHOD = 'orders';
const TOOL_CALL: ToolCall = { name: 'get_inventory', arguments: {} };
/** Issue 5's target: sampling everything adds at most this share to p50. */
const MAX_P50_RATIO = 1.15;
/** The two settings compared, sampled first in every round of blocks. */
const RATES = [1, 0] as const;
/** Longer than the sidecars' span batch delay (0.5 s), so a block's spans are exported before the next block starts. */
const SETTLE_MS = 700;
type Rate = (typeof RATES)[number];

/** One setting's sequential result with the CPU its two sidecars spent per measured request. */
export interface SampledReport {
  samplingRate: Rate;
  latency: LatencySummary;
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  requestsPerSecond: number;
  cpuMicrosPerRequest: Record<string, number>;
}

/** Both settings for one kind of request, and how many spans the sampled pair exported per request. */
export interface TracingComparison {
  sampled: SampledReport;
  unsampled: SampledReport;
  /** Spans the receiver got while this kind of request ran, per request sent through the sampled pair (warm-up included). */
  spansPerRequest: number;
}

/** Everything the part measured. */
export interface TracingReport {
  post: TracingComparison;
  mcp: TracingComparison;
  targets: Target[];
  logs: Record<string, LogSummary>;
  elapsedSeconds: number;
}

/** The sidecars of one sampling rate. */
interface Pair {
  rate: Rate;
  caller: SidecarHandle;
  app: SidecarHandle;
  mcp: SidecarHandle;
}

/** The latest span total the receiver printed. */
function spansReceived(receiver: ManagedProcess): number {
  for (let i = receiver.lines.length - 1; i >= 0; i--) {
    const match = /^\{"spans":(\d+)\}$/.exec(receiver.lines[i] ?? '');
    if (match) return Number(match[1]);
  }
  return 0;
}

/**
 * Waits until the receiver has had no delivery for a little longer than the exporters' batch delay (0.5 s), so every
 * span of the requests sent so far has arrived; bounded, since a dropped batch never comes.
 */
async function settledSpanCount(receiver: ManagedProcess, quietMs = 1000, maxMs = 10_000): Promise<number> {
  const deadline = performance.now() + maxMs;
  let last = -1;
  let lastChange = performance.now();
  while (performance.now() < deadline) {
    const now = spansReceived(receiver);
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange >= quietMs) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return last;
}

/** Starts one pair and its two callees, every sidecar with the same tracing section but for the rate. */
async function startPair(harness: Harness, rate: Rate, ports: { app: number; mcp: number }, otlpEndpoint: string, issuer: LocalIssuer): Promise<Pair> {
  const name = rate === 1 ? 'sampled' : 'unsampled';
  const tracing = { samplingRate: rate, otlpEndpoint };
  const ids = { caller: `${name}-caller`, app: `${name}-app`, mcp: `${name}-mcp` };
  const [caller, app, mcp] = await Promise.all([
    harness.sidecar({ appId: ids.caller, args: writeGovernance(harness.dir(`tracing-${ids.caller}`), ids.caller, { tracing }) }),
    harness.sidecar({ appId: ids.app, appPort: ports.app, args: writeGovernance(harness.dir(`tracing-${ids.app}`), ids.app, { tracing }) }),
    harness.sidecar({
      appId: ids.mcp,
      appPort: ports.mcp,
      args: writeGovernance(harness.dir(`tracing-${ids.mcp}`), ids.mcp, { tracing, allowCallers: [ids.caller], bearer: issuer, toolPolicy: { callee: ids.mcp, caller: ids.caller } }),
    }),
  ]);
  return { rate, caller, app, mcp };
}

/** What the report needs of a merged sequential run, whether of HTTP requests or MCP calls. */
interface Outcome {
  latencies: number[];
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  elapsedMs: number;
}

function mcpOutcome(blocks: readonly McpPhaseResult[]): Outcome {
  const merged = mergeMcpPhases(blocks);
  return { ...merged, errorKinds: merged.errors ? { [merged.firstError ?? 'error']: merged.errors } : {} };
}

function sampledReport(rate: Rate, outcome: Outcome, cpuMicrosPerRequest: Record<string, number>): SampledReport {
  return { samplingRate: rate, latency: summarise(outcome.latencies), ok: outcome.ok, errors: outcome.errors, errorKinds: outcome.errorKinds, requestsPerSecond: (outcome.ok / outcome.elapsedMs) * 1000, cpuMicrosPerRequest };
}

/** Both rates' results (sampled first, as RATES orders them) as one comparison. */
function compare<R>(results: readonly InterleavedResult<R>[], outcomeOf: (blocks: R[]) => Outcome, spans: number, sent: number): TracingComparison {
  const [sampled, unsampled] = results;
  if (!sampled || !unsampled) throw new Error('expected a result per sampling rate');
  return {
    sampled: sampledReport(1, outcomeOf(sampled.blocks), sampled.cpuMicrosPerRequest),
    unsampled: sampledReport(0, outcomeOf(unsampled.blocks), unsampled.cpuMicrosPerRequest),
    spansPerRequest: spans / sent,
  };
}

/** Runs the part; stops every process it started before returning. */
export async function runTracing(harness: Harness, settings: Settings, body: Buffer): Promise<TracingReport> {
  const began = performance.now();
  say('tracing: starting an OTLP/HTTP receiver, the app, the MCP server and two sidecar pairs (sampling 1 and 0)');
  const issuer = await LocalIssuer.start();
  const started: ManagedProcess[] = [];
  try {
    const receiver = await harness.app('otlp-receiver-app');
    started.push(receiver.proc);
    const app = await harness.app('bench-app');
    started.push(app.proc);
    const server = await startMcpServer(harness, 'mcp-server (tracing)');
    started.push(server.proc);
    const otlpEndpoint = `127.0.0.1:${receiver.port}`;
    const pairs = await Promise.all(RATES.map((rate) => startPair(harness, rate, { app: app.port, mcp: server.port }, otlpEndpoint, issuer)));
    started.push(...pairs.flatMap((pair) => [pair.caller.proc, pair.app.proc, pair.mcp.proc]));
    const targets = pairs.map((pair): HttpTarget => ({ label: `sampling ${pair.rate}`, host: '127.0.0.1', port: pair.caller.httpPort, path: `/v1.0/invoke/${pair.app.appId}/method/${METHOD}` }));
    for (const target of targets) await waitForPath(target, body);
    // Sampled spans also go to nats-server (the telemetry stream) and to the receiver: their CPU is part of the cost.
    const shared = { nats: natsPid(harness), receiver: receiver.proc.pid };

    say(`tracing: 1 KB POST, ${settings.tracingRequests} per sampling rate in ${settings.sequentialBlocks} interleaved blocks`);
    const blockWarmup = { post: 50, mcp: 10 };
    const spansBeforePost = await settledSpanCount(receiver.proc);
    const postPaths = pairs.map((pair, i): InterleavedPath<LoadResult> => ({
      label: `sampling ${pair.rate}`,
      pids: { caller: pair.caller.proc.pid, callee: pair.app.proc.pid, ...shared },
      runBlock: (warmup, n, onMeasureStart) => runSequential(targets[i] as HttpTarget, body, { warmup, count: n, timeoutMs: settings.timeoutMs, onMeasureStart }),
    }));
    const postResults = await runInterleaved(postPaths, { count: settings.tracingRequests, blocks: settings.sequentialBlocks, warmup: settings.tracingWarmup, blockWarmup: blockWarmup.post, settleMs: SETTLE_MS });
    const spansAfterPost = await settledSpanCount(receiver.proc);

    say(`tracing: MCP tools/call through the whole chain, ${settings.mcpCount} per sampling rate in ${settings.sequentialBlocks} interleaved blocks`);
    const headers = { authorization: `Bearer ${await issuer.token('bench-analyst')}` };
    const clients = await Promise.all(pairs.map((pair) => connectMcp({ label: `sampling ${pair.rate}`, url: `${pair.caller.url}/v1.0/invoke/${pair.mcp.appId}/method/mcp`, headers })));
    let mcpResults: InterleavedResult<McpPhaseResult>[];
    try {
      const mcpPaths = pairs.map((pair, i): InterleavedPath<McpPhaseResult> => ({
        label: `sampling ${pair.rate}`,
        pids: { caller: pair.caller.proc.pid, callee: pair.mcp.proc.pid, ...shared },
        runBlock: (warmup, n, onMeasureStart) => callSequentially(clients[i] as Client, `sampling ${pair.rate}`, TOOL_CALL, { warmup, count: n, onMeasureStart }),
      }));
      mcpResults = await runInterleaved(mcpPaths, { count: settings.mcpCount, blocks: settings.sequentialBlocks, warmup: settings.mcpWarmup, blockWarmup: blockWarmup.mcp, settleMs: SETTLE_MS });
    } finally {
      await Promise.all(clients.map(disconnectMcp));
    }
    const spansAfterMcp = await settledSpanCount(receiver.proc);

    const sentThrough = (measured: number, warmup: number, perBlockWarmup: number): number => measured + warmup + perBlockWarmup * (settings.sequentialBlocks - 1);
    const postSent = sentThrough(Math.ceil(settings.tracingRequests / settings.sequentialBlocks) * settings.sequentialBlocks, settings.tracingWarmup, blockWarmup.post);
    const mcpSent = sentThrough(Math.ceil(settings.mcpCount / settings.sequentialBlocks) * settings.sequentialBlocks, settings.mcpWarmup, blockWarmup.mcp);
    const post = compare(postResults, mergeLoadResults, spansAfterPost - spansBeforePost, postSent);
    const mcp = compare(mcpResults, mcpOutcome, spansAfterMcp - spansAfterPost, mcpSent);

    const target = (what: string, comparisonOf: TracingComparison): Target => {
      const value = comparisonOf.sampled.latency.p50 / comparisonOf.unsampled.latency.p50;
      const clean = comparisonOf.sampled.errors === 0 && comparisonOf.unsampled.errors === 0;
      return { what, target: `≤ +${Math.round((MAX_P50_RATIO - 1) * 100)} % at p50`, measured: `${percent(value)} (${signedMs(comparisonOf.sampled.latency.p50 - comparisonOf.unsampled.latency.p50)} ms)`, met: clean && value <= MAX_P50_RATIO };
    };
    const logs: Record<string, LogSummary> = {};
    for (const pair of pairs) for (const sidecar of [pair.caller, pair.app, pair.mcp]) logs[`${sidecar.appId} sidecar`] = logSummary(sidecar.proc);
    return {
      post,
      mcp,
      targets: [target('tracing at sampling 1.0, 1 KB POST through 2 sidecars', post), target('tracing at sampling 1.0, MCP tools/call through the whole chain', mcp)],
      logs,
      elapsedSeconds: (performance.now() - began) / 1000,
    };
  } finally {
    await Promise.all(started.map((proc) => proc.stop()));
    await issuer.close();
  }
}

/** The processes whose CPU the table shows, in column order. */
const CPU_COLUMNS = ['caller', 'callee', 'nats', 'receiver'] as const;

/** A ratio as the share it adds: 1.07 → `+7.0 %`. */
function percent(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const added = (value - 1) * 100;
  return `${added >= 0 ? '+' : ''}${added.toFixed(1)} %`;
}

/** The part as Markdown. */
export function renderTracing(report: TracingReport, settings: Settings): string {
  const out: string[] = [];
  out.push('### Tracing: sampling 1.0 vs 0.0, sequential', '');
  out.push(
    `Two sidecar pairs in one run, each sidecar configured with \`spec.tracing\` and an OTLP/HTTP endpoint: a real receiver started by the benchmark (\`test/src/otlp-receiver.ts\`, in its own process). One pair samples everything (\`samplingRate: "1"\`), the other nothing (\`"0"\`). 1 KB POST: caller sidecar → mTLS → callee sidecar → the benchmark app, ${count(settings.tracingRequests)} requests per rate after ${count(settings.tracingWarmup)} warm-up. MCP: \`tools/call get_inventory\` with the official SDK client through the whole chain (App-ID access control, bearer JWT, tool policy), ${count(settings.mcpCount)} calls per rate after ${settings.mcpWarmup} warm-up. Both in ${settings.sequentialBlocks} interleaved blocks.`,
    '',
  );
  const row = (label: string, phase: SampledReport): string[] => [label, ms(phase.latency.p50), ms(phase.latency.p90), ms(phase.latency.p99), count(phase.ok), errors(phase.errors, phase.errorKinds), phase.requestsPerSecond.toFixed(0), ...CPU_COLUMNS.map((name) => count(phase.cpuMicrosPerRequest[name] ?? Number.NaN))];
  const rows = (name: string, comparison: TracingComparison): string[][] => {
    const { sampled, unsampled } = comparison;
    const cpu = (side: string): string => {
      const value = (sampled.cpuMicrosPerRequest[side] ?? Number.NaN) - (unsampled.cpuMicrosPerRequest[side] ?? Number.NaN);
      return Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${count(value)}` : 'n/a';
    };
    return [
      row(`${name}, sampling 0.0`, unsampled),
      row(`${name}, sampling 1.0`, sampled),
      [`${name}, added by tracing`, signedMs(sampled.latency.p50 - unsampled.latency.p50), signedMs(sampled.latency.p90 - unsampled.latency.p90), signedMs(sampled.latency.p99 - unsampled.latency.p99), '', '', '', ...CPU_COLUMNS.map(cpu)],
      [`${name}, ratio 1.0 ÷ 0.0`, ratio2(sampled.latency.p50 / unsampled.latency.p50), ratio2(sampled.latency.p90 / unsampled.latency.p90), ratio2(sampled.latency.p99 / unsampled.latency.p99), '', '', '', ...CPU_COLUMNS.map(() => '')],
    ];
  };
  out.push(
    markdownTable(['request', 'p50 ms', 'p90 ms', 'p99 ms', 'ok', 'errors', 'req/s', 'CPU µs/req caller sidecar', 'CPU µs/req callee sidecar', 'CPU µs/req nats-server', 'CPU µs/req OTLP receiver'], [...rows('1 KB POST', report.post), ...rows('MCP tools/call', report.mcp)]),
    '',
  );
  out.push(
    `Spans the receiver got per request sent through the sampled pair (warm-up included): 1 KB POST ${report.post.spansPerRequest.toFixed(2)}, MCP tools/call ${report.mcp.spansPerRequest.toFixed(2)} (the MCP figure includes the session's handshake requests). The unsampled pair exports none. Sampled spans go both to the OTLP receiver and, through nats-server, to the file-backed telemetry stream, so both processes' CPU is shown. After each block the run pauses ${SETTLE_MS} ms so the block's last span batch is exported (and its CPU counted) before the next block; CPU per request runs from a block's first measured request to the end of that pause, so it includes a little idle time.`,
    '',
  );
  out.push(...logLines(report.logs).flatMap((line) => [line, '']));
  out.push('Targets (issue 5):', '');
  out.push(targetsTable(report.targets), '');
  return out.join('\n');
}

/** A ratio with two decimals, as small differences are the point here: `×1.07`. */
function ratio2(value: number): string {
  return Number.isFinite(value) ? `×${value.toFixed(2)}` : ratio(value);
}
