import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Limits } from '../../src/config/quota-levels.js';
import { decideContainerCreate, decideObjectWrite, isNearLimit } from '../../src/quota/decide.js';

const LIMITS: Limits = { container_count: 5, object_count: 10, container_usage: 100 };
const usage = (count: number, bytes = 0) => ({ count, bytes });

describe('decideContainerCreate', () => {
  test('not exceed: reaching the limit exactly passes (4 + 1 = 5)', () => {
    assert.deepEqual(decideContainerCreate(LIMITS, 'default', usage(4)), { allow: true });
  });

  test('exceed: one past the limit is refused (5 + 1 > 5), with what was checked', () => {
    assert.deepEqual(decideContainerCreate(LIMITS, 'L1', usage(5)), {
      allow: false,
      kind: 'container_count',
      level: 'L1',
      limit: 5,
      used: 5,
      requested: 1,
      enforced: 'hard',
    });
  });

  test('an account already over its limit is refused', () => {
    assert.equal(decideContainerCreate(LIMITS, 'default', usage(9)).allow, false);
  });

  test('bytes of the account do not matter', () => {
    assert.equal(decideContainerCreate(LIMITS, 'default', usage(0, 10 ** 12)).allow, true);
  });

  test('a limit of 0 refuses the first container', () => {
    assert.equal(decideContainerCreate({ container_count: 0 }, 'default', usage(0)).allow, false);
  });

  test('no container_count limit: not enforced', () => {
    assert.equal(decideContainerCreate({ object_count: 1 }, 'default', usage(1_000_000)).allow, true);
  });
});

describe('decideObjectWrite: object_count', () => {
  test('not exceed: 9 + 1 = 10 passes', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(9), usage(1)).allow, true);
  });

  test('exceed: 10 + 1 > 10 is refused', () => {
    assert.deepEqual(decideObjectWrite(LIMITS, 'default', usage(10), usage(1)), {
      allow: false,
      kind: 'object_count',
      level: 'default',
      limit: 10,
      used: 10,
      requested: 1,
      enforced: 'hard',
    });
  });

  test('an overwrite (count 0) at the count limit passes', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(10, 50), usage(0, 10)).allow, true);
  });

  test('an overwrite (count 0) when already over the count limit passes', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(15, 0), usage(0, 1)).allow, true);
  });

  test('the count is checked before the bytes: both exceeded reports object_count', () => {
    const decision = decideObjectWrite(LIMITS, 'default', usage(10, 100), usage(1, 1));
    assert.equal(decision.allow, false);
    assert.equal(!decision.allow && decision.kind, 'object_count');
  });
});

describe('decideObjectWrite: container_usage', () => {
  test('not exceed: 90 + 10 = 100 bytes passes', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(0, 90), usage(1, 10)).allow, true);
  });

  test('exceed: 90 + 11 > 100 bytes is refused', () => {
    assert.deepEqual(decideObjectWrite(LIMITS, 'gold', usage(0, 90), usage(1, 11)), {
      allow: false,
      kind: 'container_usage',
      level: 'gold',
      limit: 100,
      used: 90,
      requested: 11,
      enforced: 'hard',
    });
  });

  test('an overwrite (count 0) that adds bytes past the limit is still refused', () => {
    const decision = decideObjectWrite(LIMITS, 'default', usage(10, 100), usage(0, 1));
    assert.equal(decision.allow, false);
    assert.equal(!decision.allow && decision.kind, 'container_usage');
  });

  test('a shrinking overwrite passes even when the container is over its limit', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(10, 150), usage(0, -10)).allow, true);
  });

  test('a zero-byte write passes on a full container when it adds no object', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(10, 100), usage(0, 0)).allow, true);
  });

  test('a zero-byte new object passes at the byte limit when the count allows it', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(0, 100), usage(1, 0)).allow, true);
  });

  test('a growing write into a container already over the limit is refused', () => {
    assert.equal(decideObjectWrite(LIMITS, 'default', usage(0, 150), usage(0, 1)).allow, false);
  });
});

describe('decideObjectWrite: limits that are not configured', () => {
  test('no object_count limit: the count is not enforced, bytes are', () => {
    const limits: Limits = { container_usage: 100 };
    assert.equal(decideObjectWrite(limits, 'default', usage(10 ** 9, 0), usage(1, 100)).allow, true);
    assert.equal(decideObjectWrite(limits, 'default', usage(10 ** 9, 0), usage(1, 101)).allow, false);
  });

  test('no container_usage limit: bytes are not enforced, the count is', () => {
    const limits: Limits = { object_count: 1 };
    assert.equal(decideObjectWrite(limits, 'default', usage(0, 10 ** 15), usage(1, 10 ** 15)).allow, true);
    assert.equal(decideObjectWrite(limits, 'default', usage(1, 0), usage(1, 0)).allow, false);
  });

  test('no limits at all: everything passes', () => {
    assert.equal(decideObjectWrite({}, 'default', usage(10 ** 9, 10 ** 15), usage(1, 10 ** 15)).allow, true);
  });
});

describe('isNearLimit', () => {
  const limits: Limits = { container_count: 200, object_count: 200, container_usage: 1000 };

  test('at the ratio boundary: projected = limit × ratio is near, one less is not (count)', () => {
    assert.equal(isNearLimit(limits, ['object_count'], usage(189), usage(1), 0.95), true); // 190 = 200 × 0.95
    assert.equal(isNearLimit(limits, ['object_count'], usage(188), usage(1), 0.95), false); // 189
  });

  test('at the ratio boundary for bytes', () => {
    assert.equal(isNearLimit(limits, ['container_usage'], usage(0, 400), usage(1, 100), 0.5), true); // 500 = 1000 × 0.5
    assert.equal(isNearLimit(limits, ['container_usage'], usage(0, 400), usage(1, 99), 0.5), false); // 499
  });

  test('counts are compared for count kinds and bytes for container_usage, not the other way round', () => {
    assert.equal(isNearLimit(limits, ['object_count'], usage(0, 10 ** 9), usage(1, 10 ** 9), 0.95), false);
    assert.equal(isNearLimit(limits, ['container_usage'], usage(10 ** 9, 0), usage(1, 0), 0.95), false);
    assert.equal(isNearLimit(limits, ['container_count'], usage(199, 0), usage(1, 0), 0.95), true);
  });

  test('only the kinds asked about count', () => {
    assert.equal(isNearLimit(limits, ['object_count'], usage(0, 999), usage(0, 1), 0.95), false);
    assert.equal(isNearLimit(limits, ['object_count', 'container_usage'], usage(0, 999), usage(0, 1), 0.95), true);
    assert.equal(isNearLimit(limits, [], usage(10 ** 9, 10 ** 9), usage(1, 1), 0.95), false);
  });

  test('a kind without a limit is never near', () => {
    assert.equal(isNearLimit({}, ['object_count', 'container_usage'], usage(10 ** 9, 10 ** 9), usage(1, 1), 0.95), false);
  });

  test('ratio 1 is near only at the limit itself; ratio 0 always', () => {
    assert.equal(isNearLimit(limits, ['object_count'], usage(199), usage(1), 1), true);
    assert.equal(isNearLimit(limits, ['object_count'], usage(198), usage(1), 1), false);
    assert.equal(isNearLimit(limits, ['object_count'], usage(0), usage(0), 0), true);
  });
});

describe('soft limits past their grace period', () => {
  const expired = { object_count: 8 };

  test('usage over an expired soft limit may not grow, though the hard limit has room', () => {
    assert.deepEqual(decideObjectWrite(LIMITS, 'L1', usage(9), usage(1), expired), {
      allow: false,
      kind: 'object_count',
      level: 'L1',
      limit: 8,
      used: 9,
      requested: 1,
      enforced: 'grace',
    });
  });

  test('a write that does not grow that usage passes (an overwrite at the same count)', () => {
    assert.equal(decideObjectWrite(LIMITS, 'L1', usage(9), usage(0, 5), expired).allow, true);
  });

  test('usage back at or under the soft limit: only the hard limit applies (a new crossing starts a new grace period)', () => {
    assert.equal(decideObjectWrite(LIMITS, 'L1', usage(8), usage(1), expired).allow, true);
    assert.equal(decideObjectWrite(LIMITS, 'L1', usage(7), usage(1), expired).allow, true);
    assert.equal(decideObjectWrite(LIMITS, 'L1', usage(10), usage(1), {}).allow, false);
  });

  test('an expired soft limit of one kind leaves the other kind to its hard limit', () => {
    assert.equal(decideObjectWrite(LIMITS, 'L1', usage(9, 10), usage(0, 50), expired).allow, true);
    const bytes = decideObjectWrite(LIMITS, 'L1', usage(5, 90), usage(1, 1), { container_usage: 80 });
    assert.equal(bytes.allow, false);
    assert.equal(!bytes.allow && bytes.enforced, 'grace');
  });

  test('containers: an account over its expired soft container count may not create more', () => {
    const decision = decideContainerCreate(LIMITS, 'default', usage(4), { container_count: 3 });
    assert.equal(!decision.allow && decision.enforced, 'grace');
    assert.equal(decideContainerCreate(LIMITS, 'default', usage(3), { container_count: 3 }).allow, true);
  });
});
