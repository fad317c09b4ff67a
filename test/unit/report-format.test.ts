import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { UsageReport } from '../../src/report/collect.js';
import { alignTable, formatReport, humanBytes, humanDuration } from '../../src/report/format.js';

describe('human units', () => {
  test('bytes in binary units, exact below 1 KiB', () => {
    assert.equal(humanBytes(0), '0 B');
    assert.equal(humanBytes(1023), '1023 B');
    assert.equal(humanBytes(1024), '1.0 KiB');
    assert.equal(humanBytes(1536), '1.5 KiB');
    assert.equal(humanBytes(2 * 1024 ** 3), '2.0 GiB');
    assert.equal(humanBytes(200 * 1024 ** 2), '200 MiB');
  });

  test('durations as the two largest units', () => {
    assert.equal(humanDuration(45), '45s');
    assert.equal(humanDuration(90), '1m30s');
    assert.equal(humanDuration(7200), '2h');
    assert.equal(humanDuration(604_800), '7d');
    assert.equal(humanDuration(6 * 86_400 + 23 * 3600 + 59), '6d23h');
  });
});

test('alignTable: names left, numbers right, two spaces apart', () => {
  assert.deepEqual(alignTable([['Name', 'N'], ['a', '100'], ['long name', '2']], [true, false]), ['Name         N', 'a          100', 'long name    2']);
});

const NONE = { used: 0, soft: null, hard: null, grace: null };

describe('formatReport', () => {
  const report: UsageReport = {
    generated: '2026-11-22T03:00:00.000Z',
    grace_period_seconds: 604_800,
    accounts: [
      {
        account: 'AUTH_a',
        exists: true,
        level: 'L1',
        containers: { used: 2, soft: 8, hard: 10, grace: null },
        objects_used: 12,
        bytes_used: 3 * 1024, objects_limit: null, bytes_limit: null,
        total_objects: { used: 12, soft: null, hard: null, grace: null },
        total_bytes: { used: 3 * 1024, soft: null, hard: null, grace: null },
        hits: 4,
        container_list: [
          {
            name: 'photos',
            objects: { used: 9, soft: 8, hard: 10, grace: { state: 'running', since: 'x', ends: 'y', remaining_seconds: 86_400 + 3600 } },
            bytes: { used: 2048, soft: null, hard: 1024 ** 3, grace: null },
            hits: 3,
          },
          {
            name: 'logs',
            objects: { used: 3, soft: 2, hard: 10, grace: { state: 'expired', since: 'x', ends: 'y', remaining_seconds: 0 } },
            bytes: { used: 1024, soft: null, hard: 1024 ** 3, grace: null },
            hits: 1,
          },
        ],
      },
      { account: 'AUTH_b', exists: true, level: 'default', containers: { used: 0, soft: null, hard: 5, grace: null }, objects_used: 0, bytes_used: 0, objects_limit: null, bytes_limit: null, total_objects: NONE, total_bytes: NONE, hits: 0, container_list: [] },
      { account: 'AUTH_gone', exists: false, level: 'default', containers: { used: 0, soft: null, hard: 5, grace: null }, objects_used: 0, bytes_used: 0, objects_limit: null, bytes_limit: null, total_objects: NONE, total_bytes: NONE, hits: 0, container_list: [] },
    ],
  };

  test('one aligned table per account, with grace state and hits', () => {
    assert.equal(
      formatReport(report),
      [
        'Quota report generated 2026-11-22T03:00:00.000Z; grace period 7d',
        '',
        '*** AUTH_a  level L1  containers 2 (soft 8, hard 10, grace -)  objects 12  bytes 3.0 KiB  hits 4',
        '    Container  Objects  soft  hard  grace        Bytes  soft     hard  grace  Hits',
        '    photos           9     8    10  1d1h left  2.0 KiB     -  1.0 GiB  -         3',
        '    logs             3     2    10  expired    1.0 KiB     -  1.0 GiB  -         1',
        '',
        '*** AUTH_b  level default  containers 0 (soft -, hard 5, grace -)  objects 0  bytes 0 B  hits 0',
        '    (no containers)',
        '',
        '*** AUTH_gone: no such account in Swift (level default)',
        '',
      ].join('\n'),
    );
  });
  test('account-wide limits, when the level has them, stand beside the account\'s totals', () => {
    const text = formatReport({
      generated: '2026-12-06T00:00:00.000Z',
      grace_period_seconds: 60,
      accounts: [{
        account: 'AUTH_w', exists: true, level: 'L1', containers: { used: 1, soft: null, hard: 5, grace: null }, objects_used: 3, bytes_used: 2048, objects_limit: 10, bytes_limit: 10_240,
        total_objects: { used: 3, soft: null, hard: 10, grace: null },
        total_bytes: { used: 2048, soft: 1024, hard: 10_240, grace: { state: 'running', since: 'x', ends: 'y', remaining_seconds: 30 } },
        hits: 0, container_list: [],
      }],
    });
    assert.match(text, /objects 3 \(hard 10\) {2}bytes 2\.0 KiB \(soft 1\.0 KiB, hard 10\.0 KiB, grace 30s left\)/);
  });
});
