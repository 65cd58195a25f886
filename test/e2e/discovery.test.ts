import assert from 'node:assert/strict';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { httpRequest } from '../src/http.js';

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
