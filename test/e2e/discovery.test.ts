import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';

/** `skein run`'s instance TTL: a record not refreshed for this long no longer counts as live. */
const INSTANCE_TTL_MS = 5000;

interface Echo {
  instance: string;
}

/** Calls `appId` through `caller` `n` times; returns the instance names that answered, in order. */
async function callMany(caller: SidecarHandle, appId: string, n: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await httpRequest(`${caller.url}/v1.0/invoke/${appId}/method/who`);
    assert.equal(res.status, 200, `call ${i}: ${res.status} ${res.body}`);
    seen.push(res.json<Echo>().instance);
  }
  return seen;
}

describe('discovery over NATS', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('spreads calls over every instance of an App ID, and a killed instance stops receiving calls at once', async function () {
    await harness.controlPlane();
    const [appA, appB] = await Promise.all([harness.app('echo-app', { INSTANCE: 'a' }), harness.app('echo-app', { INSTANCE: 'b' })]);
    const [sidecarA] = await Promise.all([harness.sidecar({ appId: 'orders', appPort: appA.port }), harness.sidecar({ appId: 'orders', appPort: appB.port })]);
    const caller = await harness.sidecar({ appId: 'caller' });
    const seen = await callMany(caller, 'orders', 20);
    assert.deepEqual(new Set(seen), new Set(['a', 'b']));
    assert.ok(seen.filter((name) => name === 'a').length >= 5, `uneven spread: ${seen.join('')}`);
    // A crash: no deregistration. Every following call must still succeed, served by the survivor.
    await sidecarA.proc.kill();
    const after = await callMany(caller, 'orders', 20);
    assert.deepEqual(new Set(after), new Set(['b']));
  });

  it('recovers callers when the only instance is killed and restarted', async function () {
    const app = await harness.app('echo-app', { INSTANCE: 'first' });
    const first = await harness.sidecar({ appId: 'billing', appPort: app.port });
    const caller = await harness.sidecar({ appId: 'billing-caller' });
    assert.deepEqual(await callMany(caller, 'billing', 2), ['first', 'first']);
    await first.proc.kill();
    const down = await httpRequest(`${caller.url}/v1.0/invoke/billing/method/who`);
    assert.ok([404, 503].includes(down.status), `while down: ${down.status} ${down.body}`);
    assert.equal(down.json<{ errorCode: string }>().errorCode, 'ERR_DIRECT_INVOKE');
    await harness.sidecar({ appId: 'billing', appPort: app.port });
    // The caller was never restarted.
    assert.deepEqual(await callMany(caller, 'billing', 3), ['first', 'first', 'first']);
  });
});

describe('NATS restarts', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('keeps calls flowing to the known instances while NATS is down longer than the instance TTL', async function () {
    const { nats } = await harness.controlPlane();
    const app = await harness.app('echo-app', { INSTANCE: 'steady' });
    await harness.sidecar({ appId: 'ledger', appPort: app.port });
    const caller = await harness.sidecar({ appId: 'ledger-caller' });
    assert.deepEqual(await callMany(caller, 'ledger', 1), ['steady']);
    const from = caller.proc.lines.length;
    await nats.stop();
    await caller.proc.waitForRecord('discovery bus unreachable; calls go to the instances known when it went away', {}, 10_000, from);
    // The scenario is time itself: no heartbeat can arrive, so let the 5 s instance TTL pass.
    await delay(INSTANCE_TTL_MS + 1000);
    assert.deepEqual(await callMany(caller, 'ledger', 3), ['steady', 'steady', 'steady'], 'served on the last known instances');
    // A name the caller never knew is still unknown (404), not unavailable.
    const unknown = await httpRequest(`${caller.url}/v1.0/invoke/never-registered/method/who`);
    assert.equal(unknown.status, 404, unknown.body);
    await nats.start();
    await caller.proc.waitForRecord('discovery resynchronised after reconnect', {}, 20_000, from);
    assert.deepEqual(await callMany(caller, 'ledger', 2), ['steady', 'steady']);
  });

  it('sidecars reconnect and re-register after NATS restarts with an empty store', async function () {
    const { nats } = await harness.controlPlane();
    const app = await harness.app('echo-app', { INSTANCE: 'survivor' });
    const server = await harness.sidecar({ appId: 'inventory', appPort: app.port });
    const caller = await harness.sidecar({ appId: 'agent' });
    assert.deepEqual(await callMany(caller, 'inventory', 1), ['survivor']);
    const serverLines = server.proc.lines.length;
    await nats.restart({ wipe: true });
    // On reconnect the old server re-creates the bucket, re-registers and re-watches.
    await server.proc.waitForRecord('discovery resynchronised after reconnect', {}, 20_000, serverLines);
    // A sidecar that starts only now finds the old server: its record is back in the new store.
    const newcomer = await harness.sidecar({ appId: 'newcomer' });
    assert.deepEqual(await callMany(newcomer, 'inventory', 1), ['survivor']);
    // And the old caller, whose watch had to be re-established, also reaches a server registered after the restart.
    const app2 = await harness.app('echo-app', { INSTANCE: 'late' });
    await harness.sidecar({ appId: 'late', appPort: app2.port });
    assert.deepEqual(await callMany(caller, 'late', 1), ['late']);
  });
});
