/**
 * The pins shared through the Redis ledger (src/quota/shared-pins.ts, ledger/redis-pins.ts) against the run's
 * Redis: two "processes" are two ledgers on one prefix, each with its own pin board. What one pins, the other
 * waits for; what one has on its way to Swift, the other's manifest waits for; a versioning change waits for the
 * other's writes and refuses writes decided before it; a process that dies blocks nobody past its lease, and a
 * wait is bounded.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fakeSwift } from '../helpers/ledger-contract.js';
import { redisUrl } from '../helpers/swift-env.js';
import { freePort } from '../helpers/ports.js';
import { RedisLedger, type RedisLedgerOptions } from '../../src/quota/ledger/redis.js';
import { PinWaitExpired, VersioningMoved } from '../../src/quota/ledger/redis-pins.js';
import { LedgerUnavailableError, containerKey } from '../../src/quota/ledger/ledger.js';
import { ObjectPins } from '../../src/quota/pins.js';
import { SharedPins } from '../../src/quota/shared-pins.js';

const ACCOUNT = 'AUTH_pins';
const KEY = containerKey(ACCOUNT, 'c');
const OBJECT = ObjectPins.key(ACCOUNT, 'c', 'o');
const NONE = { count: 0, bytes: 0 };
const ROOMY = { count: { limit: 1000 }, bytes: {} };

interface Process {
  ledger: RedisLedger;
  pins: SharedPins;
}

async function processes(n: number, options: Partial<RedisLedgerOptions> & { waitMs?: number } = {}): Promise<{ all: Process[]; close: () => Promise<void> }> {
  const prefix = `pins-${randomBytes(4).toString('hex')}:`;
  const swift = fakeSwift();
  const all: Process[] = [];
  for (let i = 0; i < n; i++) {
    const ledger = new RedisLedger({ url: await redisUrl(), prefix, leaseSeconds: 30, ttlMs: 60_000, maxEntries: 100, read: (key) => swift.read(key), ...options });
    await ledger.connect();
    all.push({ ledger, pins: new SharedPins(new ObjectPins(), ledger.pinStore(), options.waitMs ?? 10_000) });
  }
  return { all, close: async () => void (await Promise.all(all.map((p) => p.ledger.close()))) };
}

/** Tells whether a promise has settled, without waiting for it. */
function watched<T>(promise: Promise<T>): { promise: Promise<T>; done: () => boolean } {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  return { promise, done: () => settled };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function reserve(process: Process, target = 'o') {
  const reserved = await process.ledger.reserve({ key: KEY, snapshot: await process.ledger.read(KEY), add: { count: 1, bytes: 1 }, credit: NONE, target, rules: ROOMY });
  assert.equal(reserved.ok, true);
  return reserved.ok ? reserved.reservation : undefined!;
}

describe('pins shared through the Redis ledger', () => {
  test('an object pinned by one process: the other\'s write (a mark, or a reservation) waits until it is let go; its own do not', async () => {
    const { all: [one, two], close } = await processes(2);
    try {
      const owner = {};
      const unpin = await one!.pins.pin([OBJECT], [], owner);
      // Its own process orders its own requests (pins.ts): the pin's own request goes on.
      (await one!.pins.enter(OBJECT, owner, false))();
      const mark = watched(Promise.resolve(two!.pins.enter(OBJECT, {}, false)));
      const reservation = watched(reserve(two!));
      const elsewhere = watched(reserve(two!, 'other'));
      await pause(300);
      assert.deepEqual([mark.done(), reservation.done(), elsewhere.done()], [false, false, true]);
      unpin();
      (await mark.promise)();
      two!.ledger.release(await reservation.promise);
    } finally {
      await close();
    }
  });

  test('a prefix pin (an S3 upload\'s parts) holds every object under it, for the other process', async () => {
    const { all: [one, two], close } = await processes(2);
    try {
      const unpin = await one!.pins.pin([], [ObjectPins.key(ACCOUNT, 'c', 'k/upload/')], {});
      const part = watched(Promise.resolve(two!.pins.enter(ObjectPins.key(ACCOUNT, 'c', 'k/upload/3'), {}, false)));
      const outside = watched(Promise.resolve(two!.pins.enter(ObjectPins.key(ACCOUNT, 'c', 'k/other'), {}, false)));
      await pause(300);
      assert.deepEqual([part.done(), outside.done()], [false, true]);
      unpin();
      await part.promise;
    } finally {
      await close();
    }
  });

  test('drained: a manifest waits for the other process\'s writes to its segment on their way (reservations and marks)', async () => {
    const { all: [one, two], close } = await processes(2);
    try {
      const reservation = await reserve(two!);
      const leave = await two!.pins.enter(OBJECT, {}, false);
      const first = watched(one!.pins.drained([OBJECT]));
      await pause(200);
      assert.equal(first.done(), false, 'waits for the reservation and the mark');
      two!.ledger.commit(reservation);
      await pause(200);
      assert.equal(first.done(), false, 'waits for the mark');
      leave();
      await first.promise;
      // Its own process's writes are waited for in-process (pins.ts), not in Redis.
      const own = await reserve(one!);
      await one!.pins.drained([OBJECT]);
      one!.ledger.release(own);
    } finally {
      await close();
    }
  });

  test('turns: writes of one name through two processes take turns', async () => {
    const { all: [one, two], close } = await processes(2);
    try {
      const first = await one!.pins.exclusive(OBJECT, {});
      const second = watched(two!.pins.exclusive(OBJECT, {}));
      await pause(300);
      assert.equal(second.done(), false);
      first();
      (await second.promise)();
    } finally {
      await close();
    }
  });

  test('a versioning change waits for the other process\'s writes into the container; writes decided before it are refused', async () => {
    const { all: [one, two], close } = await processes(2);
    try {
      const before = await two!.ledger.read(KEY);
      const inFlight = await reserve(two!);
      // One kept as a version (object_versioning) frees nothing: the change need not wait for it.
      const kept = await two!.ledger.reserve({ key: KEY, snapshot: before, add: { count: 1, bytes: 1 }, credit: NONE, target: 'v', keepsVersions: true, rules: ROOMY });
      assert.equal(kept.ok, true);
      const change = watched(one!.pins.versioningChange(ACCOUNT, 'c'));
      await pause(300);
      assert.equal(change.done(), false, 'waits for the write on its way');
      // While it is under way, a write deciding on the versioning is refused (and reads it again next time).
      await assert.rejects(two!.ledger.reserve({ key: KEY, snapshot: before, add: { count: 1, bytes: 1 }, credit: NONE, target: 'p', rules: ROOMY }), VersioningMoved);
      two!.ledger.commit(inFlight);
      const end = await change.promise;
      end();
      await pause(50);
      // Decided on a reading sent before the change ended: refused; on one sent after: reserved.
      await assert.rejects(two!.ledger.reserve({ key: KEY, snapshot: before, add: { count: 1, bytes: 1 }, credit: NONE, target: 'p', rules: ROOMY, versioningRead: before }), VersioningMoved);
      const fresh = await two!.ledger.read(KEY, two!.ledger.now() + 1);
      assert.ok(fresh.seq > before.seq);
      const after = await two!.ledger.reserve({ key: KEY, snapshot: fresh, add: { count: 1, bytes: 1 }, credit: NONE, target: 'p', rules: ROOMY });
      assert.equal(after.ok, true);
    } finally {
      await close();
    }
  });

  test('a process that dies holding a pin or a versioning change blocks nobody past its lease; a live one holds past it', async () => {
    const { all: [dying, survivor], close } = await processes(2, { leaseSeconds: 1 });
    try {
      await dying!.pins.pin([OBJECT], [], {});
      await dying!.pins.versioningChange(ACCOUNT, 'c');
      await pause(2_200);
      const blocked = watched(Promise.resolve(survivor!.pins.enter(OBJECT, {}, false)));
      await assert.rejects(reserve(survivor!, 'x'), VersioningMoved, 'a live change holds past its lease');
      await pause(200);
      assert.equal(blocked.done(), false, 'a live process keeps its pin past its lease');
      await dying!.ledger.close(); // no renewals, no releases
      const started = Date.now();
      await blocked.promise;
      assert.ok(Date.now() - started <= 1_500, `let go after ${Date.now() - started} ms`);
      await pause(300);
      // The change ended with its lease: a write decided on a reading sent after that is reserved.
      await assert.rejects(reserve(survivor!, 'y'), VersioningMoved);
      await reserve(survivor!, 'z');
    } finally {
      await survivor!.ledger.close();
      await close().catch(() => undefined);
    }
  });

  test('a wait is bounded: past it the write is refused (503, Retry-After: 1), whatever holds the pin', async () => {
    const { all: [one, two], close } = await processes(2, { waitMs: 300, pinWaitMs: 300 });
    try {
      const unpin = await one!.pins.pin([OBJECT], [], {});
      const started = Date.now();
      await assert.rejects(Promise.resolve(two!.pins.enter(OBJECT, {}, false)), PinWaitExpired);
      await assert.rejects(reserve(two!), PinWaitExpired);
      assert.ok(Date.now() - started < 1_500, `${Date.now() - started} ms`);
      unpin();
    } finally {
      await close();
    }
  });

  test('Redis away: taking a pin fails as a check does (LedgerUnavailableError: fail_mode decides)', async () => {
    const ledger = new RedisLedger({ url: `redis://127.0.0.1:${await freePort()}`, prefix: 'away:', leaseSeconds: 30, ttlMs: 1000, maxEntries: 10, read: fakeSwift().read, commandTimeoutMs: 300 });
    await ledger.connect().catch(() => undefined);
    const pins = new SharedPins(new ObjectPins(), ledger.pinStore(), 1_000);
    try {
      await assert.rejects(Promise.resolve(pins.pin([OBJECT], [], {})), LedgerUnavailableError);
      await assert.rejects(Promise.resolve(pins.enter(OBJECT, {}, false)), LedgerUnavailableError);
      await assert.rejects(pins.versioningChange(ACCOUNT, 'c'), LedgerUnavailableError);
      // Nothing stays held in this process either.
      assert.equal(pins.size, 0);
    } finally {
      await ledger.close();
    }
  });
});
