import assert from 'node:assert/strict';
import { SkeinError } from '@skein/core';
import { retriesWhileWaiting, waitRetryDelayMs } from '../src/workflow/engine.js';

describe('workflow waits: which failed reads a waiting client is spared, and how long it pauses', function () {
  it('reads again after the sidecar\'s or the bus\'s failures (5xx, or an error without a code such as a NATS timeout)', function () {
    assert.equal(retriesWhileWaiting(new Error('timeout')), true);
    assert.equal(retriesWhileWaiting(new SkeinError('ERR_INTERNAL', 'connection closed')), true);
    assert.equal(retriesWhileWaiting(new SkeinError('ERR_DIRECT_INVOKE_PEER_UNAVAILABLE', 'the owner is restarting')), true);
  });

  it('passes the caller\'s own mistakes (4xx) on at once', function () {
    assert.equal(retriesWhileWaiting(new SkeinError('ERR_INSTANCE_ID_PROVIDED_MISSING', 'no instance id was provided')), false);
    assert.equal(retriesWhileWaiting(new SkeinError('ERR_INSTANCE_ID_NOT_FOUND', "unable to find workflow with ID 'x'")), false);
  });

  it('pauses 250 ms, doubling each time, never more than 2 s', function () {
    assert.deepEqual([0, 1, 2, 3, 4, 10].map(waitRetryDelayMs), [250, 500, 1000, 2000, 2000, 2000]);
  });
});
