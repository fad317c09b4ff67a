/**
 * Account-wide limits per storage policy against the real Swift (issue 25): the test Swift has two policies,
 * Policy-0 (the default) and gold. `account_usage:gold` / `account_object_count:gold` cap what an account keeps
 * in its gold containers, exactly under concurrency, in both modes and across three proxies on one Redis, while
 * its other containers count only in its whole total. Every count is read on Swift directly, container by
 * container, each container's policy from its own HEAD. Accounts pol1..pol16.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { accountUrl, call, login } from '../helpers/http.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { archive, s3 } from '../adversarial/attacks.js';

/** Per-container kinds roomy: only the account's totals can refuse. */
const PER_POLICY = {
  container_count: { default: 20 },
  object_count: { default: 1000 },
  container_usage: { default: 10_000_000 },
  account_usage: { default: 15_000 },
  'account_usage:gold': { default: 6_000 },
  'account_object_count:GOLD': { default: 8 },
};

let nextAccount = 1;
async function tenant(swift: string): Promise<{ account: string; token: string; stored: () => Promise<Record<string, { objects: number; bytes: number }>> }> {
  const account = `pol${nextAccount++}`;
  assert.ok(nextAccount <= 17, 'the test file ran out of accounts');
  const reseller = await login(swift, 'reseller:reseller', 'reseller');
  const { token } = await login(swift, `${account}:admin`, `${account}pass`);
  // What Swift stores, per storage policy, summed from the containers' own HEADs.
  const stored = async () => {
    const listing = await call('GET', `${accountUrl(swift, account)}?format=json`, { 'x-auth-token': reseller.token });
    const names = listing.status === 204 ? [] : (JSON.parse(listing.body) as Array<{ name: string }>).map((c) => c.name);
    const out: Record<string, { objects: number; bytes: number }> = {};
    for (const name of names) {
      const head = await call('HEAD', `${accountUrl(swift, account)}/${encodeURIComponent(name)}`, { 'x-auth-token': reseller.token });
      const policy = head.headers['x-storage-policy']!;
      const sum = (out[policy] ??= { objects: 0, bytes: 0 });
      sum.objects += Number(head.headers['x-container-object-count']);
      sum.bytes += Number(head.headers['x-container-bytes-used']);
    }
    return out;
  };
  return { account, token, stored };
}

/** Containers gld1, gld2 (gold) and pln1, pln2 (the default policy) of the tenant. */
async function containers(proxy: RunningProxy, who: { account: string; token: string }): Promise<void> {
  for (const [name, policy] of [['gld1', 'gold'], ['gld2', 'Gold'], ['pln1', undefined], ['pln2', undefined]] as const) {
    const headers = { 'x-auth-token': who.token, ...(policy ? { 'x-storage-policy': policy } : {}) };
    assert.equal((await call('PUT', `${accountUrl(proxy.url, who.account)}/${name}`, headers)).status, 201);
  }
}

/** `n` uploads of `size` bytes at once into `into` (round robin), spread over `proxies`; the statuses. */
async function uploads(proxies: RunningProxy[], who: { account: string; token: string }, into: readonly string[], n: number, size: number, tag: string): Promise<number[]> {
  const answers = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      call('PUT', `${accountUrl(proxies[i % proxies.length]!.url, who.account)}/${into[i % into.length]}/${tag}${i}`, { 'x-auth-token': who.token }, Buffer.alloc(size, 'x')),
    ),
  );
  for (const answer of answers.filter((a) => a.status !== 201)) assert.equal(answer.status, 413, answer.body);
  return answers.map((a) => a.status);
}

for (const precise of [false, true]) {
  const mode = precise ? 'precise' : 'cached';
  describe(`account-wide limits per storage policy, ${mode} mode`, () => {
    let swift: string;
    let proxy: RunningProxy;
    let options: ProxyOptions;
    before(async () => {
      swift = await swiftUrl();
      options = { upstream: swift, quota: PER_POLICY, preciseMode: precise };
      proxy = await startProxy(options);
    });
    after(() => proxy.close());

    test('15 uploads of 1,000 bytes at once into gold store exactly 6 (account_usage:gold 6,000); then 15 into Policy-0 exactly 9 (account_usage 15,000)', async () => {
      const who = await tenant(swift);
      await containers(proxy, who);
      const gold = await uploads([proxy], who, ['gld1', 'gld2'], 15, 1_000, 'g');
      assert.deepEqual(await who.stored(), { gold: { objects: 6, bytes: 6_000 }, 'Policy-0': { objects: 0, bytes: 0 } }, `answers ${gold.join(' ')}`);
      const plain = await uploads([proxy], who, ['pln1', 'pln2'], 15, 1_000, 'p');
      assert.deepEqual(await who.stored(), { gold: { objects: 6, bytes: 6_000 }, 'Policy-0': { objects: 9, bytes: 9_000 } }, `answers ${plain.join(' ')}`);
    });

    test('a refusal names the policy; the account shows its per-policy limits as account_quotas names them', async () => {
      const who = await tenant(swift);
      await containers(proxy, who);
      const auth = { 'x-auth-token': who.token };
      assert.equal((await call('PUT', `${accountUrl(proxy.url, who.account)}/gld1/big`, auth, Buffer.alloc(6_000, 'b'))).status, 201);
      const refused = await call('PUT', `${accountUrl(proxy.url, who.account)}/gld2/one-more`, auth, 'x');
      assert.equal(refused.status, 413, refused.body);
      assert.equal(refused.headers['x-quota-exceeded'], 'account_usage');
      assert.equal(refused.headers['x-quota-policy'], 'gold');
      assert.match(refused.body, /account_usage:gold/);
      assert.equal((await call('PUT', `${accountUrl(proxy.url, who.account)}/pln1/room`, auth, Buffer.alloc(9_000, 'r'))).status, 201, 'Policy-0 has room');
      const head = await call('HEAD', accountUrl(proxy.url, who.account), auth);
      assert.equal(head.headers['x-account-quota-bytes'], '15000');
      assert.equal(head.headers['x-account-quota-bytes-policy-gold'], '6000');
      assert.equal(head.headers['x-account-quota-count-policy-gold'], '8');
    });

    test('account_object_count:gold 8: 20 small uploads at once into gold store exactly 8', async () => {
      const who = await tenant(swift);
      await containers(proxy, who);
      const statuses = await uploads([proxy], who, ['gld1', 'gld2'], 20, 10, 's');
      assert.deepEqual((await who.stored()).gold, { objects: 8, bytes: 80 }, `answers ${statuses.join(' ')}`);
    });

    test('three proxies on one Redis: 15 uploads into gold spread over them store exactly 6', async () => {
      const shared = { ...options, extraProxyLines: [`ledger = ${await redisUrl()}`, `ledger_prefix = pol-${mode}-${randomBytes(3).toString('hex')}:`] };
      const proxies = [await startProxy(shared), await startProxy(shared), await startProxy(shared)];
      try {
        const who = await tenant(swift);
        await containers(proxies[0]!, who);
        const statuses = await uploads(proxies, who, ['gld1', 'gld2'], 15, 1_000, 'g');
        assert.deepEqual((await who.stored()).gold, { objects: 6, bytes: 6_000 }, `answers ${statuses.join(' ')}`);
      } finally {
        await Promise.all(proxies.map((p) => p.close()));
      }
    });

    test('a chunked upload into gold is cut where it would pass the policy\'s total; a delete gives the room back', async () => {
      const who = await tenant(swift);
      await containers(proxy, who);
      const auth = { 'x-auth-token': who.token };
      const url = (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
      assert.equal((await call('PUT', url('/gld1/a'), auth, Buffer.alloc(4_000, 'a'))).status, 201);
      const chunked = await call('PUT', url('/gld2/b'), auth, Readable.from([Buffer.alloc(1_500, 'b'), Buffer.alloc(1_500, 'b')]));
      assert.equal(chunked.status, 413, chunked.body);
      assert.equal(chunked.headers['x-quota-policy'], 'gold');
      assert.deepEqual((await who.stored()).gold, { objects: 1, bytes: 4_000 });
      assert.equal((await call('DELETE', url('/gld1/a'), auth)).status, 204);
      assert.equal((await call('PUT', url('/gld2/b'), auth, Readable.from([Buffer.alloc(3_000, 'b'), Buffer.alloc(3_000, 'b')]))).status, 201);
      assert.deepEqual((await who.stored()).gold, { objects: 1, bytes: 6_000 });
    });
  });
}

describe('every door counts in the policy\'s total: bulk extraction, S3, copies', () => {
  let swift: string;
  let proxy: RunningProxy;
  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, quota: PER_POLICY, preciseMode: false });
  });
  after(() => proxy.close());

  test('6,000 bytes into gold through bulk and S3, then nothing more through any door; Policy-0 still takes writes', async () => {
    const who = await tenant(swift);
    await containers(proxy, who);
    const auth = { 'x-auth-token': who.token };
    const url = (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
    // Bulk: 2,000 into Policy-0 and 3,000 into gold fit; 3,001 more into gold does not.
    const extracted = await call('PUT', `${url('')}?extract-archive=tar`, { ...auth, accept: 'application/json' }, await archive([['pln1/b1', 2_000], ['gld1/b2', 3_000], ['gld2/b3', 3_001]]));
    const bulk = JSON.parse(extracted.body) as { 'Number Files Created': number; Errors: Array<[string, string]> };
    assert.equal(bulk['Number Files Created'], 2, extracted.body);
    assert.match(bulk.Errors.map((e) => e[1]).join(' '), /413/);
    const [put] = await s3([{ endpoint: proxy.url, access: `${who.account}:admin`, secret: `${who.account}pass`, op: 'put_object', bucket: 'gld2', key: 's3', size: 3_000 }]);
    assert.equal(put!.code, undefined, JSON.stringify(put));
    assert.deepEqual((await who.stored()).gold, { objects: 2, bytes: 6_000 });

    const [more] = await s3([{ endpoint: proxy.url, access: `${who.account}:admin`, secret: `${who.account}pass`, op: 'put_object', bucket: 'gld1', key: 'more', size: 1 }]);
    assert.equal(more!.code, 'EntityTooLarge', JSON.stringify(more));
    assert.equal((await call('PUT', url('/gld1/copy'), { ...auth, 'x-copy-from': 'pln1/b1' }, '')).status, 413, 'a copy from Policy-0 into gold');
    assert.equal((await call('PUT', url('/pln2/copy'), { ...auth, 'x-copy-from': 'gld1/b2' }, '')).status, 201, 'a copy from gold into Policy-0');
    assert.deepEqual(await who.stored(), { gold: { objects: 2, bytes: 6_000 }, 'Policy-0': { objects: 2, bytes: 5_000 } });
  });
});
