import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLedger, type MemoryLedgerOptions } from '../../src/quota/ledger/memory.js';
import type { SnapshotData } from '../../src/quota/ledger/ledger.js';
import type { ReadSource } from '../../src/quota/ledger/snapshot-reader.js';

const KEY = 'c/AUTH_a/c';

interface PendingRead {
  key: string;
  resolve(data: SnapshotData): void;
  reject(error: Error): void;
}

/** A usage source whose reads are answered by the test, in any order. */
function manualSource() {
  const pending: PendingRead[] = [];
  const calls: string[] = [];
  const read = (key: string) =>
    new Promise<SnapshotData>((resolve, reject) => {
      calls.push(key);
      pending.push({ key, resolve, reject });
    });
  return { read, calls, pending };
}

/** A usage source that answers at once with the current value of `data`. */
function instantSource(data: SnapshotData = { exists: true, count: 3, bytes: 300 }) {
  const calls: string[] = [];
  const source = {
    data,
    calls,
    read: async (key: string) => {
      calls.push(key);
      return source.data;
    },
  };
  return source;
}

function book(read: MemoryLedgerOptions['read'], options: Partial<MemoryLedgerOptions> = {}) {
  const sources: ReadSource[] = [];
  const open: number[] = [];
  const usage = new MemoryLedger({
    ttlMs: 60_000,
    maxEntries: 100,
    read,
    onRead: (_key, source) => sources.push(source),
    onReservationsChanged: (n) => open.push(n),
    ...options,
  });
  return { usage, sources, open };
}

const data = (count: number, bytes: number, extra: Partial<SnapshotData> = {}): SnapshotData => ({ exists: true, count, bytes, ...extra });

describe('MemoryLedger.read: coalescing and caching', () => {
  test('50 concurrent reads of one key make one read call and share its snapshot', async () => {
    const source = manualSource();
    const { usage, sources } = book(source.read);
    const reads = Array.from({ length: 50 }, () => usage.read(KEY));
    assert.equal(source.calls.length, 1);
    source.pending[0]!.resolve(data(7, 700));
    const snapshots = await Promise.all(reads);
    assert.equal(source.calls.length, 1);
    assert.ok(snapshots.every((s) => s === snapshots[0]));
    assert.equal(snapshots[0]!.count, 7);
    assert.equal(sources.filter((s) => s === 'miss').length, 1);
    assert.equal(sources.filter((s) => s === 'coalesced').length, 49);
  });

  test('concurrent reads of different keys are not coalesced', async () => {
    const source = instantSource();
    const { usage } = book(source.read);
    await Promise.all([usage.read('a/AUTH_a'), usage.read(KEY), usage.read('c/AUTH_a/other')]);
    assert.deepEqual(source.calls.sort(), ['a/AUTH_a', 'c/AUTH_a/c', 'c/AUTH_a/other']);
  });

  test('a snapshot carries the read\'s data, frozen, with the sequence number of when it was sent', async () => {
    const source = instantSource(data(1, 2, { level: 'L1' }));
    const { usage } = book(source.read);
    const before = usage.now();
    const snapshot = await usage.read('a/AUTH_a');
    assert.deepEqual(snapshot, { exists: true, count: 1, bytes: 2, level: 'L1', seq: before + 1, sent: before + 1, gen: 'local' });
    assert.ok(Object.isFrozen(snapshot));
    assert.equal(usage.now(), before + 1);
  });

  test('TTL hit: a second read within the TTL is served from the cache', async () => {
    const source = instantSource();
    const { usage, sources } = book(source.read, { ttlMs: 60_000 });
    const first = await usage.read(KEY);
    const second = await usage.read(KEY);
    assert.equal(source.calls.length, 1);
    // The same reading (same send number), kept in the store and handed out again.
    assert.deepStrictEqual(second, first);
    assert.deepEqual(sources, ['miss', 'hit']);
  });

  test('TTL miss: a read after the TTL has passed reads again', async () => {
    const source = instantSource();
    const { usage, sources } = book(source.read, { ttlMs: 20 });
    await usage.read(KEY);
    await sleep(50);
    source.data = data(4, 400);
    const snapshot = await usage.read(KEY);
    assert.equal(source.calls.length, 2);
    assert.equal(snapshot.count, 4);
    assert.deepEqual(sources, ['miss', 'miss']);
  });

  test('ttlMs 0 (cache_timeout = 0) never serves from the cache', async () => {
    const source = instantSource();
    const { usage } = book(source.read, { ttlMs: 0 });
    await usage.read(KEY);
    await usage.read(KEY);
    await usage.read(KEY);
    assert.equal(source.calls.length, 3);
  });

  test('ttlMs 0 still coalesces concurrent reads', async () => {
    const source = manualSource();
    const { usage } = book(source.read, { ttlMs: 0 });
    const reads = [usage.read(KEY), usage.read(KEY)];
    source.pending[0]!.resolve(data(1, 1));
    await Promise.all(reads);
    assert.equal(source.calls.length, 1);
  });

  test('notBefore above the cached snapshot forces a new read; at or below it, the cache serves', async () => {
    const source = instantSource();
    const { usage } = book(source.read);
    const first = await usage.read(KEY);
    assert.deepStrictEqual(await usage.read(KEY, first.seq), first);
    assert.equal(source.calls.length, 1);
    const fresh = await usage.read(KEY, usage.now() + 1);
    assert.equal(source.calls.length, 2);
    assert.ok(fresh.seq > first.seq);
    // The fresh snapshot replaces the cached one.
    assert.deepStrictEqual(await usage.read(KEY), fresh);
    assert.equal(source.calls.length, 2);
  });

  test('callers needing a later read than the one in flight share the one sent when it ends', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const early = usage.read(KEY);
    const late = usage.read(KEY, usage.now() + 1);
    const later = usage.read(KEY, usage.now() + 1);
    assert.equal(source.calls.length, 1, 'the next read waits for the one in flight');
    const joined = usage.read(KEY, usage.now());
    source.pending[0]!.resolve(data(1, 1));
    assert.equal((await early).count, 1);
    assert.equal((await joined).count, 1, 'notBefore = now() is satisfied by the read in flight');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(source.calls.length, 2, 'one read for all who waited');
    source.pending[1]!.resolve(data(2, 2));
    assert.equal((await late).count, 2);
    assert.equal((await later).count, 2);
    assert.equal(source.calls.length, 2);
  });

  test('an older read answering last does not replace a newer cached snapshot', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const older = usage.read(KEY);
    usage.invalidate(KEY); // a read made outdated is not joined: a new one goes out at once
    const newer = usage.read(KEY);
    assert.equal(source.calls.length, 2);
    source.pending[1]!.resolve(data(2, 2));
    await newer;
    source.pending[0]!.resolve(data(1, 1));
    await older;
    assert.equal((await usage.read(KEY)).count, 2);
    assert.equal(source.calls.length, 2);
  });

  test('a failed read fails every caller sharing it, is not cached, and the next read tries again', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const reads = [usage.read(KEY), usage.read(KEY)];
    const failure = new Error('swift down');
    source.pending[0]!.reject(failure);
    for (const read of reads) await assert.rejects(read, (error: unknown) => error === failure);
    const retry = usage.read(KEY);
    assert.equal(source.calls.length, 2);
    source.pending[1]!.resolve(data(5, 5));
    assert.equal((await retry).count, 5);
  });

  test('maxEntries bounds the cache: the least recently used key is evicted', async () => {
    const source = instantSource();
    const { usage } = book(source.read, { maxEntries: 1 });
    await usage.read('a/AUTH_1');
    await usage.read('a/AUTH_2');
    await usage.read('a/AUTH_2');
    assert.equal(source.calls.length, 2);
    await usage.read('a/AUTH_1');
    assert.equal(source.calls.length, 3);
  });
});

describe('MemoryLedger: reservations', () => {
  test('reservations add to projected usage until released', async () => {
    const { usage } = book(instantSource(data(3, 300)).read);
    const snapshot = await usage.read(KEY);
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 3, bytes: 300 });
    const first = usage.hold(KEY, { count: 1, bytes: 50 });
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 4, bytes: 350 });
    const second = usage.hold(KEY, { count: 1, bytes: 25 });
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 5, bytes: 375 });
    usage.release(first);
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 4, bytes: 325 });
    usage.release(second);
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 3, bytes: 300 });
  });

  test('reservations of one key do not count for another', async () => {
    const { usage } = book(instantSource(data(3, 300)).read);
    const snapshot = await usage.read(KEY);
    usage.hold('c/AUTH_a/other', { count: 1, bytes: 1000 });
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 3, bytes: 300 });
  });

  test('release gives the quota back once: a second release, or a commit after it, changes nothing', async () => {
    const { usage, open } = book(instantSource(data(0, 0)).read);
    const snapshot = await usage.read(KEY);
    const reservation = usage.hold(KEY, { count: 1, bytes: 10 });
    usage.release(reservation);
    usage.release(reservation);
    usage.commit(reservation);
    assert.equal(reservation.settled, true);
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 0, bytes: 0 });
    assert.equal(usage.hasWritesSince(KEY, snapshot), false);
    assert.deepEqual(open, [1, 0]);
  });

  test('adjust changes a reservation in flight, and what its commit counts', async () => {
    const { usage } = book(instantSource(data(0, 0)).read);
    const snapshot = await usage.read(KEY);
    const reservation = usage.hold(KEY, { count: 1, bytes: 0 });
    usage.adjust(reservation, { count: 0, bytes: 100 });
    usage.adjust(reservation, { count: 0, bytes: 20 });
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 1, bytes: 120 });
    assert.deepEqual([reservation.count, reservation.bytes], [1, 120]);
    usage.adjust(reservation, { count: -1, bytes: 0 }); // an overwrite after all
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 0, bytes: 120 });
    usage.commit(reservation);
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 0, bytes: 120 });
    usage.adjust(reservation, { count: 5, bytes: 5 });
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 0, bytes: 120 }, 'adjust after settling is ignored');
  });

  test('release after adjust gives back the adjusted amount', async () => {
    const { usage } = book(instantSource(data(2, 20)).read);
    const snapshot = await usage.read(KEY);
    const reservation = usage.hold(KEY, { count: 1, bytes: 0 });
    usage.adjust(reservation, { count: 0, bytes: 500 });
    usage.release(reservation);
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 2, bytes: 20 });
  });

  test('onReservationsChanged reports the number of open reservations', async () => {
    const { usage, open } = book(instantSource().read);
    const a = usage.hold(KEY, { count: 1, bytes: 1 });
    const b = usage.hold('c/AUTH_a/other', { count: 1, bytes: 1 });
    usage.commit(a);
    usage.commit(a);
    usage.release(b);
    const c = usage.hold(KEY, { count: 0, bytes: 0 });
    usage.release(c);
    assert.deepEqual(open, [1, 2, 1, 0, 1, 0]);
  });
});

describe('MemoryLedger: finished writes', () => {
  test('a committed write is counted on an older snapshot until a read sent after it arrives', async () => {
    const source = instantSource(data(3, 300));
    const { usage } = book(source.read);
    const before = await usage.read(KEY);
    usage.commit(usage.hold(KEY, { count: 1, bytes: 10 }));
    assert.deepEqual(usage.projected(KEY, before), { count: 4, bytes: 310 });
    assert.equal(usage.hasWritesSince(KEY, before), true);

    // Swift has the write; a read sent now includes it, and it must not be counted twice.
    source.data = data(4, 310);
    const after = await usage.read(KEY, usage.now() + 1);
    assert.deepEqual(usage.projected(KEY, after), { count: 4, bytes: 310 });
    assert.equal(usage.hasWritesSince(KEY, after), false);
  });

  test('a check still holding the older snapshot (across an await) is projected from the newer read', async () => {
    const source = instantSource(data(3, 300));
    const { usage } = book(source.read);
    const before = await usage.read(KEY);
    usage.commit(usage.hold(KEY, { count: 1, bytes: 10 }));
    source.data = data(4, 310);
    await usage.read(KEY, usage.now() + 1); // prunes the finished write: no reservation is left open
    assert.deepEqual(usage.projected(KEY, before), { count: 4, bytes: 310 });
    // Writes after the newer read still count on top.
    usage.commit(usage.hold(KEY, { count: 1, bytes: 5 }));
    const open = usage.hold(KEY, { count: 1, bytes: 1 });
    assert.deepEqual(usage.projected(KEY, before), { count: 6, bytes: 316 });
    usage.release(open);
  });

  test('the cached snapshot still gets the write added when served again', async () => {
    const { usage } = book(instantSource(data(3, 300)).read);
    await usage.read(KEY);
    usage.commit(usage.hold(KEY, { count: 1, bytes: 10 }));
    const cached = await usage.read(KEY);
    assert.deepEqual(usage.projected(KEY, cached), { count: 4, bytes: 310 });
  });

  test('a read sent before a commit does not drop the committed write, even if it answers after it', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const inFlight = usage.read(KEY);
    usage.commit(usage.hold(KEY, { count: 1, bytes: 10 }));
    source.pending[0]!.resolve(data(3, 300)); // may or may not include the write: it is counted on top
    const snapshot = await inFlight;
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 4, bytes: 310 });
    assert.equal(usage.hasWritesSince(KEY, snapshot), true);
  });

  test('commit with the actual usage counts that, not the reservation', async () => {
    const { usage } = book(instantSource(data(0, 0)).read);
    const snapshot = await usage.read(KEY);
    const reservation = usage.hold(KEY, { count: 1, bytes: 100 });
    usage.commit(reservation, { count: 0, bytes: 40 });
    assert.deepEqual(usage.projected(KEY, snapshot), { count: 0, bytes: 40 });
  });

  test('a commit that adds nothing is no finished write', async () => {
    const { usage } = book(instantSource(data(0, 0)).read);
    const snapshot = await usage.read(KEY);
    usage.commit(usage.hold(KEY, { count: 0, bytes: 0 }));
    assert.equal(usage.hasWritesSince(KEY, snapshot), false);
  });

  test('a commit takes a sequence number: reads asked for after it must be sent after it', async () => {
    const source = instantSource(data(0, 0));
    const { usage } = book(source.read);
    const first = await usage.read(KEY);
    usage.commit(usage.hold(KEY, { count: 1, bytes: 1 }));
    assert.ok(usage.now() > first.seq);
    await usage.read(KEY, usage.now() + 1);
    assert.equal(source.calls.length, 2);
  });
});

describe('MemoryLedger.invalidate', () => {
  test('drops the cached snapshot: the next read asks Swift again', async () => {
    const source = instantSource(data(5, 500));
    const { usage } = book(source.read);
    await usage.read(KEY);
    usage.invalidate(KEY);
    source.data = data(4, 400);
    const snapshot = await usage.read(KEY);
    assert.equal(source.calls.length, 2);
    assert.equal(snapshot.count, 4);
  });

  test('leaves other keys cached', async () => {
    const source = instantSource();
    const { usage } = book(source.read);
    await usage.read(KEY);
    await usage.read('a/AUTH_a');
    usage.invalidate('a/AUTH_a');
    await usage.read(KEY);
    assert.equal(source.calls.length, 2);
  });

  test('a read in flight when the key is invalidated is answered but not cached', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const inFlight = usage.read(KEY);
    usage.invalidate(KEY);
    source.pending[0]!.resolve(data(5, 500));
    assert.equal((await inFlight).count, 5);
    const next = usage.read(KEY);
    assert.equal(source.calls.length, 2, 'the outdated answer must not be served from the cache');
    source.pending[1]!.resolve(data(4, 400));
    assert.equal((await next).count, 4);
  });

  test('a read asked for after the invalidation does not join a read sent before it', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const before = usage.read(KEY);
    usage.invalidate(KEY);
    const after = usage.read(KEY);
    assert.equal(source.calls.length, 2);
    source.pending[1]!.resolve(data(4, 400));
    source.pending[0]!.resolve(data(5, 500));
    assert.equal((await before).count, 5);
    assert.equal((await after).count, 4);
    // The newer answer is the one cached.
    assert.equal((await usage.read(KEY)).count, 4);
    assert.equal(source.calls.length, 2);
  });

  test('reads asked for after the invalidation still share one read among themselves', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const before = usage.read(KEY);
    usage.invalidate(KEY);
    const after = [usage.read(KEY), usage.read(KEY), usage.read(KEY)];
    assert.equal(source.calls.length, 2);
    source.pending[0]!.resolve(data(5, 500));
    source.pending[1]!.resolve(data(4, 400));
    await before;
    assert.deepEqual((await Promise.all(after)).map((s) => s.count), [4, 4, 4]);
  });

  test('invalidation moves the sequence on, so a check can ask for a read sent after it', async () => {
    const { usage } = book(instantSource().read);
    const seq = usage.now();
    usage.invalidate(KEY);
    assert.equal(usage.now(), seq + 1);
  });
});

describe('MemoryLedger.settled: usage as far as finished requests go', () => {
  test('nothing read yet: unknown', () => {
    const { usage } = book(instantSource().read);
    assert.equal(usage.settledUsage(KEY), undefined);
  });

  test('the reading plus finished writes, without writes still in flight', async () => {
    const source = instantSource(data(3, 300));
    const { usage } = book(source.read);
    await usage.read(KEY);
    const done = usage.hold(KEY, { count: 1, bytes: 10 });
    const open = usage.hold(KEY, { count: 1, bytes: 20 });
    usage.commit(done);
    assert.deepEqual(usage.settledUsage(KEY), { count: 4, bytes: 310 });
    usage.release(open);
    assert.deepEqual(usage.settledUsage(KEY), { count: 4, bytes: 310 });
  });

  test('a delete makes it unknown until a reading sent after the delete arrives', async () => {
    const source = instantSource(data(3, 300));
    const { usage } = book(source.read);
    await usage.read(KEY);
    usage.invalidate(KEY);
    assert.equal(usage.settledUsage(KEY), undefined);
    source.data = data(2, 200);
    await usage.read(KEY);
    assert.deepEqual(usage.settledUsage(KEY), { count: 2, bytes: 200 });
  });

  test('a reading sent before the delete does not make it known again', async () => {
    const source = manualSource();
    const { usage } = book(source.read);
    const early = usage.read(KEY);
    usage.invalidate(KEY);
    source.pending[0]!.resolve(data(3, 300));
    await early;
    assert.equal(usage.settledUsage(KEY), undefined);
  });
});

describe('MemoryLedger: bounded', () => {
  test('finished writes of containers never read again do not pile up: idle ledgers are bounded, and one pushed out is read afresh', async () => {
    const source = instantSource(data(1, 10));
    const { usage } = book(source.read, { maxEntries: 10 });
    const first = await usage.read('c/AUTH_a/c0');
    usage.commit(usage.hold('c/AUTH_a/c0', { count: 1, bytes: 1 }));
    for (let i = 1; i < 100; i++) usage.commit(usage.hold(`c/AUTH_a/c${i}`, { count: 1, bytes: 1 }));
    assert.deepEqual(usage.ledgerCounts, { busy: 0, idle: 10 });
    // c0's ledger was pushed out: its cached reading (which does not hold that write) is not served again.
    const calls = source.calls.length;
    const again = await usage.read('c/AUTH_a/c0');
    assert.equal(source.calls.length, calls + 1);
    assert.ok(again.seq > first.seq);
  });

  test('writes in flight are never pushed out, however many there are', () => {
    const { usage } = book(instantSource().read, { maxEntries: 5 });
    const held = Array.from({ length: 50 }, (_, i) => usage.hold(`c/AUTH_a/c${i}`, { count: 1, bytes: 1 }));
    assert.deepEqual(usage.ledgerCounts, { busy: 50, idle: 0 });
    for (const reservation of held) usage.release(reservation);
    assert.deepEqual(usage.ledgerCounts, { busy: 0, idle: 0 });
  });
});
