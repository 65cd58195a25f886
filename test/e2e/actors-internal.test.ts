import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  compileSidecarConfig,
  Sidecar,
  type ActorHost,
  type ActorMethodCall,
  type ActorRef,
  type ActorReply,
  type ActorTurn,
  type InternalTypeContext,
  type ReminderFire,
  type ReminderOutcome,
  type TimerFire,
} from '@skein/runtime';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { eventually } from '../src/eventually.js';
import { httpRequest } from '../src/http.js';

const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '200ms', '--lease-ttl', '2s'];
const HOST_APP = 'wf-host';
// An in-process type like the workflow engine's, which the public actor API can reach (the engines' own types, such
// as the workflow type below, it refuses).
const TYPE = `dapr.internal.default.${HOST_APP}.counter`;
const WORKFLOW_TYPE = `dapr.internal.default.${HOST_APP}.workflow`;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));


function json(status: number, value: unknown): ActorReply {
  return { status, headers: [['content-type', 'application/json']], body: Buffer.from(JSON.stringify(value)) };
}

/** Resolves the first time `predicate` holds for a value pushed to `list`. */
class Recorder<T> {
  readonly list: T[] = [];
  private waiters: Array<{ predicate: (value: T) => boolean; resolve: (value: T) => void }> = [];

  push(value: T): void {
    this.list.push(value);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.predicate(value)) return true;
      waiter.resolve(value);
      return false;
    });
  }

  next(predicate: (value: T) => boolean): Promise<T> {
    const seen = this.list.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ predicate, resolve }));
  }
}

/** An in-process actor type, as the workflow engine will register one: it keeps a counter in actor state. */
class CounterHost implements ActorHost {
  context: InternalTypeContext | undefined;
  running = 0;
  overlaps = 0;
  readonly calls = new Recorder<{ actorId: string; method: string; callerAppId: string }>();
  readonly reminders = new Recorder<{ actorId: string; name: string; data: unknown; count: string | undefined }>();
  readonly timers = new Recorder<{ actorId: string; name: string; data: unknown }>();
  readonly deactivations = new Recorder<{ actorId: string; why: string }>();

  private get state(): InternalTypeContext {
    if (!this.context) throw new Error('not registered');
    return this.context;
  }

  async invoke(actor: ActorRef, call: ActorMethodCall, turn: ActorTurn): Promise<ActorReply> {
    this.running++;
    if (this.running > 1) this.overlaps++;
    try {
      this.calls.push({ actorId: actor.actorId, method: call.method, callerAppId: call.caller.appId });
      switch (call.method) {
        case 'echo':
          return json(200, { actorType: actor.actorType, actorId: actor.actorId, verb: call.verb, caller: call.caller, body: JSON.parse(call.body.toString('utf8')) as unknown });
        case 'add': {
          // Read, yield, write: only correct when no other turn of this actor runs in between.
          const current = Number((await this.state.getState(actor.actorId, 'count')) ?? '0');
          for (let i = 0; i < 3; i++) await yieldToLoop();
          await this.state.transactState(actor.actorId, [{ operation: 'upsert', key: 'count', value: current + 1 }]);
          return json(200, { count: current + 1 });
        }
        case 'arm':
          await this.state.createTimer(actor.actorId, 'tick', { dueTime: '0s', data: 'tock' }, turn.signal);
          return { status: 204, headers: [], body: Buffer.alloc(0) };
        default:
          return json(404, { error: `no method ${call.method}` });
      }
    } finally {
      this.running--;
    }
  }

  async remind(actor: ActorRef, reminder: ReminderFire): Promise<ReminderOutcome> {
    this.reminders.push({ actorId: actor.actorId, name: reminder.name, data: reminder.data, count: await this.state.getState(actor.actorId, 'count') });
    return { status: 200, cancel: false };
  }

  async timer(actor: ActorRef, timer: TimerFire): Promise<void> {
    this.timers.push({ actorId: actor.actorId, name: timer.name, data: timer.data });
  }

  async deactivate(actor: ActorRef, why: string): Promise<void> {
    this.deactivations.push({ actorId: actor.actorId, why });
  }
}

describe('actors: an internal actor type hosted in-process, placed and called like any other', function () {
  const harness = new Harness();
  const host = new CounterHost();
  let sidecar: Sidecar | undefined;
  let sidecarUrl = '';
  let caller: SidecarHandle;

  const actorUrl = (base: string, actorId: string, rest: string): string => `${base}/v1.0/actors/${encodeURIComponent(TYPE)}/${actorId}/${rest}`;
  const call = (actorId: string, method: string, body: unknown = {}): Promise<{ status: number; body: string; json<T>(): T }> =>
    httpRequest(actorUrl(caller.url, actorId, `method/${method}`), { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  before(async function () {
    const { nats, sentryAddress } = await harness.controlPlane();
    const placement = await harness.placement('alpha', PLACEMENT_ARGS);
    await placement.proc.waitForRecord('became leader');
    sidecar = new Sidecar({
      appId: HOST_APP,
      namespace: 'default',
      appPort: undefined,
      apiHost: '127.0.0.1',
      httpPort: 0,
      grpcPort: 0,
      internalHost: '127.0.0.1',
      internalPort: 0,
      advertiseAddress: '127.0.0.1',
      natsUrl: nats.url,
      sentryAddress,
      trustAnchorsPem: readFileSync(harness.trustBundle, 'utf8'),
      joinToken: undefined,
      config: compileSidecarConfig({ appId: HOST_APP, namespace: 'default', resources: [] }),
      maxBodyBytes: 4 * 1024 * 1024,
      apiToken: undefined,
      appApiToken: undefined,
      heartbeatMs: 1000,
      instanceTtlMs: 5000,
      placementAddresses: [placement.address],
    });
    host.context = sidecar.registerInternalActorType(TYPE, host);
    const ports = await sidecar.start();
    sidecarUrl = `http://127.0.0.1:${ports.http}`;
    await sidecar.waitForAppAndRegister();
    caller = await harness.sidecar({ appId: 'wf-caller', args: ['--placement-address', placement.address] });
  });

  after(async function () {
    await sidecar?.stop();
    await harness.cleanup();
  });

  it('placement places the type on the sidecar that registered it; a call from another sidecar reaches the in-process host', async function () {
    const res = await eventually(async () => {
      const attempt = await call('wf-1', 'echo', { hello: 'internal' });
      return attempt.status === 200 ? attempt : undefined;
    }, 20_000, 'the internal type to be placed');
    const echo = res.json<{ actorType: string; actorId: string; verb: string; caller: { appId: string; namespace: string }; body: unknown }>();
    assert.deepEqual(echo, { actorType: TYPE, actorId: 'wf-1', verb: 'POST', caller: { appId: 'wf-caller', namespace: 'default' }, body: { hello: 'internal' } });
    const metadata = (await httpRequest(`${sidecarUrl}/v1.0/metadata`)).json<{ actorRuntime: { activeActors: Array<{ type: string; count: number }> } }>();
    assert.deepEqual(metadata.actorRuntime.activeActors, [{ type: TYPE, count: 1 }]);
  });

  it('runs one turn at a time: concurrent read-modify-write calls all land, and state is read back through the API', async function () {
    const results = await Promise.all(Array.from({ length: 10 }, () => call('wf-2', 'add')));
    assert.deepEqual(results.map((res) => res.status), Array<number>(10).fill(200));
    assert.deepEqual(results.map((res) => res.json<{ count: number }>().count).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal(host.overlaps, 0);
    const state = await httpRequest(actorUrl(caller.url, 'wf-2', 'state/count'));
    assert.equal(state.status, 200);
    assert.equal(state.body, '10');
  });

  it('fires a reminder created through another sidecar as a turn of the in-process host, which sees the actor\'s state', async function () {
    const created = await httpRequest(actorUrl(caller.url, 'wf-2', 'reminders/wake'), { method: 'POST', body: JSON.stringify({ dueTime: '0s', data: { hello: 'reminder' } }) });
    assert.equal(created.status, 204, created.body);
    const fired = await host.reminders.next((fire) => fire.actorId === 'wf-2' && fire.name === 'wake');
    assert.deepEqual(fired, { actorId: 'wf-2', name: 'wake', data: { hello: 'reminder' }, count: '10' });
  });

  it('runs a timer the host created from inside a turn, after that turn ends', async function () {
    const armed = await call('wf-3', 'arm');
    assert.equal(armed.status, 204, armed.body);
    const fired = await host.timers.next((fire) => fire.actorId === 'wf-3');
    assert.deepEqual(fired, { actorId: 'wf-3', name: 'tick', data: 'tock' });
    assert.equal(host.overlaps, 0);
  });

  it("refuses the workflow engine's type on the public actor API: calls, state, reminders and timers", async function () {
    const attempts = [
      httpRequest(`${caller.url}/v1.0/actors/${WORKFLOW_TYPE}/wf-9/method/event`, { method: 'PUT', body: '{}' }),
      httpRequest(`${caller.url}/v1.0/actors/${WORKFLOW_TYPE}/wf-9/state/count`),
      httpRequest(`${caller.url}/v1.0/actors/${WORKFLOW_TYPE}/wf-9/reminders/timer-1`, { method: 'POST', body: JSON.stringify({ dueTime: '0s' }) }),
      httpRequest(`${caller.url}/v1.0/actors/${WORKFLOW_TYPE}/wf-9/reminders/wake`, { method: 'DELETE' }),
      httpRequest(`${caller.url}/v1.0/actors/${WORKFLOW_TYPE}/wf-9/timers/t`, { method: 'POST', body: JSON.stringify({ dueTime: '0s' }) }),
    ];
    for (const answer of await Promise.all(attempts)) {
      assert.equal(answer.status, 403, answer.body);
      const error = answer.json<{ errorCode: string; message: string }>();
      assert.equal(error.errorCode, 'ERR_PERMISSION_DENIED');
      assert.match(error.message, /actor type "dapr\.internal\.default\.wf-host\.workflow" is internal to the sidecar/);
    }
  });

  it('deactivates every activation on the host when the sidecar drains', async function () {
    await sidecar?.drain();
    for (const actorId of ['wf-1', 'wf-2', 'wf-3']) assert.deepEqual(await host.deactivations.next((entry) => entry.actorId === actorId), { actorId, why: 'shutdown' });
  });
});
