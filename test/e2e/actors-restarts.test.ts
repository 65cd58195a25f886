import assert from 'node:assert/strict';
import { Harness, type AppHandle, type ManagedProcess, type NatsHandle, type SidecarHandle } from '../src/harness.js';
import { eventually } from '../src/eventually.js';
import { httpRequest, type HttpResult } from '../src/http.js';

/** What the actor app recorded (see test/src/apps/actor-app.ts). */
interface AppEvents {
  instance: string;
  reminders: Array<{ actorType: string; actorId: string; name: string; at: number; body: { data?: unknown; dueTime?: string; period?: string } }>;
  deactivations: Array<{ actorType: string; actorId: string; at: number }>;
}

/** One actor host: the test app and its sidecar. */
interface Host {
  name: string;
  app: AppHandle;
  sidecar: SidecarHandle;
}

const HOST_ENV: NodeJS.ProcessEnv = { ACTOR_TYPES: 'Counter', SCAN_INTERVAL: '300ms' };

/** Placement tuned for tests: hosts are dropped 2 s after they go silent. */
const PLACEMENT_ARGS = ['--host-ttl', '2s', '--dissemination-timeout', '4s', '--batch-window', '200ms', '--lease-ttl', '2s'];

/** Pause between two polls of a bounded loop; each poll waits on a real answer (HTTP or the app's record). */

function actorCall(sidecar: SidecarHandle, actorId: string, method: string, body: unknown = {}): Promise<HttpResult> {
  return httpRequest(`${sidecar.url}/v1.0/actors/Counter/${encodeURIComponent(actorId)}/method/${method}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

/** The instance that answers for the actor through `sidecar`, or undefined if the call did not succeed. */
async function tryInstanceOf(sidecar: SidecarHandle, actorId: string): Promise<string | undefined> {
  const res = await actorCall(sidecar, actorId, 'echo').catch(() => undefined);
  return res?.status === 200 ? res.json<{ instance: string }>().instance : undefined;
}

async function events(host: Host): Promise<AppEvents> {
  return (await httpRequest(`http://127.0.0.1:${host.app.port}/_events`)).json<AppEvents>();
}

function stateUrl(sidecar: SidecarHandle, actorId: string, key?: string): string {
  return `${sidecar.url}/v1.0/actors/Counter/${encodeURIComponent(actorId)}/state${key === undefined ? '' : `/${key}`}`;
}

function transact(sidecar: SidecarHandle, actorId: string, operations: unknown): Promise<HttpResult> {
  return httpRequest(stateUrl(sidecar, actorId), { method: 'POST', body: JSON.stringify(operations), headers: { 'content-type': 'application/json' } });
}


/** Reminder fires of `name` on `actorId` recorded by any of `hosts`, with the recording host. */
async function firesOf(hosts: Host[], actorId: string, name: string): Promise<Array<{ host: string; at: number }>> {
  const all = await Promise.all(hosts.map(async (host) => (await events(host)).reminders.filter((r) => r.actorId === actorId && r.name === name).map((r) => ({ host: host.name, at: r.at }))));
  return all.flat().sort((a, b) => a.at - b.at);
}

describe('actors: NATS restarted, and the whole mesh restarted (real processes)', function () {
  const harness = new Harness();
  let nats: NatsHandle;
  let sentry: { proc: ManagedProcess; address: string };
  let placements: Array<{ proc: ManagedProcess; address: string }> = [];
  let hosts: Host[] = [];
  let caller: SidecarHandle;

  const placementArgs = (): string[] => ['--placement-address', placements.map((replica) => replica.address).join(',')];
  const sidecars = (): SidecarHandle[] => [caller, ...hosts.map((host) => host.sidecar)];
  const byName = (name: string): Host => {
    const host = hosts.find((candidate) => candidate.name === name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  };

  async function startHost(name: string): Promise<Host> {
    const app = await harness.app('actor-app', { INSTANCE: name, ...HOST_ENV });
    const sidecar = await harness.sidecar({ appId: 'actor-host', appPort: app.port, args: placementArgs() });
    await httpRequest(`http://127.0.0.1:${app.port}/_sidecar`, { method: 'POST', body: JSON.stringify({ url: sidecar.url }) });
    return { name, app, sidecar };
  }

  /** Two placement replicas (the first becomes leader), two actor hosts and a caller without actors. */
  async function startMesh(suffix: string): Promise<void> {
    const leader = await harness.placement(`alpha${suffix}`, PLACEMENT_ARGS);
    await leader.proc.waitForRecord('became leader', {}, 15_000);
    const follower = await harness.placement(`beta${suffix}`, PLACEMENT_ARGS);
    placements = [leader, follower];
    hosts = await Promise.all([startHost(`h1${suffix}`), startHost(`h2${suffix}`)]);
    caller = await harness.sidecar({ appId: 'actor-caller', args: placementArgs() });
  }

  /** Waits until every sidecar answers for each actor of `ids` from the same current host; returns the owners. */
  async function settled(ids: string[], timeoutMs = 30_000): Promise<Map<string, string>> {
    const names = hosts.map((host) => host.name);
    return eventually(async () => {
      const owners = new Map<string, string>();
      for (const id of ids) {
        const seen = new Set(await Promise.all(sidecars().map((sidecar) => tryInstanceOf(sidecar, id))));
        const [owner] = [...seen];
        if (seen.size !== 1 || owner === undefined || !names.includes(owner)) return undefined;
        owners.set(id, owner);
      }
      return owners;
    }, timeoutMs, `every sidecar to route ${ids.join(', ')} to one of ${names.join(', ')}`);
  }

  before(async function () {
    nats = await harness.nats();
    sentry = await harness.sentry();
    await startMesh('');
  });

  after(() => harness.cleanup());

  it('NATS restarted with its store: actors keep answering; state and reminders from before are there; new transactions work', async function () {
    const ids = Array.from({ length: 8 }, (_, i) => `nats-${i}`);
    const owners = await settled(ids);
    // State and a reminder, written before the restart.
    assert.equal((await transact(caller, 'kept', [{ operation: 'upsert', request: { key: 'before', value: { n: 1 } } }, { operation: 'upsert', request: { key: 'list', value: [1, 2, 3] } }])).status, 204);
    const reminderUrl = `${caller.url}/v1.0/actors/Counter/pulsed/reminders/pulse`;
    const created = await httpRequest(reminderUrl, { method: 'POST', body: JSON.stringify({ dueTime: '0s', period: '500ms', data: 'pulse' }) });
    assert.equal(created.status, 204, created.body);
    await eventually(async () => ((await firesOf(hosts, 'pulsed', 'pulse')).length >= 2 ? true : undefined), 10_000, 'the reminder to fire twice before the restart');

    await nats.restart();
    const restartedAt = Date.now();
    assert.ok(nats.proc.running, 'nats-server is running again');

    // Every sidecar answers for every actor again (placement may have re-elected and re-disseminated meanwhile).
    const after = await settled(ids, 30_000);
    assert.deepEqual([...after].sort(), [...owners].sort(), 'with the same hosts, every actor keeps its owner');
    for (const sidecar of sidecars()) {
      for (const id of ids) {
        const res = await actorCall(sidecar, id, 'echo');
        assert.equal(res.status, 200, res.body);
      }
    }

    // State written before the restart reads back through every sidecar.
    for (const sidecar of sidecars()) {
      const before = await eventually(async () => {
        const res = await httpRequest(stateUrl(sidecar, 'kept', 'before'));
        return res.status === 200 ? res : undefined;
      }, 15_000, 'the pre-restart state to read back');
      assert.deepEqual(before.json(), { n: 1 });
      assert.deepEqual((await httpRequest(stateUrl(sidecar, 'kept', 'list'))).json(), [1, 2, 3]);
    }

    // A transaction after the restart: applied atomically on top of the old state.
    const write = await transact(hosts[0]?.sidecar as SidecarHandle, 'kept', [{ operation: 'upsert', request: { key: 'after', value: 'yes' } }, { operation: 'delete', request: { key: 'list' } }]);
    assert.equal(write.status, 204, write.body);
    assert.deepEqual((await httpRequest(stateUrl(caller, 'kept', 'before'))).json(), { n: 1 });
    assert.equal((await httpRequest(stateUrl(caller, 'kept', 'after'))).body, '"yes"');
    assert.equal((await httpRequest(stateUrl(caller, 'kept', 'list'))).status, 204);
    // Read-modify-write through the app's turn, twice, counts on from nothing to 2.
    for (const expected of [1, 2]) {
      const incr = await actorCall(caller, 'kept', 'incr');
      assert.equal(incr.status, 200, incr.body);
      assert.equal(incr.json<{ count: number }>().count, expected);
    }

    // The reminder registered before the restart keeps firing after it, on its schedule again: a fire whose
    // progress could not be written back is retried after 1 s, so fires one period (500 ms) apart prove that the
    // owner records each fire in the restarted JetStream again.
    const onSchedule = (fires: Array<{ host: string; at: number }>): boolean => {
      const last = fires.slice(-3);
      return last.length === 3 && last.every((fire, i) => i === 0 || fire.at - (last[i - 1]?.at ?? 0) < 900);
    };
    const later = await eventually(async () => {
      const fires = (await firesOf(hosts, 'pulsed', 'pulse')).filter((fire) => fire.at > restartedAt);
      return onSchedule(fires) ? fires : undefined;
    }, 20_000, 'the reminder to fire three times, one period apart, after the restart');
    assert.equal(new Set(later.map((fire) => fire.host)).size, 1, `after the restart the reminder fired on one host: ${JSON.stringify(later)}`);
    const stored = await httpRequest(reminderUrl);
    assert.equal(stored.status, 200, stored.body);
    assert.deepEqual(stored.json(), { actorID: 'pulsed', actorType: 'Counter', data: 'pulse', dueTime: '0s', period: '500ms' });

    // The owner's watch sees changes made after the restart: the reminder replaced with new data fires with it.
    const replacedAt = Date.now();
    const replaced = await httpRequest(reminderUrl, { method: 'POST', body: JSON.stringify({ dueTime: '0s', period: '300ms', data: 'replaced' }) });
    assert.equal(replaced.status, 204, replaced.body);
    await eventually(async () => {
      const owner = byName(later[0]?.host ?? '');
      const fires = (await events(owner)).reminders.filter((r) => r.actorId === 'pulsed' && r.name === 'pulse' && r.at > replacedAt && r.body.data === 'replaced');
      return fires.length >= 2 ? true : undefined;
    }, 10_000, 'the replaced reminder to fire with its new data');
    assert.equal((await httpRequest(reminderUrl, { method: 'DELETE' })).status, 204);
    assert.equal((await httpRequest(reminderUrl)).status, 404);
  });

  it('the whole mesh restarted (sidecars, apps, placement, sentry, NATS with its store): reminders fire again on the new owner; state is intact', async function () {
    const reminderUrl = (via: SidecarHandle): string => `${via.url}/v1.0/actors/Counter/meshed/reminders/beat`;
    const created = await httpRequest(reminderUrl(caller), { method: 'POST', body: JSON.stringify({ dueTime: '0s', period: '1s', data: { mesh: true } }) });
    assert.equal(created.status, 204, created.body);
    assert.equal((await transact(caller, 'meshed', [{ operation: 'upsert', request: { key: 'profile', value: { name: 'meshed', tags: ['a', 'b'] } } }])).status, 204);
    assert.equal((await transact(caller, 'other', [{ operation: 'upsert', request: { key: 'count', value: 41 } }])).status, 204);
    const oldHosts = hosts;
    await eventually(async () => ((await firesOf(oldHosts, 'meshed', 'beat')).length >= 1 ? true : undefined), 10_000, 'the reminder to fire before the restart');

    // Stop every process: sidecars and apps, then placement, sentry and NATS (which keeps its store directory).
    await Promise.all(sidecars().map((sidecar) => sidecar.proc.stop()));
    await Promise.all(oldHosts.map((host) => host.app.proc.stop()));
    await Promise.all(placements.map((replica) => replica.proc.stop()));
    await sentry.proc.stop();
    await nats.proc.stop();
    const stillRunning = harness.processes.filter((proc) => proc.running).map((proc) => proc.name);
    assert.deepEqual(stillRunning, [], 'nothing of the mesh is left running');

    // Start it all again: NATS on the same port with the same store, then new sentry, placement and sidecars.
    await nats.restart();
    sentry = await harness.sentry();
    await startMesh('-again');
    const restartedAt = Date.now();

    const owner = byName((await settled(['meshed', 'other'])).get('meshed') as string);
    const fires = await eventually(async () => {
      const seen = (await firesOf(hosts, 'meshed', 'beat')).filter((fire) => fire.at >= restartedAt);
      return seen.filter((fire) => fire.host === owner.name).length >= 2 ? seen : undefined;
    }, 20_000, `the reminder to fire twice on its new owner ${owner.name}`);
    const onOwner = (await events(owner)).reminders.filter((r) => r.actorId === 'meshed' && r.name === 'beat');
    assert.deepEqual(onOwner.at(-1)?.body.data, { mesh: true });
    assert.equal(onOwner.at(-1)?.body.period, '1s');
    // Fires after the restart come one period apart or more, whichever host made them: never two hosts at once.
    for (let i = 1; i < fires.length; i++) {
      const gap = (fires[i]?.at ?? 0) - (fires[i - 1]?.at ?? 0);
      assert.ok(gap >= 500, `fires ${i - 1} and ${i} came ${gap} ms apart: ${JSON.stringify(fires)}`);
    }

    // The reminder is still registered as given, and the state is intact, read through every new sidecar.
    const stored = await httpRequest(reminderUrl(caller));
    assert.equal(stored.status, 200, stored.body);
    assert.deepEqual(stored.json(), { actorID: 'meshed', actorType: 'Counter', data: { mesh: true }, dueTime: '0s', period: '1s' });
    for (const sidecar of sidecars()) {
      assert.deepEqual((await httpRequest(stateUrl(sidecar, 'meshed', 'profile'))).json(), { name: 'meshed', tags: ['a', 'b'] });
      assert.equal((await httpRequest(stateUrl(sidecar, 'other', 'count'))).body, '41');
    }
    const incr = await actorCall(caller, 'other', 'incr');
    assert.equal(incr.status, 200, incr.body);
    assert.equal(incr.json<{ count: number }>().count, 42);
    assert.equal((await httpRequest(reminderUrl(caller), { method: 'DELETE' })).status, 204);
  });
});
