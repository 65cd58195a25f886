import { addSpan, parseDueTime, parsePeriod, parseTtl, type Period } from '@skein/core';

/**
 * When reminders and timers fire. Pure: the caller passes the clock. A schedule is planned once from the request
 * (`planSchedule`) and advanced after every fire (`advance`), so a reminder's progress can be stored as two numbers
 * and resumed by whichever sidecar owns the actor next.
 */

/** What a reminder or timer request says about time, as the Dapr API receives it. */
export interface ScheduleSpec {
  dueTime?: string | undefined;
  period?: string | undefined;
  ttl?: string | undefined;
}

/** A validated schedule. */
export interface Schedule {
  firstFireAt: number;
  period: Period | undefined;
  /** No fire at or after this instant; undefined for no TTL. */
  expiresAt: number | undefined;
}

/** Where a schedule stands: the next fire and how many fires happened before it. */
export interface ScheduleProgress {
  nextFireAt: number;
  fired: number;
}

/** Validates `spec` against `now`; throws `DurationError` with a message for the caller on any bad field. */
export function planSchedule(spec: ScheduleSpec, now: number): Schedule {
  const period = parsePeriod(spec.period);
  const firstFireAt = parseDueTime(spec.dueTime, now);
  const expiresAt = parseTtl(spec.ttl, firstFireAt);
  return { firstFireAt, period, expiresAt };
}

/** The progress of a schedule that has not fired yet. */
export function startProgress(schedule: Schedule): ScheduleProgress {
  return { nextFireAt: schedule.firstFireAt, fired: 0 };
}

/** True when the fire due now must not happen any more: the TTL has passed. */
export function isExpired(schedule: Schedule, now: number): boolean {
  return schedule.expiresAt !== undefined && now >= schedule.expiresAt;
}

/** Safety valve for calendar periods far in arrears; a millisecond period is skipped ahead arithmetically. */
const MAX_CATCH_UP_STEPS = 10_000;

/**
 * The progress after the fire that was due at `progress.nextFireAt` happened at `now`; undefined when that was the
 * last one (no period, repetitions used up, or the next fire would fall at or after the TTL). Fires missed while
 * nobody owned the actor are not replayed one by one: the next fire is the first slot after `now`.
 */
export function advance(schedule: Schedule, progress: ScheduleProgress, now: number): ScheduleProgress | undefined {
  const { period } = schedule;
  const fired = progress.fired + 1;
  if (!period) return undefined;
  if (period.repetitions !== undefined && fired >= period.repetitions) return undefined;
  let next = addSpan(progress.nextFireAt, period.every);
  if (next <= now) {
    if (period.every.months === 0 && period.every.ms > 0) {
      const behind = Math.floor((now - next) / period.every.ms) + 1;
      next += behind * period.every.ms;
    } else {
      for (let step = 0; next <= now && step < MAX_CATCH_UP_STEPS; step++) next = addSpan(next, period.every);
      if (next <= now) next = now + 1;
    }
  }
  if (schedule.expiresAt !== undefined && next >= schedule.expiresAt) return undefined;
  return { nextFireAt: next, fired };
}
