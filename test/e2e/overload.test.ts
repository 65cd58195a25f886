import assert from 'node:assert/strict';
import { Harness, type SidecarHandle } from '../src/harness.js';
import { httpRequest, type HttpResult } from '../src/http.js';

/** 10,000 calls at once through one caller sidecar: far more than it may have in flight to one peer. */
const SIMULTANEOUS_CALLS = 10_000;

describe('overload: more simultaneous calls than a peer may have in flight', function () {
  const harness = new Harness();
  let caller: SidecarHandle;

  before(async function () {
    await harness.controlPlane();
    const app = await harness.app('bench-app');
    [, caller] = await Promise.all([harness.sidecar({ appId: 'busy', appPort: app.port }), harness.sidecar({ appId: 'caller' })]);
    // The path works before the flood.
    assert.equal((await httpRequest(`${caller.url}/v1.0/invoke/busy/method/orders`, { method: 'POST', body: '{}' })).status, 200);
  });
  after(() => harness.cleanup());

  it('answers each of 10,000 calls at once with 200 or 503 Retry-After, never failing calls in flight, and serves the next call', async function () {
    this.timeout(180_000);
    const body = Buffer.from(JSON.stringify({ payload: 'x'.repeat(1000) }));
    const outcomes = await Promise.all(
      Array.from({ length: SIMULTANEOUS_CALLS }, () =>
        httpRequest(`${caller.url}/v1.0/invoke/busy/method/orders`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).then(
          (result): HttpResult | Error => result,
          (error: Error) => error,
        ),
      ),
    );
    const statuses = new Map<string, number>();
    for (const outcome of outcomes) {
      const key = outcome instanceof Error ? `error ${(outcome as NodeJS.ErrnoException).code ?? outcome.message}` : String(outcome.status);
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
    const summary = JSON.stringify(Object.fromEntries(statuses));
    assert.deepEqual([...statuses.keys()].filter((key) => key !== '200' && key !== '503'), [], `only 200 and 503 may come back: ${summary}`);
    assert.ok((statuses.get('200') ?? 0) > 0, `some calls are served: ${summary}`);
    for (const outcome of outcomes) {
      if (outcome instanceof Error || outcome.status !== 503) continue;
      assert.equal(outcome.headers['retry-after'], '1', 'a refused call says when to retry');
      const error = outcome.json<{ errorCode: string; message: string }>();
      assert.equal(error.errorCode, 'ERR_DIRECT_INVOKE');
      assert.match(error.message, /at its limit of calls in flight/);
    }
    const next = await httpRequest(`${caller.url}/v1.0/invoke/busy/method/orders`, { method: 'POST', body });
    assert.equal(next.status, 200, next.body);
  });
});
