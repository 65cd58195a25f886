import { strict as assert } from 'node:assert';
import { SkeinError } from '@skein/core';
import { hostRecordOf } from '../src/host-report.js';

const peer = { trustDomain: 'public', namespace: 'shop', appId: 'cart' };
const report = { appId: 'cart', namespace: 'shop', address: '10.0.0.1:50002', instanceId: 'i-1', actorTypes: ['user', 'cart', 'user'] };

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof SkeinError ? error.code : 'not a SkeinError';
  }
}

describe('host reports', () => {
  it('become records with sorted, unique actor types', () => {
    assert.deepEqual(hostRecordOf(report, peer), {
      namespace: 'shop',
      record: { address: '10.0.0.1:50002', appId: 'cart', instanceId: 'i-1', actorTypes: ['cart', 'user'] },
    });
    assert.equal(hostRecordOf({ ...report, address: '[::1]:7' }, peer).record.address, '[::1]:7');
    assert.equal(hostRecordOf({ ...report, address: 'node-1.example:50002' }, peer).record.address, 'node-1.example:50002');
  });

  it('must claim the identity of the client certificate', () => {
    assert.equal(code(() => hostRecordOf({ ...report, namespace: 'other' }, peer)), 'ERR_PERMISSION_DENIED');
    assert.equal(code(() => hostRecordOf({ ...report, appId: 'other' }, peer)), 'ERR_PERMISSION_DENIED');
  });

  it('are refused when malformed', () => {
    for (const address of ['', '10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', 'a b:1', ':80']) {
      assert.equal(code(() => hostRecordOf({ ...report, address }, peer)), 'ERR_MALFORMED_REQUEST', address);
    }
    assert.equal(code(() => hostRecordOf({ ...report, instanceId: '' }, peer)), 'ERR_MALFORMED_REQUEST');
    assert.equal(code(() => hostRecordOf({ ...report, actorTypes: [''] }, peer)), 'ERR_MALFORMED_REQUEST');
    assert.equal(code(() => hostRecordOf({ ...report, actorTypes: ['a\nb'] }, peer)), 'ERR_MALFORMED_REQUEST');
    assert.equal(code(() => hostRecordOf({ ...report, actorTypes: Array.from({ length: 1001 }, (_, i) => `t${i}`) }, peer)), 'ERR_MALFORMED_REQUEST');
  });
});
