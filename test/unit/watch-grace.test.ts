/**
 * Grace periods and refusal counts over time in the quota watch (src/quota/watch.ts), on node:test's mocked
 * Date and timers: a grace period that ends with no request to notice it is reported by the watch's own sweep
 * (a few times per grace period, at most every 30 s), soft limits are enforced from the millisecond the grace
 * period ends, and refusals reach Swift's counter at the hit flush interval. Swift, the notifier and the
 * fallback store are fakes that record what they are asked; the configuration and the metrics are the real ones.
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromText } from '../../src/config/load.js';
import { createMetrics } from '../../src/metrics.js';
import type { EventFields } from '../../src/notify/event.js';
import { QuotaWatch, type QuotaWatchOptions, type Scope } from '../../src/quota/watch.js';

const START = 1_800_000_000_000;

function quotaConfig(grace: string, hitFlush = '10'): QuotaWatchOptions['quota'] {
  const text = [
    ['[quota-proxy]', 'upstream = http://127.0.0.1:8080'],
    ['[filter:quota]', 'use = egg:swift#quota', 'quota = {"container_count": {"default": 5}, "object_count": {"default": 10}, "container_usage": {"default": 1000}}',
      'soft_ratio = 0.8', `grace_period = ${grace}`, `hit_flush_interval = ${hitFlush}`],
    ['[filter:tempauth]', 'use = egg:swift#tempauth', 'user_reseller_reseller = reseller .reseller_admin'],
  ].map((b) => b.join('\n')).join('\n\n');
  return configFromText(`${text}\n`, 'test.conf').quota;
}

const SCOPE: Scope = {
  key: 'c/AUTH_a/box',
  type: 'container',
  account: 'AUTH_a',
  container: 'box',
  level: 'default',
  limits: { object_count: 10, container_usage: 1000 },
  soft: { object_count: 8, container_usage: 800 },
};

interface Fakes {
  readonly events: EventFields[];
  readonly posts: Array<Record<string, string>>;
  readonly options: QuotaWatchOptions;
}

function fakes(quota: QuotaWatchOptions['quota']): Fakes {
  const events: EventFields[] = [];
  const posts: Array<Record<string, string>> = [];
  const swift = {
    head: async () => ({ status: 204, headers: {} }),
    post: async (_path: string, headers: Record<string, string>) => {
      posts.push(headers);
      return { status: 204, headers: {} };
    },
  };
  const notifier = { emit: (fields: EventFields) => void events.push(fields) };
  const fallback = { load: async () => undefined, save: async () => undefined, remove: async () => undefined };
  const log = { warn: () => undefined, info: () => undefined, error: () => undefined, debug: () => undefined };
  return {
    events,
    posts,
    options: {
      quota,
      swift: swift as unknown as QuotaWatchOptions['swift'],
      notifier: notifier as unknown as QuotaWatchOptions['notifier'],
      fallback: fallback as unknown as QuotaWatchOptions['fallback'],
      log: log as unknown as QuotaWatchOptions['log'],
      metrics: createMetrics(),
    },
  };
}

const types = (events: EventFields[]) => events.map((e) => e.type);
const objects = (count: number) => ({ count, bytes: 0 });

let watch: QuotaWatch | undefined;

beforeEach(() => mock.timers.enable({ apis: ['Date', 'setTimeout', 'setInterval'], now: START }));
afterEach(async () => {
  await watch?.close();
  watch = undefined;
  mock.timers.reset();
});

/**
 * Moves the mocked clock `total` ms forward in steps of `step`: timers due within one tick see the clock at the
 * tick's end, so a sweep sees its own time only if a tick ends where it is due.
 */
function advance(total: number, step: number): void {
  for (let left = total; left > 0; left -= step) mock.timers.tick(Math.min(step, left));
}

/** Lets the promises the watch started in the background (its sweep's look, a metadata write) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('a grace period that ends with no request to notice it', () => {
  test('is reported by the sweep at the end of a 60 s grace period (sweeps every 15 s), not a millisecond before', async () => {
    const { events, options } = fakes(quotaConfig('60'));
    watch = new QuotaWatch(options);
    watch.observe(SCOPE, undefined, objects(9));
    assert.deepEqual(types(events), ['soft_limit_exceeded']);
    assert.equal(events[0]!.grace_expires, new Date(START + 60_000).toISOString());
    advance(59_999, 15_000); // the sweeps at 15, 30 and 45 s, each at its time
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded']);
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded', 'grace_expired']);
    mock.timers.tick(60_000);
    await settle();
    assert.equal(events.length, 2, 'reported once');
  });

  test('with a long grace period (1 day) the sweep looks every 30 s: reported within 30 s of the end', async () => {
    const { events, options } = fakes(quotaConfig('1d'));
    watch = new QuotaWatch(options);
    mock.timers.tick(1); // over the soft limit 1 ms after a sweep: the first sweep after the end is 29,999 ms late
    watch.observe(SCOPE, undefined, objects(9));
    advance(29_999, 29_999);
    advance(86_400_000 - 30_000, 30_000); // every sweep of the day, each at its time
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded'], 'the grace period ends 1 ms after the day\'s last sweep');
    mock.timers.tick(29_999);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded'], 'no sweep yet');
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded', 'grace_expired']);
  });

  test('a short grace period (1 s) is looked at every 250 ms', async () => {
    const { events, options } = fakes(quotaConfig('1'));
    watch = new QuotaWatch(options);
    mock.timers.tick(1);
    watch.observe(SCOPE, undefined, objects(9));
    advance(249, 249);
    advance(750, 250); // sweeps at 250, 500, 750 and 1,000 ms, each at its time: the grace period ends at 1,001
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded']);
    mock.timers.tick(249);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded'], 'no sweep between 1,000 and 1,250 ms');
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded', 'grace_expired']);
  });

  test('a reload\'s grace period applies to one already running, and the sweep follows its length', async () => {
    const { events, options } = fakes(quotaConfig('1d')); // swept every 30 s
    watch = new QuotaWatch(options);
    mock.timers.tick(1);
    watch.observe(SCOPE, undefined, objects(9));
    watch.useQuota(quotaConfig('1')); // now 1 s, swept every 250 ms from here: at 251, 501, 751 and 1,001 ms
    advance(999, 250);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded']);
    mock.timers.tick(1);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded', 'grace_expired'], 'at the end of the 1 s, not at the next 30 s sweep');
  });

  test('usage back under the soft limit before the end: nothing expires', async () => {
    const { events, options } = fakes(quotaConfig('60'));
    watch = new QuotaWatch(options);
    watch.observe(SCOPE, undefined, objects(9));
    mock.timers.tick(30_000);
    watch.observe(SCOPE, undefined, objects(8));
    mock.timers.tick(60_000);
    await settle();
    assert.deepEqual(types(events), ['soft_limit_exceeded', 'back_below_soft']);
  });
});

describe('the soft limit enforced once the grace period is over', () => {
  test('expiredSoftLimits names the soft limit from the millisecond the grace period ends, for usage over it', () => {
    const { options } = fakes(quotaConfig('60'));
    watch = new QuotaWatch(options);
    watch.observe(SCOPE, undefined, objects(9));
    mock.timers.tick(59_999);
    assert.deepEqual(watch.expiredSoftLimits(SCOPE, objects(9)), {});
    mock.timers.tick(1);
    assert.deepEqual(watch.expiredSoftLimits(SCOPE, objects(9)), { object_count: 8 });
    assert.deepEqual(watch.expiredSoftLimits(SCOPE, objects(8)), {}, 'usage at the soft limit is within it');
  });

  test('a grace period read back from Swift\'s metadata runs from when it began, not from when it was read', () => {
    const { events, options } = fakes(quotaConfig('60'));
    watch = new QuotaWatch(options);
    const persisted = { soft: { object_count: { since: START - 59_000, graceNotified: false } }, hardHits: {}, hits: 0 };
    watch.observe(SCOPE, persisted, objects(9));
    assert.deepEqual(types(events), []);
    assert.deepEqual(watch.expiredSoftLimits(SCOPE, objects(9)), {});
    mock.timers.tick(1_000);
    assert.deepEqual(watch.expiredSoftLimits(SCOPE, objects(9)), { object_count: 8 });
  });
});

describe('refusal counts', () => {
  test('reach Swift\'s counter at the hit flush interval (10 s), in one write, not before', async () => {
    const { posts, options } = fakes(quotaConfig('60', '10'));
    watch = new QuotaWatch(options);
    const refusal = { kind: 'object_count' as const, limit: 10, used: 10, enforced: 'grace' as const };
    for (let i = 0; i < 3; i++) watch.refused(SCOPE, undefined, refusal, () => ({}));
    mock.timers.tick(9_999);
    await settle();
    assert.deepEqual(posts, []);
    mock.timers.tick(1);
    await settle();
    assert.equal(posts.length, 1);
    assert.equal(posts[0]!['x-container-meta-quota-proxy-hits'], '3');
  });
});
