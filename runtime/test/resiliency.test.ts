import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Attributes, Span } from '@opentelemetry/api';
import { loadResources, type LoadedResource } from '../src/config/load.js';
import type { ResiliencyResource } from '../src/config/types.js';
import { ConfigError, SkeinError, configureLogging } from '@skein/core';
import type { Handler, Call, CallResponse } from '../src/pipeline/pipeline.js';
import { DEFAULT_MAX_INTERVAL_MS, retryDelay } from '../src/resiliency/backoff.js';
import { CircuitBreaker, type BreakerTransition } from '../src/resiliency/circuit-breaker.js';
import { compileResiliency, type CompiledResiliency } from '../src/resiliency/resiliency-config.js';
import { BREAKER_EVENT, RETRY_EVENT, ResiliencyMiddleware, TIMEOUT_EVENT } from '../src/resiliency/resiliency-middleware.js';
import { GRPC_STATUS_RANGE, HTTP_STATUS_RANGE, matchesStatus, parseStatusCodes } from '../src/resiliency/status-codes.js';
import { compileTripCondition, TripConditionError } from '../src/resiliency/trip-condition.js';
import { Metrics } from '../src/telemetry/metrics.js';

// The middleware logs every retry and transition at info; keep test output readable.
configureLogging({ level: 'error' });

describe('resiliency: back-off', function () {
  it('waits the same duration every time with the constant policy', function () {
    for (const retry of [1, 2, 10]) assert.equal(retryDelay({ kind: 'constant', delayMs: 250 }, retry, 0.9), 250);
  });

  it('grows ×1.5 from 500 ms with the exponential policy, jitter ±50%', function () {
    const backoff = { kind: 'exponential', maxIntervalMs: DEFAULT_MAX_INTERVAL_MS } as const;
    assert.deepEqual([1, 2, 3, 4].map((retry) => retryDelay(backoff, retry, 0.5)), [500, 750, 1125, 1688]);
    assert.equal(retryDelay(backoff, 1, 0), 250);
    assert.equal(retryDelay(backoff, 1, 0.999999), 750);
    assert.equal(retryDelay(backoff, 2, 0), 375);
  });

  it('never waits longer than maxInterval (60 s by default), jitter included', function () {
    const backoff = { kind: 'exponential', maxIntervalMs: DEFAULT_MAX_INTERVAL_MS } as const;
    assert.equal(retryDelay(backoff, 40, 0.999), 60_000);
    assert.equal(retryDelay(backoff, 5000, 0.5), 60_000, 'no overflow after many retries');
    assert.equal(retryDelay({ kind: 'exponential', maxIntervalMs: 1000 }, 3, 0.99), 1000);
    assert.equal(retryDelay({ kind: 'exponential', maxIntervalMs: 1000 }, 3, 0), 500, 'jitter applies to the capped interval');
  });
});

describe('resiliency: status-code matching', function () {
  it('parses codes and ranges', function () {
    const set = parseStatusCodes('429, 500-503,504', HTTP_STATUS_RANGE);
    assert.ok(set);
    assert.deepEqual(set.ranges, [
      { start: 429, end: 429 },
      { start: 500, end: 503 },
      { start: 504, end: 504 },
    ]);
    assert.deepEqual([428, 429, 499, 500, 502, 504, 505].map((code) => matchesStatus(set, code)), [false, true, false, true, true, true, false]);
  });

  it('matches everything when the list is not set or empty', function () {
    assert.equal(parseStatusCodes('', HTTP_STATUS_RANGE), undefined);
    assert.equal(parseStatusCodes(' , ', HTTP_STATUS_RANGE), undefined);
    assert.equal(matchesStatus(undefined, 404), true);
  });

  it('refuses what does not parse, naming the item', function () {
    for (const [text, reason] of [
      ['abc', /"abc" is neither/],
      ['600', /600 in "600" is outside 100-599/],
      ['599-500', /ends before it starts/],
      ['500-599-600', /"500-599-600" is neither/],
      ['99', /outside 100-599/],
      ['5xx', /neither/],
      ['-1', /neither/],
    ] as const) {
      assert.throws(() => parseStatusCodes(text, HTTP_STATUS_RANGE), reason, text);
    }
    assert.throws(() => parseStatusCodes('17', GRPC_STATUS_RANGE), /outside 0-16/);
    assert.ok(parseStatusCodes('1-4,8-11,13,14', GRPC_STATUS_RANGE));
  });
});

describe('resiliency: trip conditions', function () {
  it("evaluates CEL over Dapr's counters", function () {
    const trip = compileTripCondition('requests > 5 && totalFailures > 3');
    const counts = { requests: 6, totalSuccesses: 2, totalFailures: 4, consecutiveSuccesses: 0, consecutiveFailures: 1 };
    assert.equal(trip.evaluate(counts), true);
    assert.equal(trip.evaluate({ ...counts, totalFailures: 3 }), false);
    assert.equal(compileTripCondition('consecutiveSuccesses == 0').evaluate(counts), true);
  });

  it('refuses expressions that do not compile, name unknown variables or are not bool', function () {
    assert.throws(() => compileTripCondition('consecutiveFailures >'), (error: unknown) => error instanceof TripConditionError && /does not compile/.test(error.message));
    assert.throws(() => compileTripCondition('failures > 3'), /does not type-check/);
    assert.throws(() => compileTripCondition('consecutiveFailures + 1'), /gives int, not a bool/);
    assert.throws(() => compileTripCondition('consecutiveFailures > "3"'), /type-check/);
    assert.throws(() => compileTripCondition('  '), /empty/);
  });
});

describe('resiliency: circuit breaker', function () {
  const settings = { maxRequests: 2, intervalMs: 0, timeoutMs: 1000, trip: (counts: { consecutiveFailures: number }) => counts.consecutiveFailures >= 3 };

  function fail(breaker: CircuitBreaker, now: number): void {
    const admission = breaker.admit(now);
    assert.ok(admission.admitted);
    breaker.record(admission.generation, false, now);
  }

  function succeed(breaker: CircuitBreaker, now: number): void {
    const admission = breaker.admit(now);
    assert.ok(admission.admitted);
    breaker.record(admission.generation, true, now);
  }

  it('opens when trip holds, refuses while open, half-opens after the timeout and closes after maxRequests successes', function () {
    const transitions: BreakerTransition[] = [];
    const breaker = new CircuitBreaker(settings, 0, (transition) => transitions.push(transition));
    fail(breaker, 1);
    fail(breaker, 2);
    succeed(breaker, 3);
    fail(breaker, 4);
    fail(breaker, 5);
    assert.equal(breaker.state(5), 'closed', 'a success in between resets the run of failures');
    fail(breaker, 6);
    assert.equal(breaker.state(6), 'open');
    assert.deepEqual(transitions.map(({ from, to }) => `${from}>${to}`), ['closed>open']);
    assert.equal(transitions[0]?.counts.consecutiveFailures, 3);
    assert.equal(transitions[0]?.counts.totalFailures, 5);
    assert.equal(breaker.halfOpenAt(), 1006);

    assert.deepEqual(breaker.admit(500), { admitted: false, state: 'open', retryInMs: 506 });
    assert.equal(breaker.state(1005), 'open');
    assert.equal(breaker.state(1006), 'half-open');
    const first = breaker.admit(1007);
    const second = breaker.admit(1007);
    assert.ok(first.admitted && second.admitted);
    assert.deepEqual(breaker.admit(1007), { admitted: false, state: 'half-open', inFlight: 2 }, 'only maxRequests trial calls');
    breaker.record(first.generation, true, 1008);
    assert.equal(breaker.state(1008), 'half-open', 'one success is not maxRequests');
    breaker.record(second.generation, true, 1009);
    assert.equal(breaker.state(1009), 'closed');
    assert.deepEqual(transitions.map(({ from, to }) => `${from}>${to}`), ['closed>open', 'open>half-open', 'half-open>closed']);
    assert.equal(breaker.counts().requests, 0, 'counters start afresh');
  });

  it('opens again on one failure while half-open', function () {
    const breaker = new CircuitBreaker(settings, 0);
    for (let i = 0; i < 3; i++) fail(breaker, 10);
    assert.equal(breaker.state(2000), 'half-open');
    fail(breaker, 2000);
    assert.equal(breaker.state(2000), 'open');
    assert.equal(breaker.halfOpenAt(), 3000);
  });

  it('clears its counters every interval while closed', function () {
    const breaker = new CircuitBreaker({ ...settings, intervalMs: 100 }, 0);
    fail(breaker, 10);
    fail(breaker, 20);
    assert.equal(breaker.counts().consecutiveFailures, 2);
    fail(breaker, 150);
    assert.equal(breaker.state(150), 'closed', 'the interval cleared the first two failures');
    assert.equal(breaker.counts().consecutiveFailures, 1);
  });

  it('ignores outcomes from before a state change, and forgets abandoned trial calls', function () {
    const breaker = new CircuitBreaker(settings, 0);
    const early = breaker.admit(0);
    assert.ok(early.admitted);
    for (let i = 0; i < 3; i++) fail(breaker, 1);
    breaker.record(early.generation, true, 2);
    assert.equal(breaker.state(2), 'open', 'a late success of an older call does not close it');
    const trial = breaker.admit(1100);
    const other = breaker.admit(1100);
    assert.ok(trial.admitted && other.admitted);
    assert.equal(breaker.admit(1100).admitted, false);
    breaker.abandon(trial.generation, 1101);
    assert.equal(breaker.admit(1101).admitted, true, 'the abandoned call freed its place');
  });

  it('takes maxRequests 0 as 1', function () {
    const breaker = new CircuitBreaker({ ...settings, maxRequests: 0 }, 0);
    for (let i = 0; i < 3; i++) fail(breaker, 1);
    assert.ok(breaker.admit(1001).admitted);
    assert.equal(breaker.admit(1001).admitted, false);
  });
});

describe('resiliency: compiling resources', function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'skein-resiliency-'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  const RESOURCE = `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: myresiliency
spec:
  policies:
    timeouts:
      general: 5s
      quick: 250ms
    retries:
      transient:
        policy: constant
        duration: 50ms
        maxRetries: 3
        matching:
          httpStatusCodes: "429,500-599"
          gRPCStatusCodes: "1-4,8-11,13,14"
      forever:
        policy: exponential
        maxInterval: 15s
    circuitBreakers:
      simpleCB:
        maxRequests: 1
        timeout: 30s
        trip: consecutiveFailures >= 5
  targets:
    apps:
      orders:
        timeout: general
        retry: transient
        circuitBreaker: simpleCB
      remote-mcp:
        timeout: quick
    actors:
      myActor:
        retry: forever
        circuitBreaker: simpleCB
        circuitBreakerScope: both
    components:
      statestore:
        outbound:
          retry: transient
`;

  function compile(text: string, appId = 'agent'): CompiledResiliency {
    write('resiliency.yaml', text);
    return compileResiliency({ appId, namespace: 'default', resources: loadResources([dir]) });
  }

  function configError(text: string): ConfigError {
    try {
      compile(text);
    } catch (error) {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      return error;
    }
    assert.fail('expected a ConfigError');
  }

  it("compiles Dapr's example shape, with Dapr's defaults", function () {
    const compiled = compile(RESOURCE);
    const orders = compiled.apps.get('orders');
    assert.ok(orders);
    assert.equal(orders.timeout?.ms, 5000);
    assert.deepEqual(orders.retry?.backoff, { kind: 'constant', delayMs: 50 });
    assert.equal(orders.retry?.maxRetries, 3);
    assert.equal(orders.retry?.httpStatusCodes?.ranges.length, 2);
    assert.equal(orders.circuitBreaker?.timeoutMs, 30_000);
    assert.equal(orders.circuitBreaker?.intervalMs, 0);
    assert.equal(orders.circuitBreaker?.trip.expression, 'consecutiveFailures >= 5');
    assert.equal(orders.circuitBreakerCacheSize, 100);
    assert.equal(compiled.apps.get('remote-mcp')?.timeout?.ms, 250);
    assert.equal(compiled.apps.get('remote-mcp')?.retry, undefined);
    assert.deepEqual(compiled.notApplied, ['components.statestore (Resiliency "myresiliency")']);
    assert.ok(compiled.actors.get('myActor'), 'actor targets are compiled and applied');
    assert.equal(compiled.defaultApp, undefined);
  });

  it('fills in defaults: constant 5s, maxRetries -1, exponential cap 60s, breaker 1 / 0s / 60s / consecutiveFailures > 5', function () {
    const compiled = compile(`apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: r }
spec:
  policies:
    retries:
      plain: {}
      exp: { policy: exponential }
    circuitBreakers:
      cb: {}
  targets:
    apps:
      a: { retry: plain, circuitBreaker: cb }
      b: { retry: exp }
`);
    const a = compiled.apps.get('a');
    assert.deepEqual(a?.retry?.backoff, { kind: 'constant', delayMs: 5000 });
    assert.equal(a?.retry?.maxRetries, -1);
    assert.equal(a?.retry?.httpStatusCodes, undefined);
    assert.deepEqual(compiled.apps.get('b')?.retry?.backoff, { kind: 'exponential', maxIntervalMs: 60_000 });
    const cb = a?.circuitBreaker;
    assert.deepEqual([cb?.maxRequests, cb?.intervalMs, cb?.timeoutMs, cb?.trip.expression], [1, 0, 60_000, 'consecutiveFailures > 5']);
  });

  it('applies DefaultApp*/Default* policies to apps no target names', function () {
    const compiled = compile(`apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: r }
spec:
  policies:
    timeouts: { DefaultTimeoutPolicy: 2s, DefaultAppTimeoutPolicy: 1s }
    retries: { DefaultRetryPolicy: { maxRetries: 2 } }
`);
    assert.equal(compiled.defaultApp?.timeout?.name, 'DefaultAppTimeoutPolicy');
    assert.equal(compiled.defaultApp?.retry?.maxRetries, 2);
    assert.equal(compiled.defaultApp?.circuitBreaker, undefined);
  });

  it('loads only resources scoped to the app', function () {
    const scoped = `${RESOURCE}scopes: [checkout]\n`;
    assert.equal(compile(scoped, 'agent').apps.size, 0);
    assert.equal(compile(scoped, 'checkout').apps.size, 2);
  });

  it('names file, path and reason for every mistake', function () {
    const file = join(dir, 'resiliency.yaml');
    const cases: Array<[string, string, string, RegExp]> = [
      ['undefined timeout', '        timeout: general', '        timeout: generall', /targets\/apps\/orders\/timeout: no timeout policy named "generall" is defined in spec\.policies \(defined: general, quick\)/],
      ['undefined retry', '        retry: transient\n        circuitBreaker', '        retry: nope\n        circuitBreaker', /targets\/apps\/orders\/retry: no retry policy named "nope"/],
      ['undefined breaker', '        circuitBreaker: simpleCB\n      remote', '        circuitBreaker: missingCB\n      remote', /targets\/apps\/orders\/circuitBreaker: no circuit-breaker policy named "missingCB"/],
      ['undefined actor policy', '        retry: forever', '        retry: never', /targets\/actors\/myActor\/retry: no retry policy named "never"/],
      ['bad timeout', '      general: 5s', '      general: 5 seconds', /policies\/timeouts\/general: invalid duration "5 seconds"/],
      ['zero timeout', '      general: 5s', '      general: 0s', /policies\/timeouts\/general: a timeout must be longer than 0/],
      ['bad retry duration', '        duration: 50ms', '        duration: fast', /policies\/retries\/transient\/duration: invalid duration "fast"/],
      ['bad maxInterval', '        maxInterval: 15s', '        maxInterval: -15s', /policies\/retries\/forever\/maxInterval: invalid duration/],
      ['bad range', '"429,500-599"', '"429,599-500"', /retries\/transient\/matching\/httpStatusCodes: "429,599-500" does not parse: the range "599-500" ends before it starts/],
      ['bad code', '"429,500-599"', '"429;502"', /matching\/httpStatusCodes: "429;502" does not parse/],
      ['bad gRPC code', '"1-4,8-11,13,14"', '"1-4,17"', /matching\/gRPCStatusCodes: "1-4,17" does not parse: 17 in "17" is outside 0-16/],
      ['negative retries', '        maxRetries: 3', '        maxRetries: -2', /retries\/transient\/maxRetries: maxRetries must be -1 \(retry until the caller gives up\), 0 \(never\) or a positive count, not -2/],
      ['bad CEL', '        trip: consecutiveFailures >= 5', '        trip: consecutiveFailures >=', /circuitBreakers\/simpleCB\/trip: "consecutiveFailures >=": CEL does not compile/],
      ['unknown counter', '        trip: consecutiveFailures >= 5', '        trip: failures >= 5', /circuitBreakers\/simpleCB\/trip: "failures >= 5": CEL does not type-check/],
      ['breaker interval', '        timeout: 30s', '        timeout: 30s\n        interval: often', /circuitBreakers\/simpleCB\/interval: invalid duration "often"/],
      ['actor scope', '        circuitBreakerScope: both\n', '', /targets\/actors\/myActor\/circuitBreakerScope: an actor circuit breaker needs circuitBreakerScope/],
      ['schema: unknown field', '        maxRetries: 3', '        maxRetries: 3\n        retryOn: 503', /policies\/retries\/transient\/retryOn: unknown field "retryOn"/],
      ['schema: policy kind', '        policy: constant', '        policy: linear', /policies\/retries\/transient\/policy: must be one of/],
    ];
    for (const [what, from, to, reason] of cases) {
      assert.ok(RESOURCE.includes(from), `${what}: the fixture holds "${from}"`);
      const error = configError(RESOURCE.replace(from, to));
      assert.equal(error.location?.file, file, what);
      assert.match(error.message, reason, what);
      assert.ok(error.message.startsWith(`${file}: /`), `${what}: ${error.message}`);
    }
  });

  it('refuses a policy name or a target defined in two resources', function () {
    write('second.yaml', `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: second }
spec:
  policies:
    timeouts: { general: 1s }
`);
    const duplicatePolicy = configError(RESOURCE);
    assert.match(duplicatePolicy.message, /second\.yaml: \/spec\/policies\/timeouts\/general: a timeout policy named "general" is already defined in .*resiliency\.yaml/);
    write('second.yaml', `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: second }
spec:
  policies:
    timeouts: { other: 1s }
  targets:
    apps:
      orders: { timeout: other }
`);
    assert.match(configError(RESOURCE).message, /second\.yaml: \/spec\/targets\/apps\/orders: app target "orders" is already defined in/);
  });

  it('a policy of one resource may be used by a target of another, as in Dapr', function () {
    write('second.yaml', `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: { name: second }
spec:
  policies: {}
  targets:
    apps:
      billing: { timeout: quick }
`);
    assert.equal(compile(RESOURCE).apps.get('billing')?.timeout?.resiliency, 'myresiliency');
  });
});

/** A span that only records its events. */
function recordingSpan(): { span: Span; events: Array<{ name: string; attributes: Attributes }> } {
  const events: Array<{ name: string; attributes: Attributes }> = [];
  const span = {
    addEvent(name: string, attributes?: Attributes) {
      events.push({ name, attributes: attributes ?? {} });
      return span;
    },
  } as unknown as Span;
  return { span, events };
}

function responseOf(status: number, text = ''): CallResponse {
  const body = new PassThrough();
  body.end(text);
  return { status, headers: [], body };
}

function policies(extra: Partial<ResiliencyResource['spec']['policies']>, target: Record<string, string>): CompiledResiliency {
  const resource: ResiliencyResource = {
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Resiliency',
    metadata: { name: 'test-resiliency' },
    spec: { policies: extra, targets: { apps: { echo: target } } },
  };
  const loaded: LoadedResource = { file: 'resiliency.yaml', kind: 'Resiliency', name: 'test-resiliency', value: resource };
  return compileResiliency({ appId: 'agent', namespace: 'default', resources: [loaded] });
}

function requestTo(appId: string, body: Buffer | PassThrough = Buffer.from('{}'), signal = new AbortController().signal): Call & { events: Array<{ name: string; attributes: Attributes }> } {
  const { span, events } = recordingSpan();
  return { caller: undefined, target: { appId, namespace: 'default' }, verb: 'POST', method: 'mcp', query: '', headers: [], body, decisions: [], signal, trace: { span, context: {} as never }, events };
}

describe('resiliency: the middleware', function () {
  const RETRY = { retries: { quick: { policy: 'constant' as const, duration: '1ms', maxRetries: 3, matching: { httpStatusCodes: '502-504' } } } };

  it('turns a transient 503 into success, draining each failed answer', async function () {
    const middleware = new ResiliencyMiddleware(policies(RETRY, { retry: 'quick' }), { namespace: 'default' });
    const failed: PassThrough[] = [];
    let calls = 0;
    const next: Handler = async () => {
      calls++;
      if (calls <= 2) {
        const response = responseOf(503, 'busy');
        failed.push(response.body as PassThrough);
        return response;
      }
      return responseOf(200, 'done');
    };
    const request = requestTo('echo');
    const response = await middleware.handle(request, next);
    assert.equal(response.status, 200);
    assert.equal(calls, 3);
    assert.ok(failed.every((body) => body.readableFlowing === true || body.destroyed), 'failed answers were drained');
    assert.deepEqual(
      request.events.map((event) => [event.name, event.attributes['skein.retry.attempt'], event.attributes['skein.retry.reason']]),
      [
        [RETRY_EVENT, 2, 'HTTP 503'],
        [RETRY_EVENT, 3, 'HTTP 503'],
      ],
    );
    assert.equal(request.events[0]?.attributes['skein.retry.policy'], 'quick');
    assert.equal(request.events[0]?.attributes['skein.resiliency.name'], 'test-resiliency');
    middleware.close();
  });

  it('gives up after maxRetries+1 attempts with the last answer; leaves unmatched statuses and other apps alone', async function () {
    const metrics = new Metrics();
    const middleware = new ResiliencyMiddleware(policies(RETRY, { retry: 'quick' }), { namespace: 'default', metrics });
    let calls = 0;
    const failing: Handler = async () => {
      calls++;
      return responseOf(503, `attempt ${calls}`);
    };
    const response = await middleware.handle(requestTo('echo'), failing);
    assert.equal(response.status, 503);
    assert.equal(calls, 4);
    let text = '';
    for await (const chunk of response.body) text += String(chunk);
    assert.equal(text, 'attempt 4', 'the last answer is the one relayed');
    assert.match(metrics.exposition(), /skein_resiliency_retries_total\{target="echo",policy="quick"\} 3/);

    calls = 0;
    const notMatched: Handler = async () => {
      calls++;
      return responseOf(500);
    };
    assert.equal((await middleware.handle(requestTo('echo'), notMatched)).status, 500);
    assert.equal(calls, 1, '500 is not in 502-504');

    calls = 0;
    assert.equal((await middleware.handle(requestTo('other'), failing)).status, 503);
    assert.equal(calls, 1, 'no policy for other');
    middleware.close();
  });

  it('never retries a streamed body', async function () {
    const middleware = new ResiliencyMiddleware(policies(RETRY, { retry: 'quick' }), { namespace: 'default' });
    let calls = 0;
    const next: Handler = async () => {
      calls++;
      return responseOf(503);
    };
    const body = new PassThrough();
    body.end('streamed');
    assert.equal((await middleware.handle(requestTo('echo', body), next)).status, 503);
    assert.equal(calls, 1);
    middleware.close();
  });

  it('retries errors reaching the target, but not denials', async function () {
    const middleware = new ResiliencyMiddleware(policies(RETRY, { retry: 'quick' }), { namespace: 'default' });
    let calls = 0;
    const unreachable: Handler = async () => {
      calls++;
      throw new SkeinError('ERR_DIRECT_INVOKE_ENDPOINT_UNAVAILABLE', 'connection refused');
    };
    await assert.rejects(middleware.handle(requestTo('echo'), unreachable), { code: 'ERR_DIRECT_INVOKE_ENDPOINT_UNAVAILABLE' });
    assert.equal(calls, 4);
    calls = 0;
    const denied: Handler = async () => {
      calls++;
      throw new SkeinError('ERR_DIRECT_INVOKE_ACL_DENIED', 'denied');
    };
    await assert.rejects(middleware.handle(requestTo('echo'), denied), { code: 'ERR_DIRECT_INVOKE_ACL_DENIED' });
    assert.equal(calls, 1);
    middleware.close();
  });

  it('cuts an attempt at its timeout and says which target and policy', async function () {
    const middleware = new ResiliencyMiddleware(policies({ timeouts: { short: '20ms' } }, { timeout: 'short' }), { namespace: 'default' });
    let attemptSignal: AbortSignal | undefined;
    const hung: Handler = (request) => {
      attemptSignal = request.signal;
      return new Promise<CallResponse>(() => undefined);
    };
    const caller = new AbortController();
    const request = requestTo('echo', Buffer.from('{}'), caller.signal);
    await assert.rejects(middleware.handle(request, hung), (error: unknown) => {
      assert.ok(error instanceof SkeinError);
      assert.equal(error.code, 'ERR_DIRECT_INVOKE_TIMEOUT');
      assert.equal(error.httpStatus, 504);
      assert.match(error.message, /^failed to invoke, id: echo, err: timeout "short" \(20ms\) of Resiliency "test-resiliency" expired before echo answered/);
      return true;
    });
    assert.equal(attemptSignal?.aborted, true, 'the attempt was cancelled');
    assert.equal(caller.signal.aborted, false, "the caller's own signal is untouched");
    assert.deepEqual(request.events.map((event) => event.name), [TIMEOUT_EVENT]);
    middleware.close();
  });

  it('opens the breaker, fails fast without calling the target, and recovers through half-open', async function () {
    let now = 0;
    const metrics = new Metrics();
    const compiled = policies({ circuitBreakers: { cb: { maxRequests: 1, timeout: '10s', trip: 'consecutiveFailures >= 2' } } }, { circuitBreaker: 'cb' });
    const middleware = new ResiliencyMiddleware(compiled, { namespace: 'default', clock: () => now, metrics });
    let calls = 0;
    let status = 503;
    const next: Handler = async () => {
      calls++;
      return responseOf(status);
    };
    assert.equal((await middleware.handle(requestTo('echo'), next)).status, 503);
    const tripping = requestTo('echo');
    assert.equal((await middleware.handle(tripping, next)).status, 503);
    assert.deepEqual(
      tripping.events.map((event) => [event.name, event.attributes['skein.circuit_breaker.from'], event.attributes['skein.circuit_breaker.to']]),
      [[BREAKER_EVENT, 'closed', 'open']],
    );
    await assert.rejects(middleware.handle(requestTo('echo'), next), (error: unknown) => {
      assert.ok(error instanceof SkeinError);
      assert.equal(error.code, 'ERR_CIRCUIT_BREAKER_OPEN');
      assert.equal(error.httpStatus, 503);
      assert.match(error.message, /^failed to invoke, id: echo, err: circuit breaker "cb" of Resiliency "test-resiliency" is open: calls to echo:mcp fail fast for 10s more/);
      return true;
    });
    assert.equal(calls, 2, 'the open breaker did not call the target');

    now = 10_001;
    status = 200;
    const probe = requestTo('echo');
    assert.equal((await middleware.handle(probe, next)).status, 200);
    assert.deepEqual(
      probe.events.map((event) => `${String(event.attributes['skein.circuit_breaker.from'])}>${String(event.attributes['skein.circuit_breaker.to'])}`),
      ['open>half-open', 'half-open>closed'],
    );
    assert.equal(calls, 3);
    const exposition = metrics.exposition();
    for (const state of ['open', 'half-open', 'closed']) assert.match(exposition, new RegExp(`skein_circuit_breaker_transitions_total\\{target="echo",policy="cb",state="${state}"\\} 1`));
    assert.match(exposition, /skein_circuit_breaker_rejections_total\{target="echo",policy="cb"\} 1/);
    middleware.close();
  });

  it('keeps one breaker per app and method', async function () {
    const compiled = policies({ circuitBreakers: { cb: { trip: 'consecutiveFailures >= 1' } } }, { circuitBreaker: 'cb' });
    const middleware = new ResiliencyMiddleware(compiled, { namespace: 'default' });
    const failing: Handler = async () => responseOf(500);
    await middleware.handle(requestTo('echo'), failing);
    await assert.rejects(middleware.handle(requestTo('echo'), failing), { code: 'ERR_CIRCUIT_BREAKER_OPEN' });
    const otherMethod = { ...requestTo('echo'), method: 'health' };
    assert.equal((await middleware.handle(otherMethod, async () => responseOf(200))).status, 200);
    middleware.close();
  });

  it('does not count a caller that went away against the target', async function () {
    const compiled = policies({ circuitBreakers: { cb: { trip: 'consecutiveFailures >= 1' } } }, { circuitBreaker: 'cb' });
    const middleware = new ResiliencyMiddleware(compiled, { namespace: 'default' });
    const caller = new AbortController();
    const slow: Handler = (request) =>
      new Promise<CallResponse>((_resolve, reject) => request.signal.addEventListener('abort', () => reject(new SkeinError('ERR_DIRECT_INVOKE', 'cancelled'))));
    const pending = middleware.handle(requestTo('echo', Buffer.from('{}'), caller.signal), slow);
    caller.abort();
    await assert.rejects(pending, { code: 'ERR_DIRECT_INVOKE' });
    assert.equal((await middleware.handle(requestTo('echo'), async () => responseOf(200))).status, 200, 'the breaker stayed closed');
    middleware.close();
  });

  it('reads a stream body only once even when its answer fails', async function () {
    const middleware = new ResiliencyMiddleware(policies(RETRY, { retry: 'quick' }), { namespace: 'default' });
    const seen: string[] = [];
    const next: Handler = async (request) => {
      if (!Buffer.isBuffer(request.body)) for await (const chunk of request.body) seen.push(String(chunk));
      return responseOf(502);
    };
    const body = new PassThrough();
    body.end('only once');
    assert.equal((await middleware.handle(requestTo('echo', body), next)).status, 502);
    assert.deepEqual(seen, ['only once']);
    middleware.close();
  });
});
