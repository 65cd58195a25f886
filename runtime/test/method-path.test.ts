import assert from 'node:assert/strict';
import { splitAppId, validateMethodPath } from '../src/invoke/method-path.js';
import { SkeinError } from '@skein/core';

describe('validateMethodPath', function () {
  it('keeps valid raw paths exactly as given', function () {
    for (const path of ['mcp', 'orders/42', 'a%20b/c', 'v1/items/%41', 'a//b', 'files/.hidden', 'x..y', 'caf%C3%A9', 'cafe%CC%81/men%C3%BC', '%E6%97%A5%E6%9C%AC']) {
      assert.equal(validateMethodPath(path), path);
    }
  });

  it('refuses the spellings some servers normalise away, so a deny rule on /admin cannot be dodged', function () {
    const reasons: Array<[string, RegExp]> = [
      ['admin;x/y', /";" path parameter/],
      ['admin%3b/y', /";" path parameter/],
      ['admin%3B', /";" path parameter/],
      ['admin./y', /ending in a dot or a space/],
      ['admin%2e/y', /ending in a dot or a space/],
      ['admin%20/y', /ending in a dot or a space/],
      ['admin /y', /ending in a dot or a space/],
      ['%EF%BD%81dmin/y', /fold to others/], // full-width "a"
      ['\uFF41dmin', /fold to others/],
      ['admin%E2%84%A2', /fold to others/], // the trade-mark sign folds to "TM"
      ['admin%09/y', /control character/],
      ['admin%7F', /control character/],
    ];
    for (const [path, reason] of reasons) {
      assert.throws(() => validateMethodPath(path), (error: unknown) => error instanceof SkeinError && error.code === 'ERR_MALFORMED_REQUEST' && reason.test(error.message), path);
    }
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
