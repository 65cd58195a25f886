import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Harness, type AppHandle, type SidecarHandle } from '../src/harness.js';
import { httpRequest, type HttpResult } from '../src/http.js';

const RESILIENCY = `apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: actor-policies
spec:
  policies:
    retries:
      three-tries:
        policy: constant
        duration: 10ms
        maxRetries: 2
        matching:
          httpStatusCodes: "500"
    circuitBreakers:
      per-actor:
        maxRequests: 1
        timeout: 60s
        trip: consecutiveFailures >= 3
  targets:
    actors:
      Counter:
        retry: three-tries
        circuitBreaker: per-actor
        circuitBreakerScope: id
`;

interface Turn {
  actorId: string;
  method: string;
}

describe('Resiliency on actor targets', function () {
  const harness = new Harness();
  let app: AppHandle;
  let caller: SidecarHandle;
  after(() => harness.cleanup());

  const call = (actorId: string, method: string): Promise<HttpResult> =>
    httpRequest(`${caller.url}/v1.0/actors/Counter/${actorId}/method/${method}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  const turns = async (actorId: string, method: string): Promise<number> =>
    (await httpRequest(`http://127.0.0.1:${app.port}/_events`)).json<{ turns: Turn[] }>().turns.filter((turn) => turn.actorId === actorId && turn.method === method).length;

  before(async function () {
    await harness.controlPlane();
    const placement = await harness.placement('only', ['--host-ttl', '2s', '--batch-window', '100ms']);
    await placement.proc.waitForRecord('became leader');
    const placementArgs = ['--placement-address', placement.address];
    app = await harness.app('actor-app', { INSTANCE: 'host' });
    const host = await harness.sidecar({ appId: 'actor-host', appPort: app.port, args: placementArgs });
    await httpRequest(`http://127.0.0.1:${app.port}/_sidecar`, { method: 'POST', body: JSON.stringify({ url: host.url }) });
    const dir = harness.dir('actor-resiliency');
    writeFileSync(join(dir, 'resiliency.yaml'), RESILIENCY);
    caller = await harness.sidecar({ appId: 'actor-caller', args: [...placementArgs, '--resources-path', dir] });
    // The first call waits for the placement table; after it, every call is routed at once.
    assert.equal((await call('warm', 'echo')).status, 200);
  });

  it('retries a failing actor method as the policy says, then answers with the last failure', async function () {
    const res = await call('r1', 'fail');
    assert.equal(res.status, 500, res.body);
    assert.equal(await turns('r1', 'fail'), 3, 'one call and two retries reached the actor');
  });

  it('opens the breaker of that actor only (circuitBreakerScope: id) and answers at once, naming target and breaker', async function () {
    const before = await turns('r1', 'echo');
    const refused = await call('r1', 'echo');
    assert.equal(refused.status, 503, refused.body);
    const body = refused.json<{ errorCode: string; message: string }>();
    assert.match(body.message, /actors\.Counter/);
    assert.match(body.message, /per-actor/);
    assert.equal(await turns('r1', 'echo'), before, 'the open breaker kept the call from the actor');
    assert.equal((await call('r2', 'echo')).status, 200, 'another actor of the type is not affected');
  });
});
