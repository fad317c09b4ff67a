/**
 * The shared ledger behind Redis Sentinel (`ledger = redis+sentinel://...`), against a real group (a primary,
 * a replica, three Sentinels: test/swift/sentinel.ts) and, for the proxies, a real Swift:
 * - a replica promoted that missed the primary's last writes starts a new generation (no check rests on what it
 *   lacks);
 * - the primary killed under concurrent writes through two proxies: reads go on meanwhile, writes resume after
 *   the failover within a bound, no overshoot beyond the writes then in flight (counted on Swift directly), the
 *   limit's event sent once;
 * - no primary left: reads go on, /readyz stays 200, /readyz/writes answers 503 and ledger_up is 0, writes 503.
 * Accounts ops21..ops30.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { fakeSwift } from '../helpers/ledger-contract.js';
import { until } from '../helpers/raw-http.js';
import { accountUrl, call, login } from '../helpers/http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { eventually, startReceiver, type Receiver } from '../helpers/receiver.js';
import { freePort } from '../helpers/ports.js';
import { startSentinelGroup, DOWN_AFTER_MS, type SentinelGroup } from '../swift/sentinel.js';
import { parseSentinelUrl } from '../../src/config/ledger-sentinel.js';
import { RedisLedger } from '../../src/quota/ledger/redis.js';
import type { SnapshotData } from '../../src/quota/ledger/ledger.js';

const KEY = 'c/AUTH_sentinel/c';
const PINNED = 'AUTH_sentinel/c/pinned';
const NONE = { count: 0, bytes: 0 };
const countLimit = (limit: number) => ({ count: { limit }, bytes: {} });

/** A group of its own for each part: a failover leaves it without a replica. */
let group: SentinelGroup;
function ownGroup(): void {
  before(async () => {
    group = await startSentinelGroup();
  });
  after(async () => {
    await group.stop();
  });
}

async function sentinelLedger(prefix: string, read: (key: string) => Promise<SnapshotData>): Promise<RedisLedger> {
  const sentinel = parseSentinelUrl(group.url, (reason) => {
    throw new Error(reason);
  });
  const ledger = new RedisLedger({ url: group.url, sentinel, prefix, leaseSeconds: 30, ttlMs: 60_000, maxEntries: 100, read });
  await ledger.connect();
  return ledger;
}

describe('a replica promoted that missed the last writes', () => {
  ownGroup();
  test('no check rests on what it lacks: readings from before are read again from Swift, reservations in flight and pins are put back', async () => {
    const prefix = `promoted-${randomBytes(4).toString('hex')}:`;
    const swift = fakeSwift();
    swift.stored.set(KEY, { count: 2, bytes: 0 });
    const a = await sentinelLedger(prefix, (key) => swift.read(key));
    const b = await sentinelLedger(prefix, (key) => swift.read(key));
    const primary = await group.primaryPort();
    const replica = new Redis({ port: await replicaPort(), host: '127.0.0.1', lazyConnect: true });
    try {
      // B reads (2 stored) and the replica has everything so far.
      const early = await b.read(KEY);
      assert.equal((await b.project(KEY, early)).used.count, 2);
      await replica.connect();
      await until(async () => /master_link_status:up/.test(await replica.info('replication')) && (await replica.exists(`${prefix}gen`)) === 1, 'the replica in sync');

      // The replica stops following (as one lagging behind would), then A finishes 6 writes and holds 1 more on
      // the primary only: Swift has 8, the ledger counted them, the replica does not have them.
      await replica.call('REPLICAOF', '127.0.0.1', String(await freePort()));
      for (let i = 0; i < 6; i++) {
        const done = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: `done${i}`, rules: countLimit(10) });
        assert.ok(done.ok);
        swift.stored.set(KEY, { count: 3 + i, bytes: 0 });
        a.commit(done.reservation);
      }
      const held = await a.reserve({ key: KEY, snapshot: await a.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: 'held', rules: countLimit(10) });
      assert.ok(held.ok);
      // And A pins an object (a manifest resting on it on its way to Swift), on the primary only too.
      const unpin = await a.pinStore().pin([PINNED], []);
      await until(async () => (await b.project(KEY, early)).used.count === 9, 'the writes counted on the primary');

      // The primary dies; the Sentinels promote the replica, which lacks the 6 finished writes and the 7th.
      await group.kill(primary);
      await group.failedOver(primary, 20_000);

      // B's reading from before (2) plus what the promoted replica knows would let 7 more in; 8 stored and 1 in
      // flight leave room for 1.
      let admitted = 0;
      await until(async () => {
        try {
          const snapshot = await b.read(KEY);
          const tries = await Promise.all([0, 1, 2].map((i) => b.reserve({ key: KEY, snapshot: i === 0 ? early : snapshot, add: { count: 1, bytes: 0 }, credit: NONE, target: `after${admitted}-${i}`, rules: countLimit(10) })));
          admitted += tries.filter((r) => r.ok).length;
          return true;
        } catch {
          return false; // the failover is not over for this client yet
        }
      }, 'B checks against the new primary', 20_000);
      for (let i = 0; i < 4; i++) {
        const more = await b.reserve({ key: KEY, snapshot: await b.read(KEY), add: { count: 1, bytes: 0 }, credit: NONE, target: `later${i}`, rules: countLimit(10) });
        if (more.ok) admitted++;
      }
      assert.ok(admitted <= 2, `admitted ${admitted} with 8 stored and 1 in flight under a limit of 10 (at most 1, or 2 before A put its write in flight back)`);
      // A's write in flight is back on the new primary: with it, the limit holds.
      await until(async () => (await b.project(KEY, await b.read(KEY))).used.count === 8 + 1 + admitted, 'A put its reservation back');
      // A's pin is back too: B may not take a turn on the object.
      await until(async () => {
        const turn = await b.pinStore().turn(PINNED);
        turn?.();
        return turn === undefined;
      }, 'A put its pin back', 5_000);
      unpin();
    } finally {
      replica.disconnect();
      await a.close();
      await b.close();
    }
  });
});

/** The port of the group's replica. */
async function replicaPort(): Promise<number> {
  const sentinel = new Redis({ port: group.sentinelPorts[0], host: '127.0.0.1' });
  try {
    const replicas = (await sentinel.call('SENTINEL', 'replicas', 'ledger')) as string[][];
    const fields = replicas[0]!;
    return Number(fields[fields.indexOf('port') + 1]);
  } finally {
    sentinel.disconnect();
  }
}

describe('the primary killed under concurrent writes through two proxies', () => {
  ownGroup();
  const LIMIT = 40;
  const LEASE_MS = 5_000;
  const account = 'ops21';
  let dir: string;
  let receiver: Receiver;
  let proxies: RunningProxy[];
  let token: string;

  before(async () => {
    const swift = await swiftUrl();
    dir = await mkdtemp(join(tmpdir(), 'sqp-sentinel-'));
    receiver = await startReceiver();
    const prefix = `failover-${randomBytes(4).toString('hex')}:`;
    proxies = await Promise.all([0, 1].map((i) => startProxy({
      upstream: swift,
      quota: { container_count: { default: 100 }, object_count: { default: LIMIT }, container_usage: { default: 1024 ** 3 } },
      extraProxyLines: [`ledger = ${group.url}`, `ledger_prefix = ${prefix}`, `ledger_lease = ${LEASE_MS / 1000}`],
      extraSections: ['[notify:hook]', 'type = webhook', `url = ${receiver.url}`, `queue_dir = ${join(dir, `q${i}`)}`, ''],
    })));
    token = (await login(swift, `${account}:admin`, `${account}pass`)).token;
  });
  after(async () => {
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('reads go on; writes resume after the failover; no overshoot beyond the writes then in flight; the limit\'s event once', async () => {
    const swift = await swiftUrl();
    const auth = { 'x-auth-token': token };
    assert.equal((await call('PUT', `${accountUrl(swift, account)}/fo`, auth)).status, 201);
    type Attempt = { start: number; end?: number; status?: number };
    const attempts: Attempt[] = [];
    let stop = false;
    let killedAt = Infinity;
    // Four writers through each proxy, each one write at a time, a short pause after a refusal.
    const writer = async (proxy: RunningProxy, name: string) => {
      for (let n = 0; !stop; n++) {
        const attempt: Attempt = { start: Date.now() };
        attempts.push(attempt);
        const answer = await call('PUT', `${accountUrl(proxy.url, account)}/fo/${name}-${n}`, auth, 'x');
        attempt.end = Date.now();
        attempt.status = answer.status;
        if (answer.status !== 201) await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const writers = proxies.flatMap((proxy, p) => [0, 1, 2, 3].map((w) => writer(proxy, `p${p}w${w}`)));
    const admitted = () => attempts.filter((a) => a.status === 201).length;
    await until(async () => admitted() >= LIMIT / 2, 'half the limit written', 20_000);

    const primary = await group.primaryPort();
    await group.kill(primary);
    killedAt = Date.now();
    const inFlightAtKill = attempts.filter((a) => a.start <= killedAt && (a.end === undefined || a.end > killedAt)).length;
    // Reads meanwhile (the Sentinels wait DOWN_AFTER_MS before they act).
    const listing = await call('GET', `${accountUrl(proxies[1]!.url, account)}/fo`, auth);
    assert.equal(listing.status, 200);

    // Until writes meet the limit (413) a lease after they resumed: a reservation whose commit the old primary
    // took in its last moment, not passed on to the replica, counts until its lease ends.
    await until(async () => {
      const resumed = attempts.find((a) => a.start > killedAt && a.status === 201);
      if (!resumed) return false;
      const settledFrom = resumed.end! + LEASE_MS + 500;
      return attempts.filter((a) => a.start > settledFrom && a.status === 413).length >= 16;
    }, 'the limit reached after the failover', 40_000);
    stop = true;
    await Promise.all(writers);

    const firstAdmitted = Math.min(...attempts.filter((a) => a.start > killedAt && a.status === 201).map((a) => a.end!));
    const resumedAfter = firstAdmitted - killedAt;
    const stored = Number((await call('HEAD', `${accountUrl(swift, account)}/fo`, auth)).headers['x-container-object-count']);
    const refusedWhileAway = attempts.filter((a) => a.start > killedAt && a.status === 503).length;
    const timeline = attempts.filter((a) => a.start > killedAt).map((a) => `${a.start - killedAt}:${a.status}`).filter((t, i, all) => i === 0 || t.split(':')[1] !== all[i - 1]!.split(':')[1]);
    console.log(`status changes after the kill (ms:status): ${timeline.join(' ')}`);
    console.log(`sentinel failover: first write admitted ${resumedAfter} ms after the primary was killed (down-after ${DOWN_AFTER_MS} ms); ` +
      `${refusedWhileAway} writes refused (503) meanwhile; ${inFlightAtKill} in flight at the kill; ${stored} stored of a limit of ${LIMIT}`);
    assert.ok(resumedAfter <= 10_000, `writes resumed ${resumedAfter} ms after the kill`);
    assert.ok(stored <= LIMIT + inFlightAtKill, `stored ${stored}: more than the limit ${LIMIT} and the ${inFlightAtKill} writes in flight at the kill`);
    assert.ok(stored >= LIMIT - inFlightAtKill, `stored ${stored}: the room there was got used`);
    for (const proxy of proxies) assert.equal((await call('GET', `${proxy.url}/readyz/writes`)).status, 200);
    assert.match((await call('GET', `${proxies[0]!.url}/metrics`)).body, /^swift_quota_proxy_ledger_up 1$/m);

    // The limit's event, once for both proxies per time the limit is reached. A write in flight at the kill,
    // whose reservation counts until its lease ends (above), can make room once more after the limit was first
    // reached: a write is admitted, usage is at the limit again, and that is a new hit (seen in a CI run: 413 at
    // 2,636 ms after the kill, a 201 at 4,919 ms as the lease ended, an event each). Two events with no write
    // admitted between them would be one hit told twice.
    const hits = () => receiver.received.filter((r) => r.event.type === 'hard_limit_hit' && r.event.container === 'fo');
    await eventually(() => hits().length >= 1, 'the hard_limit_hit event');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const times = hits().map((r) => Date.parse(String(r.event.time))).sort((x, y) => x - y);
    const admittedBetween = (from: number, to: number) => attempts.some((a) => a.status === 201 && a.end! > from && a.end! <= to);
    for (let i = 1; i < times.length; i++) {
      assert.ok(admittedBetween(times[i - 1]!, times[i]!), `the limit's event told twice with no write admitted between: ${JSON.stringify(hits().map((r) => r.event))}`);
    }
  });

  test('no primary left (the new one killed, no replica to promote): reads go on, /readyz stays 200, /readyz/writes and ledger_up say writes are refused', async () => {
    const auth = { 'x-auth-token': token };
    const [a, b] = proxies as [RunningProxy, RunningProxy];
    await group.kill(await group.primaryPort());
    await until(async () => (await call('GET', `${a.url}/readyz/writes`)).status === 503, 'the ledger away', 5_000);
    const ready = await call('GET', `${a.url}/readyz`);
    assert.equal(ready.status, 200, ready.body);
    const writes = await call('GET', `${a.url}/readyz/writes`);
    // The client port (no ops listener here) names the dependency only, never where it is (ops-routes.ts).
    assert.equal(writes.body, 'not ready for writes: ledger\n');
    assert.match((await call('GET', `${b.url}/metrics`)).body, /^swift_quota_proxy_ledger_up 0$/m);
    const listing = await call('GET', `${accountUrl(b.url, account)}/fo`, auth);
    assert.equal(listing.status, 200);
    assert.equal((await call('GET', `${accountUrl(b.url, account)}/fo/${listing.body.split('\n')[0]}`, auth)).status, 200);
    const refused = await call('PUT', `${accountUrl(a.url, account)}/fo/while-away`, auth, 'x');
    assert.equal(refused.status, 503, refused.body);
    assert.match(refused.body, /usage ledger/);
  });
});
