/**
 * Time as a dependency. Code that schedules or timestamps takes a `Clock` instead of reading `Date.now()` or
 * calling `setTimeout` itself, so tests drive it with a manual clock and pure modules stay free of time.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `callback` after `ms`; the handle cancels it. The timer never keeps the process alive. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancels a timer; cancelling one that fired, was cancelled or is undefined does nothing. */
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** An opaque timer handle of a `Clock`. */
export interface TimerHandle {
  readonly id: unknown;
}

/** Node's timer ceiling (2^31 - 1 ms, about 24.8 days): a longer wait must be re-armed in steps. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;

/** The machine's clock and Node's timers (unref'd; delays clamped to 0 and to Node's ceiling). */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = setTimeout(callback, Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS));
    timer.unref();
    return { id: timer };
  },
  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) clearTimeout(handle.id as NodeJS.Timeout);
  },
});

/**
 * An `AbortSignal` that aborts `timeoutMs` from now on `clock`, with a TimeoutError as `AbortSignal.timeout` does.
 * Call `cancel()` when the work is over, so no timer outlives it.
 */
export function clockTimeout(clock: Clock, timeoutMs: number): { signal: AbortSignal; cancel(): void } {
  const controller = new AbortController();
  const timer = clock.setTimeout(() => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')), timeoutMs);
  return { signal: controller.signal, cancel: () => clock.clearTimeout(timer) };
}

/** Resolves `ms` from now on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/**
 * A clock that moves only when told to, for tests: `advance(ms)` fires, in time order, every timer that falls due.
 */
export class ManualClock implements Clock {
  private current: number;
  private nextId = 0;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();
  private waiters: Array<() => void> = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { at: this.current + Math.max(0, ms), callback });
    for (const waiter of this.waiters.splice(0)) waiter();
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.timers.delete(handle.id as number);
  }

  /** Moves time forward by `ms`, firing due timers in order (timers they set that fall due fire too). */
  advance(ms: number): void {
    const end = this.current + ms;
    for (;;) {
      let due: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      this.timers.delete(due[0]);
      this.current = due[1].at;
      due[1].callback();
    }
    this.current = end;
  }

  /**
   * Like `advance`, for code whose timer callbacks start asynchronous work: after each timer fires, pending promise
   * callbacks run before the next due timer is looked for, so work that re-arms from a callback is seen.
   */
  async advanceAsync(ms: number): Promise<void> {
    const end = this.current + ms;
    for (;;) {
      const due = this.earliest();
      if (!due || due[1].at > end) break;
      this.timers.delete(due[0]);
      this.current = due[1].at;
      due[1].callback();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.current = end;
  }

  /** How many timers are waiting. */
  get pending(): number {
    return this.timers.size;
  }

  /** Milliseconds until the earliest waiting timer falls due; undefined when none waits. */
  nextDelay(): number | undefined {
    const due = this.earliest();
    return due ? due[1].at - this.current : undefined;
  }

  /** Resolves once at least `count` timers are waiting (work that arms them may still be in flight). */
  async whenPending(count = 1): Promise<void> {
    while (this.timers.size < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private earliest(): [number, { at: number; callback: () => void }] | undefined {
    let due: [number, { at: number; callback: () => void }] | undefined;
    for (const entry of this.timers) if (!due || entry[1].at < due[1].at) due = entry;
    return due;
  }
}
