/**
 * The usage ledger's contract, run against every implementation (test/unit/ledger-contract.test.ts for the
 * memory ledger, test/integration/redis-ledger.test.ts for Redis). Swift is a counter the test moves as Swift
 * would store; `ledgers(n)` gives the ledgers of n proxies sharing one store (for the memory ledger, one
 * process: the same ledger n times).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Rules, SnapshotData, UsageLedger } from '../../src/quota/ledger/ledger.js';
// Settles are sent without waiting in a shared ledger: what they change is waited for.
import { until } from './raw-http.js';

export interface FakeSwift {
  /** What Swift stores now, per key; what a usage read answers. */
  readonly stored: Map<string, { count: number; bytes: number }>;
  read(key: string): Promise<SnapshotData>;
  reads: number;
}

export function fakeSwift(): FakeSwift {
  const swift: FakeSwift = {
    stored: new Map(),
    reads: 0,
    read: async (key) => {
      swift.reads++;
      const usage = swift.stored.get(key);
      return usage ? { exists: true, ...usage } : { exists: false, count: 0, bytes: 0 };
    },
  };
  return swift;
}

export interface LedgerFactory {
  /** n ledgers sharing one store, reading usage from `swift`, caching readings `ttlMs`. */
  ledgers(n: number, swift: FakeSwift, ttlMs?: number): Promise<UsageLedger[]>;
  close(): Promise<void>;
}

const KEY = 'c/AUTH_contract/c';
const NONE = { count: 0, bytes: 0 };
const countLimit = (limit: number): Rules => ({ count: { limit }, bytes: {} });
const bytesLimit = (limit: number): Rules => ({ count: {}, bytes: { limit } });

/** Swift stored a write (before it answers). */
function store(swift: FakeSwift, key: string, add: { count: number; bytes: number }): void {
  const now = swift.stored.get(key) ?? { count: 0, bytes: 0 };
  swift.stored.set(key, { count: now.count + add.count, bytes: now.bytes + add.bytes });
}

export function ledgerContract(name: string, factory: () => Promise<LedgerFactory>): void {
  describe(`usage ledger contract: ${name}`, () => {
    async function setup(n = 1, ttlMs = 60_000) {
      const made = await factory();
      const swift = fakeSwift();
      const ledgers = await made.ledgers(n, swift, ttlMs);
      return { swift, ledgers, ledger: ledgers[0]!, close: () => made.close() };
    }

    test('a write that fits is reserved and counted in the projection; one past the limit is refused with what it was checked against', async () => {
      const { swift, ledger, close } = await setup();
      try {
        swift.stored.set(KEY, { count: 8, bytes: 80 });
        const snapshot = await ledger.read(KEY);
        const first = await ledger.reserve({ key: KEY, snapshot, add: { count: 2, bytes: 20 }, credit: NONE, target: 'a', rules: countLimit(10) });
        assert.equal(first.ok, true);
        assert.deepEqual((await ledger.project(KEY, snapshot)).used, { count: 10, bytes: 100 });
        const second = await ledger.reserve({ key: KEY, snapshot, add: { count: 1, bytes: 1 }, credit: NONE, target: 'b', rules: countLimit(10) });
        assert.equal(second.ok, false);
        assert.deepEqual(!second.ok && second.projection.used, { count: 10, bytes: 100 });
        assert.equal(ledger.openReservations, 1);
      } finally {
        await close();
      }
    });

    test('equal passes, and a soft limit past its grace refuses growth only once usage is over it', async () => {
      const { swift, ledger, close } = await setup();
      try {
        swift.stored.set(KEY, { count: 5, bytes: 0 });
        const snapshot = await ledger.read(KEY);
        const soft = { count: { soft: 5, limit: 100 }, bytes: {} };
        assert.equal((await ledger.reserve({ key: KEY, snapshot, add: { count: 1, bytes: 0 }, credit: NONE, target: 'x', rules: soft })).ok, true, 'at the soft limit: may grow');
        assert.equal((await ledger.reserve({ key: KEY, snapshot, add: { count: 1, bytes: 0 }, credit: NONE, target: 'y', rules: soft })).ok, false, 'over it: may not');
        assert.equal((await ledger.reserve({ key: KEY, snapshot, add: { count: 0, bytes: 10 }, credit: NONE, target: 'z', rules: soft })).ok, true, 'adds no object');
      } finally {
        await close();
      }
    });

    test('60 concurrent reservations spread over the proxies against object_count 10: exactly 10', async () => {
      const { swift, ledgers, close } = await setup(3);
      try {
        swift.stored.set(KEY, { count: 0, bytes: 0 });
        const results = await Promise.all(
          Array.from({ length: 60 }, async (_, i) => {
            const ledger = ledgers[i % ledgers.length]!;
            const snapshot = await ledger.read(KEY);
            return ledger.reserve({ key: KEY, snapshot, add: { count: 1, bytes: 1 }, credit: NONE, target: `o${i}`, rules: countLimit(10) });
          }),
        );
        assert.equal(results.filter((r) => r.ok).length, 10);
      } finally {
        await close();
      }
    });

    test('writes of one target replace each other: a second write of the same object needs no second room', async () => {
      const { swift, ledgers, close } = await setup(2);
      try {
        swift.stored.set(KEY, { count: 9, bytes: 0 });
        const [a, b] = ledgers as [UsageLedger, UsageLedger];
        const first = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'same', rules: countLimit(10) });
        assert.equal(first.ok, true);
        const view = await b.project(KEY, await b.read(KEY), 'same');
        assert.deepEqual(view.held, { count: 1, bytes: 0 });
        const second = await b.reserve({ key: KEY, snapshot: await b.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'same', rules: countLimit(10) });
        assert.equal(second.ok, true);
        const other = await b.reserve({ key: KEY, snapshot: await b.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'other', rules: countLimit(10) });
        assert.equal(other.ok, false);
      } finally {
        await close();
      }
    });

    test('writes Swift keeps as versions share their target\'s count, never bytes: not with each other, not with replacing writes', async () => {
      const { swift, ledgers, close } = await setup(2);
      try {
        swift.stored.set(KEY, { count: 4, bytes: 0 });
        const [a, b] = ledgers as [UsageLedger, UsageLedger];
        const rules: Rules = { count: { limit: 5 }, bytes: { limit: 100 } };
        const reserve = (ledger: UsageLedger, keepsVersions: boolean, bytes: number) =>
          ledger.read(KEY).then((snapshot) => ledger.reserve({ key: KEY, snapshot, add: { count: 1, bytes }, credit: NONE, target: 'v', keepsVersions, rules }));
        assert.equal((await reserve(a, true, 60)).ok, true);
        assert.deepEqual((await b.project(KEY, await b.read(KEY), 'v', undefined, true)).held, { count: 1, bytes: 0 });
        assert.deepEqual((await b.project(KEY, await b.read(KEY), 'v')).held, { count: 1, bytes: 0 }, 'a replacing write gets no bytes of a kept one');
        assert.equal((await reserve(b, true, 60)).ok, false, '60 + 60 versions past 100');
        assert.equal((await reserve(b, false, 60)).ok, false, 'nor as a replacing write');
        // The fifth object fits only because both are one object.
        const second = await reserve(b, true, 0);
        assert.ok(second.ok);
        const grow = (bytes: number) => b.read(KEY).then((snapshot) => b.grow({ reservation: second.reservation, snapshot, bytes, creditBytes: 0, rules }));
        assert.equal((await grow(40)).ok, true);
        assert.equal((await grow(1)).ok, false, 'growth gets no bytes of the other version either');
        assert.deepEqual((await a.project(KEY, await a.read(KEY))).used, { count: 6, bytes: 100 });
      } finally {
        await close();
      }
    });

    test('a write kept as a version gets no bytes of a replacing write of its target in flight; replacing writes share them', async () => {
      const { swift, ledgers, close } = await setup(2);
      try {
        swift.stored.set(KEY, { count: 0, bytes: 0 });
        const [a, b] = ledgers as [UsageLedger, UsageLedger];
        const rules = bytesLimit(100);
        const reserve = (ledger: UsageLedger, keepsVersions: boolean) =>
          ledger.read(KEY).then((snapshot) => ledger.reserve({ key: KEY, snapshot, add: { count: 1, bytes: 60 }, credit: NONE, target: 'u', keepsVersions, rules }));
        const first = await reserve(a, false);
        assert.ok(first.ok);
        assert.deepEqual((await b.project(KEY, await b.read(KEY), 'u')).held, { count: 1, bytes: 60 });
        assert.deepEqual((await b.project(KEY, await b.read(KEY), 'u', undefined, true)).held, { count: 1, bytes: 0 });
        assert.equal((await reserve(b, true)).ok, false);
        const second = await reserve(b, false);
        assert.ok(second.ok);
        assert.equal(second.reservation.keepsVersions, false);
        a.release(first.reservation);
        await until(async () => (await b.project(KEY, await b.read(KEY), 'u', second.reservation)).held.count === 0, 'the release arrived');
      } finally {
        await close();
      }
    });

    test('a committed write is counted on top of older readings, everywhere, until a reading sent after it arrives', async () => {
      const { swift, ledgers, close } = await setup(2);
      try {
        swift.stored.set(KEY, { count: 3, bytes: 30 });
        const [a, b] = ledgers as [UsageLedger, UsageLedger];
        const old = await b.read(KEY);
        const reserved = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 10 }, credit: NONE, target: 'n', rules: countLimit(100) });
        assert.ok(reserved.ok);
        store(swift, KEY, { count: 1, bytes: 10 });
        a.commit(reserved.reservation);
        await until(async () => (await b.project(KEY, old)).used.count === 4, 'the ledger caught up');
        const view = await b.project(KEY, old);
        assert.deepEqual(view.used, { count: 4, bytes: 40 });
        assert.equal(view.writesSince, true);
        const fresh = await b.read(KEY, b.now() + 1);
        assert.deepEqual((await b.project(KEY, fresh)).used, { count: 4, bytes: 40 }, 'not counted twice');
        assert.equal((await b.project(KEY, fresh)).writesSince, false);
        await until(async () => (await a.settled(KEY))?.usage.count === 4, 'the ledger caught up');
        assert.deepEqual(await a.settled(KEY), { usage: { count: 4, bytes: 40 }, inFlight: { count: 4, bytes: 40 } });
        const inFlight = await b.reserve({ key: KEY, snapshot: fresh, add: { count: 1, bytes: 5 }, credit: NONE, target: 'm', rules: countLimit(100) });
        assert.ok(inFlight.ok);
        assert.deepEqual(await a.settled(KEY), { usage: { count: 4, bytes: 40 }, inFlight: { count: 5, bytes: 45 } }, 'writes in flight, from any proxy, on top');
        b.release(inFlight.reservation);
      } finally {
        await close();
      }
    });

    test('a release gives the quota back to every proxy', async () => {
      const { swift, ledgers, close } = await setup(2);
      try {
        swift.stored.set(KEY, { count: 9, bytes: 0 });
        const [a, b] = ledgers as [UsageLedger, UsageLedger];
        const held = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'x', rules: countLimit(10) });
        assert.ok(held.ok);
        assert.equal((await b.reserve({ key: KEY, snapshot: await b.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'y', rules: countLimit(10) })).ok, false);
        a.release(held.reservation);
        a.release(held.reservation);
        assert.equal(a.openReservations, 0);
        await until(async () => (await b.project(KEY, await b.read(KEY))).used.count === 9, 'the ledger caught up');
        assert.equal((await b.reserve({ key: KEY, snapshot: await b.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'y', rules: countLimit(10) })).ok, true);
      } finally {
        await close();
      }
    });

    test('a credit (what an overwrite replaces) makes room; growth of a streaming upload is checked and reserved exactly', async () => {
      const { swift, ledgers, close } = await setup(2);
      try {
        swift.stored.set(KEY, { count: 1, bytes: 900 });
        const [a, b] = ledgers as [UsageLedger, UsageLedger];
        const rules = bytesLimit(1000);
        const over = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 200 }, credit: NONE, target: 'o', rules });
        assert.equal(over.ok, false);
        const credited = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 200 }, credit: { count: 1, bytes: 900 }, target: 'o', rules });
        assert.equal(credited.ok, true);
        a.release(credited.ok ? credited.reservation : (undefined as never));

        // Two chunked uploads on two proxies grow 10 bytes at a time: together never past 1000.
        const snapA = await a.read(KEY);
        const snapB = await b.read(KEY);
        const ra = await a.reserve({ key: KEY, snapshot: snapA, add: { count: 1, bytes: 0 }, credit: NONE, target: 'ca', rules });
        const rb = await b.reserve({ key: KEY, snapshot: snapB, add: { count: 1, bytes: 0 }, credit: NONE, target: 'cb', rules });
        assert.ok(ra.ok && rb.ok);
        let grown = 0;
        await Promise.all(
          [
            [a, ra.reservation, snapA],
            [b, rb.reservation, snapB],
          ].map(async ([ledger, reservation, snapshot]) => {
            for (let i = 0; i < 20; i++) {
              const result = await (ledger as UsageLedger).grow({ reservation: reservation as never, snapshot: snapshot as never, bytes: 10, creditBytes: 0, rules });
              if (!result.ok) return;
              grown += 10;
            }
          }),
        );
        assert.equal(grown, 100);
        assert.equal(ra.reservation.bytes + rb.reservation.bytes, 100);
        assert.deepEqual((await a.project(KEY, snapA)).used, { count: 3, bytes: 1000 });
      } finally {
        await close();
      }
    });

    test('an invalidation (a delete) drops the cached reading and makes settled usage unknown until a newer reading', async () => {
      const { swift, ledger, close } = await setup(1);
      try {
        swift.stored.set(KEY, { count: 5, bytes: 50 });
        await ledger.read(KEY);
        await until(async () => (await ledger.settled(KEY)) !== undefined, 'the ledger caught up');
        const reads = swift.reads;
        swift.stored.set(KEY, { count: 4, bytes: 40 });
        ledger.invalidate(KEY);
        await until(async () => (await ledger.settled(KEY)) === undefined, 'the ledger caught up');
        const after = await ledger.read(KEY);
        assert.equal(swift.reads, reads + 1, 'read again, not from the cache');
        assert.equal(after.count, 4);
        await until(async () => (await ledger.settled(KEY))?.usage.count === 4, 'the ledger caught up');
      } finally {
        await close();
      }
    });

    test('a reading asked for after now is sent after now; concurrent callers share it', async () => {
      const { swift, ledger, close } = await setup(1);
      try {
        swift.stored.set(KEY, { count: 1, bytes: 1 });
        await ledger.read(KEY);
        const reads = swift.reads;
        const notBefore = ledger.now() + 1;
        const snapshots = await Promise.all(Array.from({ length: 10 }, () => ledger.read(KEY, notBefore)));
        assert.equal(swift.reads, reads + 1);
        assert.ok(snapshots.every((s) => s.sent >= notBefore));
      } finally {
        await close();
      }
    });
  });
}
