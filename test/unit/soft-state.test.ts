import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { graceHasExpired, observeRefusal, observeUsage, type KindState } from '../../src/quota/soft-state.js';

const GRACE = 1000;
const LIMITS = { soft: 8, hard: 10 };
const types = (result: { crossings: readonly { type: string }[] }) => result.crossings.map((c) => c.type);

describe('observeUsage: soft limit and grace', () => {
  test('reaching the soft limit exactly is within it; one past it starts the grace period, once', () => {
    const at = observeUsage({}, 8, LIMITS, 0, GRACE);
    assert.deepEqual(types(at), []);
    const over = observeUsage(at.state, 9, LIMITS, 100, GRACE);
    assert.deepEqual(over.crossings, [{ type: 'soft_limit_exceeded', limit: 8, usage: 9 }]);
    assert.deepEqual(over.state.soft, { since: 100, graceNotified: false });
    const more = observeUsage(over.state, 10, LIMITS, 200, GRACE);
    assert.deepEqual(types(more), []);
    assert.deepEqual(more.state.soft, { since: 100, graceNotified: false }, 'the grace period runs from the first crossing');
  });

  test('the grace period ending is reported once, when usage is seen after it', () => {
    const over = observeUsage({}, 9, LIMITS, 0, GRACE).state;
    assert.deepEqual(types(observeUsage(over, 9, LIMITS, 999, GRACE)), []);
    const expired = observeUsage(over, 9, LIMITS, 1000, GRACE);
    assert.deepEqual(expired.crossings, [{ type: 'grace_expired', limit: 8, usage: 9 }]);
    assert.deepEqual(types(observeUsage(expired.state, 9, LIMITS, 5000, GRACE)), []);
  });

  test('back at or under the soft limit ends the grace period and is reported once', () => {
    const over = observeUsage({}, 9, LIMITS, 0, GRACE).state;
    const back = observeUsage(over, 8, LIMITS, 10, GRACE);
    assert.deepEqual(back.crossings, [{ type: 'back_below_soft', limit: 8, usage: 8 }]);
    assert.equal(back.state.soft, undefined);
    assert.deepEqual(types(observeUsage(back.state, 7, LIMITS, 20, GRACE)), []);
    // A new crossing starts a new grace period.
    const again = observeUsage(back.state, 9, LIMITS, 30, GRACE);
    assert.deepEqual(types(again), ['soft_limit_exceeded']);
    assert.equal(again.state.soft?.since, 30);
  });

  test('a jump straight past the end of the grace period (first seen late) reports both, in order', () => {
    const state: KindState = { soft: { since: 0, graceNotified: false } };
    assert.deepEqual(types(observeUsage(state, 9, LIMITS, 2000, GRACE)), ['grace_expired']);
  });

  test('no soft limit: nothing to report, and a stored soft state is dropped', () => {
    assert.deepEqual(types(observeUsage({}, 100, { soft: undefined, hard: 10 }, 0, GRACE)), []);
    const dropped = observeUsage({ soft: { since: 0, graceNotified: false } }, 100, { soft: undefined, hard: 10 }, 0, GRACE);
    assert.equal(dropped.state.soft, undefined);
  });
});

describe('hard limit hits', () => {
  test('the first refusal is reported, the next ones are not, until usage goes down', () => {
    const hit = observeRefusal({}, 10, 10);
    assert.deepEqual(hit.crossings, [{ type: 'hard_limit_hit', limit: 10, usage: 10 }]);
    const again = observeRefusal(hit.state, 10, 10);
    assert.deepEqual(types(again), []);
    const same = observeUsage(again.state, 10, { soft: undefined, hard: 10 }, 0, GRACE);
    assert.deepEqual(types(same), []);
    assert.equal(same.state.hardHitAt, 10, 'usage that did not go down keeps the episode open');
    const down = observeUsage(again.state, 9, { soft: undefined, hard: 10 }, 0, GRACE);
    assert.deepEqual(down.crossings, [{ type: 'back_below_hard', limit: 10, usage: 9 }]);
    assert.equal(down.state.hardHitAt, undefined);
    assert.deepEqual(types(observeRefusal(down.state, 10, 10)), ['hard_limit_hit'], 'a new episode is reported again');
  });

  test('stored usage below the refusal\'s while the writes it counted are in flight does not end the episode', () => {
    // Refused at 10: 9 stored and one write in flight. Until that write ends, 9 is stored and 10 in flight.
    const hit = observeRefusal({}, 10, 10);
    assert.deepEqual(types(observeUsage(hit.state, 9, { soft: undefined, hard: 10 }, 0, GRACE, 10)), []);
    // That write failed: usage with nothing in flight is 9, which is down.
    assert.deepEqual(types(observeUsage(hit.state, 9, { soft: undefined, hard: 10 }, 0, GRACE, 9)), ['back_below_hard']);
  });

  test('a refusal keeps the soft state, and usage that does not go down keeps the episode open', () => {
    const state: KindState = { soft: { since: 5, graceNotified: false } };
    const hit = observeRefusal(state, 10, 10);
    assert.deepEqual(hit.state.soft, { since: 5, graceNotified: false });
    assert.deepEqual(types(observeUsage(hit.state, 10, LIMITS, 6, GRACE)), []);
  });
});

describe('graceHasExpired', () => {
  const state: KindState = { soft: { since: 0, graceNotified: false } };
  test('only over the soft limit, and only from the end of the grace period on', () => {
    assert.equal(graceHasExpired(state, 9, 8, 999, GRACE), false);
    assert.equal(graceHasExpired(state, 9, 8, 1000, GRACE), true);
    assert.equal(graceHasExpired(state, 8, 8, 5000, GRACE), false);
    assert.equal(graceHasExpired({}, 9, 8, 5000, GRACE), false);
    assert.equal(graceHasExpired(state, 9, undefined, 5000, GRACE), false);
  });
});
