import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countAccount, statesOf } from '../../src/report/census.js';
import type { AccountReport } from '../../src/report/collect.js';

const measure = (used: number, soft: number | null, hard: number | null, grace: 'running' | 'expired' | null = null) => ({
  used, soft, hard, grace: grace === null ? null : { state: grace, since: '', ends: '', remaining_seconds: 0 },
});

describe('census: states and counts', () => {
  test('a measure\'s states: over its soft limit in grace or past it, at or over its hard limit, or none', () => {
    assert.deepEqual(statesOf(measure(5, 4, 10, 'running')), ['over_soft']);
    assert.deepEqual(statesOf(measure(10, 4, 10, 'expired')), ['grace_expired', 'at_hard']);
    assert.deepEqual(statesOf(measure(9, null, 10)), []);
    assert.deepEqual(statesOf(measure(10, null, null)), []);
  });

  test('an account and its containers, by level, kind and state; an account Swift lacks counts nothing', () => {
    const account: AccountReport = {
      account: 'AUTH_x', exists: true, level: 'L1', containers: measure(3, null, 3), objects_used: 7, bytes_used: 100, objects_limit: 10, bytes_limit: 100,
      total_objects: measure(7, 5, 10, 'running'), total_bytes: measure(100, null, 100), hits: 0,
      container_list: [
        { name: 'a', objects: measure(5, null, 5), bytes: measure(10, 8, 20, 'running'), hits: 0 },
        { name: 'b', objects: measure(2, null, 5), bytes: measure(90, null, 100), hits: 0 },
      ],
    };
    const counts = new Map<string, number>();
    countAccount(account, counts);
    countAccount({ ...account, exists: false }, counts);
    assert.deepEqual(Object.fromEntries([...counts].map(([key, value]) => [key.replaceAll('\0', ' '), value])), {
      'L1 container_count at_hard': 1,
      'L1 account_object_count over_soft': 1,
      'L1 account_usage at_hard': 1,
      'L1 object_count at_hard': 1,
      'L1 container_usage over_soft': 1,
    });
  });
});
