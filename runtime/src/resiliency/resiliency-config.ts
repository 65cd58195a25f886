/**
 * Compiles the Resiliency resources an app loads, once, at `skein run`: durations parsed, status-code lists parsed,
 * `trip` conditions compiled, every policy name a target uses resolved. Policy names are shared by all the app's
 * Resiliency resources, as in Dapr; a name defined twice, a target listed twice, or anything that does not parse
 * is a ConfigError naming the file, the JSON path and the reason, so a sidecar never starts with half its policies.
 */
import { ConfigError, parseDuration } from '@skein/core';
import type { LoadedResource } from '../config/load.js';
import type { CircuitBreakerSpec, ResiliencyResource, RetrySpec, TargetPolicyNames } from '../config/types.js';
import { inScope } from '../config/scope.js';
import { DEFAULT_CONSTANT_DELAY_MS, DEFAULT_MAX_INTERVAL_MS, type Backoff } from './backoff.js';
import { GRPC_STATUS_RANGE, HTTP_STATUS_RANGE, parseStatusCodes, type StatusCodeSet } from './status-codes.js';
import { compileTripCondition, DEFAULT_TRIP, TripConditionError, type TripCondition } from './trip-condition.js';

/** Dapr's default breaker timeout (also used for `0s`, as gobreaker does). */
export const DEFAULT_BREAKER_TIMEOUT_MS = 60_000;
/** Breakers kept per app target (one per method) when `circuitBreakerCacheSize` is not given. */
export const DEFAULT_BREAKER_CACHE_SIZE = 100;

/** A compiled timeout policy. */
export interface TimeoutPolicy {
  readonly name: string;
  /** Name of the Resiliency resource that defines it. */
  readonly resiliency: string;
  readonly ms: number;
  /** The duration as written, for messages. */
  readonly text: string;
}

/** A compiled retry policy. */
export interface RetryPolicy {
  readonly name: string;
  readonly resiliency: string;
  readonly backoff: Backoff;
  /** Retries after the first attempt; -1 retries until the caller gives up. */
  readonly maxRetries: number;
  /** Statuses retried; undefined retries every failure. */
  readonly httpStatusCodes: StatusCodeSet | undefined;
  /** Validated and kept for compatibility; Skein's targets answer HTTP. */
  readonly grpcStatusCodes: StatusCodeSet | undefined;
}

/** A compiled circuit-breaker policy: the template every target's breaker is made from. */
export interface CircuitBreakerPolicy {
  readonly name: string;
  readonly resiliency: string;
  readonly maxRequests: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly trip: TripCondition;
}

/** The policies of one target (or of every target no Resiliency names, from the default policies). */
export interface TargetPolicies {
  readonly timeout: TimeoutPolicy | undefined;
  readonly retry: RetryPolicy | undefined;
  readonly circuitBreaker: CircuitBreakerPolicy | undefined;
  /** Most breakers kept for the target, one per method. */
  readonly circuitBreakerCacheSize: number;
}

/** Everything the Resiliency resources of one app say about the calls it makes. */
export interface CompiledResiliency {
  /** App IDs and HTTPEndpoint names → their policies. */
  readonly apps: ReadonlyMap<string, TargetPolicies>;
  /** Actor types → their policies, and whether breakers are per type, per actor id, or both. */
  readonly actors: ReadonlyMap<string, TargetPolicies & { readonly circuitBreakerScope: 'type' | 'id' | 'both' | undefined }>;
  /** From `DefaultApp*Policy` / `Default*Policy`, for apps no target names; undefined when there are none. */
  readonly defaultApp: TargetPolicies | undefined;
  /** Names of the Resiliency resources loaded. */
  readonly resources: readonly string[];
  /** Targets that were validated but that Skein does not apply yet (components), for the startup log. */
  readonly notApplied: readonly string[];
}

/** Inputs of `compileResiliency`. */
export interface ResiliencyInputs {
  appId: string;
  namespace: string;
  resources: readonly LoadedResource[];
}

/** One segment of a JSON Pointer (RFC 6901). */
function pointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

interface Defined<T> {
  policy: T;
  file: string;
}

function duration(text: string, file: string, path: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new ConfigError(file, path, (error as Error).message);
  }
}

function compileRetry(name: string, spec: RetrySpec, resiliency: string, file: string, at: string): RetryPolicy {
  const maxRetries = spec.maxRetries ?? -1;
  if (!Number.isInteger(maxRetries) || maxRetries < -1) throw new ConfigError(file, `${at}/maxRetries`, `maxRetries must be -1 (retry until the caller gives up), 0 (never) or a positive count, not ${maxRetries}`);
  let backoff: Backoff;
  if ((spec.policy ?? 'constant') === 'constant') {
    backoff = { kind: 'constant', delayMs: spec.duration === undefined ? DEFAULT_CONSTANT_DELAY_MS : duration(spec.duration, file, `${at}/duration`) };
    if (spec.maxInterval !== undefined) duration(spec.maxInterval, file, `${at}/maxInterval`);
  } else {
    const maxIntervalMs = spec.maxInterval === undefined ? DEFAULT_MAX_INTERVAL_MS : duration(spec.maxInterval, file, `${at}/maxInterval`);
    if (maxIntervalMs <= 0) throw new ConfigError(file, `${at}/maxInterval`, 'maxInterval must be longer than 0');
    backoff = { kind: 'exponential', maxIntervalMs };
    if (spec.duration !== undefined) duration(spec.duration, file, `${at}/duration`);
  }
  const codes = (text: string | undefined, range: typeof HTTP_STATUS_RANGE, field: string): StatusCodeSet | undefined => {
    if (text === undefined) return undefined;
    try {
      return parseStatusCodes(text, range);
    } catch (error) {
      throw new ConfigError(file, `${at}/matching/${field}`, `"${text}" does not parse: ${(error as Error).message}`);
    }
  };
  return Object.freeze({
    name,
    resiliency,
    backoff: Object.freeze(backoff),
    maxRetries,
    httpStatusCodes: codes(spec.matching?.httpStatusCodes, HTTP_STATUS_RANGE, 'httpStatusCodes'),
    grpcStatusCodes: codes(spec.matching?.gRPCStatusCodes, GRPC_STATUS_RANGE, 'gRPCStatusCodes'),
  });
}

function compileBreaker(name: string, spec: CircuitBreakerSpec, resiliency: string, file: string, at: string): CircuitBreakerPolicy {
  const maxRequests = spec.maxRequests ?? 1;
  if (!Number.isInteger(maxRequests) || maxRequests < 0) throw new ConfigError(file, `${at}/maxRequests`, `maxRequests must be 0 or more, not ${maxRequests}`);
  const intervalMs = spec.interval === undefined ? 0 : duration(spec.interval, file, `${at}/interval`);
  const timeoutMs = spec.timeout === undefined ? DEFAULT_BREAKER_TIMEOUT_MS : duration(spec.timeout, file, `${at}/timeout`);
  let trip: TripCondition;
  try {
    trip = compileTripCondition(spec.trip ?? DEFAULT_TRIP);
  } catch (error) {
    if (!(error instanceof TripConditionError)) throw error;
    throw new ConfigError(file, `${at}/trip`, `"${spec.trip ?? DEFAULT_TRIP}": ${error.message}`);
  }
  return Object.freeze({ name, resiliency, maxRequests, intervalMs, timeoutMs: timeoutMs > 0 ? timeoutMs : DEFAULT_BREAKER_TIMEOUT_MS, trip });
}

/** Compiles the Resiliency resources the sidecar of `appId` loads. Throws a ConfigError on the first problem. */
export function compileResiliency(inputs: ResiliencyInputs): CompiledResiliency {
  const { appId, namespace } = inputs;
  const loaded = inputs.resources.filter((resource) => resource.kind === 'Resiliency' && inScope(resource.value, appId, namespace));
  const timeouts = new Map<string, Defined<TimeoutPolicy>>();
  const retries = new Map<string, Defined<RetryPolicy>>();
  const breakers = new Map<string, Defined<CircuitBreakerPolicy>>();

  const define = <T>(table: Map<string, Defined<T>>, what: string, name: string, file: string, path: string, make: () => T): void => {
    const earlier = table.get(name);
    if (earlier) throw new ConfigError(file, path, `a ${what} policy named "${name}" is already defined in ${earlier.file}`);
    table.set(name, { policy: make(), file });
  };

  for (const { file, value } of loaded) {
    const resource = value as ResiliencyResource;
    const resiliency = resource.metadata.name;
    const { policies } = resource.spec;
    for (const [name, text] of Object.entries(policies.timeouts ?? {})) {
      const at = `/spec/policies/timeouts/${pointer(name)}`;
      define(timeouts, 'timeout', name, file, at, () => {
        const ms = duration(text, file, at);
        if (ms <= 0) throw new ConfigError(file, at, 'a timeout must be longer than 0');
        return Object.freeze({ name, resiliency, ms, text });
      });
    }
    for (const [name, spec] of Object.entries(policies.retries ?? {})) {
      const at = `/spec/policies/retries/${pointer(name)}`;
      define(retries, 'retry', name, file, at, () => compileRetry(name, spec, resiliency, file, at));
    }
    for (const [name, spec] of Object.entries(policies.circuitBreakers ?? {})) {
      const at = `/spec/policies/circuitBreakers/${pointer(name)}`;
      define(breakers, 'circuit-breaker', name, file, at, () => compileBreaker(name, spec, resiliency, file, at));
    }
  }

  const resolve = (names: TargetPolicyNames, file: string, at: string, cacheSize: number): TargetPolicies => {
    const find = <T>(table: Map<string, Defined<T>>, field: keyof TargetPolicyNames, what: string): T | undefined => {
      const name = names[field];
      if (name === undefined) return undefined;
      const found = table.get(name);
      if (!found) {
        const known = [...table.keys()];
        throw new ConfigError(file, `${at}/${field}`, `no ${what} policy named "${name}" is defined in spec.policies (${known.length > 0 ? `defined: ${known.join(', ')}` : `no ${what} policies are defined`})`);
      }
      return found.policy;
    };
    return Object.freeze({ timeout: find(timeouts, 'timeout', 'timeout'), retry: find(retries, 'retry', 'retry'), circuitBreaker: find(breakers, 'circuitBreaker', 'circuit-breaker'), circuitBreakerCacheSize: cacheSize });
  };

  const apps = new Map<string, TargetPolicies>();
  const actors = new Map<string, TargetPolicies & { circuitBreakerScope: 'type' | 'id' | 'both' | undefined }>();
  const appFiles = new Map<string, string>();
  const notApplied: string[] = [];
  for (const { file, value } of loaded) {
    const resource = value as ResiliencyResource;
    const targets = resource.spec.targets ?? {};
    for (const [target, names] of Object.entries(targets.apps ?? {})) {
      const at = `/spec/targets/apps/${pointer(target)}`;
      const earlier = appFiles.get(target);
      if (earlier) throw new ConfigError(file, at, `app target "${target}" is already defined in ${earlier}`);
      appFiles.set(target, file);
      apps.set(target, resolve(names, file, at, names.circuitBreakerCacheSize ?? DEFAULT_BREAKER_CACHE_SIZE));
    }
    for (const [actorType, names] of Object.entries(targets.actors ?? {})) {
      const at = `/spec/targets/actors/${pointer(actorType)}`;
      if (names.circuitBreaker !== undefined && names.circuitBreakerScope === undefined) {
        throw new ConfigError(file, `${at}/circuitBreakerScope`, 'an actor circuit breaker needs circuitBreakerScope: type, id or both');
      }
      if (actors.has(actorType)) throw new ConfigError(file, at, `actor target "${actorType}" is already defined`);
      const scope = names.circuitBreakerScope;
      actors.set(actorType, { ...resolve(names, file, at, names.circuitBreakerCacheSize ?? DEFAULT_BREAKER_CACHE_SIZE), circuitBreakerScope: scope });
    }
    for (const [component, directions] of Object.entries(targets.components ?? {})) {
      const at = `/spec/targets/components/${pointer(component)}`;
      if (directions.outbound) resolve(directions.outbound, file, `${at}/outbound`, DEFAULT_BREAKER_CACHE_SIZE);
      if (directions.inbound) resolve(directions.inbound, file, `${at}/inbound`, DEFAULT_BREAKER_CACHE_SIZE);
      notApplied.push(`components.${component} (Resiliency "${resource.metadata.name}")`);
    }
  }

  // Dapr's default policies: the most specific name (`DefaultApp…`) wins over the general one (`Default…`).
  const pick = <T>(table: Map<string, Defined<T>>, kind: string): T | undefined => (table.get(`DefaultApp${kind}Policy`) ?? table.get(`Default${kind}Policy`))?.policy;
  const defaults: TargetPolicies = Object.freeze({
    timeout: pick(timeouts, 'Timeout'),
    retry: pick(retries, 'Retry'),
    circuitBreaker: pick(breakers, 'CircuitBreaker'),
    circuitBreakerCacheSize: DEFAULT_BREAKER_CACHE_SIZE,
  });
  const hasDefaults = defaults.timeout !== undefined || defaults.retry !== undefined || defaults.circuitBreaker !== undefined;

  return Object.freeze({
    actors,
    apps,
    defaultApp: hasDefaults ? defaults : undefined,
    resources: Object.freeze(loaded.map((resource) => resource.name)),
    notApplied: Object.freeze(notApplied),
  });
}
