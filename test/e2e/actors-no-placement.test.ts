import assert from 'node:assert/strict';
import { Harness } from '../src/harness.js';
import { httpRequest } from '../src/http.js';

interface Metadata {
  actorRuntime: { runtimeStatus: string; placement: string };
}

describe('actors without a placement service', function () {
  const harness = new Harness();
  after(() => harness.cleanup());

  it('says at once, and in the metadata, that the app declares actor types nothing can host', async function () {
    await harness.controlPlane();
    const app = await harness.app('actor-app', { INSTANCE: 'lonely', ACTOR_TYPES: 'Counter,Ledger' });
    const sidecar = await harness.sidecar({ appId: 'lonely', appPort: app.port });
    const record = await sidecar.proc.waitForRecord('the app declares actor types but this sidecar has no placement service, so none of them can be hosted; give it --placement-address, or start skein up first');
    assert.deepEqual(record['actorTypes'], ['Counter', 'Ledger']);
    const metadata = (await httpRequest(`${sidecar.url}/v1.0/metadata`)).json<Metadata>();
    assert.equal(metadata.actorRuntime.runtimeStatus, 'DISABLED');
    assert.match(metadata.actorRuntime.placement, /^no placement service: the app declares actor types Counter, Ledger/);
  });
});
