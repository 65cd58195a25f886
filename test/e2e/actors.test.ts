import assert from 'node:assert/strict';
import { Harness, type AppHandle, type ManagedProcess, type SidecarHandle } from '../src/harness.js';
import { eventually, staysTrue } from '../src/eventually.js';
import { httpRequest, type HttpResult } from '../src/http.js';

interface DaprError {
  errorCode: string;
  message: string;
}

interface Turn {
  actorType: string;
  actorId: string;
  method: string;
  start: number;
  end: number;
}

interface AppEvents {
  instance: string;
  turns: Turn[];
  deactivations: Array<{ actorType: string; actorId: string; at: number }>;
  reminders: Array<{ actorType: string; actorId: string; name: string; at: number; body: { data?: unknown; dueTime?: string; period?: string } }>;
  timers: Array<{ actorType: string; actorId: string; name: string; at: number; body: { data?: unknown; callback?: string } }>;
  overlaps: number;
  /** `<type>/<id>` of the turns running now. */
  inProgress: string[];
}

/** One actor host: the test app and its sidecar. */
interface Host {
  name: string;
  app: AppHandle;
  sidecar: SidecarHandle;
}


/** Three actor types: Counter (defaults), Reentrant (reentrancy on, depth 8), Ephemeral (idle after 1 s). */
const HOST_ENV: NodeJS.ProcessEnv = {
  ACTOR_TYPES: 'Counter,Reentrant,Ephemeral',
  SCAN_INTERVAL: '300ms',
  ENTITIES_CONFIG: JSON.stringify([
    { entities: ['Reentrant'], reentrancy: { enabled: true, maxStackDepth: 8 } },
    { entities: ['Ephemeral'], actorIdleTimeout: '1s' },
  ]),
};

/** Placement tuned for tests: hosts are dropped 2 s after they go silent. */
const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '200ms', '--lease-ttl', '2s'];

function actorCall(sidecar: SidecarHandle, actorType: string, actorId: string, method: string, body: unknown = {}, headers: Record<string, string> = {}): Promise<HttpResult> {
  return httpRequest(`${sidecar.url}/v1.0/actors/${actorType}/${encodeURIComponent(actorId)}/method/${method}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
}

async function instanceOf(sidecar: SidecarHandle, actorType: string, actorId: string): Promise<string> {
  const res = await actorCall(sidecar, actorType, actorId, 'echo');
  assert.equal(res.status, 200, res.body);
  return res.json<{ instance: string }>().instance;
}

async function events(host: Host): Promise<AppEvents> {
  return (await httpRequest(`http://127.0.0.1:${host.app.port}/_events`)).json<AppEvents>();
}


describe('actors: placement, routing, turns, state, reminders (real sidecars and placement replicas)', function () {
  const harness = new Harness();
  let leader: { proc: ManagedProcess; address: string };
  let follower: { proc: ManagedProcess; address: string };
  const hosts: Host[] = [];
  let caller: SidecarHandle;

  const placementArgs = (): string[] => ['--placement-address', `${leader.address},${follower.address}`];

  const byName = (name: string): Host => {
    const host = hosts.find((candidate) => candidate.name === name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  };

  async function startHost(name: string, env: NodeJS.ProcessEnv = {}): Promise<Host> {
    const app = await harness.app('actor-app', { INSTANCE: name, ...HOST_ENV, ...env });
    const sidecar = await harness.sidecar({ appId: 'actor-host', appPort: app.port, args: placementArgs() });
    await httpRequest(`http://127.0.0.1:${app.port}/_sidecar`, { method: 'POST', body: JSON.stringify({ url: sidecar.url }) });
    const host = { name, app, sidecar };
    hosts.push(host);
    return host;
  }

  /** Waits until every sidecar in `sidecars` routes each of `ids` to one of `instances` and all agree. */
  async function settled(sidecars: SidecarHandle[], ids: string[], instances: string[]): Promise<Map<string, string>> {
    return eventually(async () => {
      const owners = new Map<string, string>();
      for (const id of ids) {
        const seen = new Set(await Promise.all(sidecars.map((sidecar) => instanceOf(sidecar, 'Counter', id))));
        if (seen.size !== 1) return undefined;
        const [owner] = [...seen] as [string];
        if (!instances.includes(owner)) return undefined;
        owners.set(id, owner);
      }
      return owners;
    }, 30_000, 'placement to settle');
  }

  before(async function () {
    await harness.controlPlane();
    leader = await harness.placement('alpha', PLACEMENT_ARGS);
    await leader.proc.waitForRecord('became leader');
    follower = await harness.placement('beta', PLACEMENT_ARGS);
    await Promise.all([startHost('h1'), startHost('h2')]);
    caller = await harness.sidecar({ appId: 'actor-caller', args: placementArgs() });
  });

  after(() => harness.cleanup());

  it('calls through any sidecar reach the actor\'s single owner; both hosts own some actors', async function () {
    const ids = Array.from({ length: 24 }, (_, i) => `counter-${i}`);
    const owners = await settled([caller, ...hosts.map((host) => host.sidecar)], ids, ['h1', 'h2']);
    const counts = new Map<string, number>();
    for (const owner of owners.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    assert.equal(counts.size, 2, `both hosts own actors: ${JSON.stringify([...counts])}`);
    const res = await actorCall(caller, 'Counter', 'counter-0', 'echo', { hello: 'world' }, { 'x-test': 'passed' });
    const echo = res.json<{ actorType: string; actorId: string; method: string; verb: string; body: unknown; header: string }>();
    assert.deepEqual([echo.actorType, echo.actorId, echo.method, echo.verb, echo.header], ['Counter', 'counter-0', 'echo', 'PUT', 'passed']);
    assert.deepEqual(echo.body, { hello: 'world' });
  });

  it('stamps the verified caller on actor calls; forged identity and authorization headers never reach the actor app', async function () {
    const forged = { 'dapr-caller-app-id': 'admin-agent', 'dapr-caller-namespace': 'kube-system', 'dapr-callee-app-id': 'elsewhere', authorization: 'Bearer stolen-token', 'x-test': 'passed' };
    type Echo = { instance: string; headers: Record<string, string | undefined> };
    const identityOf = (echo: Echo): Array<string | undefined> => ['dapr-caller-app-id', 'dapr-caller-namespace', 'dapr-callee-app-id', 'authorization', 'x-test'].map((name) => echo.headers[name]);
    // The caller's sidecar hosts no actors, so this call reaches the owner over mTLS: the peer's identity is stamped.
    const remote = await actorCall(caller, 'Counter', 'counter-0', 'echo', {}, forged);
    assert.equal(remote.status, 200, remote.body);
    assert.deepEqual(identityOf(remote.json<Echo>()), ['actor-caller', 'default', 'actor-host', undefined, 'passed']);
    // Through the owner's own sidecar the call stays local: its own app is the caller.
    const owner = byName(remote.json<Echo>().instance);
    const local = await actorCall(owner.sidecar, 'Counter', 'counter-0', 'echo', {}, forged);
    assert.equal(local.status, 200, local.body);
    assert.deepEqual(identityOf(local.json<Echo>()), ['actor-host', 'default', 'actor-host', undefined, 'passed']);
    for (const echo of [remote, local].map((res) => res.json<Echo>())) {
      assert.ok(!JSON.stringify(echo.headers).includes('stolen-token') && !JSON.stringify(echo.headers).includes('admin-agent'), JSON.stringify(echo.headers));
    }
  });

  it('runs one turn at a time per actor, whichever sidecars the calls come through', async function () {
    const sidecars = [caller, ...hosts.map((host) => host.sidecar)];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => actorCall(sidecars[i % sidecars.length] as SidecarHandle, 'Counter', 'serial', 'slow', { ms: 30 })));
    assert.deepEqual(results.map((res) => res.status), Array(12).fill(200));
    const owner = results[0]?.json<{ instance: string }>().instance;
    const host = hosts.find((candidate) => candidate.name === owner) as Host;
    const seen = await events(host);
    assert.equal(seen.overlaps, 0);
    const turns = seen.turns.filter((turn) => turn.actorId === 'serial').sort((a, b) => a.start - b.start);
    assert.equal(turns.length, 12);
    for (let i = 1; i < turns.length; i++) assert.ok((turns[i] as Turn).start >= (turns[i - 1] as Turn).end, `turn ${i} started before turn ${i - 1} ended`);
  });

  it('read-modify-write inside turns loses nothing: 20 concurrent increments count to 20', async function () {
    const sidecars = [caller, ...hosts.map((host) => host.sidecar)];
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => actorCall(sidecars[i % sidecars.length] as SidecarHandle, 'Counter', 'tally', 'incr')));
    assert.deepEqual(results.map((res) => res.status), Array(20).fill(200), results.map((res) => res.body).join('\n'));
    const state = await httpRequest(`${caller.url}/v1.0/actors/Counter/tally/state/count`);
    assert.equal(state.status, 200);
    assert.equal(state.body, '20');
  });

  it('state transactions are atomic, concurrent writers lose nothing, and missing keys are 204', async function () {
    const url = `${caller.url}/v1.0/actors/Counter/ledger/state`;
    const put = (operations: unknown, via = caller): Promise<HttpResult> => httpRequest(url.replace(caller.url, via.url), { method: 'POST', body: JSON.stringify(operations), headers: { 'content-type': 'application/json' } });
    assert.equal((await put([{ operation: 'upsert', request: { key: 'a', value: { n: 1 } } }, { operation: 'upsert', request: { key: 'gone', value: 'x' } }])).status, 204);
    assert.equal((await put([{ operation: 'upsert', request: { key: 'b', value: [1, 2] } }, { operation: 'delete', request: { key: 'gone' } }])).status, 204);
    // Twenty writers at once, each with its own key, through three sidecars: all twenty land.
    const sidecars = [caller, ...hosts.map((host) => host.sidecar)];
    const writes = await Promise.all(Array.from({ length: 20 }, (_, i) => put([{ operation: 'upsert', request: { key: `k${i}`, value: i } }], sidecars[i % sidecars.length])));
    assert.deepEqual(writes.map((res) => res.status), Array(20).fill(204));
    const get = (key: string): Promise<HttpResult> => httpRequest(`${url}/${key}`);
    assert.deepEqual((await get('a')).json(), { n: 1 });
    assert.equal((await get('a')).headers['content-type'], 'application/json');
    assert.deepEqual((await get('b')).json(), [1, 2]);
    assert.equal((await get('gone')).status, 204);
    assert.equal((await get('never')).status, 204);
    const values = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`k${i}`)));
    assert.deepEqual(values.map((res) => res.body), Array.from({ length: 20 }, (_, i) => String(i)));
    // A transaction with a bad operation changes nothing.
    const bad = await put([{ operation: 'upsert', request: { key: 'a', value: 'changed' } }, { operation: 'merge', request: { key: 'b' } }]);
    assert.equal(bad.status, 400);
    assert.equal(bad.json<DaprError>().errorCode, 'ERR_MALFORMED_REQUEST');
    assert.deepEqual((await get('a')).json(), { n: 1 });
  });

  it('reentrancy: a call chain carrying the Dapr-Reentrancy-Id re-enters its actor, up to the depth limit', async function () {
    const ok = await actorCall(caller, 'Reentrant', 'r1', 'recurse', { depth: 5 });
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.json<{ reentrancyId: string }>().reentrancyId, /^[0-9a-f-]{36}$/, 'the sidecar gave the chain an id');
    const deep = await actorCall(caller, 'Reentrant', 'r2', 'recurse', { depth: 12 });
    assert.equal(deep.status, 500);
    const error = deep.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_ACTOR_STACK_DEPTH');
    assert.match(error.message, /maximum actor call stack depth of 8 exceeded/);
    const plain = await actorCall(caller, 'Counter', 'no-reentrancy', 'echo', {}, { 'dapr-reentrancy-id': 'made-up' });
    assert.equal(plain.json<{ reentrancyId: unknown }>().reentrancyId, null, 'without reentrancy the header never reaches the app');
  });

  it('timers: created through any sidecar, fire on the owner with their callback and data, and stop when deleted', async function () {
    const owner = await instanceOf(caller, 'Counter', 'ticker');
    const host = hosts.find((candidate) => candidate.name === owner) as Host;
    const timerUrl = `${caller.url}/v1.0/actors/Counter/ticker/timers/tick`;
    const created = await httpRequest(timerUrl, { method: 'POST', body: JSON.stringify({ dueTime: '0s', period: '200ms', callback: 'onTick', data: { n: 7 } }) });
    assert.equal(created.status, 204, created.body);
    const fired = await eventually(async () => {
      const ticks = (await events(host)).timers.filter((timer) => timer.actorId === 'ticker');
      return ticks.length >= 3 ? ticks : undefined;
    }, 10_000, 'three timer fires');
    assert.deepEqual(fired[0]?.body.data, { n: 7 });
    assert.equal(fired[0]?.body.callback, 'onTick');
    assert.equal((await httpRequest(timerUrl, { method: 'DELETE' })).status, 204);
    // A fire already under way when the DELETE answered may still land; nothing after it (five periods).
    const ticks = async (): Promise<number> => (await events(host)).timers.filter((timer) => timer.actorId === 'ticker').length;
    const count = await ticks();
    await staysTrue(async () => (await ticks()) <= count + 1, 1000, 'no fire after the delete');
  });

  it('reminders: fire on the owner with their data; the app cancels with X-DaprReminderCancel; GET and DELETE', async function () {
    const owner = await instanceOf(caller, 'Counter', 'nagged');
    const host = hosts.find((candidate) => candidate.name === owner) as Host;
    const url = `${caller.url}/v1.0/actors/Counter/nagged/reminders/nag`;
    const created = await httpRequest(url, { method: 'POST', body: JSON.stringify({ dueTime: '100ms', period: 'R10/PT0.3S', data: { cancelAfter: 3 } }) });
    assert.equal(created.status, 204, created.body);
    const got = await httpRequest(url);
    assert.equal(got.status, 200);
    assert.deepEqual(got.json(), { actorID: 'nagged', actorType: 'Counter', data: { cancelAfter: 3 }, dueTime: '100ms', period: 'R10/PT0.3S' });
    await eventually(async () => ((await httpRequest(url)).status === 404 ? true : undefined), 10_000, 'the cancelled reminder to be deleted');
    const nags = async (): Promise<AppEvents['reminders']> => (await events(host)).reminders.filter((reminder) => reminder.actorId === 'nagged');
    // The third fire answered the cancel before the reminder was deleted; no fourth comes (about three periods).
    await staysTrue(async () => (await nags()).length === 3, 900, 'exactly three fires: the third was cancelled by the app');
    const fires = await nags();
    assert.deepEqual(fires[0]?.body.data, { cancelAfter: 3 });
    assert.equal(fires[0]?.body.period, 'R10/PT0.3S');
    const missing = await httpRequest(url);
    assert.equal(missing.json<DaprError>().errorCode, 'ERR_ACTOR_REMINDER_NOT_FOUND');
    assert.equal((await httpRequest(url, { method: 'DELETE' })).status, 204, 'deleting a missing reminder is not an error');
  });

  it('idle actors are deactivated with DELETE /actors/<type>/<id>; the next call activates them again', async function () {
    const owner = await instanceOf(caller, 'Ephemeral', 'brief');
    const host = hosts.find((candidate) => candidate.name === owner) as Host;
    await eventually(async () => ((await events(host)).deactivations.some((d) => d.actorType === 'Ephemeral' && d.actorId === 'brief') ? true : undefined), 10_000, 'idle deactivation');
    assert.equal(await instanceOf(caller, 'Ephemeral', 'brief'), owner);
    const metadata = (await httpRequest(`${host.sidecar.url}/v1.0/metadata`)).json<{ actorRuntime: { runtimeStatus: string; hostReady: boolean; placement: string; activeActors: Array<{ type: string; count: number }> } }>();
    assert.equal(metadata.actorRuntime.runtimeStatus, 'RUNNING');
    assert.equal(metadata.actorRuntime.hostReady, true);
    assert.equal(metadata.actorRuntime.placement, 'placement: connected');
    assert.deepEqual(metadata.actorRuntime.activeActors.map((entry) => entry.type).sort(), ['Counter', 'Ephemeral', 'Reentrant']);
    assert.ok((metadata.actorRuntime.activeActors.find((entry) => entry.type === 'Ephemeral')?.count ?? 0) >= 1);
  });

  it('refuses malformed actor requests and reminder specs with Dapr-shaped errors', async function () {
    const expectError = async (res: Promise<HttpResult>, status: number, code: string, message: RegExp): Promise<void> => {
      const answer = await res;
      assert.equal(answer.status, status, answer.body);
      const body = answer.json<DaprError>();
      assert.equal(body.errorCode, code, answer.body);
      assert.match(body.message, message);
    };
    const base = `${caller.url}/v1.0/actors/Counter/x`;
    const post = (path: string, body: string): Promise<HttpResult> => httpRequest(`${base}/${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    await expectError(post('reminders/r', '{"period":"-1s"}'), 400, 'ERR_ACTOR_REMINDER_CREATE', /error creating actor reminder: invalid period "-1s": the period must not be negative/);
    await expectError(post('reminders/r', '{"dueTime":"soon"}'), 400, 'ERR_ACTOR_REMINDER_CREATE', /invalid dueTime "soon"/);
    await expectError(post('reminders/r', '{"period":"R0/PT1S"}'), 400, 'ERR_ACTOR_REMINDER_CREATE', /repetitions must be greater than zero/);
    await expectError(post('reminders/r', '{"dueTime":"1s","ttl":"2000-01-01T00:00:00Z"}'), 400, 'ERR_ACTOR_REMINDER_CREATE', /expires before the first fire/);
    await expectError(post('reminders/r', '{"period":5}'), 400, 'ERR_MALFORMED_REQUEST', /"period" must be a string/);
    await expectError(post('timers/t', '{"period":"-5s"}'), 400, 'ERR_ACTOR_TIMER_CREATE', /the period must not be negative/);
    await expectError(post('state', '{not json'), 400, 'ERR_MALFORMED_REQUEST', /failed deserializing HTTP body/);
    await expectError(post('state', '{"operation":"upsert"}'), 400, 'ERR_MALFORMED_REQUEST', /expected a JSON list/);
    await expectError(httpRequest(`${caller.url}/v1.0/actors/Counter/a%2Fb/method/echo`, { method: 'POST', body: '{}' }), 400, 'ERR_BAD_REQUEST', /invalid actorId "a\/b"/);
    await expectError(httpRequest(`${caller.url}/v1.0/actors/Counter/x/method/a/b`, { method: 'POST', body: '{}' }), 400, 'ERR_BAD_REQUEST', /one path segment/);
    await expectError(httpRequest(`${caller.url}/v1.0/actors/Counter/x/elsewhere`, { method: 'POST', body: '{}' }), 404, 'ERR_NOT_FOUND', /is not found/);
    await expectError(httpRequest(`${base}/state`, { method: 'DELETE' }), 405, 'ERR_METHOD_NOT_ALLOWED', /DELETE is not allowed/);
    await expectError(actorCall(caller, 'Nobody', 'x', 'echo'), 500, 'ERR_ACTOR_INVOKE_METHOD', /no host serves actor type "Nobody"/);
    // The app's own error status and body pass through unchanged, as Dapr does.
    const failed = await actorCall(caller, 'Counter', 'x', 'fail');
    assert.equal(failed.status, 500);
    assert.deepEqual(failed.json(), { error: 'as you asked' });
    assert.equal(failed.headers['x-actor-error'], 'yes');
  });

  it('verifies placement by its SPIFFE ID: a server with another identity is refused', async function () {
    // Another sidecar's internal port speaks TLS with a valid SVID from the same CA, but it is not placement.
    const app = await harness.app('actor-app', { INSTANCE: 'fooled', ...HOST_ENV });
    const sidecar = await harness.sidecar({ appId: 'fooled-host', appPort: app.port, args: ['--placement-address', `127.0.0.1:${caller.internalPort}`] });
    await sidecar.proc.waitFor(/is not placement of trust domain public \(certificate SAN: URI:spiffe:\/\/public\/ns\/default\/actor-caller/);
    const metadata = (await httpRequest(`${sidecar.url}/v1.0/metadata`)).json<{ actorRuntime: { hostReady: boolean; placement: string } }>();
    assert.deepEqual([metadata.actorRuntime.hostReady, metadata.actorRuntime.placement], [false, 'placement: disconnected']);
    await Promise.all([sidecar.proc.stop(), app.proc.stop()]);
  });

  /** Calls every actor in `ids` round and round through `via` until stopped; counts failures. */
  function keepCalling(via: () => SidecarHandle[], ids: string[]): { stop(): Promise<{ calls: number; failures: string[] }> } {
    let running = true;
    let calls = 0;
    const failures: string[] = [];
    const loop = (async () => {
      for (let round = 0; running; round++) {
        const sidecars = via();
        await Promise.all(ids.map(async (id, index) => {
          const res = await actorCall(sidecars[(round + index) % sidecars.length] as SidecarHandle, 'Counter', id, 'slow', { ms: 5 }).catch((error: Error) => ({ status: 0, body: error.message }));
          calls++;
          if (res.status !== 200) failures.push(`${id}: ${res.status} ${res.body}`);
        }));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return { calls, failures };
      },
    };
  }

  it('a host joining and leaving moves about 1/N of the actors; calls keep succeeding; no turn ever overlaps across hosts', async function () {
    const ids = Array.from({ length: 60 }, (_, i) => `move-${i}`);
    const [h1, h2] = [byName('h1'), byName('h2')];
    const before = await settled([caller, h1.sidecar, h2.sidecar], ids, ['h1', 'h2']);
    const load = keepCalling(() => [caller, h1.sidecar, h2.sidecar], ids);
    const h3 = await startHost('h3');
    const joined = await settled([caller, h1.sidecar, h2.sidecar, h3.sidecar], ids, ['h1', 'h2', 'h3']);
    const moved = ids.filter((id) => before.get(id) !== joined.get(id));
    assert.ok(moved.every((id) => joined.get(id) === 'h3'), 'actors only move to the new host');
    assert.ok(moved.length >= 8 && moved.length <= 32, `about a third of 60 actors moved, not ${moved.length}`);

    // h3 leaves gracefully: it hands its actors back before its sidecar goes.
    h3.sidecar.proc.signal('SIGTERM');
    await h3.sidecar.proc.exited;
    hosts.splice(hosts.indexOf(h3), 1);
    const left = await settled([caller, h1.sidecar, h2.sidecar], ids, ['h1', 'h2']);
    assert.deepEqual([...left], [...before], 'after the leave every actor is back with its first owner');
    const { calls, failures } = await load.stop();
    assert.deepEqual(failures, [], `${failures.length} of ${calls} calls failed during the rebalance`);
    assert.ok(calls >= 120, `the load kept calling (${calls} calls)`);

    // Single activation, checked the hard way: the turns of one actor, from every host's record, never overlap.
    const all = (await Promise.all([h1, h2, h3].map(events))).flatMap((seen) => seen.turns.map((turn) => ({ ...turn, host: seen.instance })));
    for (const id of ids) {
      const turns = all.filter((turn) => turn.actorId === id).sort((a, b) => a.start - b.start);
      for (let i = 1; i < turns.length; i++) {
        const [previous, current] = [turns[i - 1], turns[i]] as [typeof all[number], typeof all[number]];
        assert.ok(current.start >= previous.end, `${id}: a turn on ${current.host} started at ${current.start} before one on ${previous.host} ended at ${previous.end}`);
      }
    }
    const h3Turns = all.filter((turn) => turn.host === 'h3');
    assert.ok(h3Turns.length > 0, 'h3 served calls while it was a member');
    const h3Deactivated = new Set((await events(h3)).deactivations.map((entry) => entry.actorId));
    assert.ok(moved.every((id) => h3Deactivated.has(id)), 'h3 deactivated every actor it had before leaving');
  });

  it('owner killed mid-call: the caller gets a clear error; the next call reaches the new owner; its reminders move with it', async function () {
    const [h1, h2] = [byName('h1'), byName('h2')];
    const ids = Array.from({ length: 40 }, (_, i) => `victim-${i}`);
    const owners = await settled([caller, h2.sidecar], ids, ['h1', 'h2']);
    const [victim, remindee] = ids.filter((id) => owners.get(id) === 'h1') as [string, string];
    assert.ok(victim && remindee, 'h1 owns at least two of 40 actors');
    const reminderUrl = `${caller.url}/v1.0/actors/Counter/${remindee}/reminders/heartbeat`;
    assert.equal((await httpRequest(reminderUrl, { method: 'POST', body: JSON.stringify({ period: '300ms', data: 'beat' }) })).status, 204);
    await eventually(async () => ((await events(h1)).reminders.filter((r) => r.actorId === remindee).length >= 2 ? true : undefined), 10_000, 'reminder fires on h1');

    const inFlight = actorCall(caller, 'Counter', victim, 'slow', { ms: 5000 });
    await eventually(async () => ((await events(h1)).inProgress.includes(`Counter/${victim}`) ? true : undefined), 10_000, 'the slow call to start on h1');
    await Promise.all([h1.sidecar.proc.kill(), h1.app.proc.kill()]);
    hosts.splice(hosts.indexOf(h1), 1);
    const cut = await inFlight;
    assert.equal(cut.status, 500, cut.body);
    const error = cut.json<DaprError>();
    assert.equal(error.errorCode, 'ERR_ACTOR_INVOKE_METHOD');
    assert.match(error.message, /failed during the call, which may or may not have run/);

    // The next call waits for placement to drop h1 and reaches h2.
    const started = Date.now();
    assert.equal(await instanceOf(caller, 'Counter', victim), 'h2');
    assert.ok(Date.now() - started < 15_000);
    await eventually(async () => ((await events(h2)).reminders.filter((r) => r.actorId === remindee).length >= 2 ? true : undefined), 15_000, 'the reminder to fire on h2');
    assert.equal((await httpRequest(reminderUrl, { method: 'DELETE' })).status, 204);
    // A fire already under way when the DELETE answered may still land; nothing after it (five periods).
    const beats = async (): Promise<number> => (await events(h2)).reminders.filter((r) => r.actorId === remindee).length;
    const count = await beats();
    await staysTrue(async () => (await beats()) <= count + 1, 1500, 'a deleted reminder fires no more');
  });

  it('placement leader killed: calls keep working on the last table; hosts resynchronise with the new leader', async function () {
    const h2 = byName('h2');
    const ids = Array.from({ length: 10 }, (_, i) => `steady-${i}`);
    await settled([caller, h2.sidecar], ids, ['h2']);
    await leader.proc.kill();
    for (const id of ids) assert.equal(await instanceOf(caller, 'Counter', id), 'h2');
    await follower.proc.waitForRecord('became leader', {}, 15_000);
    const h4 = await startHost('h4');
    const owners = await settled([caller, h2.sidecar, h4.sidecar], Array.from({ length: 30 }, (_, i) => `steady-${i}`), ['h2', 'h4']);
    assert.ok([...owners.values()].includes('h4'), 'the new leader gave the joining host actors');
    const metadata = (await httpRequest(`${h2.sidecar.url}/v1.0/metadata`)).json<{ actorRuntime: { placement: string } }>();
    assert.equal(metadata.actorRuntime.placement, 'placement: connected');
  });

  it('placement down for a while: sidecars keep serving on the last table, deactivate nothing, and resynchronise when it is back', async function () {
    const ids = Array.from({ length: 20 }, (_, i) => `outage-${i}`);
    const sidecars = [caller, ...hosts.map((host) => host.sidecar)];
    const owners = await settled(sidecars, ids, hosts.map((host) => host.name));
    const deactivationsBefore = (await Promise.all(hosts.map(events))).map((seen) => seen.deactivations.length);
    const port = follower.address.slice(follower.address.lastIndexOf(':') + 1);
    await follower.proc.kill();
    // No placement at all: every call still reaches the same owner, for several seconds.
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      for (const id of ids) assert.equal(await instanceOf(caller, 'Counter', id), owners.get(id));
    }
    // Placement comes back where the sidecars know it; nothing moved, so nothing is deactivated.
    follower = await harness.placement('beta-again', [...PLACEMENT_ARGS, '--port', port]);
    await follower.proc.waitForRecord('became leader', {}, 15_000);
    await eventually(async () => {
      const states = await Promise.all(sidecars.map(async (sidecar) => (await httpRequest(`${sidecar.url}/v1.0/metadata`)).json<{ actorRuntime: { placement: string } }>().actorRuntime.placement));
      return states.every((state) => state === 'placement: connected') ? true : undefined;
    }, 20_000, 'every sidecar to reconnect to placement');
    for (const id of ids) assert.equal(await instanceOf(caller, 'Counter', id), owners.get(id));
    const deactivationsAfter = (await Promise.all(hosts.map(events))).map((seen) => seen.deactivations.length);
    assert.deepEqual(deactivationsAfter, deactivationsBefore, 'no actor was deactivated by the outage');
  });

  it('actor state survives the sidecars that wrote it', async function () {
    // The sidecars that wrote these values (and h1, which held some of the actors) are gone or restarted.
    const late = await harness.sidecar({ appId: 'late-reader', args: placementArgs() });
    assert.equal((await httpRequest(`${late.url}/v1.0/actors/Counter/tally/state/count`)).body, '20');
    assert.deepEqual((await httpRequest(`${late.url}/v1.0/actors/Counter/ledger/state/a`)).json(), { n: 1 });
  });
});
