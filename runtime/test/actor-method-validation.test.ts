import assert from 'node:assert/strict';
import { ActorRuntime } from '../src/actors/actor-runtime.js';
import { checkMethod } from '../src/actors/requests.js';
import { SkeinError } from '@skein/core';
import type { WorkloadIdentity } from '../src/identity/workload.js';

const badRequest = (error: unknown): boolean => error instanceof SkeinError && error.code === 'ERR_BAD_REQUEST' && error.httpStatus === 400 && /^invalid request: invalid method/.test(error.message);

describe('actor method validation', function () {
  it('accepts methods whose every segment is a valid name, as reminders and timers fire them', function () {
    for (const method of ['echo', 'remind/nag', 'timer/tick', 'get.v2']) assert.equal(checkMethod(method), method);
  });

  it('refuses empty, dot and control-character segments with Dapr\'s ERR_BAD_REQUEST', function () {
    for (const method of ['', '..', '.', '../admin', 'a/../../b', 'a//b', 'a/', '/a', 'a\\b', 'a\u0000b', 'x'.repeat(1025)]) {
      assert.throws(() => checkMethod(method), badRequest, JSON.stringify(method.slice(0, 20)));
    }
  });

  it('refuses a method from another sidecar that would leave the actor\'s path, before anything runs', async function () {
    const runtime = new ActorRuntime({
      appId: 'actor-host',
      namespace: 'default',
      instanceId: 'test',
      placementAddresses: [],
      identity: {} as unknown as WorkloadIdentity,
      appHost: undefined,
    });
    const caller = { trustDomain: 'public', appId: 'actor-caller', namespace: 'default' };
    for (const method of ['../../dapr/config', 'echo/../../../admin', '']) {
      await assert.rejects(
        runtime.handleRemote({ namespace: 'default', actorType: 'Counter', actorId: 'c1', hops: 1, call: { method, verb: 'PUT', headers: [], body: new Uint8Array() } }, caller, AbortSignal.timeout(1000)),
        badRequest,
        method,
      );
    }
  });
});
