#!/usr/bin/env node
/**
 * `npm run bench`: three parts, each comparing paths measured in the same run, printed as Markdown tables and written
 * as JSON to bench-results/. It reports; it asserts nothing.
 *
 * - `invoke`: the same 1 KB POST sent directly to an app and through two sidecars (caller sidecar → mTLS gRPC →
 *   callee sidecar → app), sequentially and open-loop at a fixed rate; sidecar memory and CPU; an MCP baseline with
 *   the official SDK client; optionally (`--profile`) a CPU profile of both sidecars under the open-loop load.
 * - `mcp-chain`: MCP `tools/call` direct, through the mesh only, and through the whole governance chain, sequentially
 *   and at several client counts; with `--profile`, CPU profiles of a governed and an ungoverned callee (mcp-chain.ts).
 * - `tracing`: the 1 KB POST and MCP `tools/call` with tracing sampling 1.0 vs 0.0 (tracing-overhead.ts).
 * - `workflows` (opt-in): Dapr SDK workflows through a sidecar against the raw JetStream floor (workflows.ts).
 * - `mcpserver` (opt-in): MCP tool calls as MCPServer CallTool workflows against the SDK calling the server (mcpserver.ts).
 * - `editor` (opt-in): the VS Code extension's view models with 10,000 spans and 1,000 workflow instances (editor.ts).
 * - `actors` (opt-in, not in the default run): actor calls and activation through the sidecars, reminders fired per
 *   second, placement table computation, dissemination to many simulated hosts, ring lookup cost (actors.ts).
 *
 * Flags: --only <part,...> (default: invoke, mcp-chain, tracing), --hosts <n1,n2,...> (actors: simulated host counts), --quick (short phases), --profile, --requests <n> (sequential
 * POSTs per path), --calls <n> (sequential MCP calls per path), --clients <c1,c2,...> (mcp-chain throughput); for
 * the invoke part: --no-mcp, --rate <req/s>, --duration <s>, --connections <n>, --also-rates <r1,r2,...> (more
 * open-loop rates, for the knee).
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Harness, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { mergeLoadResults, oneKilobyteBody, runOpenLoop, runSequential, waitForPath, type HttpTarget, type LoadResult, type OpenLoopOptions } from './load.js';
import { mcpReportOf, runMcpConcurrent, runMcpSequential, startMcpServer, type McpReport, type ToolCall } from './mcp.js';
import { renderMcpChain, runMcpChain, type ChainReport } from './mcp-chain.js';
import { cpuTimeOf, memoryOf, ResourceSampler, type Memory, type ProcessUsage } from './resources.js';
import { summarise, overhead, type LatencySummary, type Overhead } from './stats.js';
import { formatProfileSummary, monotonicMicros, readProfile, summariseProfile, type ProfileSummary } from './profile.js';
import { markdownTable, ms, signedMs, ratio, mib, count, errors, say, targetsTable, type Target } from './report.js';
import { readSettings, type Settings } from './settings.js';
import { logSummary, type LogSummary } from './sidecar-log.js';
import { renderTracing, runTracing, type TracingReport } from './tracing-overhead.js';
import { renderActors, runActors, type ActorsReport } from './actors.js';
import { startFloor, type FloorHop } from './floor.js';
import { renderWorkflows, runWorkflows, type WorkflowsReport } from './workflows.js';
import { renderMcpServer, runMcpServer, type McpServerReport } from './mcpserver.js';
import { renderEditor, runEditor, type EditorReport } from './editor.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RESULTS_DIR = join(REPO_ROOT, 'bench-results');
const APP_ID = 'bench';
const CALLER_APP_ID = 'bench-caller';
const MCP_APP_ID = 'inventory';
const METHOD = 'orders';
const TOOL_CALL: ToolCall = { name: 'get_inventory', arguments: {} };

/** The targets of issue 2, checked against the open-loop phase; CPU per request is relative to the floor pair's. */
const TARGETS = { addedP50Ms: 0.6, addedP99Ms: 2, sidecarRssMiB: 80, cpuPerRequestVersusFloor: 1.25 };
/** The floor's hop: HTTP/2, the protocol of the sidecars' own internal hop. */
const FLOOR_HOP: FloorHop = 'h2';

/** A load phase reduced to what the report and the JSON keep. */
interface PhaseReport {
  latency: LatencySummary;
  serviceTime: LatencySummary;
  scheduled: number;
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  achievedRate: number;
  targetRate?: number;
  peakInFlight: number;
}

function reportOf(result: LoadResult): PhaseReport {
  return {
    latency: summarise(result.latencies),
    serviceTime: summarise(result.serviceTimes),
    scheduled: result.scheduled,
    ok: result.ok,
    errors: result.errors,
    errorKinds: result.errorKinds,
    achievedRate: result.achievedRate,
    ...(result.targetRate === undefined ? {} : { targetRate: result.targetRate }),
    peakInFlight: result.peakInFlight,
  };
}

/** Direct and mesh results of one mode, and the difference. */
interface Comparison {
  direct: PhaseReport;
  mesh: PhaseReport;
  added: Overhead;
}

function compare(direct: LoadResult, mesh: LoadResult): Comparison {
  const d = reportOf(direct);
  const m = reportOf(mesh);
  return { direct: d, mesh: m, added: overhead(d.latency, m.latency) };
}

/** Resource use during an open-loop phase. */
interface UsageReport {
  processes: Record<string, ProcessUsage>;
  /** CPU the load generator (this process) used, in cores. */
  generatorCores: number;
  /** How busy the whole machine was, in cores, including processes that are not part of the benchmark. */
  machineBusyCores: number;
}

/**
 * Open-loop options from the settings. The in-flight cap is far above what a healthy path at these rates needs,
 * so it only stops a stalled target from making the generator hoard sockets and memory.
 */
function openLoopOptions(settings: Settings): Omit<OpenLoopOptions, 'durationMs'> {
  return { rate: settings.rate, connections: settings.connections, timeoutMs: settings.timeoutMs, maxInFlight: 2000, drainMs: settings.timeoutMs };
}

/** Runs a discarded warm-up at the rate, then the measured phase with resources sampled. */
async function openLoopPhase(target: HttpTarget, body: Buffer, settings: Settings, pids: Record<string, number>): Promise<{ result: LoadResult; usage: UsageReport }> {
  const options = openLoopOptions(settings);
  await runOpenLoop(target, body, { ...options, durationMs: settings.openLoopWarmupMs });
  const sampler = new ResourceSampler(pids);
  const cpuBefore = process.cpuUsage();
  const began = performance.now();
  const result = await runOpenLoop(target, body, { ...options, durationMs: settings.durationMs });
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = performance.now() - began;
  const seen = sampler.stop();
  return { result, usage: { processes: seen.processes, generatorCores: (cpu.user + cpu.system) / 1000 / wallMs, machineBusyCores: seen.machineBusyCores } };
}

async function startPair(harness: Harness, app: AppHandle, appId: string, callerAppId: string): Promise<{ callee: SidecarHandle; caller: SidecarHandle }> {
  const [callee, caller] = await Promise.all([harness.sidecar({ appId, appPort: app.port }), harness.sidecar({ appId: callerAppId })]);
  return { callee, caller };
}

/** The profiled run: fresh sidecars under `--cpu-prof`, the same open-loop load, profiles cut to the load window. */
interface ProfileReport {
  load: PhaseReport;
  caller: ProfileSummary;
  callee: ProfileSummary;
  files: { caller: string; callee: string };
}

async function profilePhase(harness: Harness, app: AppHandle, body: Buffer, settings: Settings, stamp: string): Promise<ProfileReport> {
  const dirs = { caller: harness.dir('cpu-prof-caller'), callee: harness.dir('cpu-prof-callee') };
  const appId = `${APP_ID}-profiled`;
  // Node refuses --cpu-prof in NODE_OPTIONS, so it goes on the sidecar's command line.
  const profiling = (dir: string): string[] => ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const [callee, caller] = await Promise.all([
    harness.sidecar({ appId, appPort: app.port, nodeArgs: profiling(dirs.callee) }),
    harness.sidecar({ appId: `${CALLER_APP_ID}-profiled`, nodeArgs: profiling(dirs.caller) }),
  ]);
  const target: HttpTarget = { label: 'mesh (profiled)', host: '127.0.0.1', port: caller.httpPort, path: `/v1.0/invoke/${appId}/method/${METHOD}` };
  await waitForPath(target, body);
  await runSequential(target, body, { warmup: settings.sequentialWarmup, count: 0, timeoutMs: settings.timeoutMs });
  const options = openLoopOptions(settings);
  await runOpenLoop(target, body, { ...options, durationMs: settings.openLoopWarmupMs });
  const fromMicros = monotonicMicros();
  const result = await runOpenLoop(target, body, { ...options, durationMs: settings.durationMs });
  const toMicros = monotonicMicros();
  // The profile is written when the process exits normally; SIGTERM makes the sidecar shut down and exit.
  await Promise.all([caller.proc.stop(30_000), callee.proc.stop(30_000)]);
  const profileDir = join(RESULTS_DIR, 'profiles');
  mkdirSync(profileDir, { recursive: true });
  const summaries: Partial<Record<'caller' | 'callee', ProfileSummary>> = {};
  const files: Partial<Record<'caller' | 'callee', string>> = {};
  for (const side of ['caller', 'callee'] as const) {
    const file = readdirSync(dirs[side]).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the ${side} sidecar wrote no CPU profile into ${dirs[side]}`);
    const kept = join(profileDir, `${stamp}-${side}.cpuprofile`);
    copyFileSync(join(dirs[side], file), kept);
    const profile = readProfile(kept);
    // Both clocks are the system's monotonic clock; if that ever stops being true, summarise everything and say so.
    const overlaps = fromMicros < profile.endTime && toMicros > profile.startTime;
    if (!overlaps) say(`the ${side} profile (${profile.startTime}–${profile.endTime} µs) does not cover the load window; summarising the whole profile`);
    summaries[side] = summariseProfile(profile, overlaps ? { fromMicros, toMicros } : undefined, 40);
    files[side] = kept;
  }
  return { load: reportOf(result), caller: summaries.caller as ProfileSummary, callee: summaries.callee as ProfileSummary, files: { caller: files.caller as string, callee: files.callee as string } };
}

/**
 * The floor pair beside the sidecars: the same requests through a minimal plain-Node pass-through pair with one
 * mutual-TLS hop, and the sidecars' numbers as ratios to it.
 */
interface FloorReport {
  hop: FloorHop;
  /** Direct vs floor, sequential and open loop (the direct phases are the same as the sidecars' comparison). */
  sequential: Comparison;
  openLoop: Comparison & { usage: UsageReport };
  /** CPU time per request of the floor's caller and callee, in microseconds, all threads. */
  cpuPerRequestMicros: { sequential: Record<string, number>; openLoop: Record<string, number> };
  /** Sidecars ÷ floor: added latency at p50 and p99, and CPU per request of each side. */
  versusFloor: { sequential: FloorRatios; openLoop: FloorRatios };
}

/** What the sidecars cost as multiples of what the floor costs. */
interface FloorRatios {
  addedP50: number;
  addedP99: number;
  cpuPerRequest: Record<string, number>;
}

function floorRatios(mesh: Comparison, floor: Comparison, meshCpu: Record<string, number>, floorCpu: Record<string, number>): FloorRatios {
  return {
    addedP50: mesh.added.p50 / floor.added.p50,
    addedP99: mesh.added.p99 / floor.added.p99,
    cpuPerRequest: Object.fromEntries(['caller', 'callee'].map((side) => [side, (meshCpu[side] ?? Number.NaN) / (floorCpu[side] ?? Number.NaN)])),
  };
}

/** What the invoke part measured. */
interface InvokeReport {
  bodyBytes: number;
  sequential: Comparison;
  floor: FloorReport;
  openLoop: Comparison & { usage: { direct: UsageReport; mesh: UsageReport } };
  memory: { idle: Record<string, Memory>; afterLoad: Record<string, Memory> };
  /** Sidecar CPU time per mesh request, in microseconds, all threads: sequential (no queueing) and open loop. */
  cpuPerRequestMicros: { sequential: Record<string, number>; openLoop: Record<string, number> };
  /** Warnings and errors the sidecars logged during the run (none are expected). */
  sidecarLog: Record<string, LogSummary>;
  mcp?: {
    sequential: { direct: McpReport; mesh: McpReport };
    concurrent: { direct: McpReport; mesh: McpReport };
    /** CPU per call of the caller sidecar, the MCP server's sidecar and the MCP server, in the concurrent mesh phase. */
    meshCpuPerCallMicros: Record<string, number>;
  };
  targets: Target[];
  profile?: ProfileReport;
  /** Open loop at the `--also-rates`, same method as the main phase. */
  sweep: SweepRow[];
  elapsedSeconds: number;
}

/** Everything one run measured; written as JSON. A part left out by `--only` is absent. */
interface BenchReport {
  startedAt: string;
  command: string;
  machine: { node: string; cpus: number; cpuModel: string; kernel: string; memoryGiB: number; loadAverageStart: number[]; loadAverageEnd: number[] };
  /** The commit the run measured, and how many files differed from it: numbers from a modified tree are not that commit's. */
  revision: { commit: string; modifiedFiles: number };
  settings: Settings;
  invoke?: InvokeReport;
  mcpChain?: ChainReport;
  tracing?: TracingReport;
  actors?: ActorsReport;
  workflows?: WorkflowsReport;
  mcpServer?: McpServerReport;
  editor?: EditorReport;
  elapsedSeconds: number;
}

/** One rate of the sweep. */
interface SweepRow {
  rate: number;
  comparison: Comparison;
  usage: UsageReport;
}

function latencyTable(comparison: Comparison, withRate: boolean): string {
  const header = ['path', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'ok', 'errors', ...(withRate ? ['achieved req/s'] : ['req/s'])];
  const row = (label: string, phase: PhaseReport): string[] => [label, ms(phase.latency.p50), ms(phase.latency.p90), ms(phase.latency.p99), ms(phase.latency.max), count(phase.ok), errors(phase.errors, phase.errorKinds), phase.achievedRate.toFixed(0)];
  const { added } = comparison;
  return markdownTable(header, [
    row('direct to app', comparison.direct),
    row('through 2 sidecars', comparison.mesh),
    ['added by the sidecars', signedMs(added.p50), signedMs(added.p90), signedMs(added.p99), signedMs(added.max), '', '', ''],
    ['ratio mesh ÷ direct', ratio(added.ratioP50), ratio(comparison.mesh.latency.p90 / comparison.direct.latency.p90), ratio(added.ratioP99), '', '', '', ''],
  ]);
}

/** The floor pair beside direct and the sidecars, and the sidecars as multiples of the floor. */
function renderFloor(report: InvokeReport): string {
  const { floor } = report;
  const pair = (phase: PhaseReport): string => `${ms(phase.latency.p50)} / ${ms(phase.latency.p99)}`;
  const added = (comparison: Comparison): string => `${signedMs(comparison.added.p50)} / ${signedMs(comparison.added.p99)}`;
  const cpu = (values: Record<string, number>): string => `${(values['caller'] ?? Number.NaN).toFixed(0)} / ${(values['callee'] ?? Number.NaN).toFixed(0)}`;
  const times = (ratios: FloorRatios): string => `${ratio(ratios.addedP50)} / ${ratio(ratios.addedP99)}`;
  const cpuTimes = (ratios: FloorRatios): string => `×${(ratios.cpuPerRequest['caller'] ?? Number.NaN).toFixed(2)} / ×${(ratios.cpuPerRequest['callee'] ?? Number.NaN).toFixed(2)}`;
  const out: string[] = [];
  out.push(`### Against the floor: a plain-Node pass-through pair with one mutual-TLS ${floor.hop === 'h2' ? 'HTTP/2' : 'HTTPS/1.1'} hop`, '');
  out.push('Same requests, same run, same client code: HTTP/1.1 in → one mutual-TLS hop → HTTP/1.1 keep-alive to the same app, no policy, no tracing, no discovery (`test/src/apps/floor-proxy.ts`). The ratios row divides what the sidecars add over direct by what the floor adds, and each sidecar\'s CPU per request by its floor counterpart\'s.', '');
  out.push(
    markdownTable(['path', 'sequential p50 / p99 ms', 'added, sequential', 'open loop p50 / p99 ms', 'added, open loop', 'CPU µs/req caller / callee, sequential', 'CPU µs/req caller / callee, open loop', 'open-loop errors'], [
      ['direct to app', pair(report.sequential.direct), '', pair(report.openLoop.direct), '', '', '', errors(report.openLoop.direct.errors, report.openLoop.direct.errorKinds)],
      ['floor pair', pair(floor.sequential.mesh), added(floor.sequential), pair(floor.openLoop.mesh), added(floor.openLoop), cpu(floor.cpuPerRequestMicros.sequential), cpu(floor.cpuPerRequestMicros.openLoop), errors(floor.openLoop.mesh.errors, floor.openLoop.mesh.errorKinds)],
      ['through 2 sidecars', pair(report.sequential.mesh), added(report.sequential), pair(report.openLoop.mesh), added(report.openLoop), cpu(report.cpuPerRequestMicros.sequential), cpu(report.cpuPerRequestMicros.openLoop), errors(report.openLoop.mesh.errors, report.openLoop.mesh.errorKinds)],
      ['sidecars ÷ floor', '', times(floor.versusFloor.sequential), '', times(floor.versusFloor.openLoop), cpuTimes(floor.versusFloor.sequential), cpuTimes(floor.versusFloor.openLoop), ''],
    ]),
    '',
  );
  return out.join('\n');
}

function renderInvoke(report: InvokeReport, settings: Settings): string {
  const { sequential, openLoop, memory } = report;
  const out: string[] = [];
  out.push(`Request: POST of a ${report.bodyBytes}-byte JSON body; the app answers 200 with a ~30-byte JSON body. Mesh path: client → caller sidecar HTTP API (\`/v1.0/invoke/${APP_ID}/method/${METHOD}\`) → gRPC over mTLS → callee sidecar → app, all on loopback.`, '');
  out.push(`### Sequential: one request at a time on one keep-alive connection`, '');
  out.push(`${count(settings.sequentialCount)} requests per path after ${count(settings.sequentialWarmup)} warm-up, in ${settings.sequentialBlocks} alternating direct/mesh blocks.`, '');
  out.push(latencyTable(sequential, false), '');
  out.push(`### Open loop: ${count(settings.rate)} requests/s for ${settings.durationMs / 1000} s`, '');
  out.push(`Sends scheduled by the clock on up to ${settings.connections} keep-alive connections; latency is measured from each request's scheduled send time, so queueing behind slow requests counts. ${settings.openLoopWarmupMs / 1000} s of discarded warm-up at the same rate before each path.`, '');
  out.push(latencyTable(openLoop, true), '');
  out.push(
    `Service time (from the actual send, generator lag excluded): direct p50 ${ms(openLoop.direct.serviceTime.p50)} / p99 ${ms(openLoop.direct.serviceTime.p99)} ms; mesh p50 ${ms(openLoop.mesh.serviceTime.p50)} / p99 ${ms(openLoop.mesh.serviceTime.p99)} ms. Peak requests in flight: direct ${openLoop.direct.peakInFlight}, mesh ${openLoop.mesh.peakInFlight}.`,
    '',
  );
  out.push(renderFloor(report));
  const usage = openLoop.usage.mesh.processes;
  const perRequest = report.cpuPerRequestMicros;
  const micros = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '' : value.toFixed(0));
  const memoryRows = ['caller', 'callee'].map((side) => [
    `${side} sidecar`,
    mib(memory.idle[side]?.rss ?? Number.NaN),
    mib(usage[side]?.peakRss ?? Number.NaN),
    mib(memory.afterLoad[side]?.rss ?? Number.NaN),
    mib(memory.afterLoad[side]?.hwm ?? Number.NaN),
    (usage[side]?.cpuCores ?? Number.NaN).toFixed(2),
    micros(perRequest.openLoop[side]),
    micros(perRequest.sequential[side]),
  ]);
  out.push('### Sidecar memory and CPU', '');
  out.push(
    markdownTable(['process', 'idle RSS MiB', 'peak RSS under load MiB', 'RSS after load MiB', 'VmHWM MiB', 'CPU under load (cores)', 'CPU µs/request (open loop)', 'CPU µs/request (sequential)'], [
      ...memoryRows,
      ['app', '', mib(usage['app']?.peakRss ?? Number.NaN), '', '', (usage['app']?.cpuCores ?? Number.NaN).toFixed(2), micros(perRequest.openLoop['app']), ''],
      ['load generator', '', '', '', '', openLoop.usage.mesh.generatorCores.toFixed(2), '', ''],
      ['whole machine, mesh phase', '', '', '', '', openLoop.usage.mesh.machineBusyCores.toFixed(2), '', ''],
      ['whole machine, direct phase', '', '', '', '', openLoop.usage.direct.machineBusyCores.toFixed(2), '', ''],
    ]),
    '',
  );
  out.push(
    'Idle = after both sidecars reported ready, before any request. Peak under load = highest VmRSS sampled every 100 ms during the measured mesh open-loop phase. VmHWM = the highest RSS of the process over its life. CPU = user + system time of all the process\'s threads ÷ wall time; per request = that time ÷ requests handled. "Whole machine" counts every process on it, including processes outside the benchmark: a value near the core count means the run competed for CPU.',
    '',
  );
  const logged = Object.entries(report.sidecarLog).filter(([, log]) => log.warnings + log.errors > 0);
  for (const [side, log] of logged) out.push(`The ${side} sidecar logged ${log.warnings} warning(s) and ${log.errors} error(s); first: ${log.first ?? ''}.`, '');
  if (report.sweep.length > 0) {
    out.push(`### Open loop at other rates (${settings.durationMs / 1000} s each, same method)`, '');
    const rows = [...report.sweep, { rate: settings.rate, comparison: openLoop, usage: openLoop.usage.mesh }]
      .sort((a, b) => a.rate - b.rate)
      .map(({ rate, comparison, usage: phase }) => [
        count(rate),
        `${ms(comparison.direct.latency.p50)} / ${ms(comparison.direct.latency.p99)}`,
        `${ms(comparison.mesh.latency.p50)} / ${ms(comparison.mesh.latency.p99)}`,
        `${signedMs(comparison.added.p50)} / ${signedMs(comparison.added.p99)}`,
        comparison.mesh.achievedRate.toFixed(0),
        errors(comparison.mesh.errors, comparison.mesh.errorKinds),
        `${(phase.processes['caller']?.cpuCores ?? Number.NaN).toFixed(2)} / ${(phase.processes['callee']?.cpuCores ?? Number.NaN).toFixed(2)}`,
        `${mib(phase.processes['caller']?.peakRss ?? Number.NaN)} / ${mib(phase.processes['callee']?.peakRss ?? Number.NaN)}`,
        phase.machineBusyCores.toFixed(2),
      ]);
    out.push(
      markdownTable(['req/s', 'direct p50 / p99 ms', 'mesh p50 / p99 ms', 'added p50 / p99 ms', 'mesh achieved req/s', 'mesh errors', 'CPU caller / callee (cores)', 'peak RSS caller / callee MiB', 'machine busy (cores)'], rows),
      '',
    );
  }
  if (report.mcp) {
    const { sequential: seq, concurrent: conc } = report.mcp;
    const row = (label: string, phase: McpReport): string[] => [label, String(phase.clients), ms(phase.latency.p50), ms(phase.latency.p90), ms(phase.latency.p99), count(phase.ok), phase.errors ? `${phase.errors} (${phase.firstError ?? ''})` : '0', phase.callsPerSecond.toFixed(0)];
    out.push(`### MCP: \`tools/call ${TOOL_CALL.name}\` with the official SDK client (streamable HTTP, sample MCP server)`, '');
    out.push(`Sequential: ${count(settings.mcpCount)} calls after ${settings.mcpWarmup} warm-up on one session. Concurrent: ${settings.mcpClients} clients (one session each) calling in a closed loop for ${settings.mcpDurationMs / 1000} s.`, '');
    out.push(
      markdownTable(['path', 'clients', 'p50 ms', 'p90 ms', 'p99 ms', 'calls', 'errors', 'calls/s'], [
        row('direct, sequential', seq.direct),
        row('through 2 sidecars, sequential', seq.mesh),
        ['added, sequential', '', signedMs(seq.mesh.latency.p50 - seq.direct.latency.p50), signedMs(seq.mesh.latency.p90 - seq.direct.latency.p90), signedMs(seq.mesh.latency.p99 - seq.direct.latency.p99), '', '', ''],
        row(`direct, ${settings.mcpClients} clients`, conc.direct),
        row(`through 2 sidecars, ${settings.mcpClients} clients`, conc.mesh),
      ]),
      '',
    );
    const perCall = report.mcp.meshCpuPerCallMicros;
    out.push(`CPU per call through the sidecars (${settings.mcpClients} clients): caller sidecar ${micros(perCall['caller'])} µs, MCP server's sidecar ${micros(perCall['callee'])} µs, MCP server ${micros(perCall['server'])} µs.`, '');
  }
  out.push('### Targets (issue 2, on this 2-core machine, at the fixed rate)', '');
  out.push(targetsTable(report.targets), '');
  out.push('For context, Dapr 1.17 (published, not measured here): 1 KB at 1,000 rps, the two sidecars add 1.06 / 1.48 / 2.90 ms at p50 / p90 / p99; sidecar ~51 MB.', '');
  if (report.profile) {
    const { profile } = report;
    out.push(`### CPU profile of both sidecars under the open-loop load (separate run under \`--cpu-prof\`)`, '');
    out.push(`Latency while profiled (mesh, for reference only): p50 ${ms(profile.load.latency.p50)} / p90 ${ms(profile.load.latency.p90)} / p99 ${ms(profile.load.latency.p99)} ms, ${errors(profile.load.errors, profile.load.errorKinds)} errors, ${profile.load.achievedRate.toFixed(0)} req/s. Profiles: ${relative(REPO_ROOT, profile.files.caller)}, ${relative(REPO_ROOT, profile.files.callee)}.`, '');
    out.push(formatProfileSummary('Caller sidecar', profile.caller, { areas: 14, files: 12, functions: 25, skein: 10 }));
    out.push(formatProfileSummary('Callee sidecar', profile.callee, { areas: 14, files: 12, functions: 25, skein: 10 }));
  }
  return out.join('\n');
}

/** Runs the invoke part; stops every process it started before returning. */
async function runInvoke(harness: Harness, settings: Settings, body: Buffer, stamp: string): Promise<InvokeReport> {
  const began = performance.now();
  say('invoke: starting the app and two sidecars');
  const app = await harness.app('bench-app');
  const { callee, caller } = await startPair(harness, app, APP_ID, CALLER_APP_ID);
  say(`invoke: starting the floor pair (plain Node, one mutual-TLS ${FLOOR_HOP} hop)`);
  const floorPair = await startFloor(harness, app.port, FLOOR_HOP);
  const started = [app.proc, callee.proc, caller.proc, floorPair.caller.proc, floorPair.callee.proc];
  const idle = { caller: memoryOf(caller.proc.pid), callee: memoryOf(callee.proc.pid) };
  const direct: HttpTarget = { label: 'direct', host: '127.0.0.1', port: app.port, path: `/${METHOD}` };
  const floor: HttpTarget = { label: 'floor', host: '127.0.0.1', port: floorPair.caller.port, path: `/${METHOD}` };
  const mesh: HttpTarget = { label: 'mesh', host: '127.0.0.1', port: caller.httpPort, path: `/v1.0/invoke/${APP_ID}/method/${METHOD}` };
  await waitForPath(direct, body);
  await waitForPath(floor, body);
  await waitForPath(mesh, body);

  say(`sequential: ${settings.sequentialCount} requests per path`);
  const blockCount = Math.ceil(settings.sequentialCount / settings.sequentialBlocks);
  const sequentialOptions = { count: blockCount, timeoutMs: settings.timeoutMs };
  const blocks: { direct: LoadResult[]; floor: LoadResult[]; mesh: LoadResult[] } = { direct: [], floor: [], mesh: [] };
  /** Runs one sequential block through a pair, adding the CPU both of its processes spent on the measured part. */
  const pairBlock = async (target: HttpTarget, pids: { caller: number; callee: number }, warmup: number, spent: { caller: number; callee: number; requests: number }): Promise<LoadResult> => {
    const before = { caller: 0, callee: 0 };
    const onMeasureStart = (): void => {
      before.caller = cpuTimeOf(pids.caller);
      before.callee = cpuTimeOf(pids.callee);
    };
    const result = await runSequential(target, body, { ...sequentialOptions, warmup, onMeasureStart });
    spent.caller += cpuTimeOf(pids.caller) - before.caller;
    spent.callee += cpuTimeOf(pids.callee) - before.callee;
    spent.requests += blockCount;
    return result;
  };
  const sidecarPids = { caller: caller.proc.pid, callee: callee.proc.pid };
  const floorPids = { caller: floorPair.caller.proc.pid, callee: floorPair.callee.proc.pid };
  const sequentialCpu = { caller: 0, callee: 0, requests: 0 };
  const floorSequentialCpu = { caller: 0, callee: 0, requests: 0 };
  for (let block = 0; block < settings.sequentialBlocks; block++) {
    const warmup = block === 0 ? settings.sequentialWarmup : 50;
    blocks.direct.push(await runSequential(direct, body, { ...sequentialOptions, warmup }));
    blocks.floor.push(await pairBlock(floor, floorPids, warmup, floorSequentialCpu));
    blocks.mesh.push(await pairBlock(mesh, sidecarPids, warmup, sequentialCpu));
  }
  const mergedDirect = mergeLoadResults(blocks.direct);
  const sequential = compare(mergedDirect, mergeLoadResults(blocks.mesh));
  const floorSequential = compare(mergedDirect, mergeLoadResults(blocks.floor));
  const perRequest = (spent: { caller: number; callee: number; requests: number }): Record<string, number> => ({ caller: (spent.caller * 1000) / spent.requests, callee: (spent.callee * 1000) / spent.requests });
  const cpuPerRequest = { sequential: perRequest(sequentialCpu) };
  const floorCpuSequential = perRequest(floorSequentialCpu);

  const pids = { caller: caller.proc.pid, callee: callee.proc.pid, app: app.proc.pid };
  // The sweep climbs: V8 keeps the heap it grew, so a lower rate after a higher one would report the higher one's RSS.
  const sweep: SweepRow[] = [];
  const sweepAt = async (rate: number): Promise<void> => {
    say(`open loop: ${rate} req/s for ${settings.durationMs / 1000} s, direct and through the sidecars`);
    const atRate = { ...settings, rate };
    const sweepDirect = await openLoopPhase(direct, body, atRate, pids);
    const sweepMesh = await openLoopPhase(mesh, body, atRate, pids);
    sweep.push({ rate, comparison: compare(sweepDirect.result, sweepMesh.result), usage: sweepMesh.usage });
  };
  for (const rate of settings.alsoRates.filter((rate) => rate < settings.rate).sort((a, b) => a - b)) await sweepAt(rate);
  say(`open loop: ${settings.rate} req/s for ${settings.durationMs / 1000} s, direct`);
  const openDirect = await openLoopPhase(direct, body, settings, pids);
  say(`open loop: ${settings.rate} req/s for ${settings.durationMs / 1000} s, through the floor pair`);
  const openFloor = await openLoopPhase(floor, body, settings, { caller: floorPids.caller, callee: floorPids.callee, app: app.proc.pid });
  say(`open loop: ${settings.rate} req/s for ${settings.durationMs / 1000} s, through the sidecars`);
  const openMesh = await openLoopPhase(mesh, body, settings, pids);
  const openLoop = { ...compare(openDirect.result, openMesh.result), usage: { direct: openDirect.usage, mesh: openMesh.usage } };
  const floorOpenLoop = { ...compare(openDirect.result, openFloor.result), usage: openFloor.usage };
  // Let in-flight work and short-lived buffers settle before reading the resident size after load.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const afterLoad = { caller: memoryOf(caller.proc.pid), callee: memoryOf(callee.proc.pid) };

  for (const rate of settings.alsoRates.filter((rate) => rate > settings.rate).sort((a, b) => a - b)) await sweepAt(rate);

  let mcp: InvokeReport['mcp'];
  if (settings.mcp) {
    say('MCP: starting the sample MCP server beside its own sidecar');
    const { proc: server, port: serverPort } = await startMcpServer(harness);
    const mcpSidecar = await harness.sidecar({ appId: MCP_APP_ID, appPort: serverPort });
    started.push(server, mcpSidecar.proc);
    const directMcp = { label: 'direct', url: `http://127.0.0.1:${serverPort}/mcp` };
    const meshMcp = { label: 'mesh', url: `${caller.url}/v1.0/invoke/${MCP_APP_ID}/method/mcp` };
    say('MCP: sequential tools/call');
    const seqOptions = { warmup: settings.mcpWarmup, count: settings.mcpCount };
    const seqDirect = await runMcpSequential(directMcp, TOOL_CALL, seqOptions);
    const seqMesh = await runMcpSequential(meshMcp, TOOL_CALL, seqOptions);
    say(`MCP: ${settings.mcpClients} concurrent clients`);
    const concOptions = { clients: settings.mcpClients, warmup: settings.mcpWarmup / 4, durationMs: settings.mcpDurationMs };
    const concDirect = await runMcpConcurrent(directMcp, TOOL_CALL, concOptions);
    const sampler = new ResourceSampler({ caller: caller.proc.pid, callee: mcpSidecar.proc.pid, server: server.pid });
    const concMesh = await runMcpConcurrent(meshMcp, TOOL_CALL, concOptions);
    const used = sampler.stop().processes;
    const calls = Math.max(1, concMesh.ok + concMesh.errors);
    mcp = {
      sequential: { direct: mcpReportOf(seqDirect), mesh: mcpReportOf(seqMesh) },
      concurrent: { direct: mcpReportOf(concDirect), mesh: mcpReportOf(concMesh) },
      meshCpuPerCallMicros: Object.fromEntries(Object.entries(used).map(([name, usage]) => [name, (usage.cpuMs * 1000) / calls])),
    };
  }

  let profile: ProfileReport | undefined;
  if (settings.profile) {
    // The measured sidecars are done; stopping them keeps their timers out of the profiled run's machine.
    await Promise.all([caller.proc.stop(), callee.proc.stop()]);
    say(`profile: fresh sidecars under --cpu-prof, ${settings.rate} req/s for ${settings.durationMs / 1000} s`);
    profile = await profilePhase(harness, app, body, settings, stamp);
  }

  const peakRss = Math.max(openMesh.usage.processes['caller']?.peakRss ?? Number.NaN, openMesh.usage.processes['callee']?.peakRss ?? Number.NaN);
  const cleanRun = openLoop.mesh.errors === 0 && openLoop.direct.errors === 0;
  const openLoopCpu = (usage: UsageReport, handled: number): Record<string, number> => Object.fromEntries(Object.entries(usage.processes).map(([name, used]) => [name, (used.cpuMs * 1000) / Math.max(1, handled)]));
  // Requests the generator never sent (over its in-flight cap) cost the pair nothing: they are not in the divisor.
  const sent = (phase: PhaseReport): number => phase.ok + phase.errors - (phase.errorKinds['in-flight cap'] ?? 0);
  const meshCpuOpenLoop = openLoopCpu(openMesh.usage, sent(openLoop.mesh));
  const floorCpuOpenLoop = openLoopCpu(openFloor.usage, sent(floorOpenLoop.mesh));
  const floorReport: FloorReport = {
    hop: FLOOR_HOP,
    sequential: floorSequential,
    openLoop: floorOpenLoop,
    cpuPerRequestMicros: { sequential: floorCpuSequential, openLoop: floorCpuOpenLoop },
    versusFloor: {
      sequential: floorRatios(sequential, floorSequential, cpuPerRequest.sequential, floorCpuSequential),
      openLoop: floorRatios(openLoop, floorOpenLoop, meshCpuOpenLoop, floorCpuOpenLoop),
    },
  };
  const targets = [
    { what: `added latency p50 at ${settings.rate} req/s`, target: `≤ ${TARGETS.addedP50Ms} ms`, measured: `${ms(openLoop.added.p50)} ms`, met: cleanRun && openLoop.added.p50 <= TARGETS.addedP50Ms },
    { what: `added latency p99 at ${settings.rate} req/s`, target: `≤ ${TARGETS.addedP99Ms} ms`, measured: `${ms(openLoop.added.p99)} ms`, met: cleanRun && openLoop.added.p99 <= TARGETS.addedP99Ms },
    { what: 'sidecar RSS under load (higher of the two)', target: `≤ ${TARGETS.sidecarRssMiB} MB`, measured: `${mib(peakRss)} MiB`, met: peakRss <= TARGETS.sidecarRssMiB },
    ...(['caller', 'callee'] as const).map((side) => {
      const times = floorReport.versusFloor.openLoop.cpuPerRequest[side] ?? Number.NaN;
      return { what: `${side} sidecar CPU per request at ${settings.rate} req/s, ÷ the floor's ${side}`, target: `≤ ×${TARGETS.cpuPerRequestVersusFloor}`, measured: `×${times.toFixed(2)}`, met: cleanRun && times <= TARGETS.cpuPerRequestVersusFloor };
    }),
  ];
  const sidecarLog = { caller: logSummary(caller.proc), callee: logSummary(callee.proc) };
  await Promise.all(started.map((proc) => proc.stop()));
  return {
    bodyBytes: body.length,
    sequential,
    floor: floorReport,
    openLoop,
    memory: { idle, afterLoad },
    cpuPerRequestMicros: { sequential: cpuPerRequest.sequential, openLoop: meshCpuOpenLoop },
    sidecarLog,
    ...(mcp ? { mcp } : {}),
    targets,
    ...(profile ? { profile } : {}),
    sweep,
    elapsedSeconds: (performance.now() - began) / 1000,
  };
}

/** The checked-out commit and the number of files that differ from it; `unknown` outside a git work tree. */
function revision(): BenchReport['revision'] {
  const git = (args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    return { commit: git(['rev-parse', '--short', 'HEAD']).trim(), modifiedFiles: git(['status', '--porcelain', '--untracked-files=no']).split('\n').filter(Boolean).length };
  } catch {
    return { commit: 'unknown', modifiedFiles: 0 };
  }
}

/** The whole report as Markdown: the machine, then each part that ran. */
function render(report: BenchReport): string {
  const m = report.machine;
  const out: string[] = [];
  out.push(`## Skein benchmark — ${report.startedAt}`, '');
  out.push(`\`${report.command}\` · Node ${m.node} · ${m.cpus} × ${m.cpuModel} · ${m.memoryGiB.toFixed(1)} GiB · Linux ${m.kernel} · load average ${m.loadAverageStart.map((n) => n.toFixed(2)).join(' ')} at start, ${m.loadAverageEnd.map((n) => n.toFixed(2)).join(' ')} at end`, '');
  const took = (seconds: number | undefined): string => (seconds === undefined ? '' : `${seconds.toFixed(0)} s`);
  const { commit, modifiedFiles } = report.revision;
  out.push(`Commit ${commit}${modifiedFiles > 0 ? ` with ${modifiedFiles} modified file(s)` : ''} · parts: ${report.settings.parts.join(', ')} · wall time ${took(report.elapsedSeconds)} (invoke ${took(report.invoke?.elapsedSeconds) || '–'}, mcp-chain ${took(report.mcpChain?.elapsedSeconds) || '–'}, tracing ${took(report.tracing?.elapsedSeconds) || '–'}, actors ${took(report.actors?.elapsedSeconds) || '–'}, workflows ${took(report.workflows?.elapsedSeconds) || '–'}, mcpserver ${took(report.mcpServer?.elapsedSeconds) || '–'}, editor ${took(report.editor?.elapsedSeconds) || '–'})`, '');
  if (report.invoke) out.push(renderInvoke(report.invoke, report.settings));
  if (report.mcpChain) out.push(renderMcpChain(report.mcpChain, report.settings));
  if (report.tracing) out.push(renderTracing(report.tracing, report.settings));
  if (report.actors) out.push(renderActors(report.actors, report.settings));
  if (report.workflows) out.push(renderWorkflows(report.workflows));
  if (report.mcpServer) out.push(renderMcpServer(report.mcpServer));
  if (report.editor) out.push(renderEditor(report.editor));
  return out.join('\n');
}

const USAGE = `Usage: npm run bench -- [flags]   (node test/dist/bench/run.js [flags])

Parts (--only, comma-separated; default invoke,mcp-chain,tracing): invoke, mcp-chain, tracing, actors, workflows,
  mcpserver, editor
Flags: --quick, --profile, --requests N, --calls N, --clients c1,c2 (mcp-chain), --hosts n1,n2 (actors);
  for invoke: --rate R, --duration S, --connections N, --also-rates r1,r2, --no-mcp
Results: printed as Markdown and written to bench-results/. See BENCHMARKS.md.
`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  let settings: Settings;
  try {
    settings = readSettings(argv);
  } catch (error) {
    // A bad flag: its message and the usage, no stack.
    process.stderr.write(`[bench] ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, '-');
  const began = performance.now();
  const body = oneKilobyteBody();
  // On Ctrl-C the harness itself kills every process group it started and removes its folder.
  const harness = new Harness();
  const loadAverageStart = loadavg();
  const measured = revision();
  try {
    say(`parts: ${settings.parts.join(', ')}; starting NATS and sentry`);
    await harness.controlPlane();
    // Each part starts its own processes and stops them when done, so no part runs beside another's idle sidecars.
    const invoke = settings.parts.includes('invoke') ? await runInvoke(harness, settings, body, stamp) : undefined;
    const mcpChain = settings.parts.includes('mcp-chain') ? await runMcpChain(harness, settings, { profileDir: join(RESULTS_DIR, 'profiles'), stamp }) : undefined;
    const tracing = settings.parts.includes('tracing') ? await runTracing(harness, settings, body) : undefined;
    const actors = settings.parts.includes('actors') ? await runActors(harness, settings) : undefined;
    const workflows = settings.parts.includes('workflows') ? await runWorkflows(harness, settings) : undefined;
    const mcpServer = settings.parts.includes('mcpserver') ? await runMcpServer(harness, settings) : undefined;
    const editor = settings.parts.includes('editor') ? runEditor() : undefined;
    const report: BenchReport = {
      startedAt,
      command: `node test/dist/bench/run.js${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
      machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', kernel: release(), memoryGiB: totalmem() / 2 ** 30, loadAverageStart, loadAverageEnd: loadavg() },
      revision: measured,
      settings,
      ...(invoke ? { invoke } : {}),
      ...(mcpChain ? { mcpChain } : {}),
      ...(tracing ? { tracing } : {}),
      ...(actors ? { actors } : {}),
      ...(workflows ? { workflows } : {}),
      ...(mcpServer ? { mcpServer } : {}),
      ...(editor ? { editor } : {}),
      elapsedSeconds: (performance.now() - began) / 1000,
    };
    const text = render(report);
    process.stdout.write(`${text}\n`);
    mkdirSync(RESULTS_DIR, { recursive: true });
    const jsonPath = join(RESULTS_DIR, `bench-${stamp}.json`);
    writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(RESULTS_DIR, `bench-${stamp}.md`), `${text}\n`);
    writeFileSync(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    say(`results: ${relative(process.cwd(), jsonPath)}`);
  } finally {
    await harness.cleanup();
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
