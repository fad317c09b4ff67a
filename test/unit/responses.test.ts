import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  HEADER_QUOTA_KIND,
  HEADER_QUOTA_LEVEL,
  HEADER_QUOTA_LIMIT,
  HEADER_QUOTA_ENFORCED,
  quotaHeaders,
  rejectionResponse,
} from '../../src/quota/responses.js';

describe('rejectionResponse', () => {
  test('too many containers: 403 with Swift\'s "Reached container limit" wording', () => {
    const response = rejectionResponse({ kind: 'container_count', level: 'L1', limit: 10, used: 10, requested: 1, enforced: 'hard' });
    assert.equal(response.status, 403);
    assert.ok(response.body.startsWith('Reached container limit of 10.\n'), response.body);
    assert.match(response.body, /Quota container_count of level "L1": at most 10 containers in this account, 10 used\./);
    assert.ok(response.body.endsWith('\n'));
    assert.deepEqual(response.headers, {
      [HEADER_QUOTA_KIND]: 'container_count',
      [HEADER_QUOTA_LEVEL]: 'L1',
      [HEADER_QUOTA_LIMIT]: '10',
      [HEADER_QUOTA_ENFORCED]: 'hard',
    });
  });

  test('too many objects: 413 with Swift\'s "Upload exceeds quota." wording', () => {
    const response = rejectionResponse({ kind: 'object_count', level: 'default', limit: 200000, used: 200000, requested: 1, enforced: 'hard' });
    assert.equal(response.status, 413);
    assert.ok(response.body.startsWith('Upload exceeds quota.\n'), response.body);
    assert.match(response.body, /at most 200000 objects in this container, 200000 used\./);
    assert.equal(response.headers[HEADER_QUOTA_KIND], 'object_count');
    assert.equal(response.headers[HEADER_QUOTA_LIMIT], '200000');
  });

  test('too many bytes: 413, naming bytes', () => {
    const response = rejectionResponse({ kind: 'container_usage', level: 'L2', limit: 2147483648, used: 2147483000, requested: 1000, enforced: 'hard' });
    assert.equal(response.status, 413);
    assert.ok(response.body.startsWith('Upload exceeds quota.\n'));
    assert.match(response.body, /Quota container_usage of level "L2": at most 2147483648 bytes in this container, 2147483000 used\./);
    assert.equal(response.headers[HEADER_QUOTA_LEVEL], 'L2');
  });

  test('a soft limit enforced after its grace period: same status, the soft limit named, and why', () => {
    const response = rejectionResponse({ kind: 'object_count', level: 'L1', limit: 8, used: 9, requested: 1, enforced: 'grace' });
    assert.equal(response.status, 413);
    assert.ok(response.body.startsWith('Upload exceeds quota.\n'));
    assert.match(response.body, /stayed over the soft limit of 8 objects in this container past its grace period, 9 used; it may not grow until it is back at or under 8\./);
    assert.equal(response.headers[HEADER_QUOTA_LIMIT], '8');
    assert.equal(response.headers[HEADER_QUOTA_ENFORCED], 'soft-grace-expired');
    const containers = rejectionResponse({ kind: 'container_count', level: 'L1', limit: 3, used: 4, requested: 1, enforced: 'grace' });
    assert.equal(containers.status, 403);
    assert.ok(containers.body.startsWith('Reached container limit of 3.\n'));
  });

  test('a limit of one storage policy: named as kind:policy, the policy in its own header', () => {
    const response = rejectionResponse({ kind: 'account_usage', level: 'L1', limit: 6000, used: 5500, requested: 1000, enforced: 'hard', policy: 'gold' });
    assert.equal(response.status, 413);
    assert.match(response.body, /Quota account_usage:gold of level "L1": at most 6000 bytes in this account's containers of storage policy gold, 5500 used\./);
    assert.equal(response.headers[HEADER_QUOTA_KIND], 'account_usage');
    assert.equal(response.headers['x-quota-policy'], 'gold');
    assert.equal(rejectionResponse({ kind: 'account_usage', level: 'L1', limit: 1, used: 1, requested: 1, enforced: 'hard' }).headers['x-quota-policy'], undefined);
  });

  test('header names are lower-case and stable', () => {
    assert.deepEqual([HEADER_QUOTA_KIND, HEADER_QUOTA_LEVEL, HEADER_QUOTA_LIMIT], ['x-quota-exceeded', 'x-quota-level', 'x-quota-limit']);
  });
});

describe('quotaHeaders', () => {
  const limits = { container_count: 5, object_count: 100, container_usage: 1024 };

  test('an account response carries the level and all three limits', () => {
    assert.deepEqual(quotaHeaders({ level: 'L1', limits, soft: {}, container: false }), {
      'x-account-quota-level': 'L1',
      'x-account-quota-container-count': '5',
      'x-account-quota-container-object-count': '100',
      'x-account-quota-container-bytes': '1024',
    });
  });

  test('a container response carries the level and the per-container limits only', () => {
    assert.deepEqual(quotaHeaders({ level: 'default', limits, soft: {}, container: true }), {
      'x-container-quota-level': 'default',
      'x-container-quota-object-count': '100',
      'x-container-quota-bytes': '1024',
    });
  });

  test('soft limits are shown next to the hard ones', () => {
    const soft = { container_count: 4, object_count: 80, container_usage: 900 };
    assert.deepEqual(quotaHeaders({ level: 'L1', limits, soft, container: true }), {
      'x-container-quota-level': 'L1',
      'x-container-quota-object-count': '100',
      'x-container-quota-bytes': '1024',
      'x-container-quota-soft-object-count': '80',
      'x-container-quota-soft-bytes': '900',
    });
    assert.equal(quotaHeaders({ level: 'L1', limits, soft, container: false })['x-account-quota-soft-container-count'], '4');
  });

  test('an account response carries the per-policy limits under account_quotas\' -Policy-<name> names', () => {
    const policies = new Map([['gold', { account_usage: 6000 }], ['silver', { account_object_count: 9 }]]);
    const headers = quotaHeaders({ level: 'L1', limits: { account_usage: 15000 }, soft: {}, container: false, policies });
    assert.deepEqual(headers, {
      'x-account-quota-level': 'L1',
      'x-account-quota-bytes': '15000',
      'x-account-quota-bytes-policy-gold': '6000',
      'x-account-quota-count-policy-silver': '9',
    });
    assert.equal(quotaHeaders({ level: 'L1', limits: {}, soft: {}, container: true, policies })['x-account-quota-bytes-policy-gold'], undefined);
  });

  test('limits that are not configured are left out; a limit of 0 is not', () => {
    assert.deepEqual(quotaHeaders({ level: 'default', limits: { object_count: 0 }, soft: {}, container: false }), {
      'x-account-quota-level': 'default',
      'x-account-quota-container-object-count': '0',
    });
    assert.deepEqual(quotaHeaders({ level: 'default', limits: {}, soft: {}, container: true }), { 'x-container-quota-level': 'default' });
  });
});
