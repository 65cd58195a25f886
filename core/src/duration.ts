/**
 * Skein's one duration grammar. Go durations (`500ms`, `1m30s`, `-5s`, `0`, `.5s`) as Go's `time.ParseDuration`
 * reads them; ISO 8601 durations (`PT1M`, `P1DT2H`) and repetitions (`R5/PT1S`) for actor reminder periods;
 * RFC 3339 times for due times and TTLs. Pure: no I/O, and no clock (callers pass `now`).
 */

/** A span of time: calendar months (ISO 8601 years and months) plus fixed milliseconds (days are 24 h, in UTC). */
export interface Span {
  months: number;
  ms: number;
}

/** A parse failure; the message names the field and the offending text and is safe to show to the caller. */
export class DurationError extends Error {
  override readonly name = 'DurationError';
}

const GO_UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const GO_DURATION = /^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const GO_PART = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;
const ISO_DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/i;
const ISO_REPETITION = /^R(\d*)\/(.+)$/i;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** Go's `time.ParseDuration`: signed milliseconds; undefined when `text` is not in that format. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!GO_DURATION.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(GO_PART)) total += Number(match[1]) * (GO_UNIT_MS[match[2] as string] ?? 0);
  return text.startsWith('-') ? -total : total;
}

/** An ISO 8601 duration (`P1Y2M3W4DT5H6M7.5S`); undefined when `text` is not one. Never negative. */
export function parseIsoDuration(text: string): Span | undefined {
  const match = ISO_DURATION.exec(text);
  // "P" and "PT" alone match the pattern but name no amount.
  if (!match || /^PT?$/i.test(text) || /T$/i.test(text)) return undefined;
  const number = (index: number): number => Number((match[index] ?? '0').replace(',', '.'));
  return {
    months: number(1) * 12 + number(2),
    ms: ((number(3) * 7 + number(4)) * 24 * 3600 + number(5) * 3600 + number(6) * 60 + number(7)) * 1000,
  };
}

/** A Go or ISO 8601 duration as a span; negative Go durations keep their sign. Undefined when neither. */
export function parseSpan(text: string): Span | undefined {
  const go = parseGoDuration(text);
  if (go !== undefined) return { months: 0, ms: go };
  return parseIsoDuration(text);
}

/** An RFC 3339 time in epoch milliseconds; undefined when `text` is not one. */
export function parseRfc3339(text: string): number | undefined {
  if (!RFC3339.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** `at` moved forward by `span`: months on the UTC calendar (clamped to the month's last day), then milliseconds. */
export function addSpan(at: number, span: Span): number {
  if (span.months === 0) return at + span.ms;
  const date = new Date(at);
  const day = date.getUTCDate();
  date.setUTCDate(1);
  date.setUTCMonth(date.getUTCMonth() + span.months);
  const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  date.setUTCDate(Math.min(day, lastDay));
  return date.getTime() + span.ms;
}

/** True for a span of no time at all. */
export function isZero(span: Span): boolean {
  return span.months === 0 && span.ms === 0;
}

/** A reminder's or timer's period: how far apart fires are, and how many there are at most (undefined: no limit). */
export interface Period {
  every: Span;
  repetitions: number | undefined;
}

/**
 * A period as Dapr accepts it: a Go duration, an ISO 8601 duration, or an ISO 8601 repetition `R<n>/<duration>`
 * (`R/<duration>` repeats without limit). Empty text, or a zero duration, means the reminder fires once.
 */
export function parsePeriod(text: string | undefined): Period | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  const repeated = ISO_REPETITION.exec(trimmed);
  if (repeated) {
    const every = parseIsoDuration(repeated[2] as string) ?? goSpan(repeated[2] as string);
    if (!every) throw new DurationError(`invalid period "${text}": after R<n>/ expected an ISO 8601 duration such as PT1S`);
    const repetitions = repeated[1] === '' ? undefined : Number(repeated[1]);
    if (repetitions === 0) throw new DurationError(`invalid period "${text}": the number of repetitions must be greater than zero`);
    if (isZero(every)) throw new DurationError(`invalid period "${text}": a repeated period must be longer than zero`);
    return { every, repetitions };
  }
  const every = parseSpan(trimmed);
  if (!every) throw new DurationError(`invalid period "${text}": expected a duration such as 1m30s, an ISO 8601 duration such as PT1M, or R5/PT1S`);
  if (every.ms < 0) throw new DurationError(`invalid period "${text}": the period must not be negative`);
  return isZero(every) ? undefined : { every, repetitions: undefined };
}

function goSpan(text: string): Span | undefined {
  const ms = parseGoDuration(text);
  return ms === undefined || ms < 0 ? undefined : { months: 0, ms };
}

/**
 * When a reminder or timer first fires: empty means now; an RFC 3339 time is absolute; a duration counts from
 * `now`. A negative duration is refused (Dapr would fire at once; a negative delay is almost always a mistake).
 */
export function parseDueTime(text: string | undefined, now: number): number {
  if (text === undefined || text.trim() === '') return now;
  const trimmed = text.trim();
  const at = parseRfc3339(trimmed);
  if (at !== undefined) return Math.max(at, now);
  const span = parseSpan(trimmed);
  if (!span) throw new DurationError(`invalid dueTime "${text}": expected a duration such as 5s or PT5S, or an RFC 3339 time`);
  if (span.ms < 0) throw new DurationError(`invalid dueTime "${text}": the due time must not be negative`);
  return addSpan(now, span);
}

/**
 * When a reminder or timer expires: an RFC 3339 time, or a duration counted from its first fire (`firstFireAt`).
 * Undefined for no TTL.
 */
export function parseTtl(text: string | undefined, firstFireAt: number): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  const at = parseRfc3339(trimmed);
  const expiresAt = at ?? (() => {
    const span = parseSpan(trimmed);
    if (!span) throw new DurationError(`invalid ttl "${text}": expected a duration such as 1h or PT1H, or an RFC 3339 time`);
    if (span.ms < 0) throw new DurationError(`invalid ttl "${text}": the TTL must not be negative`);
    return addSpan(firstFireAt, span);
  })();
  if (expiresAt <= firstFireAt) throw new DurationError(`invalid ttl "${text}": it expires before the first fire at ${new Date(firstFireAt).toISOString()}`);
  return expiresAt;
}

/** A Go duration from configuration (`actorIdleTimeout: 1h`); `fallback` when absent. Throws on a bad or negative one. */
export function parseConfigDuration(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value !== 'string') throw new DurationError(`${name} must be a duration string such as 1h, not ${JSON.stringify(value)}`);
  const span = parseSpan(value.trim());
  if (!span || span.months !== 0 || span.ms < 0) throw new DurationError(`${name} "${value}" is not a non-negative duration such as 30s or 1h`);
  return span.ms;
}

/**
 * A non-negative Go duration from configuration or a flag (`500ms`, `5s`, `1m30s`, `24h`, `0`) in milliseconds;
 * throws a RangeError naming the text otherwise (negative durations included).
 */
export function parseDuration(text: string): number {
  const ms = parseGoDuration(text.trim());
  if (ms === undefined || ms < 0) throw new RangeError(`invalid duration "${text}": expected e.g. 500ms, 5s, 1m30s, 24h`);
  return ms;
}

/** Formats milliseconds as a short Go-style duration (`1h30m0s`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}
