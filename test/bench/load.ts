/**
 * HTTP load generators of the benchmark: sequential (one request at a time) and open-loop (sends scheduled by
 * the clock at a fixed rate, whatever the server does). Both POST the same body over keep-alive connections and
 * read each response to its end.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

/** Where requests go. */
export interface HttpTarget {
  /** Short label for reports ("direct", "mesh"). */
  label: string;
  host: string;
  port: number;
  path: string;
  /** HTTP method; POST when absent. */
  method?: string;
}

/** One load phase's raw outcome. */
export interface LoadResult {
  label: string;
  mode: 'sequential' | 'open-loop';
  /**
   * Milliseconds from the moment each successful request was due to the end of its response. In sequential mode
   * that is the moment it was sent; in open-loop mode it is its slot in the schedule, so time spent waiting
   * behind a slow request counts (no coordinated omission).
   */
  latencies: number[];
  /** Milliseconds from the actual send to the end of the response (service time, queueing in the generator excluded). */
  serviceTimes: number[];
  /** Requests the schedule called for (open-loop) or that were sent (sequential). */
  scheduled: number;
  ok: number;
  errors: number;
  /** Error counts by kind: `status <n>`, `timeout`, `refused`, an errno, `in-flight cap`, `unfinished`. */
  errorKinds: Record<string, number>;
  /** Wall time from the first scheduled send to the last completion. */
  elapsedMs: number;
  /** Completed (ok or not) requests per second over `elapsedMs`. */
  achievedRate: number;
  /** The rate asked for (open-loop only). */
  targetRate?: number;
  /** Most requests in flight at once. */
  peakInFlight: number;
}

/** How one request ended. */
type Outcome = { ok: true } | { ok: false; kind: string };

/** A keep-alive agent with at most `connections` sockets. */
export function keepAliveAgent(connections: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, keepAliveMsecs: 10_000 });
}

/** POSTs (or sends with `target.method`) `body` and resolves once the whole response has been read; never rejects. */
export function postOnce(agent: Agent, target: HttpTarget, body: Buffer, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const req = request(
      {
        agent,
        host: target.host,
        port: target.port,
        method: target.method ?? 'POST',
        path: target.path,
        headers: { 'content-type': 'application/json', 'content-length': body.length },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.on('data', () => undefined);
        res.once('end', () => settle(status === 200 ? { ok: true } : { ok: false, kind: `status ${status}` }));
        res.once('error', (error: NodeJS.ErrnoException) => settle({ ok: false, kind: error.code ?? 'response error' }));
      },
    );
    req.setTimeout(timeoutMs, () => {
      settle({ ok: false, kind: 'timeout' });
      req.destroy();
    });
    req.once('error', (error: NodeJS.ErrnoException) => settle({ ok: false, kind: error.code ?? 'request error' }));
    req.end(body);
  });
}

function emptyResult(label: string, mode: LoadResult['mode']): LoadResult {
  return { label, mode, latencies: [], serviceTimes: [], scheduled: 0, ok: 0, errors: 0, errorKinds: {}, elapsedMs: 0, achievedRate: 0, peakInFlight: 0 };
}

function countError(result: LoadResult, kind: string): void {
  result.errors++;
  result.errorKinds[kind] = (result.errorKinds[kind] ?? 0) + 1;
}

/** Options of a sequential phase. */
export interface SequentialOptions {
  /** Requests sent and discarded first (JIT, connections, caches). */
  warmup: number;
  count: number;
  timeoutMs: number;
  /** Called between the warm-up and the measured requests (to read counters over the measured part only). */
  onMeasureStart?: () => void;
}

/** Sends `count` requests one after the other on one keep-alive connection. */
export async function runSequential(target: HttpTarget, body: Buffer, options: SequentialOptions): Promise<LoadResult> {
  const agent = keepAliveAgent(1);
  try {
    for (let i = 0; i < options.warmup; i++) await postOnce(agent, target, body, options.timeoutMs);
    const result = emptyResult(target.label, 'sequential');
    options.onMeasureStart?.();
    const began = performance.now();
    for (let i = 0; i < options.count; i++) {
      const sentAt = performance.now();
      const outcome = await postOnce(agent, target, body, options.timeoutMs);
      const took = performance.now() - sentAt;
      result.scheduled++;
      if (outcome.ok) {
        result.ok++;
        result.latencies.push(took);
        result.serviceTimes.push(took);
      } else {
        countError(result, outcome.kind);
      }
    }
    result.elapsedMs = performance.now() - began;
    result.achievedRate = (result.scheduled / result.elapsedMs) * 1000;
    result.peakInFlight = 1;
    return result;
  } finally {
    agent.destroy();
  }
}

/** Options of an open-loop phase. */
export interface OpenLoopOptions {
  /** Requests per second. */
  rate: number;
  durationMs: number;
  /** Keep-alive connections the generator may open; further requests queue in the agent (and that wait counts). */
  connections: number;
  /** A request slower than this is abandoned and counted as an error. */
  timeoutMs: number;
  /**
   * Requests in flight beyond which a due request is not sent but counted as an error, so a stalled target
   * cannot make the generator pile up sockets and memory without bound.
   */
  maxInFlight: number;
  /** After the last send, how long to wait for outstanding responses before counting them as unfinished. */
  drainMs: number;
}

/**
 * Sends requests at a fixed rate for a fixed time. Each request has a slot `start + i / rate` in the schedule;
 * a timer wakes for the next slot and sends every request that is due, so a slow response delays nothing and
 * the latency of every request is measured from its slot. Count and time are both bounded.
 */
export function runOpenLoop(target: HttpTarget, body: Buffer, options: OpenLoopOptions): Promise<LoadResult> {
  const agent = keepAliveAgent(options.connections);
  const result = emptyResult(target.label, 'open-loop');
  result.targetRate = options.rate;
  const total = Math.round((options.rate * options.durationMs) / 1000);
  const interval = 1000 / options.rate;
  const start = performance.now() + 2;
  let next = 0;
  let inFlight = 0;
  let lastEnd = start;
  return new Promise<LoadResult>((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (drainTimer) clearTimeout(drainTimer);
      for (let i = 0; i < inFlight; i++) countError(result, 'unfinished');
      agent.destroy();
      result.scheduled = total;
      result.elapsedMs = lastEnd - start;
      result.achievedRate = ((result.ok + result.errors) / result.elapsedMs) * 1000;
      resolve(result);
    };
    const tick = (): void => {
      const now = performance.now();
      while (next < total && start + next * interval <= now) {
        const due = start + next * interval;
        next++;
        if (inFlight >= options.maxInFlight) {
          countError(result, 'in-flight cap');
          continue;
        }
        inFlight++;
        result.peakInFlight = Math.max(result.peakInFlight, inFlight);
        const sentAt = performance.now();
        void postOnce(agent, target, body, options.timeoutMs).then((outcome) => {
          if (finished) return;
          const end = performance.now();
          inFlight--;
          lastEnd = Math.max(lastEnd, end);
          if (outcome.ok) {
            result.ok++;
            result.latencies.push(end - due);
            result.serviceTimes.push(end - sentAt);
          } else {
            countError(result, outcome.kind);
          }
          if (next >= total && inFlight === 0) finish();
        });
      }
      if (next < total) {
        // Timers fire no sooner than 1 ms; every request that became due meanwhile is sent on the next wake.
        setTimeout(tick, Math.max(0, start + next * interval - performance.now()));
        return;
      }
      if (inFlight === 0) finish();
      else drainTimer = setTimeout(finish, options.drainMs);
    };
    setTimeout(tick, Math.max(0, start - performance.now()));
  });
}

/** Retries one request until the path answers 200, so discovery has settled before anything is measured. */
export async function waitForPath(target: HttpTarget, body: Buffer, timeoutMs = 20_000): Promise<void> {
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

/** Several phases of one path merged into one (the blocks of an interleaved sequential run). */
export function mergeLoadResults(results: readonly LoadResult[]): LoadResult {
  const first = results[0];
  if (!first) throw new Error('nothing to merge');
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

/** The benchmark's request body: 1 KB of JSON (exactly 1,024 bytes). */
export function oneKilobyteBody(): Buffer {
  const frame = '{"payload":""}';
  return Buffer.from(`{"payload":"${'x'.repeat(1024 - frame.length)}"}`);
}
