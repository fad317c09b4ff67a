/**
 * The account-wide kinds against the real Swift (issue 25): `account_usage` and `account_object_count` cap an
 * account's total across its containers, exactly under concurrency, in both modes, in one proxy and across
 * three proxies on one Redis; a level with only account-wide limits takes a large SLO. Every count is read on
 * Swift directly, container by container (the account's own totals lag behind by up to 300 s).
 * Accounts aw1..aw30.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { accountUrl, call, login } from '../helpers/http.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { archive, s3 } from '../adversarial/attacks.js';
import { formBody, formSignature } from '../adversarial/signing.js';

const CONTAINERS = ['c1', 'c2', 'c3', 'c4'];
/** Per-container kinds roomy: only the account's total can refuse. */
const ACCOUNT_WIDE = {
  container_count: { default: 20 },
  object_count: { default: 1000 },
  container_usage: { default: 10_000_000 },
  account_usage: { default: 40_000 },
  account_object_count: { default: 30 },
};

let nextAccount = 1;
async function tenant(swift: string, level?: string): Promise<{ account: string; token: string; total: () => Promise<{ objects: number; bytes: number }> }> {
  const account = `aw${nextAccount++}`;
  assert.ok(nextAccount <= 31, 'the test file ran out of accounts');
  const reseller = await login(swift, 'reseller:reseller', 'reseller');
  if (level) assert.equal((await call('POST', accountUrl(swift, account), { 'x-auth-token': reseller.token, 'x-account-meta-quota': level })).status, 204);
  const { token } = await login(swift, `${account}:admin`, `${account}pass`);
  const total = async () => {
    const listing = await call('GET', `${accountUrl(swift, account)}?format=json`, { 'x-auth-token': reseller.token });
    const names = listing.status === 204 ? [] : (JSON.parse(listing.body) as Array<{ name: string }>).map((c) => c.name);
    let objects = 0;
    let bytes = 0;
    for (const name of names) {
      const head = await call('HEAD', `${accountUrl(swift, account)}/${encodeURIComponent(name)}`, { 'x-auth-token': reseller.token });
      objects += Number(head.headers['x-container-object-count']);
      bytes += Number(head.headers['x-container-bytes-used']);
    }
    return { objects, bytes };
  };
  return { account, token, total };
}

/** 40 uploads of `size` bytes at once, spread over the four containers and over `proxies`. */
async function forty(proxies: RunningProxy[], who: { account: string; token: string }, size: number): Promise<number[]> {
  for (const container of CONTAINERS) assert.equal((await call('PUT', `${accountUrl(proxies[0]!.url, who.account)}/${container}`, { 'x-auth-token': who.token })).status, 201);
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      call('PUT', `${accountUrl(proxies[i % proxies.length]!.url, who.account)}/${CONTAINERS[i % 4]}/o${i}`, { 'x-auth-token': who.token }, Buffer.alloc(size, 'x')),
    ),
  );
  for (const answer of answers.filter((a) => a.status !== 201)) {
    assert.equal(answer.status, 413, answer.body);
    assert.match(answer.headers['x-quota-exceeded'] ?? '', /^account_(usage|object_count)$/);
  }
  return answers.map((a) => a.status);
}

for (const precise of [false, true]) {
  const mode = precise ? 'precise' : 'cached';
  describe(`account-wide limits, ${mode} mode`, () => {
    let swift: string;
    let proxy: RunningProxy;
    let options: ProxyOptions;
    before(async () => {
      swift = await swiftUrl();
      options = { upstream: swift, quota: ACCOUNT_WIDE, preciseMode: precise };
      proxy = await startProxy(options);
    });
    after(() => proxy.close());

    test('40 uploads of 1,500 bytes over 4 containers under account_usage 40,000: exactly 26 stored', async () => {
      const who = await tenant(swift);
      const statuses = await forty([proxy], who, 1_500);
      const stored = await who.total();
      assert.deepEqual(stored, { objects: 26, bytes: 39_000 }, `answers ${statuses.join(' ')}`);
      assert.equal(statuses.filter((s) => s === 201).length, 26);
    });

    test('40 uploads of 100 bytes over 4 containers under account_object_count 30: exactly 30 stored', async () => {
      const who = await tenant(swift);
      const statuses = await forty([proxy], who, 100);
      assert.deepEqual(await who.total(), { objects: 30, bytes: 3_000 }, `answers ${statuses.join(' ')}`);
    });

    test('three proxies on one Redis: 40 uploads of 1,500 bytes spread over them store exactly 26', async () => {
      const shared = { ...options, extraProxyLines: [`ledger = ${await redisUrl()}`, `ledger_prefix = aw-${mode}-${randomBytes(3).toString('hex')}:`] };
      const proxies = [await startProxy(shared), await startProxy(shared), await startProxy(shared)];
      try {
        const who = await tenant(swift);
        const statuses = await forty(proxies, who, 1_500);
        assert.deepEqual(await who.total(), { objects: 26, bytes: 39_000 }, `answers ${statuses.join(' ')}`);
      } finally {
        await Promise.all(proxies.map((p) => p.close()));
      }
    });

    test('an overwrite at the limit passes (it replaces its bytes); a delete gives room back at once', async () => {
      const who = await tenant(swift);
      await forty([proxy], who, 1_500);
      const auth = { 'x-auth-token': who.token };
      const url = (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
      // Which uploads were admitted depends on the order they were decided in: the first container holding one.
      let container = '';
      let first = '';
      for (const candidate of CONTAINERS) {
        const names = (JSON.parse((await call('GET', `${url(`/${candidate}`)}?format=json`, auth)).body || '[]') as Array<{ name: string }>).map((o) => o.name);
        if (names.length > 0) [container, first] = [candidate, names[0]!];
        if (first) break;
      }
      const other = CONTAINERS.find((c) => c !== container)!;
      assert.equal((await call('PUT', url(`/${container}/${first}`), auth, Buffer.alloc(1_500, 'y'))).status, 201, 'overwrite of the same size');
      assert.equal((await call('PUT', url(`/${container}/new`), auth, Buffer.alloc(1_500, 'y'))).status, 413, 'one more');
      assert.equal((await call('DELETE', url(`/${container}/${first}`), auth)).status, 204);
      assert.equal((await call('PUT', url(`/${other}/new`), auth, Buffer.alloc(1_500, 'y'))).status, 201, 'in the room the delete freed, in another container');
      assert.deepEqual(await who.total(), { objects: 26, bytes: 39_000 });
    });

    test('a chunked upload is cut where it would pass the account\'s total', async () => {
      const who = await tenant(swift);
      const auth = { 'x-auth-token': who.token };
      const url = (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
      for (const container of ['c1', 'c2']) assert.equal((await call('PUT', url(`/${container}`), auth)).status, 201);
      assert.equal((await call('PUT', url('/c1/a'), auth, Buffer.alloc(30_000, 'a'))).status, 201);
      const { Readable } = await import('node:stream');
      const chunked = await call('PUT', url('/c2/b'), auth, Readable.from([Buffer.alloc(8_000, 'b'), Buffer.alloc(8_000, 'b')]));
      assert.equal(chunked.status, 413, chunked.body);
      assert.equal(chunked.headers['x-quota-exceeded'], 'account_usage');
      assert.deepEqual(await who.total(), { objects: 1, bytes: 30_000 });
    });
  });
}

describe('every door counts in the account\'s total: plain API, bulk extraction, FormPost, S3', () => {
  let swift: string;
  let proxy: RunningProxy;
  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, quota: ACCOUNT_WIDE, preciseMode: false });
  });
  after(() => proxy.close());

  test('40,000 bytes in four containers through four doors, then nothing more through any of them', async () => {
    const who = await tenant(swift);
    const auth = { 'x-auth-token': who.token };
    const url = (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
    for (const container of CONTAINERS) assert.equal((await call('PUT', url(`/${container}`), auth, undefined)).status, 201);
    assert.equal((await call('POST', url('/c3'), { ...auth, 'x-container-meta-temp-url-key': 'formkey' })).status, 204);
    assert.equal((await call('PUT', url('/c1/plain'), auth, Buffer.alloc(10_000, 'p'))).status, 201);

    // Bulk: 15,000 and 5,000 bytes fit (30,000), the third member's 10,001 does not.
    const extracted = await call('PUT', `${url('')}?extract-archive=tar`, { ...auth, accept: 'application/json' }, await archive([['c2/b1', 15_000], ['c4/b2', 5_000], ['c2/b3', 10_001]]));
    const bulk = JSON.parse(extracted.body) as { 'Number Files Created': number; Errors: Array<[string, string]> };
    assert.equal(bulk['Number Files Created'], 2, extracted.body);
    assert.match(bulk.Errors.map((e) => e[1]).join(' '), /413/);

    // FormPost: 6,000 and 4,000 bytes fit (40,000 exactly), the third file is cut.
    const expires = Math.floor(Date.now() / 1000) + 300;
    const fields = { path: `/v1/AUTH_${who.account}/c3/`, maxFileSize: 1_000_000, maxFileCount: 10, expires };
    const form = formBody('AwBoundary', { max_file_size: '1000000', max_file_count: '10', expires: String(expires), signature: formSignature(fields, 'formkey') }, [
      { name: 'f1', filename: 'f1', content: Buffer.alloc(6_000, 'f') },
      { name: 'f2', filename: 'f2', content: Buffer.alloc(4_000, 'f') },
      { name: 'f3', filename: 'f3', content: Buffer.alloc(10, 'f') },
    ]);
    const posted = await call('POST', url('/c3/'), { 'content-type': 'multipart/form-data; boundary=AwBoundary' }, form);
    assert.ok(posted.status === 413 || posted.status >= 300, `${posted.status} ${posted.body}`);
    assert.deepEqual(await who.total(), { objects: 5, bytes: 40_000 });

    // Nothing more through any door: S3, a plain PUT, a copy.
    const [put] = await s3([{ endpoint: proxy.url, access: `${who.account}:admin`, secret: `${who.account}pass`, op: 'put_object', bucket: 'c4', key: 's3', size: 1 }]);
    assert.equal(put!.code, 'EntityTooLarge', JSON.stringify(put));
    assert.equal((await call('PUT', url('/c4/one'), auth, 'x')).status, 413);
    assert.equal((await call('PUT', url('/c4/copy'), { ...auth, 'x-copy-from': 'c1/plain' }, '')).status, 413);
    assert.deepEqual(await who.total(), { objects: 5, bytes: 40_000 });
  });
});

describe('a level with only account-wide limits (the per-container kinds left out)', () => {
  let swift: string;
  let proxy: RunningProxy;
  const MB = 1024 * 1024;
  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, quota: { container_count: { default: 20 }, account_usage: { default: 30 * MB } }, preciseMode: true });
  });
  after(() => proxy.close());

  test('a 25 MB SLO in 1 MB segments fits under account_usage 30 MB; the next one is refused before the total passes it', async () => {
    const who = await tenant(swift);
    const auth = { 'x-auth-token': who.token };
    const url = (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
    for (const container of ['c', 'segs']) assert.equal((await call('PUT', url(`/${container}`), auth)).status, 201);
    const upload = async (name: string) => {
      const segments: Array<{ path: string }> = [];
      for (let i = 0; i < 25; i++) {
        const put = await call('PUT', url(`/segs/${name}/${String(i).padStart(2, '0')}`), auth, Buffer.alloc(MB, i));
        if (put.status !== 201) return { refusedAt: i, answer: put };
        segments.push({ path: `/segs/${name}/${String(i).padStart(2, '0')}` });
      }
      const manifest = await call('PUT', `${url(`/c/${name}`)}?multipart-manifest=put`, auth, JSON.stringify(segments));
      return { refusedAt: undefined, answer: manifest };
    };
    const first = await upload('one');
    assert.equal(first.refusedAt, undefined, `segment ${first.refusedAt} refused: ${first.answer.body}`);
    assert.equal(first.answer.status, 201, first.answer.body);
    const whole = await call('GET', url('/c/one'), auth);
    assert.equal(whole.status, 200);
    assert.equal(Number(whole.headers['content-length']), 25 * MB);

    const second = await upload('two');
    assert.equal(second.refusedAt, 4, `the 5th segment would pass 30 MB (25 MB and a manifest stored): ${second.refusedAt} ${second.answer.status}`);
    assert.equal(second.answer.status, 413);
    assert.equal(second.answer.headers['x-quota-exceeded'], 'account_usage');
    const total = await who.total();
    assert.ok(total.bytes <= 30 * MB, `${total.bytes} bytes stored`);
    assert.equal(total.objects, 26 + 4);
  });
});
