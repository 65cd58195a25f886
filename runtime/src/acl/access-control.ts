/**
 * App-ID access control: Dapr's `Configuration.spec.accessControl`, enforced by the callee sidecar on the caller's
 * verified SPIFFE ID. Compiled once from validated configuration; evaluation is pure and answers a Decision.
 *
 * Evaluation order (Dapr's): no access control configured → allow. A malformed caller identity → deny. No identity
 * (mTLS off) → the global default. Otherwise the policy for `appId||namespace` applies only when its trust domain
 * matches the caller's; its `defaultAction` (when set) replaces the global default; then the first operation whose
 * pattern matches decides — for HTTP by the request's verb (exact, then `*`; a request without a verb takes the
 * policy's default), for gRPC by the operation's action.
 */
import { ConfigError, SkeinError, formatSpiffeId, type SpiffeId, decision, type Decision } from '@skein/core';
import type { AccessControlSpec } from '../config/types.js';
import { compileOperationPattern, normalizeOperation, OperationPatternError, type AppProtocol, type OperationPattern } from './operation.js';

/** `allow` or `deny`; Dapr compares actions case-insensitively and treats anything but `allow` as deny. */
export type AccessAction = 'allow' | 'deny';

/** The trust domain Dapr assumes when none is written. */
export const DEFAULT_TRUST_DOMAIN = 'public';

/** HTTP verbs Dapr knows; `httpVerb` entries are compared with these exactly, so anything else could never match. */
const HTTP_VERBS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** One compiled `operations[]` entry. */
export interface CompiledOperation {
  readonly rule: string;
  readonly pattern: OperationPattern;
  readonly action: AccessAction;
  /** Verb → action, `*` included; empty when the operation lists no verbs (then it only matters for gRPC). */
  readonly verbs: ReadonlyMap<string, AccessAction>;
}

/** One compiled `policies[]` entry. */
export interface CompiledAppPolicy {
  readonly rule: string;
  readonly appId: string;
  readonly namespace: string;
  readonly trustDomain: string;
  /** Undefined when the policy leaves its default empty: then the global default stays in force. */
  readonly defaultAction: AccessAction | undefined;
  readonly operations: readonly CompiledOperation[];
}

/** A compiled access-control spec: frozen, and only ever read by `evaluateAccessControl`. */
export interface CompiledAccessControl {
  /** False when no access control is configured; every call is then allowed. */
  readonly configured: boolean;
  readonly defaultAction: AccessAction;
  /** The trust domain of the app this sidecar serves. */
  readonly trustDomain: string;
  readonly protocol: AppProtocol;
  /** The App ID being protected, reported as the decision's target. */
  readonly target: string;
  readonly file: string;
  /** Policies keyed by `appId||namespace`, as Dapr looks them up. */
  readonly policies: ReadonlyMap<string, CompiledAppPolicy>;
}

/** Options that come from the sidecar rather than the Configuration. */
export interface AccessControlOptions {
  /** The App ID of the app behind this sidecar (the decision's target). */
  target?: string;
  /** The app's protocol (default `http`): HTTP operations are lower-cased and matched with verbs. */
  protocol?: AppProtocol;
}

/** What is being decided: who calls, which operation, with which HTTP verb. */
export interface AccessRequest {
  /** The caller's SPIFFE ID from the mTLS peer certificate; undefined when mTLS is off; `malformed` when unreadable. */
  caller: SpiffeId | undefined | 'malformed';
  /** The method path as the caller sent it (for HTTP still percent-encoded); normalised here before matching. */
  operation: string;
  /** The HTTP verb (`GET`, `POST`, ...); absent for gRPC or when the verb is unknown. */
  httpVerb?: string;
}

function keyOf(appId: string, namespace: string): string {
  return `${appId}||${namespace}`;
}

function actionOf(value: string | undefined): AccessAction | undefined {
  if (value === undefined || value === '') return undefined;
  return value.toLowerCase() === 'allow' ? 'allow' : 'deny';
}

/**
 * Compiles `spec` (already validated against the Configuration schema) once. Throws ConfigError naming `file`, the
 * JSON path and the reason for a policy without appId or namespace, a duplicate policy, a bad operation pattern or
 * an unknown HTTP verb. A policy without `trustDomain` takes the spec's trust domain, which the docs describe as the
 * trust domain in which the policies apply.
 */
export function compileAccessControl(spec: AccessControlSpec | undefined, file: string, options: AccessControlOptions = {}): CompiledAccessControl {
  const protocol = options.protocol ?? 'http';
  const target = options.target ?? '';
  const base = '/spec/accessControl';
  const trustDomain = spec?.trustDomain || DEFAULT_TRUST_DOMAIN;
  const policiesWritten = spec?.policies;
  // Dapr: nothing written (or only an empty policy list) means no access control at all.
  if (!spec || (!spec.trustDomain && !spec.defaultAction && (policiesWritten === undefined || policiesWritten.length === 0))) {
    return Object.freeze({ configured: false, defaultAction: 'allow', trustDomain, protocol, target, file, policies: new Map() });
  }
  // Dapr: an empty global default means deny, except for an explicit empty policy list, which means allow.
  const defaultAction: AccessAction = actionOf(spec.defaultAction) ?? (policiesWritten !== undefined && policiesWritten.length === 0 ? 'allow' : 'deny');

  const policies = new Map<string, CompiledAppPolicy>();
  const seenAt = new Map<string, number>();
  (policiesWritten ?? []).forEach((policy, index) => {
    const at = `${base}/policies/${index}`;
    if (!policy.appId) throw new ConfigError(file, `${at}/appId`, 'every access-control policy must name the calling appId');
    if (!policy.namespace) throw new ConfigError(file, `${at}/namespace`, `the policy for appId "${policy.appId}" must name the caller's namespace`);
    const key = keyOf(policy.appId, policy.namespace);
    const earlier = seenAt.get(key);
    if (earlier !== undefined) {
      throw new ConfigError(file, at, `a second policy for appId "${policy.appId}" in namespace "${policy.namespace}" (the first is ${base}/policies/${earlier}); merge them`);
    }
    seenAt.set(key, index);
    const rule = `policies[${index}]`;
    const operations = (policy.operations ?? []).map((operation, opIndex): CompiledOperation => {
      const opAt = `${at}/operations/${opIndex}`;
      let pattern: OperationPattern;
      try {
        pattern = compileOperationPattern(operation.name, protocol);
      } catch (error) {
        if (error instanceof OperationPatternError) throw new ConfigError(file, `${opAt}/name`, error.message);
        throw error;
      }
      const action = actionOf(operation.action) ?? 'deny';
      const verbs = new Map<string, AccessAction>();
      (operation.httpVerb ?? []).forEach((verb, verbIndex) => {
        if (verb !== '*' && !HTTP_VERBS.has(verb)) {
          const hint = HTTP_VERBS.has(verb.toUpperCase()) ? `; verbs are matched exactly, write "${verb.toUpperCase()}"` : '';
          throw new ConfigError(file, `${opAt}/httpVerb/${verbIndex}`, `"${verb}" is not an HTTP verb (${[...HTTP_VERBS].join(', ')} or *)${hint}`);
        }
        verbs.set(verb, action);
      });
      return Object.freeze({ rule: `${rule}.operations[${opIndex}]`, pattern, action, verbs });
    });
    policies.set(
      key,
      Object.freeze({
        rule,
        appId: policy.appId,
        namespace: policy.namespace,
        trustDomain: policy.trustDomain || trustDomain,
        defaultAction: actionOf(policy.defaultAction),
        operations: Object.freeze(operations),
      }),
    );
  });
  return Object.freeze({ configured: true, defaultAction, trustDomain, protocol, target, file, policies });
}

/** Decides one call. Pure: the same compiled spec and request always give the same Decision. */
export function evaluateAccessControl(compiled: CompiledAccessControl, request: AccessRequest): Decision {
  const caller = request.caller === 'malformed' ? 'malformed' : request.caller ? formatSpiffeId(request.caller) : 'anonymous';
  const verb = request.httpVerb?.toUpperCase();
  const normalized = normalizeOperation(request.operation, compiled.protocol);
  const shownOperation = normalized.ok ? normalized.path : request.operation;
  const method = compiled.protocol === 'http' && verb ? `${verb} ${shownOperation}` : shownOperation;
  const made = (allowed: boolean, rule: string, reason: string): Decision =>
    decision({ allowed, source: 'acl', rule, reason, caller, target: compiled.target, method });

  if (!normalized.ok) return made(false, 'malformed-operation', `${normalized.reason}; it is refused before any policy is consulted`);
  if (!compiled.configured) return made(true, 'default', 'no access control is configured, so every caller is allowed');
  if (request.caller === 'malformed') return made(false, 'malformed-caller', "the caller's certificate carries no valid SPIFFE ID, so the call is denied");

  const globalDefault = compiled.defaultAction;
  if (request.caller === undefined) {
    return made(globalDefault === 'allow', 'default', `the caller presented no SPIFFE ID (mTLS off), so the global default action "${globalDefault}" applies`);
  }
  const id = request.caller;
  const policy = compiled.policies.get(keyOf(id.appId, id.namespace));
  if (!policy) {
    return made(globalDefault === 'allow', 'default', `no policy names appId "${id.appId}" in namespace "${id.namespace}", so the global default action "${globalDefault}" applies`);
  }
  if (policy.trustDomain !== id.trustDomain) {
    return made(
      globalDefault === 'allow',
      'default',
      `the policy for "${id.appId}" (${policy.rule}) is for trust domain "${policy.trustDomain}" but the caller is in "${id.trustDomain}", so the global default action "${globalDefault}" applies`,
    );
  }

  let action: AccessAction = policy.defaultAction ?? globalDefault;
  let rule = policy.defaultAction ? policy.rule : 'default';
  let why = policy.defaultAction
    ? `the default action "${policy.defaultAction}" of the policy for "${id.appId}" applies`
    : `the policy for "${id.appId}" has no default action, so the global default action "${globalDefault}" applies`;

  const operation = compiled.protocol === 'http' ? normalized.path.toLowerCase() : normalized.path;
  const matched = policy.operations.find((candidate) => candidate.pattern.matches(operation));
  if (matched) {
    if (compiled.protocol === 'grpc') {
      action = matched.action;
      rule = matched.rule;
      why = `operation "${matched.pattern.name}" ${matched.action === 'allow' ? 'allows' : 'denies'} it`;
    } else if (verb) {
      const verbAction = matched.verbs.get(verb) ?? matched.verbs.get('*');
      if (verbAction) {
        action = verbAction;
        rule = matched.rule;
        why = `operation "${matched.pattern.name}" ${verbAction === 'allow' ? 'allows' : 'denies'} ${matched.verbs.has(verb) ? verb : 'every verb (*)'}`;
      } else {
        why = `operation "${matched.pattern.name}" does not list ${verb}, so ${why}`;
      }
    } else {
      // Dapr: an HTTP request without a verb falls back to the policy's own default; an empty one denies.
      action = policy.defaultAction ?? 'deny';
      rule = policy.rule;
      why = `the request has no HTTP verb, so the policy's own default action "${action}" applies`;
    }
  }
  return made(action === 'allow', rule, `${action === 'allow' ? 'allowed' : 'denied'}: ${why}`);
}

/**
 * The error a denied call answers with: Dapr's 403 `ERR_DIRECT_INVOKE` body, whose message names the caller,
 * operation and verb exactly as Dapr words it, so clients that parse it keep working.
 */
export function accessDeniedError(denied: Decision, request: AccessRequest): SkeinError {
  const verb = request.httpVerb ? request.httpVerb.toUpperCase() : 'NONE';
  return new SkeinError('ERR_DIRECT_INVOKE_ACL_DENIED', `access control policy has denied access to id: ${denied.caller} operation: ${request.operation} verb: ${verb}`);
}
