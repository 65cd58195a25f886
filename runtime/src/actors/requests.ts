import { SkeinError, DurationError } from '@skein/core';
import { validateActorName } from './names.js';
import { planSchedule, type Schedule } from './schedule.js';

/**
 * The bodies of the Dapr actor API, decoded and validated once at the edge into typed requests. Pure; every
 * failure is a SkeinError with Dapr's code and a message that says what to fix.
 */

/** One operation of a state transaction. */
export type StateOperation = { operation: 'upsert'; key: string; value: unknown } | { operation: 'delete'; key: string };

/** A reminder as created through the API. */
export interface ReminderRequest {
  dueTime: string | undefined;
  period: string | undefined;
  ttl: string | undefined;
  /** Any JSON; undefined when absent. */
  data: unknown;
}

/** A timer as created through the API. */
export interface TimerRequest extends ReminderRequest {
  callback: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Dapr's "failed deserializing HTTP body" error. */
function malformed(reason: string): SkeinError {
  return new SkeinError('ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${reason}`);
}

function parseJson(body: Buffer, what: string): unknown {
  if (body.length === 0) throw malformed(`the body is empty; expected ${what}`);
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (error) {
    throw malformed((error as Error).message);
  }
}

/** Throws Dapr's ERR_BAD_REQUEST when `name` cannot be an actor type, id, method, state key, reminder or timer. */
export function checkName(kind: string, name: string): string {
  const problem = validateActorName(name);
  if (problem) throw new SkeinError('ERR_BAD_REQUEST', `invalid request: invalid ${kind} "${name}": ${problem}`);
  return name;
}

/**
 * Throws Dapr's ERR_BAD_REQUEST unless every `/`-separated segment of `method` is a valid name. A method becomes
 * part of the app's path (`/actors/<type>/<id>/method/<method>`; reminders and timers fire as `remind/<name>` and
 * `timer/<name>`), so a `..` segment or an empty one must never get there, whichever sidecar the call came from.
 */
export function checkMethod(method: string): string {
  for (const segment of method.split('/')) checkName('method', segment);
  return method;
}

/** `[{"operation":"upsert"|"delete","request":{"key","value"}}]`. */
export function parseStateTransaction(body: Buffer): StateOperation[] {
  const parsed = parseJson(body, 'a list of operations');
  if (!Array.isArray(parsed)) throw malformed('expected a JSON list of operations');
  return parsed.map((item: unknown, index): StateOperation => {
    if (!isRecord(item)) throw malformed(`operation ${index} is not an object`);
    const { operation, request } = item;
    if (!isRecord(request)) throw malformed(`operation ${index} has no "request" object`);
    const key = request['key'];
    if (typeof key !== 'string' || key.length === 0) throw malformed(`operation ${index} has no "request.key" string`);
    const lowered = typeof operation === 'string' ? operation.toLowerCase() : operation;
    if (lowered === 'upsert') return { operation: 'upsert', key, value: request['value'] ?? null };
    if (lowered === 'delete') return { operation: 'delete', key };
    throw malformed(`operation type ${JSON.stringify(operation)} not supported: use "upsert" or "delete"`);
  });
}

function optionalString(record: Record<string, unknown>, field: string): string | undefined {
  const value = record[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw malformed(`"${field}" must be a string such as "5s", not ${JSON.stringify(value)}`);
  return value;
}

function parseTimed(body: Buffer): Record<string, unknown> {
  // Dapr accepts an empty body: fire now, once.
  if (body.length === 0) return {};
  const parsed = parseJson(body, 'a JSON object');
  if (!isRecord(parsed)) throw malformed('expected a JSON object');
  return parsed;
}

/** `{"dueTime","period","ttl","data"}`; the schedule is validated against `now`. */
export function parseReminderRequest(body: Buffer, now: number): { request: ReminderRequest; schedule: Schedule } {
  const record = parseTimed(body);
  const request: ReminderRequest = {
    dueTime: optionalString(record, 'dueTime'),
    period: optionalString(record, 'period'),
    ttl: optionalString(record, 'ttl'),
    data: record['data'],
  };
  return { request, schedule: scheduleOf(request, now, 'ERR_ACTOR_REMINDER_CREATE', 'reminder') };
}

/** `{"dueTime","period","ttl","callback","data"}`; the schedule is validated against `now`. */
export function parseTimerRequest(body: Buffer, now: number): { request: TimerRequest; schedule: Schedule } {
  const record = parseTimed(body);
  const request: TimerRequest = {
    dueTime: optionalString(record, 'dueTime'),
    period: optionalString(record, 'period'),
    ttl: optionalString(record, 'ttl'),
    callback: optionalString(record, 'callback'),
    data: record['data'],
  };
  return { request, schedule: scheduleOf(request, now, 'ERR_ACTOR_TIMER_CREATE', 'timer') };
}

function scheduleOf(request: ReminderRequest, now: number, code: 'ERR_ACTOR_REMINDER_CREATE' | 'ERR_ACTOR_TIMER_CREATE', what: string): Schedule {
  try {
    return planSchedule(request, now);
  } catch (error) {
    if (!(error instanceof DurationError)) throw error;
    // The spec is the caller's mistake: Dapr's code for the operation, with a 400.
    throw new SkeinError(code, `error creating actor ${what}: ${error.message}`, { httpStatus: 400 });
  }
}
