/**
 * How long to wait before each retry, with Dapr's defaults: `constant` waits the same `duration` every time;
 * `exponential` starts near 500 ms and grows ×1.5 per retry with ±50% jitter, never past `maxInterval` (60 s by
 * default). Pure: the caller supplies the random number, so the sequence is reproducible in tests.
 */

/** Wait of the `constant` policy when `duration` is not given. */
export const DEFAULT_CONSTANT_DELAY_MS = 5000;
/** First interval of the `exponential` policy. */
export const EXPONENTIAL_INITIAL_MS = 500;
/** Growth of the `exponential` interval per retry. */
export const EXPONENTIAL_MULTIPLIER = 1.5;
/** Jitter of the `exponential` policy: each wait is the interval ± this fraction of it. */
export const EXPONENTIAL_RANDOMIZATION = 0.5;
/** Longest wait of the `exponential` policy when `maxInterval` is not given. */
export const DEFAULT_MAX_INTERVAL_MS = 60_000;

/** A compiled back-off. */
export type Backoff = { readonly kind: 'constant'; readonly delayMs: number } | { readonly kind: 'exponential'; readonly maxIntervalMs: number };

/**
 * Milliseconds to wait before retry number `retry` (1 for the first retry). `random` is a number in [0, 1);
 * 0.5 gives the interval itself, 0 its lower and just under 1 its upper jitter bound.
 */
export function retryDelay(backoff: Backoff, retry: number, random: number): number {
  if (backoff.kind === 'constant') return backoff.delayMs;
  const growth = Math.pow(EXPONENTIAL_MULTIPLIER, Math.max(0, retry - 1));
  const interval = Math.min(EXPONENTIAL_INITIAL_MS * growth, backoff.maxIntervalMs);
  const jittered = interval * (1 - EXPONENTIAL_RANDOMIZATION + 2 * EXPONENTIAL_RANDOMIZATION * random);
  // Dapr documents maxInterval as the ceiling of every wait, jitter included.
  return Math.round(Math.min(jittered, backoff.maxIntervalMs));
}
