/**
 * The `actors` part: actor calls through the sidecars (active actors, first calls that activate, throughput at
 * several concurrencies) against the same request sent straight to the actor app; reminders fired per second;
 * placement table computation, dissemination through a real placement process to many simulated hosts, and the
 * ring lookup a sidecar does per call. One run, no assertions on numbers.
 */
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { skein } from '@skein/proto';
import { ActorPlacement, ringPosition, type TableSpec } from '@skein/core';
import type { Harness, SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';
import { keepAliveAgent, postOnce, runSequential, waitForPath, type HttpTarget, type LoadResult } from './load.js';
import { count, errors, markdownTable, ms, say, targetsTable, type Target } from './report.js';
import type { Settings } from './settings.js';
import { Fleet } from './sim-hosts.js';
import { summarise, type LatencySummary } from './stats.js';

/** The targets of issue 4. */
const TARGETS = { callsPerSecond: 10_000, activationP99Ms: 5, disseminationMs: 1000 };
const ACTOR_TYPE = 'Counter';
const REMINDER_TYPE = 'Ticker';
const BODY = Buffer.from('{"n":1}');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A phase reduced to what the report keeps. */
interface Phase {
  latency: LatencySummary;
  ok: number;
  errors: number;
  errorKinds: Record<string, number>;
  perSecond: number;
}

function phaseOf(result: LoadResult): Phase {
  return { latency: summarise(result.latencies), ok: result.ok, errors: result.errors, errorKinds: result.errorKinds, perSecond: result.achievedRate };
}

/** One concurrency level: calls per second and latency of each path. */
interface ThroughputRow {
  concurrency: number;
  paths: Record<string, Phase>;
}

/** A table-computation measurement: median and best of several runs, in ms. */
interface Timing {
  what: string;
  medianMs: number;
  minMs: number;
  runs: number;
}

interface DisseminationRow {
  hosts: number;
  /** Time to connect the fleet and get the first complete table to every host (joins arrive in a burst). */
  initialMs: number;
  /** Membership change (a host joins or leaves) to the last host's UNLOCK, per sample. */
  samples: number[];
  summary: LatencySummary;
  /** Bytes of one UPDATE order at this size. */
  updateBytes: number;
  streamErrors: number;
  error?: string;
}

export interface ActorsReport {
  paths: Record<string, string>;
  sequential: Record<string, Phase>;
  activation: Record<string, Phase>;
  throughput: ThroughputRow[];
  reminders: { registered: number; periodMs: number; windowMs: number; fired: number; perSecond: number; expectedPerSecond: number; registerErrors: number };
  tables: { hosts: number; actorTypes: number; virtualNodes: number; timings: Timing[] };
  dissemination: { batchWindowMs: number; heartbeatMs: number; actorTypes: number; rows: DisseminationRow[] };
  lookup: Array<{ what: string; nsPerOp: number; ops: number }>;
  targets: Target[];
  elapsedSeconds: number;
}

/** The placement package's pure table functions, loaded at run time (it builds after this package). */
interface PlacementTables {
  computeTable: (hosts: Iterable<{ address: string; appId: string; instanceId: string; actorTypes: readonly string[] }>, virtualNodes: number) => TableSpec;
  changedActorTypes: (previous: TableSpec | undefined, next: TableSpec) => string[];
}

async function loadPlacementTables(): Promise<PlacementTables> {
  const root = dirname(fileURLToPath(import.meta.resolve('@skein/placement/package.json')));
  return (await import(pathToFileURL(join(root, 'dist/src/index.js')).href)) as PlacementTables;
}

/** Closed loop: `concurrency` workers, each sending its next call when the last one ends, for `durationMs`. */
async function runClosedLoop(targets: (i: number) => HttpTarget, concurrency: number, durationMs: number, timeoutMs: number): Promise<LoadResult> {
  const agent = keepAliveAgent(concurrency);
  const result: LoadResult = { label: '', mode: 'open-loop', latencies: [], serviceTimes: [], scheduled: 0, ok: 0, errors: 0, errorKinds: {}, elapsedMs: 0, achievedRate: 0, peakInFlight: concurrency };
  let next = 0;
  const began = performance.now();
  const deadline = began + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const target = targets(next++);
      const sentAt = performance.now();
      const outcome = await postOnce(agent, target, BODY, timeoutMs);
      const took = performance.now() - sentAt;
      result.scheduled++;
      if (outcome.ok) {
        result.ok++;
        result.latencies.push(took);
      } else {
        result.errors++;
        result.errorKinds[outcome.kind] = (result.errorKinds[outcome.kind] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, () => worker()));
  } finally {
    agent.destroy();
  }
  result.elapsedMs = performance.now() - began;
  result.achievedRate = ((result.ok + result.errors) / result.elapsedMs) * 1000;
  return result;
}

/** Sequential first calls, one per fresh actor id. */
function runFirstCalls(target: (id: string) => HttpTarget, prefix: string, calls: number, timeoutMs: number): Promise<LoadResult> {
  return sequentialCalls(prefix, calls, (i) => target(`${prefix}-${i}`), timeoutMs);
}

/** `calls` requests one at a time on one keep-alive connection, the i-th to `targetOf(i)`. */
async function sequentialCalls(label: string, calls: number, targetOf: (i: number) => HttpTarget, timeoutMs: number): Promise<LoadResult> {
  const agent = keepAliveAgent(1);
  const result: LoadResult = { label, mode: 'sequential', latencies: [], serviceTimes: [], scheduled: 0, ok: 0, errors: 0, errorKinds: {}, elapsedMs: 0, achievedRate: 0, peakInFlight: 1 };
  const began = performance.now();
  try {
    for (let i = 0; i < calls; i++) {
      const sentAt = performance.now();
      const outcome = await postOnce(agent, targetOf(i), BODY, timeoutMs);
      result.scheduled++;
      if (outcome.ok) {
        result.ok++;
        result.latencies.push(performance.now() - sentAt);
      } else {
        result.errors++;
        result.errorKinds[outcome.kind] = (result.errorKinds[outcome.kind] ?? 0) + 1;
      }
    }
  } finally {
    agent.destroy();
  }
  result.elapsedMs = performance.now() - began;
  result.achievedRate = (result.scheduled / result.elapsedMs) * 1000;
  return result;
}

function median(values: number[]): number {
  return summarise(values).p50;
}

/** Runs `fn` `runs` times after one discarded run; median and best wall time. */
function time(what: string, runs: number, fn: () => void): Timing {
  fn();
  const took: number[] = [];
  for (let i = 0; i < runs; i++) {
    const began = performance.now();
    fn();
    took.push(performance.now() - began);
  }
  return { what, medianMs: median(took), minMs: Math.min(...took), runs };
}

function hostRecords(hosts: number, actorTypes: string[]): Array<{ address: string; appId: string; instanceId: string; actorTypes: string[] }> {
  return Array.from({ length: hosts }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}:50002`, appId: `app-${i % 20}`, instanceId: `instance-${i}`, actorTypes }));
}

/** Pure table work for `hosts` hosts: placement's computation and diff, and the sidecar's ring building. */
async function measureTables(hosts: number, actorTypes: string[], virtualNodes: number): Promise<Timing[]> {
  const { computeTable, changedActorTypes } = await loadPlacementTables();
  const records = hostRecords(hosts, actorTypes);
  const table = computeTable(records, virtualNodes);
  const changedRecords = [...records.slice(1), { address: '10.9.9.9:50002', appId: 'app-new', instanceId: 'new', actorTypes }];
  const changed = computeTable(changedRecords, virtualNodes);
  const previous = ActorPlacement.from(table);
  return [
    time(`placement: computeTable (${hosts} hosts × ${actorTypes.length} types)`, 20, () => void computeTable(records, virtualNodes)),
    time('placement: changedActorTypes (one host replaced)', 20, () => void changedActorTypes(table, changed)),
    time(`sidecar: rings from scratch (${hosts * virtualNodes} points; types with the same hosts share a ring)`, 5, () => void ActorPlacement.from(table)),
    time('sidecar: rings after one host replaced (derived from the previous ring)', 5, () => void ActorPlacement.from(changed, previous)),
  ];
}

/** ns per lookup over `ops` calls with distinct-looking actor ids. */
function measureLookups(hosts: number, actorTypes: string[], virtualNodes: number, placementTables: PlacementTables, ops: number): ActorsReport['lookup'] {
  const placement = ActorPlacement.from(placementTables.computeTable(hostRecords(hosts, actorTypes), virtualNodes));
  const ids = Array.from({ length: 4096 }, (_, i) => `actor-${i}-${(i * 2654435761) >>> 0}`);
  const type = actorTypes[0] as string;
  const bench = (what: string, fn: (id: string) => unknown): { what: string; nsPerOp: number; ops: number } => {
    let sink = 0;
    for (let i = 0; i < 50_000; i++) sink += fn(ids[i & 4095] as string) === undefined ? 1 : 0;
    const began = process.hrtime.bigint();
    for (let i = 0; i < ops; i++) sink += fn(ids[i & 4095] as string) === undefined ? 1 : 0;
    const ns = Number(process.hrtime.bigint() - began);
    if (sink < 0) say('unreachable');
    return { what, nsPerOp: ns / ops, ops };
  };
  return [
    bench(`ActorPlacement.lookup (${hosts} hosts, ${virtualNodes} vnodes: hash + binary search + member)`, (id) => placement.lookup(type, id)),
    bench('ringPosition alone (SHA-256 of the id)', (id) => ringPosition(id)),
  ];
}

async function measureDissemination(harness: Harness, settings: Settings, actorTypes: string[], batchWindowMs: number, heartbeatMs: number): Promise<DisseminationRow[]> {
  const rows: DisseminationRow[] = [];
  const { computeTable } = await loadPlacementTables();
  for (const hosts of settings.placementHosts) {
    say(`placement: ${hosts} simulated hosts`);
    const updateBytes = skeinUpdateBytes(computeTable(hostRecords(hosts, actorTypes), 100));
    const { proc, address } = await harness.placement(`bench-${hosts}`, ['--host-ttl', '60s', '--dissemination-timeout', '20s', '--batch-window', `${batchWindowMs}ms`, '--lease-ttl', '5s']);
    await proc.waitForRecord('became leader');
    const fleet = new Fleet({ placement: address, ca: harness.ca, trustDomain: 'public', namespace: 'bench', actorTypes, appIds: 20, heartbeatMs });
    const row: DisseminationRow = { hosts, initialMs: Number.NaN, samples: [], summary: summarise([]), updateBytes, streamErrors: 0 };
    try {
      const prepared = await fleet.prepare(hosts);
      const began = performance.now();
      for (const host of prepared) host.connect();
      row.initialMs = (await fleet.settled(120_000)) - began;
      await sleep(500);
      for (let i = 0; i < settings.disseminationSamples; i++) {
        const [joiner] = await fleet.prepare(1);
        if (!joiner) break;
        let from = performance.now();
        joiner.connect();
        row.samples.push((await fleet.settled(60_000)) - from);
        await sleep(300);
        from = performance.now();
        fleet.leave(joiner);
        row.samples.push((await fleet.settled(60_000)) - from);
        await sleep(300);
      }
    } catch (error) {
      row.error = error instanceof Error ? error.message : String(error);
      say(`placement at ${hosts} hosts: ${row.error}`);
    } finally {
      row.streamErrors = fleet.errors;
      fleet.close();
      await proc.stop();
    }
    row.summary = summarise(row.samples);
    rows.push(row);
  }
  return rows;
}

function skeinUpdateBytes(table: TableSpec): number {
  return placementUpdateEncoder({ operation: 2, version: '0000000000001-leader', table: { virtualNodes: table.virtualNodes, rings: table.rings.map((ring) => ({ actorType: ring.actorType, members: ring.members.map((member) => ({ address: member.address, appId: member.appId })) })) } });
}

function placementUpdateEncoder(order: skein.placement.v1.IPlacementOrder): number {
  return skein.placement.v1.PlacementOrder.encode(order).finish().length;
}

export async function runActors(harness: Harness, settings: Settings): Promise<ActorsReport> {
  const began = performance.now();
  const started: Array<{ stop: () => Promise<void> }> = [];
  const actorTypes = ['Cart', 'Counter', 'Session'];
  let report: Omit<ActorsReport, 'targets' | 'elapsedSeconds' | 'tables' | 'dissemination' | 'lookup'>;
  try {
    say('actors: placement, an actor host (app + sidecar), a reminder host and a caller sidecar');
    const placement = await harness.placement('bench-actors', ['--batch-window', '20ms']);
    started.push(placement.proc);
    await placement.proc.waitForRecord('became leader');
    const placementArgs = ['--placement-address', placement.address];
    const app = await harness.app('actor-app', { INSTANCE: 'host', ACTOR_TYPES: ACTOR_TYPE, RECORD_TURNS: 'false' });
    const reminderApp = await harness.app('actor-app', { INSTANCE: 'reminders', ACTOR_TYPES: REMINDER_TYPE, RECORD_TURNS: 'false' });
    started.push(app.proc, reminderApp.proc);
    const [host, reminderHost, caller] = await Promise.all([
      harness.sidecar({ appId: 'actor-host', appPort: app.port, args: placementArgs }),
      harness.sidecar({ appId: 'reminder-host', appPort: reminderApp.port, args: placementArgs }),
      harness.sidecar({ appId: 'actor-caller', args: placementArgs }),
    ]);
    started.push(host.proc, reminderHost.proc, caller.proc);
    const viaSidecar = (sidecar: SidecarHandle, label: string) => (id: string): HttpTarget => ({ label, host: '127.0.0.1', port: sidecar.httpPort, path: `/v1.0/actors/${ACTOR_TYPE}/${id}/method/echo` });
    const paths = {
      direct: (id: string): HttpTarget => ({ label: 'direct', host: '127.0.0.1', port: app.port, method: 'PUT', path: `/actors/${ACTOR_TYPE}/${id}/method/echo` }),
      local: viaSidecar(host, 'local'),
      remote: viaSidecar(caller, 'remote'),
    };
    const labels = { direct: 'direct to the actor app (PUT /actors/…)', local: "through the host's own sidecar", remote: 'through 2 sidecars (caller → mTLS → host)' };
    await waitForPath(paths.remote('warm'), BODY, 30_000);
    await waitForPath(paths.local('warm'), BODY, 30_000);

    const poolSize = settings.actorIds;
    say(`actors: activating ${poolSize} actors`);
    const pool = Array.from({ length: poolSize }, (_, i) => `a-${i}`);
    for (let from = 0; from < poolSize; from += 64) await Promise.all(pool.slice(from, from + 64).map((id) => httpRequest(`${caller.url}/v1.0/actors/${ACTOR_TYPE}/${id}/method/echo`, { method: 'POST', body: '{}' })));

    say(`actors: sequential calls to active actors (${settings.actorCalls} per path)`);
    const sequential: Record<string, Phase> = {};
    for (const [name, target] of Object.entries(paths)) {
      let i = 0;
      const result = await runSequentialOver(() => target(pool[i++ % poolSize] as string), settings.sequentialWarmup / 5, settings.actorCalls, settings.timeoutMs);
      sequential[name] = phaseOf(result);
    }
    say(`actors: first calls (activation), ${settings.activations} fresh ids per path`);
    const activation: Record<string, Phase> = {};
    for (const name of ['remote', 'local'] as const) activation[name] = phaseOf(await runFirstCalls(paths[name], `fresh-${name}`, settings.activations, settings.timeoutMs));

    const throughput: ThroughputRow[] = [];
    for (const concurrency of settings.actorConcurrency) {
      const row: ThroughputRow = { concurrency, paths: {} };
      for (const [name, target] of Object.entries(paths)) {
        say(`actors: ${concurrency} in flight over ${poolSize} actors, ${name}, ${settings.actorDurationMs / 1000} s`);
        await runClosedLoop((i) => target(pool[i % poolSize] as string), concurrency, Math.min(1000, settings.actorDurationMs / 2), settings.timeoutMs);
        row.paths[name] = phaseOf(await runClosedLoop((i) => target(pool[(i * 7919) % poolSize] as string), concurrency, settings.actorDurationMs, settings.timeoutMs));
      }
      throughput.push(row);
    }

    const reminders = settings.reminders;
    const periodMs = settings.reminderPeriodMs;
    say(`reminders: registering ${reminders} reminders with period ${periodMs} ms on one host`);
    let registerErrors = 0;
    for (let from = 0; from < reminders; from += 32) {
      const batch = Array.from({ length: Math.min(32, reminders - from) }, (_, k) => from + k);
      const results = await Promise.all(batch.map((i) => httpRequest(`${reminderHost.url}/v1.0/actors/${REMINDER_TYPE}/t-${i}/reminders/tick`, { method: 'POST', body: JSON.stringify({ dueTime: '0s', period: `${periodMs}ms` }) }).catch(() => ({ status: 0 }))));
      registerErrors += results.filter((res) => res.status !== 204).length;
    }
    const counts = async (): Promise<number> => (await httpRequest(`http://127.0.0.1:${reminderApp.port}/_counts`)).json<{ reminders: number }>().reminders;
    await sleep(Math.max(1000, periodMs * 3));
    const before = await counts();
    const windowBegan = performance.now();
    await sleep(settings.reminderWindowMs);
    const fired = (await counts()) - before;
    const windowMs = performance.now() - windowBegan;
    report = {
      paths: labels,
      sequential,
      activation,
      throughput,
      reminders: { registered: reminders, periodMs, windowMs, fired, perSecond: (fired / windowMs) * 1000, expectedPerSecond: ((reminders - registerErrors) * 1000) / periodMs, registerErrors },
    };
  } finally {
    await Promise.all(started.map((proc) => proc.stop()));
  }

  say('placement: table computation (pure, in-process)');
  const tableHosts = 1000;
  const timings = await measureTables(tableHosts, actorTypes, 100);
  say('placement: ring lookup cost');
  const lookup = measureLookups(tableHosts, actorTypes, 100, await loadPlacementTables(), settings.lookupOps);
  const batchWindowMs = 10;
  const heartbeatMs = 2000;
  const dissemination = { batchWindowMs, heartbeatMs, actorTypes: actorTypes.length, rows: await measureDissemination(harness, settings, actorTypes, batchWindowMs, heartbeatMs) };

  const best = Math.max(...report.throughput.map((row) => row.paths['remote']?.perSecond ?? 0));
  const remoteClean = report.throughput.every((row) => (row.paths['remote']?.errors ?? 1) === 0);
  const activationP99 = report.activation['remote']?.latency.p99 ?? Number.NaN;
  const largest = dissemination.rows.filter((row) => row.samples.length > 0).at(-1);
  const targets: Target[] = [
    { what: 'actor calls/s through 2 sidecars (best concurrency)', target: `≥ ${count(TARGETS.callsPerSecond)}/s`, measured: `${count(best)}/s`, met: remoteClean && best >= TARGETS.callsPerSecond },
    { what: 'activation (first call) p99 through 2 sidecars', target: `≤ ${TARGETS.activationP99Ms} ms`, measured: `${ms(activationP99)} ms`, met: activationP99 <= TARGETS.activationP99Ms },
    {
      what: `dissemination to 1,000 hosts (p50 of change → last UNLOCK)`,
      target: `≤ ${TARGETS.disseminationMs} ms`,
      measured: largest ? `${ms(largest.summary.p50)} ms at ${count(largest.hosts)} hosts` : 'not measured',
      met: largest !== undefined && largest.hosts >= 1000 && largest.summary.p50 <= TARGETS.disseminationMs,
    },
  ];
  return { ...report, tables: { hosts: tableHosts, actorTypes: actorTypes.length, virtualNodes: 100, timings }, dissemination, lookup, targets, elapsedSeconds: (performance.now() - began) / 1000 };
}

/** Sequential calls whose target changes per call (runSequential sends one target). */
async function runSequentialOver(target: () => HttpTarget, warmup: number, calls: number, timeoutMs: number): Promise<LoadResult> {
  const first = target();
  // One warm-up pass on a fixed target, then the measured calls spread over the pool.
  await runSequential(first, BODY, { warmup, count: 0, timeoutMs });
  return sequentialCalls(first.label, calls, () => target(), timeoutMs);
}

export function renderActors(report: ActorsReport, settings: Settings): string {
  const out: string[] = [];
  const row = (label: string, phase: Phase | undefined): string[] => (phase ? [label, ms(phase.latency.p50), ms(phase.latency.p90), ms(phase.latency.p99), ms(phase.latency.max), count(phase.ok), errors(phase.errors, phase.errorKinds), count(phase.perSecond)] : [label, '', '', '', '', '', '', '']);
  const header = ['path', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'ok', 'errors', 'calls/s'];
  const names = Object.keys(report.paths);
  out.push('## Actors and placement', '');
  out.push(`Actor call: \`POST /v1.0/actors/${ACTOR_TYPE}/<id>/method/echo\` with a 7-byte JSON body; the test actor app echoes the request (~1 KB JSON). Baseline: the same call as the sidecar makes it, \`PUT /actors/${ACTOR_TYPE}/<id>/method/echo\` straight to the app. One placement process, one actor host, one caller sidecar, all on loopback.`, '');
  out.push(`### Sequential calls to ${count(settings.actorIds)} already-active actors (${count(settings.actorCalls)} per path)`, '');
  out.push(markdownTable(header, names.map((name) => row(report.paths[name] ?? name, report.sequential[name]))), '');
  out.push(`### First calls: activation (${count(settings.activations)} fresh actor ids per path, one at a time)`, '');
  out.push(markdownTable(header, ['remote', 'local'].map((name) => row(report.paths[name] ?? name, report.activation[name]))), '');
  out.push(`### Throughput: closed loop, N calls in flight over ${count(settings.actorIds)} active actors, ${settings.actorDurationMs / 1000} s per path`, '');
  out.push(markdownTable(['in flight', ...header], report.throughput.flatMap((entry) => names.map((name) => [String(entry.concurrency), ...row(report.paths[name] ?? name, entry.paths[name])]))), '');
  const r = report.reminders;
  out.push('### Reminders', '');
  out.push(markdownTable(['reminders', 'period', 'window', 'fired', 'fired/s', 'expected/s', 'register errors'], [[count(r.registered), `${r.periodMs} ms`, `${(r.windowMs / 1000).toFixed(1)} s`, count(r.fired), count(r.perSecond), count(r.expectedPerSecond), String(r.registerErrors)]]), '');
  out.push(`### Placement tables (pure, in-process): ${count(report.tables.hosts)} hosts × ${report.tables.actorTypes} actor types, ${report.tables.virtualNodes} virtual nodes`, '');
  out.push(markdownTable(['work', 'median ms', 'best ms', 'runs'], report.tables.timings.map((t) => [t.what, ms(t.medianMs), ms(t.minMs), String(t.runs)])), '');
  const d = report.dissemination;
  out.push(`### Dissemination through a real placement process`, '');
  out.push(`Simulated hosts: gRPC clients in the benchmark process, each on its own mTLS connection with a CA-signed SVID, ${d.actorTypes} actor types each, heartbeat every ${d.heartbeatMs / 1000} s; placement's batch window ${d.batchWindowMs} ms (included in the times). A sample is the time from one host joining (or leaving) to the moment the last host received the UNLOCK of the table that has it (or lacks it); ${settings.disseminationSamples} joins and ${settings.disseminationSamples} leaves per size.`, '');
  out.push(markdownTable(['hosts', 'first table to all (burst of joins)', 'samples', 'p50 ms', 'max ms', 'UPDATE bytes', 'stream errors', 'note'], d.rows.map((entry) => [count(entry.hosts), `${ms(entry.initialMs)} ms`, String(entry.samples.length), ms(entry.summary.p50), ms(entry.summary.max), count(entry.updateBytes), String(entry.streamErrors), entry.error ?? ''])), '');
  out.push('### Lookup per actor call (pure ring)', '');
  out.push(markdownTable(['lookup', 'ns/op', 'ops'], report.lookup.map((entry) => [entry.what, entry.nsPerOp.toFixed(0), count(entry.ops)])), '');
  out.push('### Targets', '');
  out.push(targetsTable(report.targets), '');
  return out.join('\n');
}
