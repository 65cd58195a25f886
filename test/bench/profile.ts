/**
 * Summarises a V8 CPU profile (`node --cpu-prof` writes one `.cpuprofile` JSON per process at exit): self time
 * by function, by source file and by area (Node's HTTP/1, HTTP/2, TLS, streams; grpc-js; protobuf; Skein; GC),
 * optionally only over a time window such as the load phase. Run directly to summarise a file:
 * `node test/dist/bench/profile.js <file.cpuprofile> [fromMicros toMicros]`.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** The parts of the `.cpuprofile` format the summary reads. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }>;
  /** Microseconds on the system's monotonic clock (the clock of `process.hrtime`). */
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds between consecutive samples; the first is from `startTime`. */
  timeDeltas: number[];
}

/** One row of a self-time table. */
export interface SelfTimeRow {
  name: string;
  ms: number;
  /** Share of busy (non-idle) time, 0–100. */
  percent: number;
}

/** Where a process spent its CPU over the summarised window. */
export interface ProfileSummary {
  windowMs: number;
  /** Sampled time not idle. */
  busyMs: number;
  /** busy ÷ window: average cores in use by the JavaScript thread (helper threads are not sampled). */
  busyShare: number;
  samples: number;
  byArea: SelfTimeRow[];
  byFile: SelfTimeRow[];
  byFunction: SelfTimeRow[];
  /** Functions of Skein's own runtime, however small: the part Skein can change directly. */
  skeinFunctions: SelfTimeRow[];
}

const IDLE = '(idle)';

/** The area a frame's code belongs to, for a coarse picture of where time goes. */
export function areaOf(functionName: string, url: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return 'V8 / native (program)';
    if (functionName === IDLE) return IDLE;
    return `native: ${functionName || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) {
    const module = url.slice('node:'.length);
    if (module.includes('http2')) return 'node: HTTP/2';
    if (/^_http_|^http$|internal\/http/.test(module)) return 'node: HTTP/1.1';
    if (/tls|crypto/.test(module)) return 'node: TLS / crypto';
    if (/streams\/|^stream$|^_stream/.test(module)) return 'node: streams';
    if (/^net$|stream_base_commons|internal\/net|dns|dgram/.test(module)) return 'node: net / sockets';
    if (/timers|process\/task_queues|async_hooks|events|abort_controller|event_target/.test(module)) return 'node: events / timers / microtasks';
    if (/buffer|encoding|util/.test(module)) return 'node: buffer / util';
    return 'node: other';
  }
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (packageMatch) {
    const name = packageMatch[1] as string;
    if (name === 'protobufjs' || name.startsWith('@protobufjs/')) return 'protobuf (protobufjs)';
    return name;
  }
  if (/\/proto\/dist\//.test(url)) return 'protobuf (Skein generated code)';
  if (/\/runtime\/dist\//.test(url)) return 'Skein runtime';
  return 'other JS';
}

/** A short, stable name for a script URL (package-relative, no file:// prefix). */
export function shortFile(url: string): string {
  if (!url) return '(native)';
  const packageAt = url.lastIndexOf('node_modules/');
  if (packageAt !== -1) return url.slice(packageAt + 'node_modules/'.length);
  const repo = /\/(runtime|proto|test|samples\/[^/]+)\/dist\/(.*)$/.exec(url);
  if (repo) return `${repo[1]}/${repo[2]}`;
  return url.replace(/^file:\/\//, '');
}

function rows(table: Map<string, number>, busyMs: number, top: number): SelfTimeRow[] {
  return [...table.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({ name, ms, percent: busyMs > 0 ? (ms / busyMs) * 100 : 0 }));
}

function add(table: Map<string, number>, key: string, ms: number): void {
  table.set(key, (table.get(key) ?? 0) + ms);
}

/**
 * Self time by area, file and function. With a window (microseconds on the monotonic clock), only samples taken
 * inside it count; each sample is weighted by the time until the next one.
 */
export function summariseProfile(profile: CpuProfile, window?: { fromMicros: number; toMicros: number }, top = 20): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byArea = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const skeinFunctions = new Map<string, number>();
  const from = window?.fromMicros ?? profile.startTime;
  const to = window?.toMicros ?? profile.endTime;
  let at = profile.startTime;
  let busyMicros = 0;
  let counted = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    const frame = nodes.get(profile.samples[i] as number);
    if (!frame) continue;
    const weight = profile.timeDeltas[i + 1] ?? 0;
    counted++;
    const area = areaOf(frame.functionName, frame.url);
    if (area === IDLE) continue;
    busyMicros += weight;
    const ms = weight / 1000;
    add(byArea, area, ms);
    add(byFile, shortFile(frame.url), ms);
    const name = `${frame.functionName || '(anonymous)'}  ${frame.url ? `${shortFile(frame.url)}:${frame.lineNumber + 1}` : ''}`.trim();
    add(byFunction, name, ms);
    if (area === 'Skein runtime') add(skeinFunctions, name, ms);
  }
  const busyMs = busyMicros / 1000;
  const windowMs = (Math.min(to, profile.endTime) - Math.max(from, profile.startTime)) / 1000;
  return {
    windowMs,
    busyMs,
    busyShare: windowMs > 0 ? busyMs / windowMs : 0,
    samples: counted,
    byArea: rows(byArea, busyMs, top),
    byFile: rows(byFile, busyMs, top),
    byFunction: rows(byFunction, busyMs, top),
    skeinFunctions: rows(skeinFunctions, busyMs, top),
  };
}

function table(title: string, list: SelfTimeRow[]): string {
  const lines = [`| ${title} | self ms | % of busy |`, '|---|---:|---:|'];
  for (const row of list) lines.push(`| \`${row.name.replace(/\|/g, '\\|')}\` | ${row.ms.toFixed(0)} | ${row.percent.toFixed(1)} |`);
  return lines.join('\n');
}

/** The summary as Markdown: one line of totals, then the three tables. */
export function formatProfileSummary(name: string, summary: ProfileSummary, top = { areas: 12, files: 12, functions: 20, skein: 10 }): string {
  return [
    `#### ${name}`,
    '',
    `Window ${(summary.windowMs / 1000).toFixed(1)} s, JS thread busy ${(summary.busyMs / 1000).toFixed(2)} s (${(summary.busyShare * 100).toFixed(0)} % of one core), ${summary.samples} samples.`,
    '',
    table('Area', summary.byArea.slice(0, top.areas)),
    '',
    table('File', summary.byFile.slice(0, top.files)),
    '',
    table('Function', summary.byFunction.slice(0, top.functions)),
    '',
    table('Skein runtime function', summary.skeinFunctions.slice(0, top.skein)),
    '',
  ].join('\n');
}

/** Now on the clock of `.cpuprofile` timestamps (the system's monotonic clock), in microseconds. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** What one process spends per call beyond a baseline process handling the same calls by a simpler path. */
export interface PerCallDifference {
  name: string;
  /** Self time per call, in microseconds, in the profiled process and in the baseline. */
  micros: number;
  baselineMicros: number;
}

/**
 * Self time per call of each row, against the same row of a baseline, largest increase first. Profiles of two
 * processes that served different numbers of calls compare only per call; rows absent from one side count as 0.
 */
export function perCallDifference(rows: readonly SelfTimeRow[], calls: number, baseline: readonly SelfTimeRow[], baselineCalls: number, top = 15): PerCallDifference[] {
  const perCall = (list: readonly SelfTimeRow[], n: number): Map<string, number> => new Map(list.map((row) => [row.name, (row.ms * 1000) / Math.max(1, n)]));
  const mine = perCall(rows, calls);
  const theirs = perCall(baseline, baselineCalls);
  return [...new Set([...mine.keys(), ...theirs.keys()])]
    .map((name) => ({ name, micros: mine.get(name) ?? 0, baselineMicros: theirs.get(name) ?? 0 }))
    .sort((a, b) => b.micros - b.baselineMicros - (a.micros - a.baselineMicros))
    .slice(0, top);
}

/** The differences as a Markdown table. */
export function formatPerCallDifference(title: string, rows: readonly PerCallDifference[], labels: { profiled: string; baseline: string }): string {
  const lines = [`| ${title} | ${labels.profiled} µs/call | ${labels.baseline} µs/call | difference µs/call |`, '|---|---:|---:|---:|'];
  for (const row of rows) {
    const difference = row.micros - row.baselineMicros;
    lines.push(`| \`${row.name.replace(/\|/g, '\\|')}\` | ${row.micros.toFixed(0)} | ${row.baselineMicros.toFixed(0)} | ${difference >= 0 ? '+' : ''}${difference.toFixed(0)} |`);
  }
  return lines.join('\n');
}

/** Reads a `.cpuprofile` file. */
export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, from, to] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node test/dist/bench/profile.js <file.cpuprofile> [fromMicros toMicros]\n');
    process.exit(2);
  }
  const window = from && to ? { fromMicros: Number(from), toMicros: Number(to) } : undefined;
  process.stdout.write(formatProfileSummary(file, summariseProfile(readProfile(file), window, 40)));
}
