/**
 * A hostile review of the account-wide limits per storage policy (`account_usage:<policy>`; src/quota/total-admission.ts)
 * against the real Swift (policies Policy-0, the default, and gold): ways a tenant stores more in a policy than its
 * limit lets it. Every outcome is read on Swift directly, container by container, each container's policy from its
 * own HEAD. Accounts pol17..pol30.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { accountUrl, call, login } from '../helpers/http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { archive, s3 } from './attacks.js';

/**
 * Only per-policy limits: no container_count, so a container PUT is not admitted (nothing to count), as in a
 * deployment that caps what an account keeps per policy and nothing else. Level `plain` caps the default policy.
 */
const QUOTA = {
  'account_usage:gold': { default: 2_500, plain: 1_000_000 },
  'account_usage:Policy-0': { default: 5_000, plain: 2_500 },
};

type Stored = Record<string, { objects: number; bytes: number }>;

interface Who {
  account: string;
  token: string;
  /** What Swift stores, per storage policy, summed from the containers' own HEADs. */
  stored(): Promise<Stored>;
}

let nextAccount = 17;
async function tenant(swift: string, level?: string): Promise<Who> {
  const account = `pol${nextAccount++}`;
  assert.ok(nextAccount <= 31, 'the test file ran out of accounts');
  const reseller = await login(swift, 'reseller:reseller', 'reseller');
  const { token } = await login(swift, `${account}:admin`, `${account}pass`);
  // The level straight on Swift (the service identity reads it from the account's metadata).
  if (level) assert.equal((await call('POST', accountUrl(swift, account), { 'x-auth-token': reseller.token, 'x-account-meta-quota': level })).status, 204);
  const stored = async () => {
    const listing = await call('GET', `${accountUrl(swift, account)}?format=json`, { 'x-auth-token': reseller.token });
    const names = listing.status === 204 ? [] : (JSON.parse(listing.body) as Array<{ name: string }>).map((c) => c.name);
    const out: Stored = {};
    for (const name of names) {
      const head = await call('HEAD', `${accountUrl(swift, account)}/${encodeURIComponent(name)}`, { 'x-auth-token': reseller.token });
      const sum = (out[head.headers['x-storage-policy']!] ??= { objects: 0, bytes: 0 });
      sum.objects += Number(head.headers['x-container-object-count']);
      sum.bytes += Number(head.headers['x-container-bytes-used']);
    }
    return out;
  };
  return { account, token, stored };
}

const bytesIn = (stored: Stored, policy: string) => stored[policy]?.bytes ?? 0;

describe('per-policy limits under attack', () => {
  let swift: string;
  let proxy: RunningProxy;
  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, quota: QUOTA, preciseMode: false });
  });
  after(() => proxy.close());

  const via = (who: Who) => (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
  const auth = (who: Who) => ({ 'x-auth-token': who.token });

  test('legacy stack mode: overwrites in a Policy-0 container archive into a gold versions container: gold\'s limit holds', async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/garch'), { ...auth(who), 'x-storage-policy': 'gold' })).status, 201);
    assert.equal((await call('PUT', url('/plain'), { ...auth(who), 'x-versions-location': 'garch' })).status, 201);
    for (const name of ['a', 'b', 'c']) assert.equal((await call('PUT', url(`/plain/${name}`), auth(who), Buffer.alloc(1_000, name))).status, 201);
    const answers: number[] = [];
    // Each overwrite moves 1,000 bytes into gold (2,500 allowed): the third must not.
    for (const name of ['a', 'b', 'c']) answers.push((await call('PUT', url(`/plain/${name}`), auth(who), 'x')).status);
    const stored = await who.stored();
    assert.ok(bytesIn(stored, 'gold') <= 2_500, `gold holds ${bytesIn(stored, 'gold')} bytes (answers ${answers.join(' ')})`);
    assert.deepEqual(answers, [201, 201, 413]);
  });

  test('legacy history mode: deletes in a Policy-0 container move the objects into a gold history container: gold\'s limit holds', async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/ghist'), { ...auth(who), 'x-storage-policy': 'gold' })).status, 201);
    assert.equal((await call('PUT', url('/plain'), { ...auth(who), 'x-history-location': 'ghist' })).status, 201);
    for (const name of ['a', 'b', 'c']) assert.equal((await call('PUT', url(`/plain/${name}`), auth(who), Buffer.alloc(1_000, name))).status, 201);
    const answers: number[] = [];
    for (const name of ['a', 'b', 'c']) answers.push((await call('DELETE', url(`/plain/${name}`), auth(who))).status);
    const stored = await who.stored();
    assert.ok(bytesIn(stored, 'gold') <= 2_500, `gold holds ${bytesIn(stored, 'gold')} bytes (answers ${answers.join(' ')})`);
    assert.deepEqual(answers, [204, 204, 413]);
  });

  test('legacy stack mode: a delete restores a version from a gold versions container into a limited Policy-0 container: Policy-0\'s limit holds', async () => {
    const who = await tenant(swift, 'plain');
    const url = via(who);
    assert.equal((await call('PUT', url('/garch'), { ...auth(who), 'x-storage-policy': 'gold' })).status, 201);
    assert.equal((await call('PUT', url('/plain'), { ...auth(who), 'x-versions-location': 'garch' })).status, 201);
    // Versions put straight into the versions container (gold has room), named as Swift names them.
    for (const name of ['x', 'y']) {
      assert.equal((await call('PUT', url(`/garch/001${name}/0000000001.00000`), auth(who), Buffer.alloc(2_000, name))).status, 201);
      assert.equal((await call('PUT', url(`/plain/${name}`), auth(who), name)).status, 201);
    }
    // Each delete copies 2,000 bytes back into Policy-0 (2,500 allowed): the second must not.
    const answers = [(await call('DELETE', url('/plain/x'), auth(who))).status, (await call('DELETE', url('/plain/y'), auth(who))).status];
    const stored = await who.stored();
    assert.ok(bytesIn(stored, 'Policy-0') <= 2_500, `Policy-0 holds ${bytesIn(stored, 'Policy-0')} bytes (answers ${answers.join(' ')})`);
    assert.deepEqual(answers, [204, 413]);
  });

  test('a container the proxy has read as missing, made in gold since (a PUT it does not count): gold\'s limit holds', async () => {
    const who = await tenant(swift);
    const url = via(who);
    // The proxy reads the container for this write (Swift: 404) and keeps the reading for cache_timeout.
    assert.equal((await call('PUT', url('/late/probe'), auth(who), 'x')).status, 404);
    assert.equal((await call('PUT', url('/late'), { ...auth(who), 'x-storage-policy': 'gold' })).status, 201);
    const answers: number[] = [];
    for (const name of ['a', 'b', 'c']) answers.push((await call('PUT', url(`/late/${name}`), auth(who), Buffer.alloc(1_000, name))).status);
    const stored = await who.stored();
    assert.ok(bytesIn(stored, 'gold') <= 2_500, `gold holds ${bytesIn(stored, 'gold')} bytes (answers ${answers.join(' ')})`);
    assert.deepEqual(answers, [201, 201, 413]);
  });

  test('bulk extraction makes new containers in the default policy: Policy-0\'s limit holds', async () => {
    const who = await tenant(swift, 'plain');
    const extracted = await call('PUT', `${via(who)('')}?extract-archive=tar`, { ...auth(who), accept: 'application/json' }, await archive([['new1/a', 1_000], ['new1/b', 1_000], ['new2/c', 1_000]]));
    const stored = await who.stored();
    assert.ok(bytesIn(stored, 'Policy-0') <= 2_500, `Policy-0 holds ${bytesIn(stored, 'Policy-0')} bytes (${extracted.body})`);
    const bulk = JSON.parse(extracted.body) as { 'Number Files Created': number; Errors: Array<[string, string]> };
    assert.equal(bulk['Number Files Created'], 2, extracted.body);
  });
});

describe('per-policy limits under attack, two proxies on one Redis', () => {
  let swift: string;
  let proxies: RunningProxy[];
  before(async () => {
    swift = await swiftUrl();
    // container_count limited: a container PUT is admitted (and the proxy that took it reads the container again).
    const shared = {
      upstream: swift,
      quota: { container_count: { default: 20 }, 'account_usage:gold': { default: 2_500 } },
      preciseMode: false,
      extraProxyLines: [`ledger = ${await redisUrl()}`, `ledger_prefix = polatk-${randomBytes(3).toString('hex')}:`],
    };
    proxies = [await startProxy(shared), await startProxy(shared)];
  });
  after(() => Promise.all(proxies.map((proxy) => proxy.close())));

  test('a container deleted and made again in gold through one proxy, while the other has it read as Policy-0: gold\'s limit holds', async () => {
    const who = await tenant(swift);
    const [a, b] = proxies.map((proxy) => (path: string) => `${accountUrl(proxy.url, who.account)}${path}`) as [(p: string) => string, (p: string) => string];
    const auth = { 'x-auth-token': who.token };
    assert.equal((await call('PUT', a('/c'), auth)).status, 201);
    assert.equal((await call('PUT', a('/c/o'), auth, 'x')).status, 201); // proxy a reads /c: Policy-0
    assert.equal((await call('DELETE', b('/c/o'), auth)).status, 204);
    assert.equal((await call('DELETE', b('/c'), auth)).status, 204);
    assert.equal((await call('PUT', b('/c'), { ...auth, 'x-storage-policy': 'gold' })).status, 201);
    const answers: number[] = [];
    for (const name of ['a', 'b', 'c']) answers.push((await call('PUT', a(`/c/${name}`), auth, Buffer.alloc(1_000, name))).status);
    const stored = await who.stored();
    assert.ok(bytesIn(stored, 'gold') <= 2_500, `gold holds ${bytesIn(stored, 'gold')} bytes (answers ${answers.join(' ')})`);
    assert.deepEqual(answers, [201, 201, 413]);
  });

  test('S3 multipart: the segments container s3api makes in the bucket\'s policy (gold), read as missing by the other proxy: gold\'s limit holds', async () => {
    const who = await tenant(swift);
    const [a, b] = proxies as [RunningProxy, RunningProxy];
    const auth = { 'x-auth-token': who.token };
    assert.equal((await call('PUT', `${accountUrl(a.url, who.account)}/gbkt`, { ...auth, 'x-storage-policy': 'gold' })).status, 201);
    // Proxy b reads gbkt+segments for this write (Swift: 404), and keeps the reading for cache_timeout.
    assert.equal((await call('PUT', `${accountUrl(b.url, who.account)}/gbkt+segments/probe`, auth, 'x')).status, 404);
    const user = { access: `${who.account}:admin`, secret: `${who.account}pass` };
    const [initiated] = await s3([{ endpoint: a.url, ...user, op: 'initiate', bucket: 'gbkt', key: 'k' }]);
    assert.ok(initiated!.ok, JSON.stringify(initiated));
    const parts = await s3([1, 2, 3].map((part) => ({ endpoint: b.url, ...user, op: 'upload_part', bucket: 'gbkt', key: 'k', upload_id: initiated!.upload_id, part, size: 1_000 })));
    const stored = await who.stored();
    assert.ok(bytesIn(stored, 'gold') <= 2_500, `gold holds ${bytesIn(stored, 'gold')} bytes (${JSON.stringify(parts)})`);
    assert.deepEqual(parts.map((part) => part.code ?? 'ok'), ['ok', 'ok', 'EntityTooLarge']);
  });
});
