/**
 * When a crashed control-plane process is started again: pure arithmetic, no clock or timers (the supervisor owns
 * those), so the schedule is tested directly.
 */

/** How restarts back off. */
export interface RestartBackoff {
  /** Delay before the first restart after a crash. */
  initialMs: number;
  /** The delay doubles per consecutive crash up to this. */
  maxMs: number;
  /** A process that ran at least this long before it crashed starts the schedule again from `initialMs`. */
  resetAfterMs: number;
}

/** 0.5 s doubling to 10 s; a process that ran 30 s counts as healthy again. */
export const DEFAULT_RESTART_BACKOFF: RestartBackoff = Object.freeze({ initialMs: 500, maxMs: 10_000, resetAfterMs: 30_000 });

/** The delay before the restart that follows `consecutiveCrashes` crashes in a row (1 for the first). */
export function restartDelayMs(consecutiveCrashes: number, backoff: RestartBackoff = DEFAULT_RESTART_BACKOFF): number {
  const doublings = Math.max(0, consecutiveCrashes - 1);
  // Capped before it is computed, so a long crash loop never overflows to Infinity.
  if (doublings >= Math.log2(backoff.maxMs / backoff.initialMs)) return backoff.maxMs;
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** doublings);
}

/**
 * Consecutive crashes once a process that had `previous` crashes before it crashes after running `uptimeMs`: one
 * that ran for `resetAfterMs` starts the count again.
 */
export function consecutiveCrashesAfter(previous: number, uptimeMs: number, backoff: RestartBackoff = DEFAULT_RESTART_BACKOFF): number {
  return uptimeMs >= backoff.resetAfterMs ? 1 : previous + 1;
}
