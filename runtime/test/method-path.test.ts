import assert from 'node:assert/strict';
import { splitAppId, validateMethodPath } from '../src/invoke/method-path.js';
import { SkeinError } from '@skein/core';

describe('validateMethodPath', function () {
  it('keeps valid raw paths exactly as given', function () {
    for (const path of ['mcp', 'orders/42', 'a%20b/c', 'v1/items/%41', 'a//b', 'files/.hidden', 'x..y']) assert.equal(validateMethodPath(path), path);
  });

  it('refuses dot segments, encoded separators, NUL and broken encoding', function () {
    for (const path of ['..', 'a/../b', '.', 'a/./b', '%2e%2e/admin', '%2E', 'a%2Fb', 'a%2fb', 'a%5Cb', 'a%00b', '%zz', 'a%', '']) {
      assert.throws(() => validateMethodPath(path), (error: unknown) => error instanceof SkeinError && error.code === 'ERR_MALFORMED_REQUEST', path);
    }
  });
});

describe('splitAppId', function () {
  it("reads Dapr's <appId>.<namespace> form and defaults to the caller's namespace", function () {
    assert.deepEqual(splitAppId('orders', 'default'), { appId: 'orders', namespace: 'default' });
    assert.deepEqual(splitAppId('orders.shop', 'default'), { appId: 'orders', namespace: 'shop' });
  });
});
