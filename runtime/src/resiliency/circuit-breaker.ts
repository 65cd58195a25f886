/**
 * A circuit breaker with the semantics of Dapr's (sony/gobreaker): closed, it lets every call through and counts
 * outcomes; after a failure that makes `trip` true it opens and refuses calls for `timeout`; then it is half-open
 * and lets `maxRequests` trial calls through — that many successes in a row close it, one failure opens it again.
 * While closed, the counters are cleared every `interval` (never when 0). Each state change starts a new
 * generation, so outcomes of calls admitted before it are ignored.
 *
 * Pure: time is passed in (`now`, milliseconds on any monotonic clock) and transitions are reported through a
 * callback; no timers, no I/O.
 */

/** Where a breaker is. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Dapr's counters, as `trip` sees them. Cleared at every state change and every `interval` while closed. */
export interface BreakerCounts {
  requests: number;
  totalSuccesses: number;
  totalFailures: number;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
}

/** A compiled breaker policy. */
export interface BreakerSettings {
  /** Trial calls while half-open; 0 is taken as 1, as gobreaker does. */
  readonly maxRequests: number;
  /** Counter reset period while closed; 0 never resets. */
  readonly intervalMs: number;
  /** Time spent open before half-open. */
  readonly timeoutMs: number;
  /** Decides, after a failure while closed, whether to open. */
  readonly trip: (counts: Readonly<BreakerCounts>) => boolean;
}

/** One change of state, with the counters as they were when it happened. */
export interface BreakerTransition {
  readonly from: BreakerState;
  readonly to: BreakerState;
  readonly counts: Readonly<BreakerCounts>;
}

/** Whether a call may go ahead: with the generation to report its outcome under, or refused and why. */
export type Admission =
  | { readonly admitted: true; readonly generation: number }
  | { readonly admitted: false; readonly state: 'open'; readonly retryInMs: number }
  | { readonly admitted: false; readonly state: 'half-open'; readonly inFlight: number };

function zeroCounts(): BreakerCounts {
  return { requests: 0, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0 };
}

/** One breaker, for one target. */
export class CircuitBreaker {
  private readonly settings: BreakerSettings;
  private readonly onTransition: (transition: BreakerTransition) => void;
  private current: BreakerState = 'closed';
  private generation = 0;
  private counters: BreakerCounts = zeroCounts();
  /** Closed: when the counters are next cleared (undefined: never). Open: when it turns half-open. */
  private expiry: number | undefined;

  constructor(settings: BreakerSettings, now: number, onTransition: (transition: BreakerTransition) => void = () => undefined) {
    this.settings = settings;
    this.onTransition = onTransition;
    this.expiry = settings.intervalMs > 0 ? now + settings.intervalMs : undefined;
  }

  private get maxRequests(): number {
    return Math.max(1, this.settings.maxRequests);
  }

  /** The state at `now`, moving open → half-open (or clearing the counters) when the time has come. */
  state(now: number): BreakerState {
    if (this.expiry !== undefined && now >= this.expiry) {
      if (this.current === 'closed') this.newGeneration(now);
      else if (this.current === 'open') this.moveTo('half-open', now);
    }
    return this.current;
  }

  /** A copy of the counters. */
  counts(): Readonly<BreakerCounts> {
    return { ...this.counters };
  }

  /** When an open breaker turns half-open; undefined in any other state. */
  halfOpenAt(): number | undefined {
    return this.current === 'open' ? this.expiry : undefined;
  }

  /** Asks to make a call at `now`. An admitted call must report its outcome with `record`. */
  admit(now: number): Admission {
    const state = this.state(now);
    if (state === 'open') return { admitted: false, state: 'open', retryInMs: Math.max(0, (this.expiry ?? now) - now) };
    if (state === 'half-open' && this.counters.requests >= this.maxRequests) return { admitted: false, state: 'half-open', inFlight: this.counters.requests };
    this.counters.requests++;
    return { admitted: true, generation: this.generation };
  }

  /** Reports the outcome of a call admitted under `generation`; outcomes from before the last change are ignored. */
  record(generation: number, success: boolean, now: number): void {
    this.state(now);
    if (generation !== this.generation) return;
    const counts = this.counters;
    if (success) {
      counts.totalSuccesses++;
      counts.consecutiveSuccesses++;
      counts.consecutiveFailures = 0;
      if (this.current === 'half-open' && counts.consecutiveSuccesses >= this.maxRequests) this.moveTo('closed', now);
      return;
    }
    counts.totalFailures++;
    counts.consecutiveFailures++;
    counts.consecutiveSuccesses = 0;
    if (this.current === 'half-open' || (this.current === 'closed' && this.settings.trip(counts))) this.moveTo('open', now);
  }

  /**
   * Forgets a call admitted under `generation` whose outcome says nothing about the target (its caller went away),
   * so a half-open breaker does not wait for it forever.
   */
  abandon(generation: number, now: number): void {
    this.state(now);
    if (generation === this.generation && this.counters.requests > 0) this.counters.requests--;
  }

  private moveTo(to: BreakerState, now: number): void {
    if (to === this.current) return;
    const transition: BreakerTransition = { from: this.current, to, counts: { ...this.counters } };
    this.current = to;
    this.newGeneration(now);
    this.onTransition(transition);
  }

  private newGeneration(now: number): void {
    this.generation++;
    this.counters = zeroCounts();
    if (this.current === 'closed') this.expiry = this.settings.intervalMs > 0 ? now + this.settings.intervalMs : undefined;
    else if (this.current === 'open') this.expiry = now + this.settings.timeoutMs;
    else this.expiry = undefined;
  }
}
