import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ActorId, ActorProxyBuilder, CommunicationProtocolEnum, DaprClient, LogLevel } from '@dapr/dapr';
import { Harness, TEST_APPS, type SidecarHandle } from '../src/harness.js';
import { freePort } from '../src/ports.js';
import { SdkCounterActor } from '../src/apps/sdk-counter-actor.js';
import { eventually } from '../src/eventually.js';


describe('actors with the official @dapr/dapr SDK (DaprServer actor hosting and ActorProxyBuilder over HTTP)', function () {
  const harness = new Harness();
  let caller: SidecarHandle;
  let client: DaprClient;

  before(async function () {
    await harness.controlPlane();
    const placement = await harness.placement('solo', ['--host-ttl', '2s', '--batch-window', '100ms']);
    const args = ['--placement-address', placement.address];
    const appPort = await freePort();
    await harness.sidecar({ appId: 'sdk-actors', appPort, args, command: [process.execPath, join(TEST_APPS, 'sdk-actor-host.js')], env: { APP_PORT: String(appPort) } });
    caller = await harness.sidecar({ appId: 'sdk-caller', args });
    client = new DaprClient({ daprHost: '127.0.0.1', daprPort: String(caller.httpPort), communicationProtocol: CommunicationProtocolEnum.HTTP, logger: { level: LogLevel.Error } });
  });

  after(async () => {
    await client?.stop();
    await harness.cleanup();
  });

  it('a proxy call reaches the SDK actor; its state manager saves through the sidecar and survives', async function () {
    const builder = new ActorProxyBuilder<SdkCounterActor>(SdkCounterActor, client);
    const first = builder.build(new ActorId('c-1'));
    assert.equal(await first.increment(2), 2);
    assert.equal(await first.increment(3), 5);
    const again = builder.build(new ActorId('c-1'));
    assert.equal(await again.count(), 5);
    assert.equal(await builder.build(new ActorId('c-2')).count(), 0);
    const raw = await fetch(`${caller.url}/v1.0/actors/SdkCounterActor/c-1/state/count`);
    assert.equal(await raw.text(), '5', 'the SDK saved its state through the actor state API');
  });

  it('a reminder registered by the SDK actor fires back into receiveReminder with its data', async function () {
    const actor = new ActorProxyBuilder<SdkCounterActor>(SdkCounterActor, client).build(new ActorId('c-3'));
    assert.equal(await actor.remindMe('wake up'), 'registered');
    const seen = await eventually(async () => {
      const fires: Array<{ data: unknown }> = await actor.reminders();
      return fires.length >= 2 ? fires : undefined;
    }, 10_000, 'the reminder to fire twice');
    assert.equal(seen[0]?.data, 'wake up');
    assert.equal(await actor.forget(), 'unregistered');
  });
});
