/** Latency statistics of the benchmark. Pure functions over arrays of milliseconds. */

/** The percentiles every table reports, in this order. */
export const PERCENTILES = [50, 90, 99] as const;

/** A latency distribution in milliseconds. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * The nearest-rank percentile of an ascending array: the smallest sample such that at least `p` % of the
 * samples are at or below it. Chosen over interpolation because every reported number is then a latency some
 * request really had.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** Summarises samples (milliseconds, any order). */
export function summarise(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const values = Array.from(sorted);
  let total = 0;
  for (const value of values) total += value;
  return {
    count: values.length,
    mean: values.length ? total / values.length : Number.NaN,
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.length ? (values[values.length - 1] as number) : Number.NaN,
  };
}

/** What the mesh adds to the direct path at each point of the distribution. */
export interface Overhead {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** mesh ÷ direct at p50 and p99. */
  ratioP50: number;
  ratioP99: number;
}

/**
 * Mesh minus direct at the same percentile. This is the difference of two distributions, not a per-request
 * difference, which is what "added latency" means in Dapr's published numbers as well.
 */
export function overhead(direct: LatencySummary, mesh: LatencySummary): Overhead {
  return {
    p50: mesh.p50 - direct.p50,
    p90: mesh.p90 - direct.p90,
    p99: mesh.p99 - direct.p99,
    max: mesh.max - direct.max,
    ratioP50: mesh.p50 / direct.p50,
    ratioP99: mesh.p99 / direct.p99,
  };
}
