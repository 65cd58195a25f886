/**
 * Runs the Resiliency policies of the target around every call the app makes, just before the call leaves the
 * sidecar (to an HTTPEndpoint or through the mesh). Per attempt: the circuit breaker admits it or refuses at once,
 * the timeout cancels it when no response head has arrived in time. Around the attempts: the retry policy sends a
 * failed call again — only when its body was read whole, so a streamed body is sent once — after draining the
 * failed answer. The last answer (or error) goes back to the caller when retries run out.
 *
 * As in Dapr, a failure is an error reaching the target or a status outside 200–399; breakers are kept per app and
 * method (per endpoint for HTTPEndpoints). Denials by the callee's access control (401/403 errors) are answers, not
 * faults: never retried, and they count as successes of a target that is evidently up.
 *
 * Every retry, timeout and breaker transition is logged at info, added as an event to the call's span and counted
 * in the sidecar's metrics.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Span } from '@opentelemetry/api';
import { SkeinError, formatDuration, logger } from '@skein/core';
import type { Handler, Middleware, Call, CallResponse } from '../pipeline/pipeline.js';
import type { Counter, Metrics } from '../telemetry/metrics.js';
import { retryDelay } from './backoff.js';
import { CircuitBreaker, type BreakerTransition } from './circuit-breaker.js';
import { matchesStatus } from './status-codes.js';
import type { CircuitBreakerPolicy, CompiledResiliency, RetryPolicy, TargetPolicies } from './resiliency-config.js';

const log = logger('resiliency');

/** Span event of each retry. */
export const RETRY_EVENT = 'skein.retry';
/** Span event of each circuit-breaker state change. */
export const BREAKER_EVENT = 'skein.circuit_breaker.state';
/** Span event of each attempt cut by its timeout. */
export const TIMEOUT_EVENT = 'skein.timeout';

/** What the middleware needs besides the compiled policies. */
export interface ResiliencyMiddlewareOptions {
  /** The sidecar's namespace: targets in it are named by bare App ID. */
  namespace: string;
  /** True when the target is an HTTPEndpoint (one breaker per endpoint rather than per app and method). */
  isEndpoint?: (target: Call['target']) => boolean;
  /** Milliseconds on a monotonic clock; `performance.now` by default. */
  clock?: () => number;
  /** A number in [0, 1) for back-off jitter; `Math.random` by default. */
  random?: () => number;
  /** Where retries, timeouts and breaker transitions are counted. */
  metrics?: Metrics;
}

/** The counters the middleware keeps in the sidecar's registry. */
interface ResiliencyInstruments {
  retries: Counter;
  timeouts: Counter;
  transitions: Counter;
  rejections: Counter;
}

function instrumentsOf(metrics: Metrics): ResiliencyInstruments {
  return {
    retries: metrics.counter('skein_resiliency_retries_total', 'Calls sent again by a Resiliency retry policy, by target and policy.', ['target', 'policy']),
    timeouts: metrics.counter('skein_resiliency_timeouts_total', 'Attempts cancelled by a Resiliency timeout policy, by target and policy.', ['target', 'policy']),
    transitions: metrics.counter('skein_circuit_breaker_transitions_total', 'Circuit-breaker state changes, by target, policy and the state entered.', ['target', 'policy', 'state']),
    rejections: metrics.counter('skein_circuit_breaker_rejections_total', 'Calls refused unsent by an open (or saturated half-open) circuit breaker, by target and policy.', ['target', 'policy']),
  };
}

/** A breaker of one target key, with what its transitions are reported under. */
class TargetBreaker {
  readonly breaker: CircuitBreaker;
  readonly policy: CircuitBreakerPolicy;
  readonly target: string;
  readonly key: string;
  /** Transitions not yet reported: the breaker reports synchronously, the span is known to the caller. */
  readonly pending: BreakerTransition[] = [];
  halfOpenTimer: NodeJS.Timeout | undefined;

  constructor(policy: CircuitBreakerPolicy, target: string, key: string, now: number) {
    this.policy = policy;
    this.target = target;
    this.key = key;
    this.breaker = new CircuitBreaker({ maxRequests: policy.maxRequests, intervalMs: policy.intervalMs, timeoutMs: policy.timeoutMs, trip: (counts) => policy.trip.evaluate(counts) }, now, (transition) => this.pending.push(transition));
  }
}

type Attempt = { response: CallResponse; discard: () => void } | { error: unknown; permanent: boolean };

function succeeded(status: number): boolean {
  return status >= 200 && status <= 399;
}

/** A decision of the callee's policy, delivered as an error: the target answered, and asking again changes nothing. */
function isRefusal(error: unknown): boolean {
  return error instanceof SkeinError && (error.httpStatus === 401 || error.httpStatus === 403);
}

function reasonOf(attempt: Attempt): string {
  if ('response' in attempt) return `HTTP ${attempt.response.status}`;
  return attempt.error instanceof SkeinError ? attempt.error.code : attempt.error instanceof Error ? attempt.error.message : String(attempt.error);
}

/** The pipeline stage that applies timeouts, retries and circuit breakers to calls from the app. */
export class ResiliencyMiddleware implements Middleware {
  readonly name = 'resiliency';
  private readonly compiled: CompiledResiliency;
  private readonly namespace: string;
  private readonly isEndpoint: (target: Call['target']) => boolean;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly instruments: ResiliencyInstruments | undefined;
  /** Per target name: its breakers by key, least recently used first. */
  private readonly breakers = new Map<string, Map<string, TargetBreaker>>();

  constructor(compiled: CompiledResiliency, options: ResiliencyMiddlewareOptions) {
    this.compiled = compiled;
    this.namespace = options.namespace;
    this.isEndpoint = options.isEndpoint ?? (() => false);
    this.clock = options.clock ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.instruments = options.metrics ? instrumentsOf(options.metrics) : undefined;
    if (compiled.resources.length > 0) {
      log.info('resiliency policies loaded', { resources: compiled.resources, targets: [...compiled.apps.keys()], defaults: compiled.defaultApp !== undefined });
    }
    if (compiled.notApplied.length > 0) log.warn('resiliency targets accepted but not applied: Skein applies policies to apps and HTTPEndpoints only', { targets: compiled.notApplied });
  }

  /** The configured name of `target` and its policies; undefined when none apply. */
  policiesFor(target: Call['target']): { name: string; policies: TargetPolicies } | undefined {
    const name = target.namespace === this.namespace ? target.appId : `${target.appId}.${target.namespace}`;
    const policies = this.compiled.apps.get(name) ?? this.compiled.defaultApp;
    return policies ? { name, policies } : undefined;
  }

  async handle(request: Call, next: Handler): Promise<CallResponse> {
    const found = this.policiesFor(request.target);
    if (!found) return next(request);
    return this.run(request, next, found.name, found.policies, undefined);
  }

  /** Whether calls to actors of this type have policies. */
  hasActorPolicies(actorType: string): boolean {
    return this.compiled.actors.has(actorType);
  }

  /**
   * Runs one actor method call under the `targets.actors.<type>` policies: per-attempt timeout, retries (the body
   * is always whole), and a circuit breaker per actor type, per actor id, or both (`circuitBreakerScope`; with
   * `both`, the id's breaker is used and the type's counts every id's failures too).
   */
  async runActor(actorType: string, actorId: string, request: Call, next: Handler): Promise<CallResponse> {
    const policies = this.compiled.actors.get(actorType);
    if (!policies) return next(request);
    const target = `actors.${actorType}`;
    const scope = policies.circuitBreakerScope ?? 'type';
    if (scope === 'both' && policies.circuitBreaker) {
      // The type-wide breaker must also admit the call; it is consulted and fed like the id's.
      const typeWide = this.breakerFor(target, policies, request, `${target}:*`);
      return this.run(request, (inner) => this.run(inner, next, target, { ...policies, retry: undefined, timeout: undefined }, `${target}:id:${actorId}`), target, { ...policies, circuitBreaker: undefined }, undefined, typeWide);
    }
    return this.run(request, next, target, policies, scope === 'id' ? `${target}:id:${actorId}` : `${target}:*`);
  }

  private async run(request: Call, next: Handler, target: string, policies: TargetPolicies, breakerKey: string | undefined, givenBreaker?: TargetBreaker): Promise<CallResponse> {
    const { retry } = policies;
    const breaker = givenBreaker ?? (policies.circuitBreaker ? this.breakerFor(target, policies, request, breakerKey) : undefined);
    // A stream cannot be rewound: once its bytes went to the first attempt there is nothing left to send again.
    const replayable = Buffer.isBuffer(request.body);
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(request, next, target, policies, breaker, attempt);
      if ('response' in outcome && succeeded(outcome.response.status)) return outcome.response;
      if ('error' in outcome && isRefusal(outcome.error)) throw outcome.error;
      if (!retry || !replayable || request.signal.aborted || !this.shouldRetry(retry, outcome, attempt)) {
        if (retry && retry.maxRetries >= 0 && attempt > retry.maxRetries && attempt > 1) {
          log.info('retries exhausted; answering with the last failure', { target, retry: retry.name, resiliency: retry.resiliency, attempts: attempt, reason: reasonOf(outcome) });
        }
        if ('error' in outcome) throw outcome.error;
        return outcome.response;
      }
      if ('response' in outcome) outcome.discard();
      const waitMs = retryDelay(retry.backoff, attempt, this.random());
      const reason = reasonOf(outcome);
      request.trace?.span.addEvent(RETRY_EVENT, {
        'skein.target.app_id': target,
        'skein.resiliency.name': retry.resiliency,
        'skein.retry.policy': retry.name,
        'skein.retry.attempt': attempt + 1,
        'skein.retry.delay_ms': waitMs,
        'skein.retry.reason': reason,
      });
      log.info('retrying call', { target, method: request.method, retry: retry.name, resiliency: retry.resiliency, attempt: attempt + 1, delayMs: waitMs, reason });
      this.instruments?.retries.inc({ target, policy: retry.name });
      try {
        await delay(waitMs, undefined, { signal: request.signal });
      } catch {
        throw new SkeinError('ERR_DIRECT_INVOKE', `call to ${target} was cancelled while waiting to retry`);
      }
    }
  }

  /** Whether a failed attempt is sent again: retries left, not a refusal by a breaker, and the failure matches. */
  private shouldRetry(retry: RetryPolicy, outcome: Attempt, attempt: number): boolean {
    if (retry.maxRetries >= 0 && attempt > retry.maxRetries) return false;
    if ('error' in outcome) return !outcome.permanent;
    return matchesStatus(retry.httpStatusCodes, outcome.response.status);
  }

  /** One attempt under the breaker and the timeout; never throws, so the retry loop sees every outcome alike. */
  private async attempt(request: Call, next: Handler, target: string, policies: TargetPolicies, breaker: TargetBreaker | undefined, attempt: number): Promise<Attempt> {
    let generation: number | undefined;
    if (breaker) {
      const admission = breaker.breaker.admit(this.clock());
      this.report(breaker, request.trace?.span);
      if (!admission.admitted) {
        this.instruments?.rejections.inc({ target, policy: breaker.policy.name });
        const { policy } = breaker;
        const why =
          admission.state === 'open'
            ? `is open: calls to ${breaker.key} fail fast for ${formatDuration(admission.retryInMs)} more (it trips on "${policy.trip.expression}")`
            : `is half-open and its ${Math.max(1, policy.maxRequests)} trial call(s) are still in flight`;
        return { error: new SkeinError('ERR_CIRCUIT_BREAKER_OPEN', `failed to invoke, id: ${target}, err: circuit breaker "${policy.name}" of Resiliency "${policy.resiliency}" ${why}`), permanent: true };
      }
      generation = admission.generation;
    }

    // The attempt gets its own signal: the timeout cancels it without touching the caller's, and a discarded
    // answer can be cut. The caller going away still cancels it, for as long as the answer streams.
    const controller = new AbortController();
    const forward = (): void => controller.abort();
    if (request.signal.aborted) forward();
    else request.signal.addEventListener('abort', forward, { once: true });
    const unlink = (): void => request.signal.removeEventListener('abort', forward);

    const { timeout } = policies;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const pending = next({ ...request, signal: controller.signal });
    try {
      const response = timeout
        ? await new Promise<CallResponse>((resolve, reject) => {
            timer = setTimeout(() => {
              timedOut = true;
              controller.abort();
              reject(new SkeinError('ERR_DIRECT_INVOKE_TIMEOUT', `failed to invoke, id: ${target}, err: timeout "${timeout.name}" (${timeout.text}) of Resiliency "${timeout.resiliency}" expired before ${target} answered (attempt ${attempt})`));
            }, timeout.ms);
            pending.then(resolve, reject);
          })
        : await pending;
      clearTimeout(timer);
      if (breaker && generation !== undefined) {
        breaker.breaker.record(generation, succeeded(response.status), this.clock());
        this.report(breaker, request.trace?.span);
      }
      response.body.once('close', unlink);
      const discard = (): void => {
        // Read to the end (or cut) so neither the connection nor the mesh stream waits on an answer nobody reads.
        response.body.on('error', () => undefined);
        response.body.resume();
        controller.abort();
        unlink();
      };
      return { response, discard };
    } catch (error) {
      clearTimeout(timer);
      unlink();
      if (timedOut) {
        // The target may still answer after all; nobody will read it.
        pending.then(
          (late) => {
            late.body.on('error', () => undefined);
            late.body.resume();
          },
          () => undefined,
        );
        request.trace?.span.addEvent(TIMEOUT_EVENT, { 'skein.target.app_id': target, 'skein.resiliency.name': timeout?.resiliency ?? '', 'skein.timeout.policy': timeout?.name ?? '', 'skein.timeout.ms': timeout?.ms ?? 0, 'skein.retry.attempt': attempt });
        log.info('timeout expired; attempt cancelled', { target, method: request.method, timeout: timeout?.name, resiliency: timeout?.resiliency, ms: timeout?.ms, attempt });
        if (timeout) this.instruments?.timeouts.inc({ target, policy: timeout.name });
      }
      if (breaker && generation !== undefined) {
        const now = this.clock();
        // The caller leaving says nothing about the target; a denial proves it answered.
        if (request.signal.aborted && !timedOut) breaker.breaker.abandon(generation, now);
        else breaker.breaker.record(generation, isRefusal(error), now);
        this.report(breaker, request.trace?.span);
      }
      return { error, permanent: request.signal.aborted };
    }
  }

  /** The breaker of this call's key, created on first use; the least recently used goes when the cache is full. */
  private breakerFor(target: string, policies: TargetPolicies, request: Call, breakerKey?: string): TargetBreaker | undefined {
    const policy = policies.circuitBreaker;
    if (!policy) return undefined;
    const key = breakerKey ?? (this.isEndpoint(request.target) ? target : `${target}:${request.method}`);
    let cache = this.breakers.get(target);
    if (!cache) {
      cache = new Map();
      this.breakers.set(target, cache);
    }
    let found = cache.get(key);
    if (found) {
      cache.delete(key);
    } else {
      found = new TargetBreaker(policy, target, key, this.clock());
      const oldest = cache.size >= policies.circuitBreakerCacheSize ? cache.keys().next().value : undefined;
      if (oldest !== undefined) {
        clearTimeout(cache.get(oldest)?.halfOpenTimer);
        cache.delete(oldest);
      }
    }
    cache.set(key, found);
    return found;
  }

  /** Logs, counts and (with a span) traces the breaker's pending transitions; schedules the move to half-open. */
  private report(entry: TargetBreaker, span: Span | undefined): void {
    for (const transition of entry.pending.splice(0)) {
      const { policy } = entry;
      const fields = {
        target: entry.target,
        key: entry.key,
        breaker: policy.name,
        resiliency: policy.resiliency,
        from: transition.from,
        to: transition.to,
        ...transition.counts,
      };
      log.info(`circuit breaker ${transition.to}`, fields);
      this.instruments?.transitions.inc({ target: entry.target, policy: policy.name, state: transition.to });
      span?.addEvent(BREAKER_EVENT, {
        'skein.target.app_id': entry.target,
        'skein.resiliency.name': policy.resiliency,
        'skein.circuit_breaker.policy': policy.name,
        'skein.circuit_breaker.key': entry.key,
        'skein.circuit_breaker.from': transition.from,
        'skein.circuit_breaker.to': transition.to,
        'skein.circuit_breaker.consecutive_failures': transition.counts.consecutiveFailures,
        'skein.circuit_breaker.total_failures': transition.counts.totalFailures,
        'skein.circuit_breaker.requests': transition.counts.requests,
      });
    }
    const at = entry.breaker.halfOpenAt();
    if (at !== undefined && entry.halfOpenTimer === undefined) {
      // The breaker itself is lazy; this makes the move to half-open visible (log, metrics) when it happens.
      entry.halfOpenTimer = setTimeout(() => {
        entry.halfOpenTimer = undefined;
        entry.breaker.state(this.clock());
        this.report(entry, undefined);
      }, Math.max(0, at - this.clock()) + 1);
      entry.halfOpenTimer.unref();
    }
  }

  /** Stops the half-open timers. */
  close(): void {
    for (const cache of this.breakers.values()) for (const entry of cache.values()) clearTimeout(entry.halfOpenTimer);
    this.breakers.clear();
  }
}
