/**
 * Dapr's WorkflowAccessPolicy, compiled once and evaluated without side effects. The sidecar that hosts an app's
 * workflow instances asks it about every call from another app, on the caller's verified identity:
 *
 * - a caller of another namespace is always refused; the app's own calls are always allowed;
 * - with no policy loaded for the app, every caller is allowed (Dapr's open default);
 * - once any policy is loaded, it is a pure allow-list: allowed iff some rule of some policy lists the caller, the
 *   operation and a glob matching the workflow's name.
 *
 * Dapr enforces `schedule` only; Skein also enforces `get`, `raise`, `terminate`, `pause`, `resume` and `purge`,
 * which Dapr's schema reserves, because its HTTP API serves those operations across apps.
 */
import { ConfigError, decision, type Decision } from '@skein/core';
import type { durabletask as dt, WorkflowOperation } from '@skein/proto';
import type { WorkflowAccessPolicyResource } from '../config/types.js';

export type { WorkflowOperation };

/** One call to judge. */
export interface WorkflowAccessRequest {
  /** The caller's verified identity (from its mTLS certificate, or the sidecar's own app). */
  caller: { appId: string; namespace: string };
  /** The app whose workflow is called, and its namespace. */
  target: { appId: string; namespace: string };
  /** Undefined for the engine's own events (activity results, timers, child outcomes): no rule grants those. */
  operation: WorkflowOperation | undefined;
  /** A workflow (every operation) or an activity (`schedule` only). */
  kind: 'workflow' | 'activity';
  /** The workflow's or activity's name; empty when the instance does not exist. */
  name: string;
}

/** A compiled glob of `*`, `?` and `[...]`. */
export interface NameGlob {
  readonly pattern: string;
  matches(value: string): boolean;
}

interface CompiledWorkflowGrant {
  readonly name: NameGlob;
  readonly operations: ReadonlySet<WorkflowOperation>;
  readonly rule: string;
}

interface CompiledRule {
  readonly callers: ReadonlySet<string>;
  readonly workflows: readonly CompiledWorkflowGrant[];
  readonly activities: ReadonlyArray<{ readonly name: NameGlob; readonly rule: string }>;
}

/** The policies in force for one target app: none means open. Frozen. */
export interface CompiledWorkflowAccess {
  /** Names of the policies loaded, in load order. */
  readonly policies: readonly string[];
  readonly rules: readonly CompiledRule[];
}

/** No policy: every caller of the namespace is allowed. */
export const OPEN_WORKFLOW_ACCESS: CompiledWorkflowAccess = Object.freeze({ policies: Object.freeze([]), rules: Object.freeze([]) });

/** Why a glob was refused. */
export class NameGlobError extends Error {
  override readonly name = 'NameGlobError';
}

type Token = { kind: 'star' } | { kind: 'any' } | { kind: 'char'; char: string } | { kind: 'class'; negated: boolean; ranges: ReadonlyArray<readonly [string, string]> };

/**
 * Compiles a workflow or activity name glob as Dapr reads one: `*` any run of characters, `?` one character,
 * `[abc]`, `[a-z]` one of those (`[!...]` or `[^...]` any other), `\` makes the next character literal.
 */
export function compileNameGlob(pattern: string): NameGlob {
  const chars = [...pattern];
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i] ?? '';
    if (char === '*') {
      if (tokens[tokens.length - 1]?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (char === '?') {
      tokens.push({ kind: 'any' });
    } else if (char === '\\') {
      const next = chars[++i];
      if (next === undefined) throw new NameGlobError(`"${pattern}" ends with "\\": escape a character, or write "\\\\" for a backslash`);
      tokens.push({ kind: 'char', char: next });
    } else if (char === '[') {
      let j = i + 1;
      const negated = chars[j] === '!' || chars[j] === '^';
      if (negated) j++;
      const ranges: Array<readonly [string, string]> = [];
      let closed = false;
      for (let first = true; j < chars.length; first = false) {
        const c = chars[j] ?? '';
        if (c === ']' && !first) {
          closed = true;
          break;
        }
        const low = c === '\\' ? chars[++j] ?? '' : c;
        if (chars[j + 1] === '-' && chars[j + 2] !== undefined && chars[j + 2] !== ']') {
          const high = chars[j + 2] ?? '';
          if (high < low) throw new NameGlobError(`"${pattern}" has the range "${low}-${high}", whose end comes before its start`);
          ranges.push([low, high]);
          j += 3;
        } else {
          ranges.push([low, low]);
          j++;
        }
      }
      if (!closed) throw new NameGlobError(`"${pattern}" opens a character class "[" that is never closed with "]"`);
      tokens.push({ kind: 'class', negated, ranges });
      i = j;
    } else {
      tokens.push({ kind: 'char', char });
    }
  }
  if (tokens.length === 1 && tokens[0]?.kind === 'star') return Object.freeze({ pattern, matches: () => true });
  if (tokens.every((token) => token.kind === 'char')) {
    const literal = tokens.map((token) => (token as { char: string }).char).join('');
    return Object.freeze({ pattern, matches: (value: string) => value === literal });
  }
  return Object.freeze({ pattern, matches: (value: string) => matchTokens(tokens, [...value]) });
}

function matchOne(token: Exclude<Token, { kind: 'star' }>, char: string): boolean {
  switch (token.kind) {
    case 'any':
      return true;
    case 'char':
      return token.char === char;
    case 'class':
      return token.ranges.some(([low, high]) => char >= low && char <= high) !== token.negated;
  }
}

/**
 * Matches with one backtracking point, the last `*` seen: each token but `*` takes one character, so this is
 * at most (tokens × characters) steps and no pattern can make it slow.
 */
function matchTokens(tokens: readonly Token[], value: readonly string[]): boolean {
  let t = 0;
  let v = 0;
  let starAt = -1;
  let starValue = 0;
  while (v < value.length) {
    const token = tokens[t];
    if (token?.kind === 'star') {
      starAt = t++;
      starValue = v;
    } else if (token && matchOne(token, value[v] ?? '')) {
      t++;
      v++;
    } else if (starAt !== -1) {
      t = starAt + 1;
      v = ++starValue;
    } else {
      return false;
    }
  }
  while (tokens[t]?.kind === 'star') t++;
  return t === tokens.length;
}

/**
 * Compiles the policies in scope for one target app (scoping by `metadata.namespace` and `scopes` is done by the
 * config compile). Throws a ConfigError naming the file and JSON path of a glob it cannot read.
 */
export function compileWorkflowAccess(policies: ReadonlyArray<{ resource: WorkflowAccessPolicyResource; file: string }>): CompiledWorkflowAccess {
  if (policies.length === 0) return OPEN_WORKFLOW_ACCESS;
  const rules: CompiledRule[] = [];
  for (const { resource, file } of policies) {
    const policy = resource.metadata.name;
    (resource.spec?.rules ?? []).forEach((rule, r) => {
      const glob = (pattern: string, path: string): NameGlob => {
        try {
          return compileNameGlob(pattern);
        } catch (error) {
          if (error instanceof NameGlobError) throw new ConfigError(file, path, error.message);
          throw error;
        }
      };
      rules.push(Object.freeze({
        callers: new Set(rule.callers.map((caller) => caller.appID)),
        workflows: Object.freeze((rule.workflows ?? []).map((grant, w) => Object.freeze({
          name: glob(grant.name, `/spec/rules/${r}/workflows/${w}/name`),
          operations: new Set(grant.operations),
          rule: `${policy}/rules[${r}].workflows[${w}]`,
        }))),
        activities: Object.freeze((rule.activities ?? []).map((grant, a) => Object.freeze({ name: glob(grant.name, `/spec/rules/${r}/activities/${a}/name`), rule: `${policy}/rules[${r}].activities[${a}]` }))),
      }));
    });
  }
  return Object.freeze({ policies: Object.freeze(policies.map(({ resource }) => resource.metadata.name)), rules: Object.freeze(rules) });
}

/** Judges one call. Pure: the same policies and request always give the same Decision. */
export function evaluateWorkflowAccess(compiled: CompiledWorkflowAccess, request: WorkflowAccessRequest): Decision {
  const { caller, target, operation, kind, name } = request;
  const verb = operation ?? 'send engine events to';
  const what = `${verb} ${kind} '${name}'`;
  const made = (allowed: boolean, rule: string, reason: string): Decision =>
    decision({ allowed, source: 'workflow-policy', rule, reason, caller: `${caller.namespace}/${caller.appId}`, target: target.appId, method: `${operation ?? 'event'} ${name}` });
  if (caller.namespace !== target.namespace) {
    return made(false, 'cross-namespace', `caller ${caller.appId} of namespace ${caller.namespace} may not ${what} of ${target.appId} in namespace ${target.namespace}: workflows never cross namespaces`);
  }
  if (caller.appId === target.appId) return made(true, 'self', `${target.appId} acts on its own workflows`);
  // Activity results, timer fires and child outcomes come from the app's own sidecars alone; from another app they
  // would be forgeries, whatever the policies say (and with none loaded too).
  if (operation === undefined) return made(false, 'engine-events', `caller ${caller.appId} may not ${what} of ${target.appId}: only its own sidecars deliver them`);
  if (compiled.policies.length === 0) return made(true, 'no-policy', `no WorkflowAccessPolicy is loaded for ${target.appId}, so every app of its namespace may ${verb} its workflows`);
  for (const rule of compiled.rules) {
    if (operation === undefined || !rule.callers.has(caller.appId)) continue;
    if (kind === 'workflow') {
      const grant = rule.workflows.find((candidate) => candidate.operations.has(operation) && candidate.name.matches(name));
      if (grant) return made(true, grant.rule, `${grant.rule} allows ${caller.appId} to ${operation} workflows matching '${grant.name.pattern}'`);
    } else if (operation === 'schedule') {
      const grant = rule.activities.find((candidate) => candidate.name.matches(name));
      if (grant) return made(true, grant.rule, `${grant.rule} allows ${caller.appId} to schedule activities matching '${grant.name.pattern}'`);
    }
  }
  return made(false, 'default', `no rule of the WorkflowAccessPolicies of ${target.appId} (${compiled.policies.join(', ')}) allows caller ${caller.appId} to ${what}`);
}

/**
 * The operation an actor call to a workflow instance performs: the `event` it carries (executionStarted is
 * `schedule`), `state`/`history`/`events` are `get`, `purge` is `purge`. Undefined for the engine's own traffic
 * (activity results, timers, child outcomes): no rule can grant that to another app.
 */
export function workflowOperationOf(method: string, event: dt.IHistoryEvent | undefined): WorkflowOperation | undefined {
  switch (method) {
    case 'state':
    case 'history':
    case 'events':
      return 'get';
    case 'purge':
      return 'purge';
    case 'event':
      if (!event) return undefined;
      if (event.executionStarted) return 'schedule';
      if (event.eventRaised) return 'raise';
      if (event.executionTerminated) return 'terminate';
      if (event.executionSuspended) return 'pause';
      if (event.executionResumed) return 'resume';
      return undefined;
    default:
      return undefined;
  }
}
