import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { ConfigError } from '../../src/config/errors.js';
import { configFromText, type NotifierConfig } from '../../src/config/load.js';
import { planReload } from '../../src/config/reload.js';
import { createMetrics } from '../../src/metrics.js';
import { Notifier } from '../../src/notify/notifier.js';
import type { EventFields } from '../../src/notify/event.js';

const PROXY = ['[quota-proxy]', 'upstream = http://127.0.0.1:8080'];
const QUOTA = ['[filter:quota]', 'use = egg:swift#quota'];
const LEVELS = 'quota = {"container_count": {"default": 5, "L1": 10}, "object_count": {"default": 100}, "container_usage": {"default": 1000}}';
const TEMPAUTH = ['[filter:tempauth]', 'use = egg:swift#tempauth', 'user_reseller_reseller = reseller .reseller_admin'];
const recording = fileURLToPath(new URL('../fixtures/providers/recording.mjs', import.meta.url));

function load(proxy: string[] = [], quota: string[] = [], extra: string[] = []) {
  return configFromText([[...PROXY, ...proxy], [...QUOTA, LEVELS, ...quota], TEMPAUTH, extra].map((b) => b.join('\n')).join('\n\n') + '\n', 'test.conf');
}

describe('planReload: what a SIGHUP changes', () => {
  test('the same file: nothing applied, nothing waiting for a restart', () => {
    const plan = planReload(load(), load());
    assert.deepEqual([plan.applied, plan.needRestart], [[], []]);
  });

  test('levels, limits, soft limits, grace, modes, notifiers and the log level apply at once', () => {
    const running = load();
    const next = configFromText(
      [
        [...PROXY, 'log_level = debug'],
        [...QUOTA, 'quota = {"container_count": {"default": 2, "L1": 10, "L3": 50}, "object_count": {"default": 100}, "container_usage": {"default": 1000}}',
          'precise_mode = true', 'near_limit_ratio = 0.5', 'fail_mode = open', 'retry_after = 9', 'soft_ratio = 0.5', 'grace_period = 1h'],
        TEMPAUTH,
        ['[notify:log]', 'type = stdout'],
      ].map((b) => b.join('\n')).join('\n\n') + '\n',
      'test.conf',
    );
    const plan = planReload(running, next);
    assert.deepEqual([...plan.applied].sort(), ['[notify:*]', 'fail_mode', 'grace_period', 'log_level', 'near_limit_ratio', 'precise_mode', 'quota', 'retry_after', 'soft_quota / soft_ratio'].sort());
    assert.deepEqual(plan.needRestart, []);
    assert.equal(plan.config.quota.levels.byLevel.get('default')!.container_count, 2);
    assert.ok(plan.config.quota.levels.byLevel.has('L3'));
    assert.equal(plan.config.quota.preciseMode, true);
    assert.equal(plan.config.quota.gracePeriodSeconds, 3600);
    assert.equal(plan.config.logLevel, 'debug');
    assert.equal(plan.config.notifiers.length, 1);
  });

  test('what is built into the running proxy is reported and keeps its running value', () => {
    const running = load();
    const next = load(['bind_port = 9999', 'upstream_timeout = 5', 'ledger = redis://127.0.0.1:6379'], ['cache_timeout = 7', 'cache_max_entries = 10'], ['[notify:log]', 'type = stdout']);
    const plan = planReload(running, { ...next, upstream: new URL('http://127.0.0.2:8080') });
    assert.deepEqual([...plan.needRestart].sort(), ['bind_port', 'cache_max_entries', 'cache_timeout', 'ledger', 'upstream', 'upstream_timeout'].sort());
    assert.deepEqual(plan.applied, ['[notify:*]'], 'the rest of the file still applies');
    assert.equal(plan.config.bindPort, running.bindPort);
    assert.equal(plan.config.upstream.href, running.upstream.href);
    assert.equal(plan.config.upstreamTimeoutSeconds, running.upstreamTimeoutSeconds);
    assert.deepEqual(plan.config.ledger, running.ledger);
    assert.equal(plan.config.quota.cacheTimeoutSeconds, running.quota.cacheTimeoutSeconds);
    assert.equal(plan.config.quota.cacheMaxEntries, running.quota.cacheMaxEntries);
  });

  test('a section moved in the file (other line numbers) is no change', () => {
    const running = load([], [], ['[notify:mine]', 'type = module', `module = ${recording}`]);
    const next = load(['', '', ''], [], ['', '[notify:mine]', 'type = module', `module = ${recording}`]);
    assert.notEqual((running.notifiers[0] as { place: { line: number } }).place.line, (next.notifiers[0] as { place: { line: number } }).place.line);
    assert.deepEqual(planReload(running, next).applied, []);
  });
});

describe('Notifier.reload', () => {
  const noop = () => {};
  const silent = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop, child: () => silent } as unknown as FastifyBaseLogger;
  const fields = (usage: number): EventFields => ({
    type: 'soft_limit_exceeded', account: 'AUTH_a', container: 'c', kind: 'object_count', level: 'default',
    limit: 8, soft_limit: 8, hard_limit: 10, usage, grace_expires: null, caller: null, request: null,
  });
  const moduleProvider = (name: string): NotifierConfig => ({ name, type: 'module', timeoutSeconds: 1, modulePath: recording, place: { file: 'f', line: 1, section: `notify:${name}`, key: 'module' }, options: {} });

  test('unchanged providers keep running, new ones start, removed ones stop; events emitted during the swap are delivered', async () => {
    const { events } = (await import(recording)) as { events: Array<{ usage: number }> };
    events.length = 0;
    const metrics = createMetrics();
    const notifier = await Notifier.create([moduleProvider('a'), moduleProvider('b')], metrics, silent);
    notifier.emit(fields(1));
    const swapping = notifier.reload([moduleProvider('a'), moduleProvider('c')]);
    notifier.emit(fields(2)); // while the swap is under way
    await swapping;
    notifier.emit(fields(3));
    assert.deepEqual(notifier.depths().map((d) => d.provider), ['a', 'c']);
    await notifier.close();
    // 1 went to a and b; 2 and 3 to a and c (none lost, none sent to b after it stopped).
    assert.deepEqual(events.map((e) => e.usage).sort(), [1, 1, 2, 2, 3, 3]);
  });

  test('a new provider that cannot start rejects the reload and leaves the running ones as they were', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sqp-reload-'));
    try {
      const metrics = createMetrics();
      const notifier = await Notifier.create([moduleProvider('a')], metrics, silent);
      const broken: NotifierConfig = { ...moduleProvider('bad'), modulePath: path.join(dir, 'missing.mjs') } as NotifierConfig;
      await assert.rejects(notifier.reload([broken]), ConfigError);
      assert.deepEqual(notifier.depths().map((d) => d.provider), ['a']);
      await notifier.close();
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
