#!/usr/bin/env node
/**
 * `npm run bench`: the same 1 KB POST sent directly to an app and through two sidecars (caller sidecar → mTLS
 * gRPC → callee sidecar → app), in one run, sequentially and open-loop at a fixed rate; sidecar memory and CPU;
 * an MCP baseline with the official SDK client; optionally (`--profile`) a CPU profile of both sidecars under
 * the open-loop load. Prints Markdown tables and writes JSON to bench-results/. It reports; it asserts nothing.
 *
 * Flags: --quick (short phases), --profile, --no-mcp, --rate <req/s>, --duration <s>, --connections <n>,
 * --requests <n> (sequential, per path), --also-rates <r1,r2,...> (more open-loop rates, for the knee).
 */
import { parseArgs } from 'node:util';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Harness, SKEIN_CLI, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { postOnce, keepAliveAgent, runOpenLoop, runSequential, type HttpTarget, type LoadResult, type OpenLoopOptions } from './load.js';
import { runMcpConcurrent, runMcpSequential, type McpPhaseResult, type ToolCall } from './mcp.js';
import { cpuTimeOf, memoryOf, ResourceSampler, type Memory, type ProcessUsage } from './resources.js';
import { summarise, overhead, type LatencySummary, type Overhead } from './stats.js';
import { formatProfileSummary, readProfile, summariseProfile, type ProfileSummary } from './profile.js';
import { markdownTable, ms, signedMs, ratio, mib, count, errors } from './report.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RESULTS_DIR = join(REPO_ROOT, 'bench-results');
const MCP_SERVER = fileURLToPath(import.meta.resolve('@skein/sample-mcp-server'));
const APP_ID = 'bench';
const CALLER_APP_ID = 'bench-caller';
const MCP_APP_ID = 'inventory';
const METHOD = 'orders';
const TOOL_CALL: ToolCall = { name: 'get_inventory', arguments: {} };

/** The targets of issue 2, checked against the open-loop phase. */
const TARGETS = { addedP50Ms: 0.6, addedP99Ms: 2, sidecarRssMiB: 80 };

/** What each phase does; `--quick` shortens everything. */
interface Settings {
  quick: boolean;
  profile: boolean;
  mcp: boolean;
  rate: number;
  durationMs: number;
  connections: number;
  openLoopWarmupMs: number;
  sequentialWarmup: number;
  sequentialCount: number;
  /** The sequential requests are sent in this many alternating direct/mesh blocks, so drift in background load hits both. */
  sequentialBlocks: number;
  timeoutMs: number;
  mcpWarmup: number;
  mcpCount: number;
  mcpClients: number;
  mcpDurationMs: number;
  /** Further open-loop rates, run after the main phases, to show where the mesh stops keeping up. */
  alsoRates: number[];
}

function readSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'no-mcp': { type: 'boolean', default: false },
      'also-rates': { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      requests: { type: 'string' },
    },
    strict: true,
  });
  const quick = values.quick ?? false;
  const number = (text: string | undefined, fallback: number, name: string): number => {
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, not "${text}"`);
    return value;
  };
  return {
    quick,
    profile: values.profile ?? false,
    mcp: !(values['no-mcp'] ?? false),
    rate: number(values.rate, 1000, 'rate'),
    durationMs: number(values.duration, quick ? 3 : 10, 'duration') * 1000,
    connections: number(values.connections, 32, 'connections'),
    openLoopWarmupMs: quick ? 500 : 2000,
    sequentialWarmup: quick ? 200 : 1000,
    sequentialCount: number(values.requests, quick ? 1000 : 5000, 'requests'),
    sequentialBlocks: 5,
    timeoutMs: 5000,
    mcpWarmup: quick ? 20 : 100,
    mcpCount: quick ? 200 : 1000,
    mcpClients: 8,
    mcpDurationMs: quick ? 3000 : 10_000,
    alsoRates: (values['also-rates'] ?? '').split(',').filter(Boolean).map((text) => number(text, 0, 'also-rates')),
  };
}

/** A 1 KB JSON body (exactly 1,024 bytes). */
function oneKilobyteBody(): Buffer {
  const frame = '{"payload":""}';
  return Buffer.from(`{"payload":"${'x'.repeat(1024 - frame.length)}"}`);
}

function hrMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

const say = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

/** Retries one request until the path answers 200, so discovery has settled before anything is measured. */
async function waitForPath(target: HttpTarget, body: Buffer, timeoutMs = 20_000): Promise<void> {
  const agent = keepAliveAgent(1);
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const outcome = await postOnce(agent, target, body, 2000);
      if (outcome.ok) return;
      if (Date.now() > deadline) throw new Error(`${target.label} path never answered 200 (last: ${outcome.kind})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    agent.destroy();
  }
}

function merge(results: LoadResult[]): LoadResult {
  const first = results[0] as LoadResult;
  const merged: LoadResult = { ...first, latencies: [], serviceTimes: [], scheduled: 0, ok: 0, errors: 0, errorKinds: {}, elapsedMs: 0, achievedRate: 0, peakInFlight: 0 };
  for (const result of results) {
    merged.latencies.push(...result.latencies);
    merged.serviceTimes.push(...result.serviceTimes);
    merged.scheduled += result.scheduled;
    merged.ok += result.ok;
    merged.errors += result.errors;
    merged.elapsedMs += result.elapsedMs;
    merged.peakInFlight = Math.max(merged.peakInFlight, result.peakInFlight);
    for (const [kind, n] of Object.entries(result.errorKinds)) merged.errorKinds[kind] = (merged.errorKinds[kind] ?? 0) + n;
  }
  merged.achievedRate = ((merged.ok + merged.errors) / merged.elapsedMs) * 1000;
  return merged;
}

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

/**
 * Starts `skein run` like the harness does, but with `node --cpu-prof` (Node refuses that flag in NODE_OPTIONS,
 * so the sidecar cannot be profiled through `env`).
 */
async function startProfiledSidecar(harness: Harness, appId: string, appPort: number | undefined, profileDir: string): Promise<SidecarHandle> {
  const natsUrl = harness.natsHandle?.url;
  const sentryAddress = harness.sentryAddress;
  if (!natsUrl || !sentryAddress) throw new Error('start the control plane before a sidecar');
  const args = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, SKEIN_CLI, 'run', '--app-id', appId, '--nats-url', natsUrl, '--sentry-address', sentryAddress, '--trust-anchors-file', harness.trustBundle];
  if (appPort !== undefined) args.push('--app-port', String(appPort));
  const proc = harness.start(`sidecar ${appId} (profiled)`, process.execPath, args);
  const ready = await proc.waitForRecord('ready', { what: 'sidecar' });
  const httpPort = Number(ready['httpPort']);
  return { proc, appId, httpPort, internalPort: Number(ready['internalPort']), instanceId: String(ready['instanceId']), url: `http://127.0.0.1:${httpPort}` };
}

async function profilePhase(harness: Harness, app: AppHandle, body: Buffer, settings: Settings, stamp: string): Promise<ProfileReport> {
  const dirs = { caller: harness.dir('cpu-prof-caller'), callee: harness.dir('cpu-prof-callee') };
  const appId = `${APP_ID}-profiled`;
  const [callee, caller] = await Promise.all([startProfiledSidecar(harness, appId, app.port, dirs.callee), startProfiledSidecar(harness, `${CALLER_APP_ID}-profiled`, undefined, dirs.caller)]);
  const target: HttpTarget = { label: 'mesh (profiled)', host: '127.0.0.1', port: caller.httpPort, path: `/v1.0/invoke/${appId}/method/${METHOD}` };
  await waitForPath(target, body);
  await runSequential(target, body, { warmup: settings.sequentialWarmup, count: 0, timeoutMs: settings.timeoutMs });
  const options = openLoopOptions(settings);
  await runOpenLoop(target, body, { ...options, durationMs: settings.openLoopWarmupMs });
  const fromMicros = hrMicros();
  const result = await runOpenLoop(target, body, { ...options, durationMs: settings.durationMs });
  const toMicros = hrMicros();
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

/** Everything one run measured; written as JSON. */
interface BenchReport {
  startedAt: string;
  command: string;
  machine: { node: string; cpus: number; cpuModel: string; kernel: string; memoryGiB: number; loadAverageStart: number[]; loadAverageEnd: number[] };
  settings: Settings;
  bodyBytes: number;
  sequential: Comparison;
  openLoop: Comparison & { usage: { direct: UsageReport; mesh: UsageReport } };
  memory: { idle: Record<string, Memory>; afterLoad: Record<string, Memory> };
  /** Sidecar CPU time per mesh request, in microseconds, all threads: sequential (no queueing) and open loop. */
  cpuPerRequestMicros: { sequential: Record<string, number>; openLoop: Record<string, number> };
  /** Warnings and errors the sidecars logged during the run (none are expected). */
  sidecarLog: Record<string, { warnings: number; errors: number; first?: string }>;
  mcp?: {
    sequential: { direct: McpReport; mesh: McpReport };
    concurrent: { direct: McpReport; mesh: McpReport };
    /** CPU per call of the caller sidecar, the MCP server's sidecar and the MCP server, in the concurrent mesh phase. */
    meshCpuPerCallMicros: Record<string, number>;
  };
  targets: Array<{ what: string; target: string; measured: string; met: boolean }>;
  profile?: ProfileReport;
  /** Open loop at the `--also-rates`, same method as the main phase. */
  sweep: SweepRow[];
}

/** One rate of the sweep. */
interface SweepRow {
  rate: number;
  comparison: Comparison;
  usage: UsageReport;
}

function logSummary(sidecar: SidecarHandle): { warnings: number; errors: number; first?: string } {
  const records = sidecar.proc.records().filter((record) => record.level === 'warn' || record.level === 'error');
  const first = records[0];
  return { warnings: records.filter((record) => record.level === 'warn').length, errors: records.filter((record) => record.level === 'error').length, ...(first ? { first: `${first.logger}: ${first.msg}` } : {}) };
}

/** An MCP phase reduced for the report. */
interface McpReport {
  latency: LatencySummary;
  ok: number;
  errors: number;
  firstError?: string;
  callsPerSecond: number;
  clients: number;
}

function mcpReportOf(result: McpPhaseResult): McpReport {
  return { latency: summarise(result.latencies), ok: result.ok, errors: result.errors, ...(result.firstError ? { firstError: result.firstError } : {}), callsPerSecond: result.callsPerSecond, clients: result.clients };
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

function render(report: BenchReport): string {
  const { settings, sequential, openLoop, memory } = report;
  const out: string[] = [];
  const m = report.machine;
  out.push(`## Skein benchmark — ${report.startedAt}`, '');
  out.push(`\`${report.command}\` · Node ${m.node} · ${m.cpus} × ${m.cpuModel} · ${m.memoryGiB.toFixed(1)} GiB · Linux ${m.kernel} · load average ${m.loadAverageStart.map((n) => n.toFixed(2)).join(' ')} at start, ${m.loadAverageEnd.map((n) => n.toFixed(2)).join(' ')} at end`, '');
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
  out.push(markdownTable(['target', 'goal', 'measured', 'result'], report.targets.map((t) => [t.what, t.target, t.measured, t.met ? 'met' : 'NOT met']), ['left', 'left', 'right', 'left']), '');
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

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, '-');
  const body = oneKilobyteBody();
  // On Ctrl-C the harness itself kills every process group it started and removes its folder.
  const harness = new Harness();
  const loadAverageStart = loadavg();
  try {
    say('starting NATS, sentry, the app and two sidecars');
    await harness.controlPlane();
    const app = await harness.app('bench-app');
    const { callee, caller } = await startPair(harness, app, APP_ID, CALLER_APP_ID);
    const idle = { caller: memoryOf(caller.proc.pid), callee: memoryOf(callee.proc.pid) };
    const direct: HttpTarget = { label: 'direct', host: '127.0.0.1', port: app.port, path: `/${METHOD}` };
    const mesh: HttpTarget = { label: 'mesh', host: '127.0.0.1', port: caller.httpPort, path: `/v1.0/invoke/${APP_ID}/method/${METHOD}` };
    await waitForPath(direct, body);
    await waitForPath(mesh, body);

    say(`sequential: ${settings.sequentialCount} requests per path`);
    const blockCount = Math.ceil(settings.sequentialCount / settings.sequentialBlocks);
    const sequentialOptions = { count: blockCount, timeoutMs: settings.timeoutMs };
    const blocks: { direct: LoadResult[]; mesh: LoadResult[] } = { direct: [], mesh: [] };
    const sidecarPids = { caller: caller.proc.pid, callee: callee.proc.pid };
    const sequentialCpu = { caller: 0, callee: 0, requests: 0 };
    for (let block = 0; block < settings.sequentialBlocks; block++) {
      const warmup = block === 0 ? settings.sequentialWarmup : 50;
      blocks.direct.push(await runSequential(direct, body, { ...sequentialOptions, warmup }));
      const before = { caller: 0, callee: 0 };
      const onMeasureStart = (): void => {
        before.caller = cpuTimeOf(sidecarPids.caller);
        before.callee = cpuTimeOf(sidecarPids.callee);
      };
      blocks.mesh.push(await runSequential(mesh, body, { ...sequentialOptions, warmup, onMeasureStart }));
      sequentialCpu.caller += cpuTimeOf(sidecarPids.caller) - before.caller;
      sequentialCpu.callee += cpuTimeOf(sidecarPids.callee) - before.callee;
      sequentialCpu.requests += blockCount;
    }
    const sequential = compare(merge(blocks.direct), merge(blocks.mesh));
    const cpuPerRequest = {
      sequential: { caller: (sequentialCpu.caller * 1000) / sequentialCpu.requests, callee: (sequentialCpu.callee * 1000) / sequentialCpu.requests },
    };

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
    say(`open loop: ${settings.rate} req/s for ${settings.durationMs / 1000} s, through the sidecars`);
    const openMesh = await openLoopPhase(mesh, body, settings, pids);
    const openLoop = { ...compare(openDirect.result, openMesh.result), usage: { direct: openDirect.usage, mesh: openMesh.usage } };
    // Let in-flight work and short-lived buffers settle before reading the resident size after load.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const afterLoad = { caller: memoryOf(caller.proc.pid), callee: memoryOf(callee.proc.pid) };

    for (const rate of settings.alsoRates.filter((rate) => rate > settings.rate).sort((a, b) => a - b)) await sweepAt(rate);

    let mcp: BenchReport['mcp'];
    if (settings.mcp) {
      say('MCP: starting the sample MCP server beside its own sidecar');
      const server = harness.start('mcp-server', process.execPath, [MCP_SERVER], { env: { PORT: '0' } });
      const line = await server.waitFor(/^\{"listening":\d+/);
      const serverPort = (JSON.parse(line) as { listening: number }).listening;
      const mcpSidecar = await harness.sidecar({ appId: MCP_APP_ID, appPort: serverPort });
      const directUrl = `http://127.0.0.1:${serverPort}/mcp`;
      const meshUrl = `${caller.url}/v1.0/invoke/${MCP_APP_ID}/method/mcp`;
      say('MCP: sequential tools/call');
      const seqOptions = { warmup: settings.mcpWarmup, count: settings.mcpCount };
      const seqDirect = await runMcpSequential('direct', directUrl, TOOL_CALL, seqOptions);
      const seqMesh = await runMcpSequential('mesh', meshUrl, TOOL_CALL, seqOptions);
      say(`MCP: ${settings.mcpClients} concurrent clients`);
      const concOptions = { clients: settings.mcpClients, warmup: settings.mcpWarmup / 4, durationMs: settings.mcpDurationMs };
      const concDirect = await runMcpConcurrent('direct', directUrl, TOOL_CALL, concOptions);
      const sampler = new ResourceSampler({ caller: caller.proc.pid, callee: mcpSidecar.proc.pid, server: server.pid });
      const concMesh = await runMcpConcurrent('mesh', meshUrl, TOOL_CALL, concOptions);
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
    const targets = [
      { what: `added latency p50 at ${settings.rate} req/s`, target: `≤ ${TARGETS.addedP50Ms} ms`, measured: `${ms(openLoop.added.p50)} ms`, met: cleanRun && openLoop.added.p50 <= TARGETS.addedP50Ms },
      { what: `added latency p99 at ${settings.rate} req/s`, target: `≤ ${TARGETS.addedP99Ms} ms`, measured: `${ms(openLoop.added.p99)} ms`, met: cleanRun && openLoop.added.p99 <= TARGETS.addedP99Ms },
      { what: 'sidecar RSS under load (higher of the two)', target: `≤ ${TARGETS.sidecarRssMiB} MB`, measured: `${mib(peakRss)} MiB`, met: peakRss <= TARGETS.sidecarRssMiB },
    ];
    const report: BenchReport = {
      startedAt,
      command: `node test/dist/bench/run.js${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
      machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', kernel: release(), memoryGiB: totalmem() / 2 ** 30, loadAverageStart, loadAverageEnd: loadavg() },
      settings,
      bodyBytes: body.length,
      sequential,
      openLoop,
      memory: { idle, afterLoad },
      cpuPerRequestMicros: {
        sequential: cpuPerRequest.sequential,
        openLoop: Object.fromEntries(Object.entries(openMesh.usage.processes).map(([name, usage]) => [name, (usage.cpuMs * 1000) / Math.max(1, openLoop.mesh.ok + openLoop.mesh.errors)])),
      },
      sidecarLog: { caller: logSummary(caller), callee: logSummary(callee) },
      ...(mcp ? { mcp } : {}),
      targets,
      ...(profile ? { profile } : {}),
      sweep,
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
