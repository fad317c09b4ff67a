/**
 * Quota enforcement against a real Swift, in cached and in precise mode: levels and who may set them,
 * the three kinds, concurrency, chunked uploads, server-side copies and overwrites.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login, type Login } from '../helpers/http.js';

const BIG = 10 ** 12;
/** The seed article's levels, plus two narrow ones the tests assign to accounts. */
export const TEST_LEVELS = {
  container_count: { default: 5, L1: 10, L2: 25, count10: 100, bytes10k: 100 },
  object_count: { default: 200000, L1: 500000, L2: 1000000, count10: 10, bytes10k: BIG },
  container_usage: { default: 2147483648, L1: 10737418240, L2: 53687091200, count10: BIG, bytes10k: 10000 },
};

interface Accounts {
  levels: string;
  containers: string;
  count10: string;
  bytes10k: string;
  misc: string;
}

const MODES: Array<{ name: string; precise: boolean; accounts: Accounts }> = [
  { name: 'cached mode', precise: false, accounts: { levels: 'qa3', containers: 'qa4', count10: 'qa5', bytes10k: 'qa6', misc: 'qa7' } },
  { name: 'precise mode', precise: true, accounts: { levels: 'qa9', containers: 'qa10', count10: 'qa11', bytes10k: 'qa12', misc: 'qa13' } },
];

const admin = (account: string) => [`${account}:admin`, `${account}pass`] as const;

for (const mode of MODES) {
  describe(`quota enforcement, ${mode.name}`, () => {
    let swift: string;
    let proxy: RunningProxy;
    let reseller: Login;
    const logins = new Map<string, Login>();

    const as = (account: string): Login => logins.get(account)!;
    const viaProxy = (account: string, path = '') => `${accountUrl(proxy.url, account)}${path}`;
    const direct = (account: string, path = '') => `${accountUrl(swift, account)}${path}`;
    const auth = (account: string) => ({ 'x-auth-token': as(account).token });

    async function setLevel(account: string, level: string): Promise<void> {
      const answer = await call('POST', viaProxy(account), { 'x-auth-token': reseller.token, 'x-account-meta-quota': level });
      assert.equal(answer.status, 204, answer.body);
    }

    async function storedLevel(account: string): Promise<string | undefined> {
      return (await call('HEAD', direct(account), { 'x-auth-token': reseller.token })).headers['x-account-meta-quota'];
    }

    async function containerUsage(account: string, container: string): Promise<{ objects: number; bytes: number }> {
      const head = await call('HEAD', direct(account, `/${container}`), { 'x-auth-token': reseller.token });
      assert.equal(head.status, 204);
      return { objects: Number(head.headers['x-container-object-count']), bytes: Number(head.headers['x-container-bytes-used']) };
    }

    /** A series' value in the proxy's /metrics (`series` is the line up to its value); fails when it is missing. */
    async function metricValue(series: string): Promise<number> {
      const metrics = await call('GET', `${proxy.url}/metrics`);
      assert.equal(metrics.status, 200);
      const line = metrics.body.split('\n').find((l) => l.startsWith(`${series} `));
      assert.ok(line, `${series} is not in /metrics`);
      return Number(line.slice(series.length + 1));
    }

    async function makeContainer(account: string, container: string): Promise<void> {
      const answer = await call('PUT', viaProxy(account, `/${container}`), auth(account));
      assert.ok(answer.status === 201 || answer.status === 202, `PUT container: ${answer.status} ${answer.body}`);
    }

    before(async () => {
      swift = await swiftUrl();
      proxy = await startProxy({ upstream: swift, quota: TEST_LEVELS, preciseMode: mode.precise, cacheTimeout: 30 });
      reseller = await login(proxy.url, 'reseller:reseller', 'reseller');
      for (const account of Object.values(mode.accounts)) logins.set(account, await login(proxy.url, ...admin(account)));
      await setLevel(mode.accounts.count10, 'count10');
      await setLevel(mode.accounts.bytes10k, 'bytes10k');
    });
    after(() => proxy.close());

    test('the seed flow: a reseller sets L1 with POST X-Account-Meta-Quota (204) and the limits follow', async () => {
      const account = mode.accounts.levels;
      const before = await call('HEAD', viaProxy(account), auth(account));
      assert.equal(before.headers['x-account-quota-level'], 'default');
      assert.equal(before.headers['x-account-quota-container-count'], '5');

      await setLevel(account, 'L1');
      assert.equal(await storedLevel(account), 'L1');
      const afterwards = await call('HEAD', viaProxy(account), auth(account));
      assert.equal(afterwards.headers['x-account-quota-level'], 'L1');
      assert.equal(afterwards.headers['x-account-quota-container-count'], '10');
      assert.equal(afterwards.headers['x-account-quota-container-bytes'], '10737418240');
    });

    test('nobody but a reseller admin may set or remove the level, in any header spelling', async () => {
      const account = mode.accounts.levels;
      await setLevel(account, 'L2');
      const attempts: Array<[Login, Record<string, string>]> = [
        [as(account), { 'x-account-meta-quota': 'L1' }],
        [as(account), { 'X-Account-Meta-QUOTA': 'default' }],
        [as(account), { x_account_meta_quota: 'L1' }],
        [as(account), { 'x-account_meta-quota': 'L1' }],
        [as(account), { 'x-remove-account-meta-quota': 'x' }],
        [as(account), { 'x-account-meta-quota': '' }],
      ];
      for (const [who, headers] of attempts) {
        const answer = await call('POST', viaProxy(account), { 'x-auth-token': who.token, ...headers });
        assert.equal(answer.status, 403, `${JSON.stringify(headers)} → ${answer.status}`);
        assert.match(answer.body, /reseller admin/);
      }
      // A user Swift does not let write the account gets Swift's own answer: nothing about quota.
      const reader = await login(proxy.url, `${account}:reader`, `${account}read`);
      const denied = await call('POST', viaProxy(account), { 'x-auth-token': reader.token, 'x-account-meta-quota': 'L1' });
      assert.equal(denied.status, 403);
      assert.doesNotMatch(denied.body, /quota|reseller/i);
      // A header the client controls does not make anyone a reseller.
      const forged = await call('POST', viaProxy(account), { ...auth(account), 'x-auth-groups': '.reseller_admin', 'x-account-meta-quota': 'L1' });
      assert.equal(forged.status, 403);
      const put = await call('PUT', viaProxy(account), { ...auth(account), 'x-account-meta-quota': 'L1' });
      assert.equal(put.status, 403);
      assert.equal(await storedLevel(account), 'L2');
    });

    test('a reseller gets 400 listing the valid levels for an unknown one, and may remove the level', async () => {
      const account = mode.accounts.levels;
      const unknown = await call('POST', viaProxy(account), { 'x-auth-token': reseller.token, 'x-account-meta-quota': 'GOLD' });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body, /default, L1, L2/);
      const removed = await call('POST', viaProxy(account), { 'x-auth-token': reseller.token, 'x-remove-account-meta-quota': 'x' });
      assert.equal(removed.status, 204);
      assert.equal(await storedLevel(account), undefined);
      const head = await call('HEAD', viaProxy(account), auth(account));
      assert.equal(head.headers['x-account-quota-level'], 'default');
    });

    test('reseller status survives a proxy restart (token issued before it)', async () => {
      const second = await startProxy({ upstream: swift, quota: TEST_LEVELS, preciseMode: mode.precise });
      try {
        const answer = await call('POST', `${accountUrl(second.url, mode.accounts.levels)}`, { 'x-auth-token': reseller.token, 'x-account-meta-quota': 'L1' });
        assert.equal(answer.status, 204);
        assert.equal(await storedLevel(mode.accounts.levels), 'L1');
      } finally {
        await second.close();
      }
    });

    test('an account whose stored level is no longer configured is held to default, not unlimited', async () => {
      const account = mode.accounts.misc;
      // Set straight in Swift, as an operator's old tooling might have.
      const set = await call('POST', direct(account), { 'x-auth-token': reseller.token, 'x-account-meta-quota': 'PLATINUM' });
      assert.equal(set.status, 204);
      const head = await call('HEAD', viaProxy(account), auth(account));
      assert.equal(head.headers['x-account-quota-level'], 'default');
      assert.equal(head.headers['x-account-quota-container-count'], '5');
    });

    test('the 6th container at level default (5) is refused with 403; re-PUT of an existing one is not', async () => {
      const account = mode.accounts.containers;
      for (let i = 1; i <= 5; i++) assert.equal((await call('PUT', viaProxy(account, `/c${i}`), auth(account))).status, 201);
      const sixth = await call('PUT', viaProxy(account, '/c6'), auth(account));
      assert.equal(sixth.status, 403);
      assert.match(sixth.body, /^Reached container limit of 5/);
      assert.equal(sixth.headers['x-quota-exceeded'], 'container_count');
      assert.equal(sixth.headers['x-quota-level'], 'default');
      assert.equal(sixth.headers['x-quota-limit'], '5');
      const again = await call('PUT', viaProxy(account, '/c3'), { ...auth(account), 'x-container-meta-color': 'blue' });
      assert.equal(again.status, 202);
      const listing = await call('GET', direct(account), { 'x-auth-token': reseller.token });
      assert.deepEqual(listing.body.trim().split('\n'), ['c1', 'c2', 'c3', 'c4', 'c5']);

      // Deleting one makes room again, without waiting for the cache.
      assert.equal((await call('DELETE', viaProxy(account, '/c5'), auth(account))).status, 204);
      assert.equal((await call('PUT', viaProxy(account, '/c6'), auth(account))).status, 201);
    });

    test('40 concurrent object PUTs into a container with object_count 10: exactly 10 accepted', async () => {
      const account = mode.accounts.count10;
      await makeContainer(account, 'race');
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) => call('PUT', viaProxy(account, `/race/o${i}`), auth(account), `object ${i}`)),
      );
      const statuses = answers.map((a) => a.status);
      assert.equal(statuses.filter((s) => s === 201).length, 10, statuses.join(' '));
      assert.equal(statuses.filter((s) => s === 413).length, 30, statuses.join(' '));
      const rejected = answers.find((a) => a.status === 413)!;
      assert.match(rejected.body, /^Upload exceeds quota\./);
      assert.equal(rejected.headers['x-quota-exceeded'], 'object_count');
      assert.equal(rejected.headers['x-quota-level'], 'count10');
      assert.equal((await containerUsage(account, 'race')).objects, 10);
    });

    test('races at the limit, repeated: 40 concurrent PUTs admit exactly 10, and 8 + 2 concurrent both pass, every round', async () => {
      // Timing-dependent races (a read under way while writes finish) show only sometimes: repeat them.
      const account = mode.accounts.count10;
      for (let round = 0; round < 8; round++) {
        const container = `rounds${round}`;
        await makeContainer(account, container);
        const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => call('PUT', viaProxy(account, `/${container}/o${i}`), auth(account), 'x')));
        assert.equal(answers.filter((a) => a.status === 201).length, 10, `round ${round}: ${answers.map((a) => a.status).join(' ')}`);

        const pair = `pair${round}`;
        await makeContainer(account, pair);
        for (let i = 0; i < 8; i++) assert.equal((await call('PUT', viaProxy(account, `/${pair}/o${i}`), auth(account), 'x')).status, 201);
        const last = await Promise.all([call('PUT', viaProxy(account, `/${pair}/a`), auth(account), 'x'), call('PUT', viaProxy(account, `/${pair}/b`), auth(account), 'x')]);
        assert.deepEqual(last.map((a) => a.status), [201, 201], `round ${round}: 8 + 2 reach the limit of 10 exactly`);
      }
    });

    test('40 concurrent 1000-byte PUTs into a container with container_usage 10000: exactly 10 accepted', async () => {
      const account = mode.accounts.bytes10k;
      await makeContainer(account, 'race');
      const body = Buffer.alloc(1000, 'x');
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => call('PUT', viaProxy(account, `/race/o${i}`), auth(account), body)));
      const statuses = answers.map((a) => a.status);
      assert.equal(statuses.filter((s) => s === 201).length, 10, statuses.join(' '));
      assert.equal(statuses.filter((s) => s === 413).length, 30, statuses.join(' '));
      assert.equal(answers.find((a) => a.status === 413)!.headers['x-quota-exceeded'], 'container_usage');
      assert.deepEqual(await containerUsage(account, 'race'), { objects: 10, bytes: 10000 });
    });

    test('sequential uploads past the limit are refused inside the cache window; a delete makes room', async () => {
      const account = mode.accounts.count10;
      await makeContainer(account, 'seq');
      for (let i = 0; i < 10; i++) {
        assert.equal((await call('PUT', viaProxy(account, `/seq/o${i}`), auth(account), 'x')).status, 201, `upload ${i}`);
      }
      assert.equal((await call('PUT', viaProxy(account, '/seq/o10'), auth(account), 'x')).status, 413);
      assert.equal((await call('DELETE', viaProxy(account, '/seq/o0'), auth(account))).status, 204);
      assert.equal((await call('PUT', viaProxy(account, '/seq/o10'), auth(account), 'x')).status, 201);
      assert.equal((await call('PUT', viaProxy(account, '/seq/o11'), auth(account), 'x')).status, 413);
      assert.equal((await containerUsage(account, 'seq')).objects, 10);
    });

    test('an overwrite at the count limit is accepted: it adds no object', async () => {
      const account = mode.accounts.count10;
      await makeContainer(account, 'full');
      for (let i = 0; i < 10; i++) assert.equal((await call('PUT', viaProxy(account, `/full/o${i}`), auth(account), 'x')).status, 201);
      assert.equal((await call('PUT', viaProxy(account, '/full/new'), auth(account), 'x')).status, 413);
      const overwrite = await call('PUT', viaProxy(account, '/full/o3'), auth(account), 'replaced');
      assert.equal(overwrite.status, 201);
      assert.equal((await call('GET', direct(account, '/full/o3'), auth(account))).body, 'replaced');
      assert.equal((await containerUsage(account, 'full')).objects, 10);
    });

    test('an overwrite is credited with the bytes of the object it replaces', async () => {
      const account = mode.accounts.bytes10k;
      await makeContainer(account, 'ow');
      assert.equal((await call('PUT', viaProxy(account, '/ow/a'), auth(account), Buffer.alloc(6000))).status, 201);
      // 6000 + 7000 would pass 10000, but 7000 replacing 6000 does not.
      assert.equal((await call('PUT', viaProxy(account, '/ow/b'), auth(account), Buffer.alloc(7000))).status, 413);
      assert.equal((await call('PUT', viaProxy(account, '/ow/a'), auth(account), Buffer.alloc(7000))).status, 201);
      assert.deepEqual(await containerUsage(account, 'ow'), { objects: 1, bytes: 7000 });
    });

    test('a chunked upload over the byte limit is cut with 413 and leaves no object', async () => {
      const account = mode.accounts.bytes10k;
      await makeContainer(account, 'chunked');
      async function* chunks(total: number) {
        for (let sent = 0; sent < total; sent += 1000) yield Buffer.alloc(1000, 'c');
      }
      const small = await call('PUT', viaProxy(account, '/chunked/small'), auth(account), Readable.from(chunks(4000)));
      assert.equal(small.status, 201);
      const big = await call('PUT', viaProxy(account, '/chunked/big'), auth(account), Readable.from(chunks(50_000)));
      assert.equal(big.status, 413);
      assert.equal(big.headers['x-quota-exceeded'], 'container_usage');
      assert.equal((await call('HEAD', direct(account, '/chunked/big'), auth(account))).status, 404);
      assert.deepEqual(await containerUsage(account, 'chunked'), { objects: 1, bytes: 4000 });
    });

    test('server-side copies over the byte limit are refused: COPY and PUT with X-Copy-From', async () => {
      const account = mode.accounts.bytes10k;
      await makeContainer(account, 'src');
      await makeContainer(account, 'dst');
      assert.equal((await call('PUT', viaProxy(account, '/src/six'), auth(account), Buffer.alloc(6000))).status, 201);
      assert.equal((await call('PUT', viaProxy(account, '/dst/first'), auth(account), Buffer.alloc(5000))).status, 201);

      const copy = await call('COPY', viaProxy(account, '/src/six'), { ...auth(account), destination: '/dst/copy' });
      assert.equal(copy.status, 413);
      const copyFrom = await call('PUT', viaProxy(account, '/dst/copy'), { ...auth(account), 'x-copy-from': 'src/six', 'content-length': '0' });
      assert.equal(copyFrom.status, 413);
      assert.equal((await call('HEAD', direct(account, '/dst/copy'), auth(account))).status, 404);

      // Into its own container (6000 + 6000 > 10000) too; once there is room, the copy passes and counts.
      assert.equal((await call('COPY', viaProxy(account, '/src/six'), { ...auth(account), destination: 'src/copy-of-six' })).status, 413);
      assert.equal((await call('DELETE', viaProxy(account, '/dst/first'), auth(account))).status, 204);
      assert.equal((await call('COPY', viaProxy(account, '/src/six'), { ...auth(account), destination: 'dst/copy' })).status, 201);
      assert.deepEqual(await containerUsage(account, 'dst'), { objects: 1, bytes: 6000 });
    });

    test('container HEAD shows the limits that apply; rejections are counted in /metrics', async () => {
      const account = mode.accounts.count10;
      const head = await call('HEAD', viaProxy(account, '/race'), auth(account));
      assert.equal(head.headers['x-container-quota-level'], 'count10');
      assert.equal(head.headers['x-container-quota-object-count'], '10');
      assert.equal(head.headers['x-container-quota-bytes'], String(BIG));
      // One more object into the full container ('race' holds 10): one rejection more, not merely a counter there.
      const series = 'swift_quota_proxy_quota_rejections_total{kind="object_count",level="count10"}';
      const rejectedBefore = await metricValue(series);
      const refused = await call('PUT', viaProxy(account, '/race/one-too-many'), auth(account), 'x');
      assert.equal(refused.status, 413);
      assert.equal(refused.headers['x-quota-exceeded'], 'object_count');
      assert.equal((await metricValue(series)) - rejectedBefore, 1);
      const metrics = await call('GET', `${proxy.url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /swift_quota_proxy_reservations_in_flight 0/);
    });
  });
}
