/**
 * Per-tool, per-argument MCP policy (`MCPToolPolicy`, `skein.dev/v1alpha1`): compiled once from a validated
 * resource, evaluated purely for each JSON-RPC message the inspector found in a body.
 *
 * Order: rules are tried top to bottom and the first rule that matches decides; when none does, `defaultAction`
 * (deny unless written otherwise) decides with rule `default`. A rule matches when every part it writes matches:
 * `callers.appIds` (App ID globs; an unauthenticated caller matches none), `callers.claims` (each named claim of the
 * verified token matches one of its globs; without a token none does), `methods` (JSON-RPC method globs), `tools`
 * (tool name globs; the rule then only applies to `tools/call`) and `when` (a CEL condition). A matching `allow`
 * rule with `requiredScopes` still denies, naming the missing scopes, when the token lacks any of them. A `when`
 * that fails to evaluate (a missing argument, a wrong type) denies with that rule named: a condition never fails open.
 */
import { ConfigError, decision, type Decision, truncate } from '@skein/core';
import type { MCPToolPolicyResource } from '../config/types.js';
import { compileCondition, ConditionError, prepareConditionInput, type Condition, type PreparedConditionInput } from './cel.js';
import { APP_ID_GLOB, CLAIM_GLOB, compileGlobSet, NAME_GLOB, type GlobError, type GlobSet } from './glob.js';

/** `allow` or `deny`. */
export type ToolPolicyAction = 'allow' | 'deny';

/** One compiled rule. */
export interface CompiledToolRule {
  readonly name: string;
  readonly index: number;
  readonly action: ToolPolicyAction;
  readonly appIds: GlobSet;
  readonly claims: ReadonlyArray<{ readonly claim: string; readonly values: GlobSet }> | undefined;
  readonly methods: GlobSet;
  readonly tools: GlobSet | undefined;
  readonly condition: Condition | undefined;
  readonly requiredScopes: readonly string[];
}

/** A compiled MCPToolPolicy: frozen, and only ever read by the functions of this module. */
export interface CompiledToolPolicy {
  /** `metadata.name` of the resource. */
  readonly name: string;
  readonly file: string;
  /** The App ID being protected, reported as the decisions' target. */
  readonly target: string;
  /** App IDs of the MCP servers the resource applies to; undefined for every app that loads it. */
  readonly scopes: readonly string[] | undefined;
  readonly defaultAction: ToolPolicyAction;
  readonly rules: readonly CompiledToolRule[];
}

/** Who is calling, as the policy sees it. */
export interface ToolPolicyCaller {
  /** The caller's verified App ID (from its SPIFFE ID); undefined when the caller is not authenticated. */
  callerAppId: string | undefined;
  /** How decisions name the caller (its SPIFFE ID); defaults to the App ID, or `anonymous`. */
  caller?: string;
  /** Claims of a bearer token validated for this call; undefined when none was presented. */
  claims?: Readonly<Record<string, unknown>>;
}

/** One JSON-RPC message to decide on. */
export interface ToolPolicyRequest extends ToolPolicyCaller {
  /** The JSON-RPC method (`tools/call`, `tools/list`, `initialize`, `notifications/initialized`, ...). */
  method: string;
  /** `params.name` of a `tools/call`. */
  toolName?: string;
  /** `params.arguments` of a `tools/call`. */
  arguments?: Readonly<Record<string, unknown>>;
}

const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Longest method or tool name a decision repeats (the MCP limit for tool names); longer ones are truncated. */
export const MAX_ECHOED_NAME = 128;

/**
 * Compiles every glob and CEL condition of `resource` (already validated against the MCPToolPolicy schema) once.
 * Throws ConfigError naming `file`, the JSON path and the reason: a bad glob, CEL that does not compile or does not
 * give a bool, a duplicate rule name, `tools` on a rule whose methods exclude `tools/call`, or `requiredScopes` on a
 * deny rule.
 */
export function compileToolPolicy(resource: MCPToolPolicyResource, file: string, options: { target?: string } = {}): CompiledToolPolicy {
  const seen = new Map<string, number>();
  const rules = (resource.spec.rules ?? []).map((rule, index): CompiledToolRule => {
    const at = `/spec/rules/${index}`;
    const fail = (path: string, reason: string): never => {
      throw new ConfigError(file, `${at}${path}`, reason);
    };
    if (!RULE_NAME.test(rule.name)) fail('/name', `rule name "${rule.name}" must be 1-63 letters, digits, '.', '-' or '_', starting with a letter or digit`);
    const earlier = seen.get(rule.name);
    if (earlier !== undefined) fail('/name', `rule name "${rule.name}" is already used by /spec/rules/${earlier}; decisions name rules, so names must be unique`);
    seen.set(rule.name, index);
    const globError = (path: string) => (item: number, error: GlobError): never => fail(`${path}/${item}`, error.message);

    const appIds = compileGlobSet(rule.callers?.appIds, APP_ID_GLOB, globError('/callers/appIds'));
    const claims = rule.callers?.claims
      ? Object.entries(rule.callers.claims).map(([claim, wanted]) => {
          const values = compileGlobSet(typeof wanted === 'string' ? [wanted] : wanted, CLAIM_GLOB, (item, error) =>
            fail(`/callers/claims/${escapePointer(claim)}${typeof wanted === 'string' ? '' : `/${item}`}`, error.message),
          );
          return Object.freeze({ claim, values });
        })
      : undefined;
    const methods = compileGlobSet(rule.methods, NAME_GLOB, globError('/methods'));
    const tools = rule.tools === undefined ? undefined : compileGlobSet(rule.tools, NAME_GLOB, globError('/tools'));
    if (tools && !methods.matches('tools/call')) fail('/tools', 'tools only apply to tools/call, which none of this rule\'s methods matches');

    let condition: Condition | undefined;
    if (rule.when !== undefined) {
      try {
        condition = compileCondition(rule.when);
      } catch (error) {
        if (error instanceof ConditionError) fail('/when', error.message);
        throw error;
      }
    }
    const requiredScopes = rule.requiredScopes ?? [];
    if (requiredScopes.length > 0 && rule.action !== 'allow') fail('/requiredScopes', 'requiredScopes only make sense on an allow rule');
    requiredScopes.forEach((scope, item) => {
      if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)) fail(`/requiredScopes/${item}`, `"${scope}" is not an OAuth scope token (RFC 6749 section 3.3)`);
    });
    return Object.freeze({
      name: rule.name,
      index,
      action: rule.action,
      appIds,
      claims: claims ? Object.freeze(claims) : undefined,
      methods,
      tools,
      condition,
      requiredScopes: Object.freeze([...requiredScopes]),
    });
  });
  return Object.freeze({
    name: resource.metadata.name,
    file,
    target: options.target ?? '',
    scopes: resource.scopes ? Object.freeze([...resource.scopes]) : undefined,
    defaultAction: resource.spec.defaultAction ?? 'deny',
    rules: Object.freeze(rules),
  });
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** True when the policy protects the app `appId` (listed in its `scopes`, or no scopes written). */
export function toolPolicyAppliesTo(compiled: CompiledToolPolicy, appId: string): boolean {
  return compiled.scopes === undefined || compiled.scopes.length === 0 || compiled.scopes.includes(appId);
}

function claimValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (typeof value === 'number' || typeof value === 'boolean') return [String(value)];
  if (Array.isArray(value)) return value.flatMap((item) => (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean' ? [String(item)] : []));
  return [];
}

/** The scopes a token grants: RFC 8693/9068 `scope` (space-separated), or the `scp` array some issuers use. */
export function scopesOf(claims: Readonly<Record<string, unknown>> | undefined): Set<string> {
  const out = new Set<string>();
  if (!claims) return out;
  for (const key of ['scope', 'scp']) {
    const value = claims[key];
    if (typeof value === 'string') for (const scope of value.split(' ')) if (scope) out.add(scope);
    if (Array.isArray(value)) for (const scope of value) if (typeof scope === 'string' && scope) out.add(scope);
  }
  return out;
}

type RuleOutcome = { kind: 'no-match' } | { kind: 'match' } | { kind: 'error'; reason: string };

function matchRule(rule: CompiledToolRule, request: ToolPolicyRequest, prepared: () => PreparedConditionInput, knownArguments: boolean): RuleOutcome {
  if (rule.appIds.patterns !== undefined && (request.callerAppId === undefined || !rule.appIds.matches(request.callerAppId))) return { kind: 'no-match' };
  if (rule.claims) {
    const claims = request.claims;
    if (!claims) return { kind: 'no-match' };
    for (const { claim, values } of rule.claims) {
      if (!claimValues(claims[claim]).some((value) => values.matches(value))) return { kind: 'no-match' };
    }
  }
  if (!rule.methods.matches(request.method)) return { kind: 'no-match' };
  if (rule.tools && (request.toolName === undefined || !rule.tools.matches(request.toolName))) return { kind: 'no-match' };
  if (rule.condition && knownArguments) {
    try {
      if (!rule.condition.evaluate(prepared())) return { kind: 'no-match' };
    } catch (error) {
      return { kind: 'error', reason: error instanceof Error ? error.message : String(error) };
    }
  }
  return { kind: 'match' };
}

/** Decides one JSON-RPC message. Pure: the same compiled policy and request always give the same Decision. */
export function evaluateToolPolicy(compiled: CompiledToolPolicy, request: ToolPolicyRequest): Decision {
  const caller = request.caller ?? request.callerAppId ?? 'anonymous';
  // Decisions are logged, published and put on spans: the caller-chosen method and tool name are bounded there.
  const method = truncate(request.method, MAX_ECHOED_NAME);
  const tool = request.toolName === undefined ? undefined : truncate(request.toolName, MAX_ECHOED_NAME);
  const what = tool === undefined ? method : `${method} "${tool}"`;
  const made = (allowed: boolean, rule: string, reason: string, missingScopes?: readonly string[]): Decision =>
    decision({ allowed, source: 'tool-policy', rule, reason, caller, target: compiled.target, method, tool, missingScopes });

  let preparedInput: PreparedConditionInput | undefined;
  const prepared = (): PreparedConditionInput =>
    (preparedInput ??= prepareConditionInput({
      args: request.arguments ?? {},
      tool: request.toolName ?? '',
      method: request.method,
      caller: { appId: request.callerAppId ?? '' },
      claims: request.claims ?? {},
    }));

  for (const rule of compiled.rules) {
    const outcome = matchRule(rule, request, prepared, true);
    if (outcome.kind === 'no-match') continue;
    if (outcome.kind === 'error') return made(false, rule.name, `the condition of rule "${rule.name}" could not be evaluated (${outcome.reason}), so ${what} is denied`);
    if (rule.action === 'deny') return made(false, rule.name, `rule "${rule.name}" denies ${what}`);
    if (rule.requiredScopes.length > 0) {
      const granted = scopesOf(request.claims);
      const missing = rule.requiredScopes.filter((scope) => !granted.has(scope));
      if (missing.length > 0) {
        const why = request.claims ? `the token lacks scope ${missing.join(' ')}` : 'no bearer token was presented';
        return made(false, rule.name, `rule "${rule.name}" allows ${what} only with scope ${rule.requiredScopes.join(' ')}, and ${why}`, missing);
      }
    }
    return made(true, rule.name, `rule "${rule.name}" allows ${what}`);
  }
  const allowed = compiled.defaultAction === 'allow';
  return made(allowed, 'default', `no rule of policy "${compiled.name}" matches ${what}, so the default action "${compiled.defaultAction}" applies`);
}

/**
 * The tools of a `tools/list` result the caller may call: each is kept when a `tools/call` of it could be allowed.
 * Arguments are unknown at listing time, so a rule's `when` is taken as possibly true: an allow rule with a
 * condition keeps the tool, a deny rule with a condition does not hide it. Entries without a string `name` are
 * dropped, since no rule can be judged for them.
 */
export function filterToolsList<T>(compiled: CompiledToolPolicy, caller: ToolPolicyCaller, tools: readonly T[]): T[] {
  return tools.filter((tool) => {
    const name = typeof tool === 'object' && tool !== null ? (tool as { name?: unknown }).name : undefined;
    if (typeof name !== 'string') return false;
    return mayCall(compiled, { ...caller, method: 'tools/call', toolName: name });
  });
}

function mayCall(compiled: CompiledToolPolicy, request: ToolPolicyRequest): boolean {
  for (const rule of compiled.rules) {
    const outcome = matchRule(rule, request, () => ({ values: {} }), false);
    if (outcome.kind === 'no-match') continue;
    // A condition may or may not hold for the arguments of a future call: a conditional deny does not hide the
    // tool and a conditional allow shows it; the call itself is judged with its arguments.
    if (rule.action === 'deny') {
      if (rule.condition) continue;
      return false;
    }
    const granted = scopesOf(request.claims);
    if (rule.requiredScopes.every((scope) => granted.has(scope))) return true;
    if (rule.condition) continue;
    return false;
  }
  return compiled.defaultAction === 'allow';
}

/**
 * Filters the `result.tools` of a JSON-RPC response to a `tools/list` request (see `filterToolsList`). Returns the
 * same object when it is not a successful `tools/list` result, so it can be used with `transformJsonRpcResponses`.
 */
export function filterToolsListResponse(compiled: CompiledToolPolicy, caller: ToolPolicyCaller, message: Record<string, unknown>): Record<string, unknown> {
  const result = message['result'];
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return message;
  const tools = (result as Record<string, unknown>)['tools'];
  if (!Array.isArray(tools)) return message;
  const kept = filterToolsList(compiled, caller, tools as unknown[]);
  if (kept.length === tools.length) return message;
  return { ...message, result: { ...(result as Record<string, unknown>), tools: kept } };
}

/** A recorded call decided again: the decision, and whether the record held everything the decision needed. */
export interface ReplayedDecision {
  readonly decision: Decision;
  /**
   * False when the deciding rule looks at what a record does not keep (the arguments of a `when`, the token's
   * claims or scopes): the rule applies to the call only if those held as they did then.
   */
  readonly certain: boolean;
}

/**
 * Decides a call recorded by a decision event (caller, method and tool; never its arguments or token) against
 * `compiled`, as a policy dry run does. The first rule whose callers, methods and tools match decides; a rule that
 * also needs the arguments or the token decides as if its condition held, flagged uncertain. Pure.
 */
export function replayToolDecision(compiled: CompiledToolPolicy, call: Omit<ToolPolicyRequest, 'arguments' | 'claims'>): ReplayedDecision {
  const caller = call.caller ?? call.callerAppId ?? 'anonymous';
  const method = truncate(call.method, MAX_ECHOED_NAME);
  const tool = call.toolName === undefined ? undefined : truncate(call.toolName, MAX_ECHOED_NAME);
  const what = tool === undefined ? method : `${method} "${tool}"`;
  const made = (allowed: boolean, rule: string, reason: string): Decision => decision({ allowed, source: 'tool-policy', rule, reason, caller, target: compiled.target, method, tool });
  for (const rule of compiled.rules) {
    if (rule.appIds.patterns !== undefined && (call.callerAppId === undefined || !rule.appIds.matches(call.callerAppId))) continue;
    if (!rule.methods.matches(call.method)) continue;
    if (rule.tools && (call.toolName === undefined || !rule.tools.matches(call.toolName))) continue;
    const certain = rule.condition === undefined && rule.claims === undefined && rule.requiredScopes.length === 0;
    const needs = [rule.condition ? `its condition "${rule.condition.expression}" holds` : '', rule.claims ? 'the token has the claims it names' : '', rule.requiredScopes.length > 0 ? `the token has scope ${rule.requiredScopes.join(' ')}` : ''].filter(Boolean).join(' and ');
    const reason = `rule "${rule.name}" ${rule.action === 'allow' ? 'allows' : 'denies'} ${what}${certain ? '' : ` if ${needs}`}`;
    return { decision: made(rule.action === 'allow', rule.name, reason), certain };
  }
  const allowed = compiled.defaultAction === 'allow';
  return { decision: made(allowed, 'default', `no rule of policy "${compiled.name}" matches ${what}, so the default action "${compiled.defaultAction}" applies`), certain: true };
}
