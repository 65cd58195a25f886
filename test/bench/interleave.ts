/**
 * Sequential comparisons run in interleaved blocks: each path's requests are split into blocks and the paths take
 * turns, block by block, so that a change in the machine's background load during the run lands on every path
 * rather than on whichever was being measured at the time.
 */
import { cpuTimeOf } from './resources.js';

/** One path of an interleaved comparison. */
export interface InterleavedPath<R> {
  label: string;
  /** Processes on this path whose CPU time is charged to its measured requests. */
  pids: Record<string, number>;
  /** Sends `warmup` discarded requests, calls `onMeasureStart`, then sends `count` measured ones. */
  runBlock(warmup: number, count: number, onMeasureStart: () => void): Promise<R>;
}

/** Sizes of an interleaved run. */
export interface InterleaveOptions {
  /** Measured requests per path, over all blocks. */
  count: number;
  blocks: number;
  /** Discarded requests before a path's first block (JIT, connections, caches). */
  warmup: number;
  /** Discarded requests before each later block, so a path's first request after a pause is not measured. */
  blockWarmup: number;
  /**
   * A pause after each block, counted in that block's CPU, for work the path defers (span batches exported every
   * 0.5 s) to land in the path that caused it and not in the next path's block.
   */
  settleMs?: number;
}

/** What one path measured over all its blocks. */
export interface InterleavedResult<R> {
  label: string;
  blocks: R[];
  /**
   * CPU time per measured request of each process (all threads), in microseconds, counted from the first measured
   * request of each block to the end of its settle pause (or its last request, without one).
   */
  cpuMicrosPerRequest: Record<string, number>;
}

/** Runs every path's blocks in turn: block 1 of each path, then block 2 of each, and so on. */
export async function runInterleaved<R>(paths: readonly InterleavedPath<R>[], options: InterleaveOptions): Promise<InterleavedResult<R>[]> {
  const perBlock = Math.ceil(options.count / options.blocks);
  const state = paths.map((path) => ({ path, blocks: [] as R[], cpuMs: Object.fromEntries(Object.keys(path.pids).map((name) => [name, 0])), requests: 0 }));
  for (let block = 0; block < options.blocks; block++) {
    for (const entry of state) {
      const warmup = block === 0 ? options.warmup : options.blockWarmup;
      const before: Record<string, number> = {};
      const onMeasureStart = (): void => {
        for (const [name, pid] of Object.entries(entry.path.pids)) before[name] = cpuTimeOf(pid);
      };
      entry.blocks.push(await entry.path.runBlock(warmup, perBlock, onMeasureStart));
      if (options.settleMs) await new Promise((resolve) => setTimeout(resolve, options.settleMs));
      for (const [name, pid] of Object.entries(entry.path.pids)) entry.cpuMs[name] = (entry.cpuMs[name] ?? 0) + cpuTimeOf(pid) - (before[name] ?? 0);
      entry.requests += perBlock;
    }
  }
  return state.map((entry) => ({
    label: entry.path.label,
    blocks: entry.blocks,
    cpuMicrosPerRequest: Object.fromEntries(Object.entries(entry.cpuMs).map(([name, cpuMs]) => [name, (cpuMs * 1000) / Math.max(1, entry.requests)])),
  }));
}
