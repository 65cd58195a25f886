/**
 * Polling for tests: wait for a condition a real process reaches on its own time (a placement table, a reminder
 * fire, a restarted server), bounded by a deadline that names what was awaited.
 */
import { setTimeout as delay } from 'node:timers/promises';

const POLL_MS = 100;

/**
 * Polls `check` until it returns a value other than undefined, and returns it. A throw counts as "not yet" (a
 * process may be restarting) and its message is reported if the deadline passes first.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000, what = 'the condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
    await delay(POLL_MS);
  }
}

/**
 * Asserts that something does not happen: polls `unchanged` for `windowMs` and fails as soon as it returns false.
 * For absences (no fire after a delete) only; waiting for something to happen is `eventually`.
 */
export async function staysTrue(unchanged: () => Promise<boolean>, windowMs: number, what: string): Promise<void> {
  const end = Date.now() + windowMs;
  while (Date.now() < end) {
    if (!(await unchanged())) throw new Error(`${what} stopped holding within ${windowMs} ms`);
    await delay(POLL_MS);
  }
  if (!(await unchanged())) throw new Error(`${what} stopped holding within ${windowMs} ms`);
}
