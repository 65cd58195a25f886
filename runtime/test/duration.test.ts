import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../src/duration.js';

describe('durations', function () {
  it('parses Go-style durations', function () {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('1.5s'), 1500);
  });

  it('refuses anything else with the offending text', function () {
    for (const bad of ['', '5', '-5s', '5 s', 'soon', '1d', '5s5']) assert.throws(() => parseDuration(bad), new RegExp(`invalid duration "${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
  });

  it('formats milliseconds', function () {
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(3_600_000), '1h0m0s');
  });
});
