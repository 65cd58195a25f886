/**
 * The `trip` condition of a circuit-breaker policy: CEL over Dapr's counters (`requests`, `totalSuccesses`,
 * `totalFailures`, `consecutiveSuccesses`, `consecutiveFailures`, all `int`), parsed and type-checked once at load.
 * Evaluation is pure; one that fails at run time counts as "do not trip", as Dapr does.
 */
import { Environment } from '@marcbachmann/cel-js';
import type { BreakerCounts } from './circuit-breaker.js';

/** Dapr's default `trip`. */
export const DEFAULT_TRIP = 'consecutiveFailures > 5';

/** Longest expression accepted. */
const MAX_TRIP_LENGTH = 1024;

const COUNTERS: ReadonlyArray<[keyof BreakerCounts, string]> = [
  ['requests', 'Calls admitted since the counters were last cleared.'],
  ['totalSuccesses', 'Successful calls since the counters were last cleared.'],
  ['totalFailures', 'Failed calls since the counters were last cleared.'],
  ['consecutiveSuccesses', 'Successful calls in a row.'],
  ['consecutiveFailures', 'Failed calls in a row.'],
];

// Built once: every breaker policy sees the same variables.
const environment = COUNTERS.reduce(
  (env, [name, description]) => env.registerVariable(name, 'int', { description }),
  new Environment({ limits: { maxAstNodes: 200, maxDepth: 16, maxListElements: 100, maxMapEntries: 100, maxCallArguments: 8 } }),
);

/** A `trip` expression that does not compile or is not a bool. */
export class TripConditionError extends Error {
  override readonly name = 'TripConditionError';
}

/** A compiled `trip`. */
export interface TripCondition {
  readonly expression: string;
  /** True when the breaker should open; false also when evaluation fails. */
  evaluate(counts: Readonly<BreakerCounts>): boolean;
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** Parses and type-checks `expression`; throws TripConditionError with the reason. */
export function compileTripCondition(expression: string): TripCondition {
  if (expression.trim() === '') throw new TripConditionError('the trip condition is empty');
  if (expression.length > MAX_TRIP_LENGTH) throw new TripConditionError(`the trip condition is longer than ${MAX_TRIP_LENGTH} characters`);
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = environment.parse(expression);
  } catch (error) {
    throw new TripConditionError(`CEL does not compile: ${firstLine(error)}`);
  }
  const checked = parsed.check();
  if (!checked.valid) throw new TripConditionError(`CEL does not type-check: ${firstLine(checked.error)} (variables: ${COUNTERS.map(([name]) => name).join(', ')})`);
  if (checked.type !== 'bool') throw new TripConditionError(`the trip condition gives ${checked.type ?? 'no value'}, not a bool`);
  return Object.freeze({
    expression,
    evaluate: (counts: Readonly<BreakerCounts>): boolean => {
      const values: Record<string, bigint> = {};
      for (const [name] of COUNTERS) values[name] = BigInt(counts[name]);
      try {
        return parsed(values) === true;
      } catch {
        return false;
      }
    },
  });
}
