import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { configFromText, DEFAULT_GRACE_PERIOD, DEFAULT_HIT_FLUSH_INTERVAL } from '../../src/config/load.js';

const FILE = '/etc/sqp/test.conf';
const HEAD = ['[quota-proxy]', 'upstream = http://127.0.0.1:8080', '', '[filter:tempauth]', 'user_reseller_reseller = reseller .reseller_admin', ''];
const QUOTA = 'quota = {"container_count": {"default": 5, "L1": 10}, "object_count": {"default": 100, "L1": 1000}, "container_usage": {"default": 1000}}';

function load(quotaLines: string[], extra: string[] = []) {
  return configFromText([...HEAD, '[filter:quota]', QUOTA, ...quotaLines, '', ...extra, ''].join('\n'), FILE);
}

function fails(fn: () => unknown, line: number | undefined, key: string | undefined, reason: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.file, FILE);
    assert.equal(error.line, line);
    assert.equal(error.key, key);
    assert.match(error.message, reason);
    return true;
  });
}

describe('soft limits', () => {
  test('none by default; the grace period is 7 days, hit counters are written every 30 s', () => {
    const config = load([]);
    assert.deepEqual(config.quota.softLimits.get('default'), {});
    assert.equal(config.quota.gracePeriodSeconds, 7 * 86_400);
    assert.equal(DEFAULT_GRACE_PERIOD, 604_800);
    assert.equal(config.quota.hitFlushIntervalSeconds, DEFAULT_HIT_FLUSH_INTERVAL);
    assert.deepEqual(config.notifiers, []);
  });

  test('soft_ratio gives every level and kind a soft limit of ratio × hard, rounded down', () => {
    const config = load(['soft_ratio = 0.8']);
    assert.deepEqual(config.quota.softLimits.get('default'), { container_count: 4, object_count: 80, container_usage: 800 });
    assert.deepEqual(config.quota.softLimits.get('L1'), { container_count: 8, object_count: 800, container_usage: 800 });
  });

  test('soft_quota gives absolute limits, which win over the ratio where given', () => {
    const config = load(['soft_ratio = 0.5', 'soft_quota = {"object_count": {"L1": 900}, "container_count": {"default": 5}}']);
    assert.deepEqual(config.quota.softLimits.get('L1'), { container_count: 5, object_count: 900, container_usage: 500 });
    assert.deepEqual(config.quota.softLimits.get('default'), { container_count: 5, object_count: 50, container_usage: 500 });
  });

  test('soft_quota alone: kinds and levels it leaves out have no soft limit', () => {
    const config = load(['soft_quota = {"object_count": {"default": 90}}']);
    assert.deepEqual(config.quota.softLimits.get('default'), { object_count: 90 });
    assert.deepEqual(config.quota.softLimits.get('L1'), {});
  });

  test('a soft limit above its hard limit, an unknown level, or bad JSON stop start-up at the soft_quota line', () => {
    const line = HEAD.length + 3;
    fails(() => load(['soft_quota = {"object_count": {"default": 101}}']), line, 'soft_quota', /soft limit 101 of level "default" for object_count is above its hard limit 100/);
    fails(() => load(['soft_quota = {"object_count": {"L9": 1}}']), line, 'soft_quota', /level "L9" of object_count is not a level of quota/);
    fails(() => load(['soft_quota = {"object_count": {"default": -1}}']), line, 'soft_quota', /whole number >= 0/);
    fails(() => load(['soft_quota = {"objects": {"default": 1}}']), line, 'soft_quota', /unknown quota kind "objects"/);
    fails(() => load(['soft_ratio = 1.5']), line, 'soft_ratio', /from 0 to 1/);
  });

  test('grace_period and hit_flush_interval take seconds or s/m/h/d', () => {
    assert.equal(load(['grace_period = 3600']).quota.gracePeriodSeconds, 3600);
    assert.equal(load(['grace_period = 2d']).quota.gracePeriodSeconds, 172_800);
    assert.equal(load(['grace_period = 90m']).quota.gracePeriodSeconds, 5400);
    assert.equal(load(['grace_period = 12h']).quota.gracePeriodSeconds, 43_200);
    assert.equal(load(['hit_flush_interval = 5s']).quota.hitFlushIntervalSeconds, 5);
    fails(() => load(['grace_period = soon']), HEAD.length + 3, 'grace_period', /duration/);
    fails(() => load(['grace_period = 0']), HEAD.length + 3, 'grace_period', /at least 1 s/);
  });
});

describe('[notify:<name>] sections', () => {
  test('stdout, webhook and module providers, any number at once', () => {
    const config = load([], [
      '[notify:log]', 'type = stdout', '',
      '[notify:ops]', 'type = webhook', 'url = http://127.0.0.1:9000/hook', 'bearer_token = t0ken', 'secret = s3cret',
      'queue_dir = queue', 'queue_max_bytes = 1M', 'retry_min = 2', 'retry_max = 1m', 'timeout = 3', '',
      '[notify:mine]', 'type = module', 'module = providers/mine.mjs', 'channel = #quota', '',
    ]);
    assert.deepEqual(config.notifiers.map((n) => [n.name, n.type]), [['log', 'stdout'], ['ops', 'webhook'], ['mine', 'module']]);
    const ops = config.notifiers[1]!;
    assert.ok(ops.type === 'webhook');
    assert.equal(ops.url.href, 'http://127.0.0.1:9000/hook');
    assert.equal(ops.bearerToken, 't0ken');
    assert.equal(ops.secret, 's3cret');
    assert.equal(ops.queueDir, path.resolve('/etc/sqp', 'queue'), 'relative to the config file');
    assert.equal(ops.queueMaxBytes, 1024 ** 2);
    assert.equal(ops.retryMinSeconds, 2);
    assert.equal(ops.retryMaxSeconds, 60);
    assert.equal(ops.timeoutSeconds, 3);
    const mine = config.notifiers[2]!;
    assert.ok(mine.type === 'module');
    assert.equal(mine.modulePath, path.resolve('/etc/sqp', 'providers/mine.mjs'));
    assert.deepEqual(mine.options, { channel: '#quota' });
    assert.equal(mine.place.line, HEAD.length + 20);
  });

  test('mistakes stop start-up naming the section, line and key', () => {
    const at = HEAD.length + 5; // the line after [notify:x]
    fails(() => load([], ['[notify:x]', 'url = http://h/']), at - 1, undefined, /needs type = stdout, webhook or module/);
    fails(() => load([], ['[notify:x]', 'type = pager']), at, 'type', /one of stdout, webhook, module/);
    fails(() => load([], ['[notify:x]', 'type = webhook', 'queue_dir = q']), at - 1, undefined, /needs url/);
    fails(() => load([], ['[notify:x]', 'type = webhook', 'url = ftp://h/', 'queue_dir = q']), at + 1, 'url', /http/);
    fails(() => load([], ['[notify:x]', 'type = webhook', 'url = http://h/']), at - 1, undefined, /needs queue_dir/);
    fails(() => load([], ['[notify:x]', 'type = webhook', 'url = http://h/', 'queue_dir = q', 'secrett = x']), at + 3, 'secrett', /not a webhook setting/);
    fails(() => load([], ['[notify:x]', 'type = webhook', 'url = http://h/', 'queue_dir = q', 'retry_min = 10', 'retry_max = 5']), at + 4, 'retry_max', /at least retry_min/);
    fails(() => load([], ['[notify:x]', 'type = module']), at - 1, undefined, /needs module = /);
  });

  test('two webhooks on one queue_dir stop start-up naming both (the deliverer would send both\'s events to its own url)', () => {
    const at = HEAD.length + 5; // the line after [notify:a]
    const a = ['[notify:a]', 'type = webhook', 'url = http://a/', 'queue_dir = queue', ''];
    // Spelled differently, the same directory once resolved from the config file's.
    const b = ['[notify:b]', 'type = webhook', 'url = http://b/', 'queue_dir = ./queue/', ''];
    fails(() => load([], [...a, ...b]), at + 7, 'queue_dir', /is \/etc\/sqp\/queue, the queue of \[notify:a\] too/);
    assert.throws(() => load([], [...a, ...b]), (error: unknown) => {
      assert.match(String(error), new RegExp(`^ConfigError: /etc/sqp/test.conf:${at + 7}: \\[notify:b\\] queue_dir: .*\\[notify:a\\] queue_dir at /etc/sqp/test.conf:${at + 2}`));
      return true;
    });
    // Different directories, or a webhook beside other kinds of provider: fine.
    load([], [...a, '[notify:b]', 'type = webhook', 'url = http://b/', 'queue_dir = queue-b', '', '[notify:log]', 'type = stdout']);
  });
});
