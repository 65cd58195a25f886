import assert from 'node:assert/strict';
import { formatDuration, parseDuration, parseGoDuration, parsePeriod } from '../src/index.js';

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

  it('is one grammar: configuration durations read Go durations as the reminder API does', function () {
    // Go's time.ParseDuration accepts a bare zero and a leading dot; so do configuration and reminders alike.
    for (const [text, ms] of [['0', 0], ['.5s', 500], ['1h2m3.5s', 3_723_500], ['250us', 0.25]] as const) {
      assert.equal(parseDuration(text), ms, text);
      assert.equal(parseGoDuration(text), ms, text);
      assert.equal(text === '0' ? undefined : parsePeriod(text)?.every.ms, text === '0' ? undefined : ms, text);
    }
    // Signed durations exist in the grammar (a reminder's due time may be refused for being negative), but
    // configuration never takes one.
    assert.equal(parseGoDuration('-5s'), -5000);
    assert.throws(() => parseDuration('-5s'), /invalid duration "-5s"/);
  });

  it('formats milliseconds', function () {
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(3_600_000), '1h0m0s');
  });
});
