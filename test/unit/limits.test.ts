import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { containerLimited, effectiveLimits } from '../../src/quota/limits.js';
import { limitValue } from '../../src/swift/quota-metadata.js';
import type { Scope } from '../../src/quota/watch-scope.js';

describe('effective limits: overrides replace, container_quotas tightens', () => {
  const level = { object_count: 100, container_usage: 1_000, account_usage: 50_000 };
  const soft = { object_count: 80, container_usage: 800 };

  test('nothing set: the level\'s own objects', () => {
    const out = effectiveLimits(level, soft, undefined);
    assert.equal(out.limits, level);
    assert.equal(out.soft, soft);
  });

  test('an override replaces the level\'s number, higher or lower; a soft limit keeps its share of the hard one', () => {
    const out = effectiveLimits(level, soft, { object_count: 500, container_usage: 100 });
    assert.deepEqual(out.limits, { object_count: 500, container_usage: 100, account_usage: 50_000 });
    assert.deepEqual(out.soft, { object_count: 400, container_usage: 80 });
  });

  test('the owner\'s numbers apply only where tighter, after the overrides', () => {
    const out = effectiveLimits(level, soft, { object_count: 500 }, { object_count: 200, container_usage: 5_000 });
    assert.deepEqual(out.limits, { object_count: 200, container_usage: 1_000, account_usage: 50_000 });
    assert.deepEqual(out.soft, { object_count: 160, container_usage: 800 });
  });

  test('an owner\'s limit on a kind the level leaves out is a limit', () => {
    assert.deepEqual(effectiveLimits({}, {}, undefined, { object_count: 3 }).limits, { object_count: 3 });
  });

  test('a container scope takes its reading\'s limits; an account scope does not', () => {
    const scope: Scope = { key: 'c/a/c', type: 'container', account: 'a', container: 'c', level: 'default', limits: level, soft };
    assert.equal(containerLimited(scope, {}), scope);
    assert.equal(containerLimited(scope, { ownerLimits: { object_count: 7 } }).limits.object_count, 7);
    const account: Scope = { key: 'a/a', type: 'account', account: 'a', level: 'default', limits: level, soft };
    assert.equal(containerLimited(account, { ownerLimits: { object_count: 7 } }), account);
  });

  test('limit values are read as container_quotas reads them: ASCII digits only', () => {
    assert.equal(limitValue('42'), 42);
    assert.equal(limitValue('0'), 0);
    for (const bad of ['', ' 42', '42 ', '-1', '+1', '4_2', '٤٢', '²', '1e3', '0x10', '99999999999999999999']) assert.equal(limitValue(bad), undefined, bad);
  });
});
