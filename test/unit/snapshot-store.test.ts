import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapshotStore } from '../../src/quota/ledger/snapshot-store.js';
import type { Snapshot } from '../../src/quota/ledger/ledger.js';

const reading = (sent: number, count: number, bytes: number, extra: Partial<Snapshot> = {}): Snapshot =>
  Object.freeze({ exists: true, count, bytes, seq: sent, gen: 'local', sent, ...extra });

test('a reading comes back as it was kept, frozen, with its rare parts', () => {
  const store = new SnapshotStore(10);
  const account = reading(1, 2, 5_000_000_000, { level: 'L1', tempUrlKeys: ['k'], versioning: { kind: 'object', enabled: true } });
  store.record('a/x', account, false);
  store.record('c/x/c', reading(2, 0, 0, { exists: false, gen: 'g7' }), false);
  assert.deepStrictEqual(store.newest('a/x'), account);
  assert.ok(Object.isFrozen(store.newest('a/x')));
  assert.deepStrictEqual(store.newest('c/x/c'), reading(2, 0, 0, { exists: false, gen: 'g7' }));
  assert.equal(store.newest('c/x/other'), undefined);
});

test('a container\'s storage policy is kept (as an index into few names) and given back; none when it had none', () => {
  const store = new SnapshotStore(10);
  store.record('c/x/g', reading(1, 1, 10, { policy: 'gold' }), false);
  store.record('c/x/p', reading(2, 1, 10, { policy: 'policy-0' }), false);
  store.record('c/x/g2', reading(3, 1, 10, { policy: 'gold' }), false);
  store.record('a/x', reading(4, 1, 10), false);
  assert.equal(store.newest('c/x/g')!.policy, 'gold');
  assert.equal(store.newest('c/x/g2')!.policy, 'gold');
  assert.equal(store.newest('c/x/p')!.policy, 'policy-0');
  assert.equal('policy' in store.newest('a/x')!, false);
  store.record('c/x/g', reading(5, 1, 10), false);
  assert.equal('policy' in store.newest('c/x/g')!, false, 'a new reading without a policy drops the old one');
});

test('an older reading does not replace a newer one', () => {
  const store = new SnapshotStore(10);
  assert.equal(store.record('k', reading(5, 5, 5), false), true);
  assert.equal(store.record('k', reading(3, 3, 3), false), false);
  assert.equal(store.newest('k')!.count, 5);
  assert.equal(store.record('k', reading(6, 6, 6), false), true);
  assert.equal(store.newest('k')!.count, 6);
});

test('served from the cache only while fresh and not stale; stale readings stay the newest', () => {
  const store = new SnapshotStore(10);
  store.record('k', reading(1, 1, 1), false, 1000);
  assert.equal(store.fresh('k', 500, 1499)!.count, 1);
  assert.equal(store.fresh('k', 500, 1500), undefined, 'older than the TTL');
  store.markStale('k');
  assert.equal(store.fresh('k', 500, 1001), undefined, 'a delete finished after it was read');
  assert.equal(store.isStale('k'), true);
  assert.equal(store.newest('k')!.count, 1, 'still the newest reading, for projections');
  store.record('k', reading(2, 2, 2), true, 1002);
  assert.equal(store.isStale('k'), true, 'a read under way when the delete finished is stale too');
  store.record('k', reading(3, 3, 3), false, 1003);
  assert.equal(store.isStale('k'), false);
  assert.equal(store.fresh('k', 500, 1004)!.count, 3);
  store.markAllStale();
  assert.equal(store.fresh('k', 500, 1004), undefined);
  assert.equal(store.isStale('never-read'), true);
});

test('bounded: the least recently used key goes, its slot and rare parts are reused', () => {
  const store = new SnapshotStore(3);
  store.record('a', reading(1, 1, 1, { level: 'L1' }), false);
  store.record('b', reading(2, 2, 2), false);
  store.record('c', reading(3, 3, 3), false);
  store.fresh('a', 60_000); // a is used: b is now the oldest
  store.record('d', reading(4, 4, 4), false);
  assert.equal(store.size, 3);
  assert.equal(store.newest('b'), undefined);
  assert.equal(store.newest('a')!.level, 'L1');
  store.record('e', reading(5, 5, 5), false); // c goes
  store.record('f', reading(6, 6, 6), false); // a goes, with its level
  assert.equal(store.newest('a'), undefined);
  assert.deepStrictEqual(store.newest('f'), reading(6, 6, 6));
  assert.equal(store.newest('f')!.level, undefined, 'a reused slot does not keep the level of the key before');
});

test('grows past its first arrays and keeps every reading', () => {
  const store = new SnapshotStore(10_000);
  for (let i = 0; i < 5000; i++) store.record(`c/a/${i}`, reading(i + 1, i, i * 10), false);
  assert.equal(store.size, 5000);
  for (const i of [0, 1023, 1024, 2047, 4999]) assert.deepStrictEqual(store.newest(`c/a/${i}`), reading(i + 1, i, i * 10));
});

test('keys outside latin-1 (and even lone surrogates) are kept as they are', () => {
  const store = new SnapshotStore(10);
  const keys = ['c/AUTH_x/контейнер', 'c/AUTH_x/ü-latin1', 'c/AUTH_x/\ud800lone', `c/${'AUTH_x'}/${'built'}${'-'.repeat(20)}`];
  keys.forEach((key, i) => store.record(key, reading(i + 1, i, i), false));
  keys.forEach((key, i) => assert.equal(store.newest(key)?.count, i, key));
});
