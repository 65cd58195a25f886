import assert from 'node:assert/strict';
import { addSpan, parseDueTime, parseGoDuration, parseIsoDuration, parsePeriod, parseTtl, DurationError } from '@skein/core';
import { advance, isExpired, planSchedule, startProgress } from '../src/actors/schedule.js';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);

describe('actor durations (Dapr formats)', function () {
  it('parses Go durations, signed, with fractions and the bare zero', function () {
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('0h0m9s0ms'), 9000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('250ms'), 250);
    assert.equal(parseGoDuration('-5s'), -5000);
    assert.equal(parseGoDuration('0'), 0);
    for (const bad of ['', '5', '1d', 'PT1S', '5 s', 's']) assert.equal(parseGoDuration(bad), undefined, bad);
  });

  it('parses ISO 8601 durations', function () {
    assert.deepEqual(parseIsoDuration('PT1M'), { months: 0, ms: 60_000 });
    assert.deepEqual(parseIsoDuration('P1DT2H'), { months: 0, ms: 26 * 3_600_000 });
    assert.deepEqual(parseIsoDuration('PT0.5S'), { months: 0, ms: 500 });
    assert.deepEqual(parseIsoDuration('P1Y2M'), { months: 14, ms: 0 });
    assert.deepEqual(parseIsoDuration('P2W'), { months: 0, ms: 14 * 86_400_000 });
    for (const bad of ['P', 'PT', 'P1DT', '1m', 'PT-1S', 'P1S']) assert.equal(parseIsoDuration(bad), undefined, bad);
  });

  it('adds calendar months in UTC, clamping to the end of the month', function () {
    assert.equal(new Date(addSpan(NOW, { months: 1, ms: 0 })).toISOString(), '2026-02-28T12:00:00.000Z');
    assert.equal(new Date(addSpan(NOW, { months: 12, ms: 1000 })).toISOString(), '2027-01-31T12:00:01.000Z');
  });

  it('periods: durations, ISO durations and R<n>/ repetitions; zero means once', function () {
    assert.deepEqual(parsePeriod('5s'), { every: { months: 0, ms: 5000 }, repetitions: undefined });
    assert.deepEqual(parsePeriod('PT1M'), { every: { months: 0, ms: 60_000 }, repetitions: undefined });
    assert.deepEqual(parsePeriod('R5/PT1S'), { every: { months: 0, ms: 1000 }, repetitions: 5 });
    assert.deepEqual(parsePeriod('R/PT2S'), { every: { months: 0, ms: 2000 }, repetitions: undefined });
    assert.equal(parsePeriod(''), undefined);
    assert.equal(parsePeriod(undefined), undefined);
    assert.equal(parsePeriod('0s'), undefined);
  });

  it('refuses negative and malformed periods with the offending text', function () {
    assert.throws(() => parsePeriod('-1s'), (error: Error) => error instanceof DurationError && /invalid period "-1s": the period must not be negative/.test(error.message));
    assert.throws(() => parsePeriod('R0/PT1S'), /repetitions must be greater than zero/);
    assert.throws(() => parsePeriod('R5/soon'), /invalid period "R5\/soon"/);
    assert.throws(() => parsePeriod('every minute'), /invalid period "every minute"/);
    assert.throws(() => parsePeriod('R3/PT0S'), /longer than zero/);
  });

  it('due times: empty is now, durations count from now, RFC 3339 is absolute, negative is refused', function () {
    assert.equal(parseDueTime('', NOW), NOW);
    assert.equal(parseDueTime('10s', NOW), NOW + 10_000);
    assert.equal(parseDueTime('PT10S', NOW), NOW + 10_000);
    assert.equal(parseDueTime('2026-01-31T12:01:00Z', NOW), NOW + 60_000);
    assert.equal(parseDueTime('2020-01-01T00:00:00Z', NOW), NOW, 'a time in the past fires at once');
    assert.throws(() => parseDueTime('-1s', NOW), /invalid dueTime "-1s": the due time must not be negative/);
    assert.throws(() => parseDueTime('tomorrow', NOW), /invalid dueTime "tomorrow"/);
  });

  it('TTLs count from the first fire and must end after it', function () {
    assert.equal(parseTtl('1m', NOW), NOW + 60_000);
    assert.equal(parseTtl('2026-01-31T13:00:00Z', NOW), NOW + 3_600_000);
    assert.equal(parseTtl(undefined, NOW), undefined);
    assert.throws(() => parseTtl('2026-01-31T11:00:00Z', NOW), /expires before the first fire/);
    assert.throws(() => parseTtl('-5s', NOW), /must not be negative/);
  });
});

describe('reminder schedules', function () {
  it('a one-shot fires once', function () {
    const schedule = planSchedule({ dueTime: '1s' }, NOW);
    const progress = startProgress(schedule);
    assert.equal(progress.nextFireAt, NOW + 1000);
    assert.equal(advance(schedule, progress, NOW + 1000), undefined);
  });

  it('R3/ fires three times', function () {
    const schedule = planSchedule({ dueTime: '0s', period: 'R3/PT1S' }, NOW);
    let progress = startProgress(schedule);
    const fires: number[] = [];
    for (let step = 0; step < 10; step++) {
      fires.push(progress.nextFireAt - NOW);
      const next = advance(schedule, progress, progress.nextFireAt);
      if (!next) break;
      progress = next;
    }
    assert.deepEqual(fires, [0, 1000, 2000]);
  });

  it('a TTL ends a periodic schedule', function () {
    const schedule = planSchedule({ dueTime: '0s', period: '1s', ttl: '2500ms' }, NOW);
    let progress = startProgress(schedule);
    let count = 1;
    for (let next = advance(schedule, progress, progress.nextFireAt); next; next = advance(schedule, progress, progress.nextFireAt)) {
      progress = next;
      count++;
    }
    assert.equal(count, 3, 'fires at 0, 1 s and 2 s; 3 s is past the TTL');
    assert.equal(isExpired(schedule, NOW + 2500), true);
    assert.equal(isExpired(schedule, NOW + 2499), false);
  });

  it('fires missed while nobody owned the actor collapse into one; the next slot is after now', function () {
    const schedule = planSchedule({ dueTime: '0s', period: '1s' }, NOW);
    const next = advance(schedule, startProgress(schedule), NOW + 10_500);
    assert.deepEqual(next, { nextFireAt: NOW + 11_000, fired: 1 });
  });

  it('monthly periods follow the calendar', function () {
    const schedule = planSchedule({ dueTime: '2026-01-31T12:00:00Z', period: 'P1M' }, NOW);
    const next = advance(schedule, startProgress(schedule), NOW);
    assert.equal(new Date(next?.nextFireAt ?? 0).toISOString(), '2026-02-28T12:00:00.000Z');
  });
});
