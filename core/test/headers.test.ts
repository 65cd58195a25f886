import assert from 'node:assert/strict';
import { forwardableHeaders, headersObject, stampIdentity } from '../src/index.js';

describe('forwardableHeaders', function () {
  it('drops hop-by-hop headers and those named in Connection, keeping order and repeats', function () {
    const list = forwardableHeaders(['Host', 'x', 'Connection', 'keep-alive, X-Secret-Hop', 'X-Secret-Hop', '1', 'Transfer-Encoding', 'chunked', 'Accept', 'a', 'accept', 'b', 'Upgrade', 'h2c']);
    assert.deepEqual(list, [
      ['accept', 'a'],
      ['accept', 'b'],
    ]);
  });
});

describe('stampIdentity', function () {
  it('replaces caller-supplied identity and sidecar headers with the verified identity', function () {
    const out = stampIdentity(
      [
        ['dapr-caller-app-id', 'admin'],
        ['dapr-caller-namespace', 'prod'],
        ['dapr-callee-app-id', 'x'],
        ['dapr-app-id', 'y'],
        ['dapr-api-token', 'leak'],
        ['x-kept', '1'],
      ],
      { callerAppId: 'agent', callerNamespace: 'default', calleeAppId: 'mcp' },
      undefined,
    );
    assert.deepEqual(out, [
      ['x-kept', '1'],
      ['dapr-caller-app-id', 'agent'],
      ['dapr-caller-namespace', 'default'],
      ['dapr-callee-app-id', 'mcp'],
    ]);
  });

  it('adds the app API token when one is configured', function () {
    const out = stampIdentity([], { callerAppId: 'a', callerNamespace: 'd', calleeAppId: 'b' }, 'app-secret');
    assert.deepEqual(out.at(-1), ['dapr-api-token', 'app-secret']);
  });
});

describe('headersObject', function () {
  it('groups repeated headers into arrays', function () {
    assert.deepEqual(headersObject([['set-cookie', 'a'], ['set-cookie', 'b'], ['x', '1']]), { 'set-cookie': ['a', 'b'], x: '1' });
  });
});
