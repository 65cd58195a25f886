/**
 * CEL conditions for tool-policy rules (`when:`), on `@marcbachmann/cel-js`. An expression is parsed and
 * type-checked once, at load, against the variables a rule can see; evaluation is pure and bounded by CEL's own
 * non-Turing-completeness plus parse-time size limits.
 *
 * Variables: `args` (the `tools/call` arguments, `{}` when none), `tool` (the tool name, `""` when none), `method`
 * (the JSON-RPC method), `caller` (`{appId}`, `appId` is `""` when unknown) and `claims` (the verified JWT claims,
 * `{}` without a token). JSON integers are CEL `int`s, other numbers `double`s.
 */
import { Environment } from '@marcbachmann/cel-js';

/** The variables a condition is evaluated with, as plain JSON-like values. */
export interface ConditionInput {
  readonly args: Readonly<Record<string, unknown>>;
  readonly tool: string;
  readonly method: string;
  readonly caller: Readonly<Record<string, unknown>>;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** Condition variables converted to CEL values once per request, however many rules look at them. */
export interface PreparedConditionInput {
  readonly values: Readonly<Record<string, unknown>>;
}

/** Converts the variables for evaluation. */
export function prepareConditionInput(input: ConditionInput): PreparedConditionInput {
  return { values: { args: toCel(input.args), tool: input.tool, method: input.method, caller: toCel(input.caller), claims: toCel(input.claims) } };
}

/** A compiled condition. */
export interface Condition {
  readonly expression: string;
  /** True or false; throws ConditionError when evaluation fails or does not give a bool. */
  evaluate(input: PreparedConditionInput): boolean;
}

/** A condition that does not compile, or failed while being evaluated. */
export class ConditionError extends Error {
  override readonly name = 'ConditionError';
}

/** Longest expression accepted. */
export const MAX_CONDITION_LENGTH = 4096;

// Building an environment is costly, and it is the same for every rule.
const environment = new Environment({
  limits: { maxAstNodes: 1000, maxDepth: 32, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 16 },
})
  .registerVariable('args', 'map', { description: 'The tools/call arguments ({} when none).' })
  .registerVariable('tool', 'string', { description: 'The tool named by tools/call ("" otherwise).' })
  .registerVariable('method', 'string', { description: 'The JSON-RPC method.' })
  .registerVariable('caller', 'map', { description: 'The caller: {appId}.' })
  .registerVariable('claims', 'map', { description: 'Verified JWT claims ({} without a token).' });

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** Parses and type-checks `expression`; throws ConditionError with the reason when it cannot become a bool condition. */
export function compileCondition(expression: string): Condition {
  if (expression.trim().length === 0) throw new ConditionError('the condition is empty');
  if (expression.length > MAX_CONDITION_LENGTH) throw new ConditionError(`the condition is longer than ${MAX_CONDITION_LENGTH} characters`);
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = environment.parse(expression);
  } catch (error) {
    throw new ConditionError(`CEL does not compile: ${firstLine(error)}`);
  }
  const checked = parsed.check();
  if (!checked.valid) throw new ConditionError(`CEL does not type-check: ${firstLine(checked.error)}`);
  if (checked.type !== 'bool' && checked.type !== 'dyn') throw new ConditionError(`the condition gives ${checked.type ?? 'no value'}, not a bool`);
  return Object.freeze({
    expression,
    evaluate: (input: PreparedConditionInput): boolean => {
      let result: unknown;
      try {
        result = parsed(input.values);
      } catch (error) {
        throw new ConditionError(firstLine(error));
      }
      if (typeof result !== 'boolean') throw new ConditionError(`the condition gave ${typeof result === 'bigint' ? 'an int' : typeof result}, not a bool`);
      return result;
    },
  });
}

/** Converts JSON-like data to CEL values: integral numbers become `int` (bigint) so `args.n + 1` works. */
function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [key, inner] of Object.entries(value)) out[key] = toCel(inner);
    return out;
  }
  return value;
}
