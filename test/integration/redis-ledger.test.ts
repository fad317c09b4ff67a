/**
 * The Redis ledger against a real Redis: the contract every ledger keeps, and what only a shared ledger has —
 * leases of a proxy that died, Redis losing its data, Redis away.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { fakeSwift, ledgerContract } from '../helpers/ledger-contract.js';
import { until } from '../helpers/raw-http.js';
import { redisUrl } from '../helpers/swift-env.js';
import { RedisLedger, type RedisLedgerOptions } from '../../src/quota/ledger/redis.js';
import { LedgerUnavailableError, type SnapshotData, type UsageLedger } from '../../src/quota/ledger/ledger.js';
import { freePort } from '../helpers/ports.js';

const KEY = 'c/AUTH_redis/c';
const NONE = { count: 0, bytes: 0 };
const countLimit = (limit: number) => ({ count: { limit }, bytes: {} });

async function redisLedger(prefix: string, read: (key: string) => Promise<SnapshotData>, options: Partial<RedisLedgerOptions> = {}): Promise<RedisLedger> {
  const ledger = new RedisLedger({ url: await redisUrl(), prefix, leaseSeconds: 30, ttlMs: 60_000, maxEntries: 1000, read, ...options });
  await ledger.connect();
  return ledger;
}

ledgerContract('redis', async () => {
  const prefix = `contract-${randomBytes(4).toString('hex')}:`;
  const made: UsageLedger[] = [];
  return {
    ledgers: async (n, swift, ttlMs = 60_000) => {
      for (let i = 0; i < n; i++) made.push(await redisLedger(prefix, (key) => swift.read(key), { ttlMs }));
      return made;
    },
    close: async () => {
      await Promise.all(made.map((ledger) => ledger.close()));
    },
  };
});

describe('redis ledger: what only a shared ledger has', () => {
  test('a proxy that dies mid-write: its reservation is dropped within one lease, and the others go on', async () => {
    const prefix = `lease-${randomBytes(4).toString('hex')}:`;
    const swift = fakeSwift();
    swift.stored.set(KEY, { count: 9, bytes: 0 });
    const dying = await redisLedger(prefix, (key) => swift.read(key), { leaseSeconds: 1 });
    const survivor = await redisLedger(prefix, (key) => swift.read(key), { leaseSeconds: 1 });
    try {
      const held = await dying.reserve({ key: KEY, snapshot: await dying.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'x', rules: countLimit(10) });
      assert.equal(held.ok, true);
      // Alive, it renews its lease: still held after two leases.
      await new Promise((resolve) => setTimeout(resolve, 2_200));
      const refused = await survivor.reserve({ key: KEY, snapshot: await survivor.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'y', rules: countLimit(10) });
      assert.equal(refused.ok, false, 'a live proxy keeps its reservation past its lease');
      // Dead (no renewals, no release): gone within one lease.
      await dying.close();
      const started = Date.now();
      await until(async () => (await survivor.reserve({ key: KEY, snapshot: await survivor.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'y', rules: countLimit(10) })).ok, 'the dead proxy\'s reservation gone', 3_000);
      assert.ok(Date.now() - started <= 1_500, `freed after ${Date.now() - started} ms`);
    } finally {
      await survivor.close();
    }
  });

  test('Redis loses its data: no write is under-counted, reservations in flight are put back, and the ledger starts again from Swift', async () => {
    const prefix = `loss-${randomBytes(4).toString('hex')}:`;
    const swift = fakeSwift();
    swift.stored.set(KEY, { count: 5, bytes: 0 });
    const a = await redisLedger(prefix, (key) => swift.read(key), { leaseSeconds: 3 });
    const b = await redisLedger(prefix, (key) => swift.read(key), { leaseSeconds: 3 });
    const admin = new Redis(await redisUrl());
    try {
      const oldSnapshot = await b.read(KEY);
      const inFlight = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 2, bytes: 0 }, credit: NONE, target: 'held', rules: countLimit(10) });
      assert.ok(inFlight.ok);
      const done = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'done', rules: countLimit(10) });
      assert.ok(done.ok);
      swift.stored.set(KEY, { count: 6, bytes: 0 });
      a.commit(done.reservation);
      await until(async () => (await b.project(KEY, oldSnapshot)).used.count === 8, 'the ledger caught up');

      // Every key of this ledger goes, as with a Redis restarted empty.
      const keys = await admin.keys(`${prefix}*`);
      await admin.del(...keys);

      // b still holds a reading from before, and b's cache does: neither may let it pass 10 with a's 2 in flight.
      const results = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const snapshot = await b.read(KEY);
          return b.reserve({ key: KEY, snapshot, add: { count: 1, bytes: 0 }, credit: NONE, target: `n${i}`, rules: countLimit(10) });
        }),
      );
      // Swift has 6: readings from before are not trusted, so at most 4 more (a's 2 in flight may be past the
      // limit once: they are put back only when a next renews).
      const admitted = results.filter((r) => r.ok).length;
      assert.ok(admitted <= 4, `admitted ${admitted}`);
      await until(async () => (await b.project(KEY, await b.read(KEY))).used.count === 6 + admitted + 2, 'the ledger caught up');
      const more = await b.reserve({ key: KEY, snapshot: await b.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'late', rules: countLimit(10) });
      assert.equal(more.ok, false, 'with the reservations back, the limit holds again');
    } finally {
      admin.disconnect();
      await a.close();
      await b.close();
    }
  });

  test('Redis away: checks fail with LedgerUnavailableError (fail_mode decides), they do not wait', async () => {
    const port = await freePort();
    const ledger = new RedisLedger({ url: `redis://127.0.0.1:${port}`, prefix: 'away:', leaseSeconds: 30, ttlMs: 60_000, maxEntries: 10, read: async () => ({ exists: true, count: 0, bytes: 0 }) });
    try {
      await assert.rejects(ledger.connect());
      const started = Date.now();
      await assert.rejects(ledger.read(KEY), LedgerUnavailableError);
      assert.ok(Date.now() - started < 3_000);
      assert.equal(await ledger.ready(), false);
    } finally {
      await ledger.close();
    }
  });
});
