import assert from 'node:assert/strict';
import { ManualClock } from '../src/index.js';

describe('ManualClock', function () {
  it('fires due timers in time order when advanced, including timers set while firing', function () {
    const clock = new ManualClock(1000);
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(['b', clock.now()]), 200);
    clock.setTimeout(() => {
      fired.push(['a', clock.now()]);
      clock.setTimeout(() => fired.push(['c', clock.now()]), 50);
    }, 100);
    const cancelled = clock.setTimeout(() => fired.push(['never', clock.now()]), 150);
    clock.clearTimeout(cancelled);
    clock.advance(150);
    assert.deepEqual(fired, [['a', 1100], ['c', 1150]]);
    assert.equal(clock.now(), 1150);
    clock.advance(1000);
    assert.deepEqual(fired, [['a', 1100], ['c', 1150], ['b', 1200]]);
    assert.equal(clock.now(), 2150);
    assert.equal(clock.pending, 0);
  });
});
