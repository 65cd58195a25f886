/**
 * The MCP governance chain: the official SDK client calling `tools/call` on the sample MCP server three ways in one
 * run — directly; through two sidecars with no policies (mesh only: caller sidecar → gRPC over mTLS → callee
 * sidecar); and through the whole chain, where the callee sidecar also runs App-ID access control, bearer JWT
 * validation (token in the client's Authorization header, JWKS served on loopback) and the sample MCPToolPolicy.
 * Sequential latency in interleaved blocks, then throughput at several client counts.
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Harness, ManagedProcess, SidecarHandle } from '../src/harness.js';
import { LocalIssuer, writeGovernance } from './governance.js';
import { runInterleaved, type InterleavedPath, type InterleavedResult } from './interleave.js';
import { callSequentially, connectMcp, disconnectMcp, mcpReportOf, mergeMcpPhases, runMcpConcurrent, startMcpServer, type McpEndpoint, type McpPhaseResult, type McpReport, type ToolCall } from './mcp.js';
import { formatPerCallDifference, monotonicMicros, perCallDifference, readProfile, summariseProfile, type PerCallDifference, type ProfileSummary } from './profile.js';
import { natsPid, ResourceSampler, type ProcessUsage } from './resources.js';
import { count, markdownTable, ms, ratio, say, signedMs, targetsTable, type Target } from './report.js';
import type { Settings } from './settings.js';
import { logLines, logSummary, type LogSummary } from './sidecar-log.js';

/** The App IDs of the sample policy: the MCP server it is scoped to and the caller whose rule allows `get_inventory`. */
const CALLEE = 'mcp-server';
const CALLER = 'analyst-agent';
/** The same server behind a sidecar with no Configuration and no resources. */
const UNGOVERNED_CALLEE = 'mcp-server-ungoverned';
const TOOL_CALL: ToolCall = { name: 'get_inventory', arguments: {} };

/** Issue 3's targets for one sidecar pair on this machine. */
const TARGETS = { addedP50Ms: 1, callsPerSecond: 2000 };

/** The three ways a call reaches the server, in the order every table lists them. */
export const CHAIN_PATHS = ['direct', 'mesh', 'chain'] as const;
/** One of them. */
export type ChainPath = (typeof CHAIN_PATHS)[number];

const PATH_LABELS: Record<ChainPath, string> = {
  direct: 'direct to the MCP server',
  mesh: 'mesh only (mTLS, no policies)',
  chain: 'whole chain (mTLS + ACL + JWT + tool policy)',
};

/** A path's sequential result with the CPU its processes spent per measured call. */
export interface ChainSequentialReport extends McpReport {
  /** Microseconds per call, all threads: `caller` and `callee` sidecars, `server`, `nats` (nats-server). */
  cpuMicrosPerCall: Record<string, number>;
}

/** A path's throughput phase with what its processes and the machine used meanwhile. */
export interface ChainConcurrentReport extends McpReport {
  processes: Record<string, ProcessUsage>;
  cpuMicrosPerCall: Record<string, number>;
  /** CPU of the benchmark process (the SDK clients), in cores. */
  generatorCores: number;
  machineBusyCores: number;
}

/** The profiled run (`--profile`): what the governed callee's JS thread spends per call beyond the ungoverned one's. */
export interface ChainProfileReport {
  clients: number;
  calls: { governed: number; ungoverned: number };
  governed: ProfileSummary;
  ungoverned: ProfileSummary;
  byArea: PerCallDifference[];
  byFunction: PerCallDifference[];
  files: { governed: string; ungoverned: string };
}

/** Everything the part measured. */
export interface ChainReport {
  sequential: Record<ChainPath, ChainSequentialReport>;
  concurrent: Array<{ clients: number; paths: Record<ChainPath, ChainConcurrentReport> }>;
  profile?: ChainProfileReport;
  targets: Target[];
  logs: Record<string, LogSummary>;
  elapsedSeconds: number;
}

/**
 * Refuses to measure a chain that is not in force, so that a renamed sample or a dropped Component is never measured
 * as "the chain": a session without a token must be refused.
 */
async function checkChainInForce(caller: string): Promise<void> {
  const url = `${caller}/v1.0/invoke/${CALLEE}/method/mcp`;
  const anonymous = await connectMcp({ label: 'check', url }).then(
    async (client) => {
      await disconnectMcp(client);
      return 'accepted';
    },
    (error: unknown) => (error as Error).message,
  );
  if (anonymous === 'accepted') throw new Error('the governed sidecar accepted a session without a bearer token: the chain is not in force');
}

/** The same check for the tool policy: `tools/list` through the chain must come back filtered. */
async function checkPolicyInForce(client: Client): Promise<void> {
  const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
  if (tools.includes('drop_table') || !tools.includes(TOOL_CALL.name)) throw new Error(`the tool policy is not in force: tools/list through the chain gave ${tools.join(', ')}`);
}

/** Where `--profile` keeps the CPU profiles. */
export interface ProfileOutput {
  profileDir: string;
  /** Prefix of the file names, the run's start time. */
  stamp: string;
}

/** Runs the part; stops every process it started before returning. */
export async function runMcpChain(harness: Harness, settings: Settings, output: ProfileOutput): Promise<ChainReport> {
  const began = performance.now();
  say('mcp-chain: starting the MCP server, a local JWT issuer and three sidecars');
  const issuer = await LocalIssuer.start();
  const started: ManagedProcess[] = [];
  try {
    const server = await startMcpServer(harness, 'mcp-server (chain)');
    started.push(server.proc);
    const governance = writeGovernance(harness.dir('chain-callee'), 'governed', { allowCallers: [CALLER], bearer: issuer, toolPolicy: { callee: CALLEE, caller: CALLER } });
    const [governed, ungoverned, caller] = await Promise.all([
      harness.sidecar({ appId: CALLEE, appPort: server.port, args: governance }),
      harness.sidecar({ appId: UNGOVERNED_CALLEE, appPort: server.port }),
      harness.sidecar({ appId: CALLER }),
    ]);
    started.push(governed.proc, ungoverned.proc, caller.proc);
    // Every path sends the same headers, so the requests differ only in where they go.
    const headers = { authorization: `Bearer ${await issuer.token('bench-analyst')}` };
    const endpoints: Record<ChainPath, McpEndpoint> = {
      direct: { label: 'direct', url: `http://127.0.0.1:${server.port}/mcp`, headers },
      mesh: { label: 'mesh', url: `${caller.url}/v1.0/invoke/${UNGOVERNED_CALLEE}/method/mcp`, headers },
      chain: { label: 'chain', url: `${caller.url}/v1.0/invoke/${CALLEE}/method/mcp`, headers },
    };
    // nats-server is on every path's list: each decision the chain makes is published to it and stored in the telemetry stream.
    const nats = natsPid(harness);
    const pids: Record<ChainPath, Record<string, number>> = {
      direct: { server: server.proc.pid, nats },
      mesh: { caller: caller.proc.pid, callee: ungoverned.proc.pid, server: server.proc.pid, nats },
      chain: { caller: caller.proc.pid, callee: governed.proc.pid, server: server.proc.pid, nats },
    };
    await checkChainInForce(caller.url);

    say(`mcp-chain: sequential, ${settings.mcpCount} calls per path in ${settings.sequentialBlocks} interleaved blocks`);
    const clients = await Promise.all(CHAIN_PATHS.map((path) => connectMcp(endpoints[path])));
    let sequentialResults: InterleavedResult<McpPhaseResult>[];
    try {
      await checkPolicyInForce(clients[CHAIN_PATHS.indexOf('chain')] as Client);
      const paths: InterleavedPath<McpPhaseResult>[] = CHAIN_PATHS.map((path, i) => ({
        label: path,
        pids: pids[path],
        runBlock: (warmup, n, onMeasureStart) => callSequentially(clients[i] as Client, path, TOOL_CALL, { warmup, count: n, onMeasureStart }),
      }));
      sequentialResults = await runInterleaved(paths, { count: settings.mcpCount, blocks: settings.sequentialBlocks, warmup: settings.mcpWarmup, blockWarmup: 10 });
    } finally {
      await Promise.all(clients.map(disconnectMcp));
    }
    const sequential = Object.fromEntries(
      sequentialResults.map((result) => [result.label, { ...mcpReportOf(mergeMcpPhases(result.blocks)), cpuMicrosPerCall: result.cpuMicrosPerRequest }]),
    ) as Record<ChainPath, ChainSequentialReport>;

    const concurrent: ChainReport['concurrent'] = [];
    for (const clientCount of settings.chainClients) {
      const paths: Partial<Record<ChainPath, ChainConcurrentReport>> = {};
      for (const path of CHAIN_PATHS) {
        say(`mcp-chain: ${clientCount} clients for ${settings.chainDurationMs / 1000} s, ${path}`);
        paths[path] = await concurrentPhase(endpoints[path], pids[path], clientCount, settings);
      }
      concurrent.push({ clients: clientCount, paths: paths as Record<ChainPath, ChainConcurrentReport> });
    }

    let profile: ChainProfileReport | undefined;
    if (settings.profile) {
      // The measured callees are done; stopping them keeps their timers out of the profiled run.
      await Promise.all([governed.proc.stop(), ungoverned.proc.stop()]);
      profile = await profileCallees(harness, settings, { serverPort: server.port, issuer, caller, headers }, output);
    }

    const added = sequential.chain.latency.p50 - sequential.direct.latency.p50;
    const best = concurrent.reduce<{ clients: number; rate: number } | undefined>((top, level) => (top && top.rate >= level.paths.chain.callsPerSecond ? top : { clients: level.clients, rate: level.paths.chain.callsPerSecond }), undefined);
    const clean = CHAIN_PATHS.every((path) => sequential[path].errors === 0) && concurrent.every((level) => CHAIN_PATHS.every((path) => level.paths[path].errors === 0));
    const targets: Target[] = [
      { what: 'added latency p50, whole chain vs direct (sequential)', target: `≤ ${TARGETS.addedP50Ms} ms`, measured: `${signedMs(added)} ms`, met: clean && added <= TARGETS.addedP50Ms },
      {
        what: 'tools/call per second through one sidecar pair, whole chain',
        target: `≥ ${count(TARGETS.callsPerSecond)}/s`,
        measured: best ? `${count(best.rate)}/s (${best.clients} clients)` : 'n/a',
        met: clean && best !== undefined && best.rate >= TARGETS.callsPerSecond,
      },
    ];
    const logs = { 'caller sidecar': logSummary(caller.proc), 'governed callee sidecar': logSummary(governed.proc), 'ungoverned callee sidecar': logSummary(ungoverned.proc) };
    return { sequential, concurrent, ...(profile ? { profile } : {}), targets, logs, elapsedSeconds: (performance.now() - began) / 1000 };
  } finally {
    await Promise.all(started.map((proc) => proc.stop()));
    await issuer.close();
  }
}

/**
 * Fresh governed and ungoverned callees under `node --cpu-prof`, the same load through each in turn, each profile
 * cut to its own load window. Both serve the same calls from the same caller, so per call the difference between
 * them is what the policy stages cost the callee's JavaScript thread.
 */
async function profileCallees(harness: Harness, settings: Settings, context: { serverPort: number; issuer: LocalIssuer; caller: SidecarHandle; headers: Record<string, string> }, output: ProfileOutput): Promise<ChainProfileReport> {
  const sides = ['governed', 'ungoverned'] as const;
  const ids = { governed: `${CALLEE}-profiled`, ungoverned: `${UNGOVERNED_CALLEE}-profiled` };
  const dirs = { governed: harness.dir('cpu-prof-chain-governed'), ungoverned: harness.dir('cpu-prof-chain-ungoverned') };
  const governance = writeGovernance(harness.dir('chain-callee-profiled'), 'governed-profiled', { allowCallers: [CALLER], bearer: context.issuer, toolPolicy: { callee: ids.governed, caller: CALLER } });
  const profiled = await Promise.all(
    sides.map((side) =>
      harness.sidecar({ appId: ids[side], appPort: context.serverPort, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dirs[side]}`], ...(side === 'governed' ? { args: governance } : {}) }),
    ),
  );
  const clients = settings.chainClients[0] ?? 8;
  const windows: Partial<Record<(typeof sides)[number], { fromMicros: number; toMicros: number }>> = {};
  const calls = { governed: 0, ungoverned: 0 };
  for (const side of sides) {
    say(`mcp-chain: profile, ${clients} clients for ${settings.chainDurationMs / 1000} s through the ${side} callee`);
    const window = { fromMicros: 0, toMicros: 0 };
    const endpoint = { label: side, url: `${context.caller.url}/v1.0/invoke/${ids[side]}/method/mcp`, headers: context.headers };
    const result = await runMcpConcurrent(endpoint, TOOL_CALL, {
      clients,
      warmup: Math.max(5, Math.round(settings.mcpWarmup / 4)),
      durationMs: settings.chainDurationMs,
      onMeasureStart: () => (window.fromMicros = monotonicMicros()),
      onMeasureEnd: () => (window.toMicros = monotonicMicros()),
    });
    windows[side] = window;
    calls[side] = result.ok + result.errors;
  }
  // The profile is written when the process exits normally; SIGTERM makes the sidecar shut down and exit.
  await Promise.all(profiled.map((sidecar) => sidecar.proc.stop(30_000)));
  mkdirSync(output.profileDir, { recursive: true });
  const summaries: Partial<Record<(typeof sides)[number], { shown: ProfileSummary; full: ProfileSummary; file: string }>> = {};
  for (const side of sides) {
    const file = readdirSync(dirs[side]).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error(`the ${side} callee wrote no CPU profile into ${dirs[side]}`);
    const kept = join(output.profileDir, `${output.stamp}-chain-${side}.cpuprofile`);
    copyFileSync(join(dirs[side], file), kept);
    const cpuProfile = readProfile(kept);
    summaries[side] = { shown: summariseProfile(cpuProfile, windows[side], 25), full: summariseProfile(cpuProfile, windows[side], Number.MAX_SAFE_INTEGER), file: kept };
  }
  const governed = summaries.governed as { shown: ProfileSummary; full: ProfileSummary; file: string };
  const ungoverned = summaries.ungoverned as { shown: ProfileSummary; full: ProfileSummary; file: string };
  return {
    clients,
    calls,
    governed: governed.shown,
    ungoverned: ungoverned.shown,
    byArea: perCallDifference(governed.full.byArea, calls.governed, ungoverned.full.byArea, calls.ungoverned, 12),
    byFunction: perCallDifference(governed.full.byFunction, calls.governed, ungoverned.full.byFunction, calls.ungoverned, 25),
    files: { governed: governed.file, ungoverned: ungoverned.file },
  };
}

async function concurrentPhase(endpoint: McpEndpoint, pids: Record<string, number>, clients: number, settings: Settings): Promise<ChainConcurrentReport> {
  let sampler: ResourceSampler | undefined;
  let seen: ReturnType<ResourceSampler['stop']> | undefined;
  let cpuBefore = process.cpuUsage();
  let startedAt = 0;
  let generatorCores = Number.NaN;
  const result = await runMcpConcurrent(endpoint, TOOL_CALL, {
    clients,
    warmup: Math.max(5, Math.round(settings.mcpWarmup / 4)),
    durationMs: settings.chainDurationMs,
    onMeasureStart: () => {
      sampler = new ResourceSampler(pids);
      cpuBefore = process.cpuUsage();
      startedAt = performance.now();
    },
    onMeasureEnd: () => {
      seen = sampler?.stop();
      const cpu = process.cpuUsage(cpuBefore);
      generatorCores = (cpu.user + cpu.system) / 1000 / (performance.now() - startedAt);
    },
  });
  const calls = Math.max(1, result.ok + result.errors);
  const used = seen?.processes ?? {};
  return {
    ...mcpReportOf(result),
    processes: used,
    cpuMicrosPerCall: Object.fromEntries(Object.entries(used).map(([name, usage]) => [name, (usage.cpuMs * 1000) / calls])),
    generatorCores,
    machineBusyCores: seen?.machineBusyCores ?? Number.NaN,
  };
}

/** The processes whose CPU the tables show, in column order. */
const CPU_COLUMNS = ['caller', 'callee', 'server', 'nats'] as const;

const micros = (value: number | undefined): string => (value === undefined || !Number.isFinite(value) ? '' : count(value));

/** The part as Markdown. */
export function renderMcpChain(report: ChainReport, settings: Settings): string {
  const out: string[] = [];
  const { sequential: seq } = report;
  out.push(`### MCP governance chain: \`tools/call ${TOOL_CALL.name}\`, official SDK client, one sidecar pair`, '');
  out.push(
    `Three paths to the same sample MCP server in one run: direct; mesh only (caller sidecar → gRPC over mTLS → a callee sidecar with no policies); whole chain (the same hop, to a callee sidecar running App-ID access control, \`middleware.http.bearer\` with a local JWKS, and \`samples/policies/inventory-tools.yaml\`; caller App ID \`${CALLER}\`). Every path sends the same bearer token. Tracing is off.`,
    '',
  );
  out.push(`Sequential: ${count(settings.mcpCount)} calls per path after ${settings.mcpWarmup} warm-up, one session per path, in ${settings.sequentialBlocks} interleaved blocks.`, '');
  const row = (path: ChainPath): string[] => {
    const phase = seq[path];
    return [PATH_LABELS[path], ms(phase.latency.p50), ms(phase.latency.p90), ms(phase.latency.p99), count(phase.ok), phase.errors ? `${phase.errors} (${phase.firstError ?? ''})` : '0', phase.callsPerSecond.toFixed(0), ...CPU_COLUMNS.map((name) => micros(phase.cpuMicrosPerCall[name]))];
  };
  const diff = (label: string, from: ChainPath, to: ChainPath): string[] => {
    const cpu = (name: string): string => {
      // The direct path has no sidecars: what the mesh adds there is all of their time.
      const value = (seq[to].cpuMicrosPerCall[name] ?? Number.NaN) - (seq[from].cpuMicrosPerCall[name] ?? 0);
      return Number.isFinite(value) ? `${value >= 0 ? '+' : ''}${count(value)}` : '';
    };
    return [label, signedMs(seq[to].latency.p50 - seq[from].latency.p50), signedMs(seq[to].latency.p90 - seq[from].latency.p90), signedMs(seq[to].latency.p99 - seq[from].latency.p99), '', '', '', ...CPU_COLUMNS.map(cpu)];
  };
  out.push(
    markdownTable(['path', 'p50 ms', 'p90 ms', 'p99 ms', 'calls', 'errors', 'calls/s', 'CPU µs/call caller sidecar', 'CPU µs/call callee sidecar', 'CPU µs/call MCP server', 'CPU µs/call nats-server'], [
      ...CHAIN_PATHS.map(row),
      diff('added by the mesh (mesh − direct)', 'direct', 'mesh'),
      diff('added by the policy stages (chain − mesh)', 'mesh', 'chain'),
      diff('added by the whole chain (chain − direct)', 'direct', 'chain'),
      ['ratio chain ÷ direct', ratio(seq.chain.latency.p50 / seq.direct.latency.p50), ratio(seq.chain.latency.p90 / seq.direct.latency.p90), ratio(seq.chain.latency.p99 / seq.direct.latency.p99), '', '', '', '', '', '', ''],
    ]),
    '',
  );
  out.push(`Throughput: each client has its own session and calls in a closed loop for ${settings.chainDurationMs / 1000} s after a warm-up; the paths take turns.`, '');
  const rows = report.concurrent.flatMap((level) =>
    CHAIN_PATHS.map((path) => {
      const phase = level.paths[path];
      const cores = (name: string): string => (phase.processes[name] ? phase.processes[name].cpuCores.toFixed(2) : '');
      return [
        PATH_LABELS[path],
        String(level.clients),
        ms(phase.latency.p50),
        ms(phase.latency.p99),
        phase.callsPerSecond.toFixed(0),
        phase.errors ? `${phase.errors} (${phase.firstError ?? ''})` : '0',
        CPU_COLUMNS.map(cores).map((value) => value || '–').join(' / '),
        CPU_COLUMNS.map((name) => micros(phase.cpuMicrosPerCall[name])).map((value) => value || '–').join(' / '),
        phase.generatorCores.toFixed(2),
        phase.machineBusyCores.toFixed(2),
      ];
    }),
  );
  out.push(
    markdownTable(['path', 'clients', 'p50 ms', 'p99 ms', 'calls/s', 'errors', 'CPU cores caller / callee / server / nats', 'CPU µs/call caller / callee / server / nats', 'SDK clients (cores)', 'machine busy (cores)'], rows),
    '',
  );
  out.push('CPU = user + system time of all the process\'s threads; per call = that time ÷ calls in the measured window. nats-server is counted because the chain publishes every decision to it, into the file-backed telemetry stream. "SDK clients" is the benchmark process itself. "Machine busy" counts every process on the machine, including ones outside the benchmark.', '');
  out.push(...logLines(report.logs).flatMap((line) => [line, '']));
  if (report.profile) out.push(renderProfile(report.profile, settings));
  out.push('Targets (issue 3):', '');
  out.push(targetsTable(report.targets), '');
  return out.join('\n');
}

function renderProfile(profile: ChainProfileReport, settings: Settings): string {
  const perCall = (summary: ProfileSummary, calls: number): string => `${count((summary.busyMs * 1000) / Math.max(1, calls))} µs`;
  const labels = { profiled: 'governed', baseline: 'ungoverned' };
  return [
    '#### Where the policy stages spend the callee\'s time (separate run under `--cpu-prof`)',
    '',
    `Fresh governed and ungoverned callee sidecars under \`node --cpu-prof\`; ${profile.clients} clients for ${settings.chainDurationMs / 1000} s through each in turn, each profile cut to its load window. JS thread busy per call: governed ${perCall(profile.governed, profile.calls.governed)} (${count(profile.calls.governed)} calls), ungoverned ${perCall(profile.ungoverned, profile.calls.ungoverned)} (${count(profile.calls.ungoverned)} calls). V8 samples wall-clock time: a thread preempted inside a call (a socket write that wakes another process) is charged to that call, which on a busy machine overstates native writes. Profiles: ${relative(process.cwd(), profile.files.governed)}, ${relative(process.cwd(), profile.files.ungoverned)}.`,
    '',
    formatPerCallDifference('Area', profile.byArea, labels),
    '',
    formatPerCallDifference('Function', profile.byFunction, labels),
    '',
  ].join('\n');
}
