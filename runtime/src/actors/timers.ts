import { systemClock, type Clock, type TimerHandle } from '@skein/core';
import type { TimerRequest } from './requests.js';
import { advance, isExpired, startProgress, type Schedule, type ScheduleProgress } from './schedule.js';

/** setTimeout's ceiling; longer waits are re-armed in steps. */
const MAX_TIMER_MS = 2_000_000_000;

/** One in-memory timer of an activation. */
export interface ActorTimer {
  readonly name: string;
  readonly request: TimerRequest;
  readonly schedule: Schedule;
  progress: ScheduleProgress;
}

/**
 * The timers of one activation. They live in memory only and die with the activation (Dapr's timers); each fire
 * is handed to `fire`, which runs it as a turn, and the timer is re-armed from its schedule when that returns.
 */
export class ActivationTimers {
  private readonly timers = new Map<string, { timer: ActorTimer; handle: TimerHandle | undefined }>();
  private readonly fire: (timer: ActorTimer) => Promise<'keep' | 'drop'>;
  private readonly clock: Clock;
  private closed = false;

  constructor(fire: (timer: ActorTimer) => Promise<'keep' | 'drop'>, clock: Clock = systemClock) {
    this.fire = fire;
    this.clock = clock;
  }

  /** Creates or replaces a timer. */
  set(name: string, request: TimerRequest, schedule: Schedule): void {
    this.delete(name);
    if (this.closed) return;
    const entry = { timer: { name, request, schedule, progress: startProgress(schedule) }, handle: undefined as TimerHandle | undefined };
    this.timers.set(name, entry);
    this.arm(entry);
  }

  /** Deletes a timer; false when there was none. */
  delete(name: string): boolean {
    const entry = this.timers.get(name);
    if (!entry) return false;
    this.clock.clearTimeout(entry.handle);
    this.timers.delete(name);
    return true;
  }

  /** Number of live timers. */
  get size(): number {
    return this.timers.size;
  }

  /** Stops every timer (the activation ends). */
  close(): void {
    this.closed = true;
    for (const entry of this.timers.values()) this.clock.clearTimeout(entry.handle);
    this.timers.clear();
  }

  private arm(entry: { timer: ActorTimer; handle: TimerHandle | undefined }): void {
    const delay = Math.max(0, entry.timer.progress.nextFireAt - this.clock.now());
    entry.handle = this.clock.setTimeout(() => {
      entry.handle = undefined;
      if (delay >= MAX_TIMER_MS) {
        this.arm(entry);
        return;
      }
      void this.run(entry);
    }, Math.min(delay, MAX_TIMER_MS));
  }

  private async run(entry: { timer: ActorTimer; handle: TimerHandle | undefined }): Promise<void> {
    const { timer } = entry;
    if (isExpired(timer.schedule, this.clock.now())) {
      this.timers.delete(timer.name);
      return;
    }
    const verdict = await this.fire(timer);
    if (this.closed || this.timers.get(timer.name) !== entry) return;
    const next = verdict === 'keep' ? advance(timer.schedule, timer.progress, this.clock.now()) : undefined;
    if (!next) {
      this.timers.delete(timer.name);
      return;
    }
    timer.progress = next;
    this.arm(entry);
  }
}
