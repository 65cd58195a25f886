import assert from 'node:assert/strict';
import { StackDepthError, TurnLock } from '../src/actors/turn-lock.js';
import { PlacementView } from '../src/actors/placement-view.js';
import { appConfigFrom, AppConfigError, NO_ACTORS } from '../src/actors/app-config.js';
import { actorStateKey, fromKeyToken, keyToken, reminderKey, validateActorName } from '../src/actors/names.js';
import { checkName, parseReminderRequest, parseStateTransaction, parseTimerRequest } from '../src/actors/requests.js';
import { GrpcStatus, SkeinError } from '@skein/core';
import { parsePlacementAddresses, tableSpecOf } from '../src/actors/placement-client.js';
import { classifyPeerFailure } from '../src/actors/peers.js';
import { GrpcCallError } from '../src/transport/grpc-channel.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('actor turn lock', function () {
  it('runs one turn at a time, in arrival order', async function () {
    const lock = new TurnLock();
    const order: string[] = [];
    let running = 0;
    let overlap = false;
    await Promise.all(['a', 'b', 'c', 'd'].map(async (name) => {
      const turn = await lock.acquire(undefined);
      running++;
      if (running > 1) overlap = true;
      order.push(name);
      await tick();
      running--;
      turn.release();
    }));
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
    assert.equal(overlap, false);
    assert.equal(lock.busy, false);
  });

  it('lets a call with the running turn\'s reentrancy id in, up to the depth limit', async function () {
    const lock = new TurnLock(3);
    const first = await lock.acquire('r1');
    const second = await lock.acquire('r1');
    assert.equal(second.reentrant, true);
    const third = await lock.acquire('r1');
    await assert.rejects(lock.acquire('r1'), (error: Error) => error instanceof StackDepthError && /maximum actor call stack depth of 3 exceeded/.test(error.message));
    let otherRan = false;
    const other = lock.acquire('r2').then((turn) => {
      otherRan = true;
      return turn;
    });
    third.release();
    second.release();
    await tick();
    assert.equal(otherRan, false, 'another chain waits for the whole reentrant turn');
    first.release();
    (await other).release();
    assert.equal(otherRan, true);
  });

  it('a waiter that gives up leaves the queue', async function () {
    const lock = new TurnLock();
    const held = await lock.acquire(undefined);
    const abort = new AbortController();
    const waiting = lock.acquire(undefined, abort.signal);
    assert.equal(lock.queued, 1);
    abort.abort(new Error('caller went away'));
    await assert.rejects(waiting, /caller went away/);
    assert.equal(lock.queued, 0);
    held.release();
    assert.equal(lock.busy, false);
  });

  it('releasing twice is harmless', async function () {
    const lock = new TurnLock();
    const turn = await lock.acquire(undefined);
    const next = lock.acquire(undefined);
    turn.release();
    turn.release();
    const second = await next;
    assert.equal(lock.busy, true);
    second.release();
    assert.equal(lock.busy, false);
  });
});

describe('placement view', function () {
  const table = (members: string[]) => ({ virtualNodes: 100, rings: [{ actorType: 'cart', members: members.map((address) => ({ address, appId: `app-${address}` })) }] });

  it('waits without a table, routes with one, waits while the type is locked', async function () {
    const view = new PlacementView();
    assert.deepEqual(view.route('cart', '1'), { kind: 'wait', reason: 'no table yet' });
    const changed = view.changed();
    view.update(table(['a:1', 'b:1']), 'v1');
    await changed;
    const route = view.route('cart', '1');
    assert.equal(route.kind, 'owner');
    assert.deepEqual(view.route('order', '1'), { kind: 'no-host' });
    view.lock(['cart']);
    assert.deepEqual(view.route('cart', '1'), { kind: 'wait', reason: 'actor type locked' });
    assert.equal(view.route('order', '1').kind, 'no-host', 'other types do not wait');
    view.update(table(['a:1']), 'v2');
    assert.equal(view.isLocked('cart'), true, 'locks last until UNLOCK');
    view.unlock();
    assert.deepEqual(view.route('cart', '1'), { kind: 'owner', member: { address: 'a:1', appId: 'app-a:1' } });
    assert.equal(view.version, 'v2');
  });

  it('agrees with the contract ring for every actor', function () {
    const view = new PlacementView();
    view.update(table(['10.0.0.1:50002', '10.0.0.2:50002', '10.0.0.3:50002']), 'v');
    const owners = Array.from({ length: 12 }, (_, i) => view.ownerOf('cart', `actor-${i}`)?.address);
    const [a, b, c] = ['10.0.0.1:50002', '10.0.0.2:50002', '10.0.0.3:50002'];
    // Placement's golden values: the sidecar uses the same module.
    assert.deepEqual(owners, [c, c, a, a, b, a, c, a, a, b, c, b]);
  });
});

describe('actor app config (/dapr/config)', function () {
  it('reads entities, timeouts and reentrancy, with per-type overrides', function () {
    const config = appConfigFrom({
      entities: ['cart', 'user', 'cart'],
      actorIdleTimeout: '1h',
      actorScanInterval: '30s',
      drainOngoingCallTimeout: '30s',
      reentrancy: { enabled: true, maxStackDepth: 8 },
      entitiesConfig: [{ entities: ['user'], actorIdleTimeout: '5s', reentrancy: { enabled: false } }],
      unknownField: 1,
    });
    assert.deepEqual(config.entities, ['cart', 'user']);
    assert.deepEqual(config.settingsOf('cart'), { idleTimeoutMs: 3_600_000, reentrancy: { enabled: true, maxStackDepth: 8 } });
    assert.deepEqual(config.settingsOf('user'), { idleTimeoutMs: 5000, reentrancy: { enabled: false, maxStackDepth: 8 } });
    assert.equal(config.scanIntervalMs, 30_000);
    assert.deepEqual(NO_ACTORS.entities, []);
    assert.equal(NO_ACTORS.settingsOf('x').idleTimeoutMs, 3_600_000, 'Dapr\'s default idle timeout is 60 minutes');
  });

  it('names the field that is wrong', function () {
    assert.throws(() => appConfigFrom({ entities: 'cart' }), (error: Error) => error instanceof AppConfigError && /entities must be a list/.test(error.message));
    assert.throws(() => appConfigFrom({ entities: ['a/b'] }), /entities\[0\] "a\/b": must not contain/);
    assert.throws(() => appConfigFrom({ actorIdleTimeout: 'forever' }), /actorIdleTimeout "forever"/);
    assert.throws(() => appConfigFrom({ reentrancy: { maxStackDepth: 0 } }), /maxStackDepth/);
  });
});

describe('actor names and requests', function () {
  it('validates names', function () {
    assert.equal(validateActorName('cart-1'), undefined);
    assert.equal(validateActorName('ünïcode id with spaces'), undefined);
    for (const bad of ['', '.', '..', 'a/b', 'a\\b', 'a\nb']) assert.ok(validateActorName(bad), JSON.stringify(bad));
    assert.throws(() => checkName('actorId', 'a/b'), (error: Error) => error instanceof SkeinError && error.code === 'ERR_BAD_REQUEST' && error.httpStatus === 400);
  });

  it('encodes any name into a KV-safe token, reversibly', function () {
    const odd = 'weird id: ☃ / . * > with spaces';
    assert.match(keyToken(odd), /^[A-Za-z0-9_-]+$/);
    assert.equal(fromKeyToken(keyToken(odd)), odd);
    assert.match(actorStateKey('default', 'Cart', odd), /^default\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.equal(reminderKey('default', 'a', 'b', 'c').split('.').length, 4);
  });

  it('parses state transactions and refuses malformed ones with ERR_MALFORMED_REQUEST', function () {
    const ops = parseStateTransaction(Buffer.from(JSON.stringify([
      { operation: 'upsert', request: { key: 'a', value: { n: 1 } } },
      { operation: 'delete', request: { key: 'b' } },
    ])));
    assert.deepEqual(ops, [{ operation: 'upsert', key: 'a', value: { n: 1 } }, { operation: 'delete', key: 'b' }]);
    for (const bad of ['', 'not json', '{}', '[{"operation":"merge","request":{"key":"a"}}]', '[{"operation":"upsert","request":{}}]', '[{"operation":"upsert"}]']) {
      assert.throws(() => parseStateTransaction(Buffer.from(bad)), (error: Error) => error instanceof SkeinError && error.code === 'ERR_MALFORMED_REQUEST' && error.httpStatus === 400 && /failed deserializing HTTP body/.test(error.message), bad);
    }
  });

  it('parses reminder and timer specs; bad durations are 400s with the operation\'s code', function () {
    const now = Date.UTC(2026, 0, 1);
    const { request, schedule } = parseReminderRequest(Buffer.from('{"dueTime":"1s","period":"R2/PT1S","data":{"x":1}}'), now);
    assert.deepEqual(request.data, { x: 1 });
    assert.equal(schedule.firstFireAt, now + 1000);
    assert.equal(parseReminderRequest(Buffer.alloc(0), now).schedule.firstFireAt, now, 'an empty body fires now, once');
    const timer = parseTimerRequest(Buffer.from('{"period":"2s","callback":"tick"}'), now);
    assert.equal(timer.request.callback, 'tick');
    const cases: Array<[string, string, RegExp]> = [
      ['{"period":"-1s"}', 'ERR_ACTOR_REMINDER_CREATE', /error creating actor reminder: invalid period "-1s": the period must not be negative/],
      ['{"dueTime":"soon"}', 'ERR_ACTOR_REMINDER_CREATE', /invalid dueTime "soon"/],
      ['{"period":5}', 'ERR_MALFORMED_REQUEST', /"period" must be a string/],
      ['[1]', 'ERR_MALFORMED_REQUEST', /expected a JSON object/],
    ];
    for (const [body, code, message] of cases) {
      assert.throws(() => parseReminderRequest(Buffer.from(body), now), (error: Error) => error instanceof SkeinError && error.code === code && error.httpStatus === 400 && message.test(error.message), body);
    }
    assert.throws(() => parseTimerRequest(Buffer.from('{"period":"-5s"}'), now), (error: Error) => error instanceof SkeinError && error.code === 'ERR_ACTOR_TIMER_CREATE' && error.httpStatus === 400);
  });
});

describe('placement client helpers', function () {
  it('parses --placement-address lists', function () {
    assert.deepEqual(parsePlacementAddresses('127.0.0.1:50005'), ['127.0.0.1:50005']);
    assert.deepEqual(parsePlacementAddresses(' a.example:1, [::1]:50005 ,'), ['a.example:1', '[::1]:50005']);
    for (const bad of ['', 'host', 'host:0', 'host:70000', 'a:1,b']) assert.throws(() => parsePlacementAddresses(bad), Error, bad);
  });

  it('turns an UPDATE table into the ring module\'s shape', function () {
    assert.deepEqual(tableSpecOf({ virtualNodes: 7, rings: [{ actorType: 'cart', members: [{ address: 'a:1', appId: 'x' }] }] }), { virtualNodes: 7, rings: [{ actorType: 'cart', members: [{ address: 'a:1', appId: 'x' }] }] });
    assert.deepEqual(tableSpecOf(undefined), { virtualNodes: 100, rings: [] });
  });
});

describe('actor peer failures', function () {
  const member = { address: '10.0.0.1:50002', appId: 'host' };
  /** A failed call as the internal transport reports it; `unsent` when the connection never came up. */
  const failure = (code: number, details: string, errorCode?: string, unsent = false): GrpcCallError =>
    new GrpcCallError(code, details, { unsent, ...(errorCode ? { trailers: { 'skein-error-code': errorCode } } : {}) });

  it('retries only what provably never started', function () {
    assert.equal(classifyPeerFailure(failure(GrpcStatus.UNAVAILABLE, 'the connection to 10.0.0.1:50002 could not be established: connect ECONNREFUSED 10.0.0.1:50002', undefined, true), member).kind, 'retry');
    assert.equal(classifyPeerFailure(failure(GrpcStatus.UNAVAILABLE, 'leaving', 'ERR_ACTOR_HOST_LEAVING'), member).kind, 'retry');
    const dropped = classifyPeerFailure(failure(GrpcStatus.UNAVAILABLE, 'Connection dropped'), member);
    assert.equal(dropped.kind, 'error');
    assert.match(dropped.kind === 'error' ? dropped.error.message : '', /failed during the call, which may or may not have run/);
  });

  it('keeps the callee\'s error code', function () {
    const classified = classifyPeerFailure(failure(GrpcStatus.INTERNAL, 'maximum actor call stack depth of 8 exceeded', 'ERR_ACTOR_STACK_DEPTH'), member);
    assert.equal(classified.kind === 'error' ? classified.error.code : '', 'ERR_ACTOR_STACK_DEPTH');
  });
});
