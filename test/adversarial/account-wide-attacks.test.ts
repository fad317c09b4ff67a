/**
 * A hostile review of the account-wide kinds (`account_usage`, `account_object_count`; src/quota/account-total.ts)
 * against the real Swift: what a tenant stores past them, what the proxy refuses that fits, what it costs.
 * Every outcome is read on Swift directly, container by container. Accounts aw20..aw30.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { accountUrl, call, login } from '../helpers/http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { rawRequest } from '../helpers/raw-http.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { s3 } from './attacks.js';

/** Per-container kinds roomy: only the account's total can refuse. */
const QUOTA = {
  container_count: { default: 400 },
  object_count: { default: 1000 },
  container_usage: { default: 10_000_000 },
  account_usage: { default: 10_000 },
  account_object_count: { default: 6 },
};

interface Who {
  account: string;
  token: string;
  /** The account's total as Swift has it now: the sum of its containers' HEADs. */
  total(): Promise<{ objects: number; bytes: number }>;
}

/** A request sent as written (no URL normalising), with a token and maybe a body. */
async function raw(origin: string, method: string, target: string, token: string, body?: Buffer) {
  const host = new URL(origin).host;
  const headers: Array<[string, string]> = [['Host', host], ['X-Auth-Token', token], ['Connection', 'close']];
  if (method !== 'HEAD' && method !== 'GET') headers.push(['Content-Length', String(body?.length ?? 0)]);
  return rawRequest(origin, method, target, headers, body).response;
}

let nextAccount = 20;
async function tenant(swift: string): Promise<Who> {
  const account = `aw${nextAccount++}`;
  assert.ok(nextAccount <= 31, 'the test file ran out of accounts');
  const reseller = await login(swift, 'reseller:reseller', 'reseller');
  const { token } = await login(swift, `${account}:admin`, `${account}pass`);
  const total = async () => {
    let objects = 0;
    let bytes = 0;
    for (let marker = ''; ; ) {
      const listing = await call('GET', `${accountUrl(swift, account)}?format=json&marker=${encodeURIComponent(marker)}`, { 'x-auth-token': reseller.token });
      const names = listing.status === 204 ? [] : (JSON.parse(listing.body) as Array<{ name: string }>).map((c) => c.name);
      if (names.length === 0) break;
      for (const name of names) {
        // Raw: a URL library would take "." and ".." for path segments.
        const head = await raw(swift, 'HEAD', `/v1/AUTH_${account}/${encodeURIComponent(name)}`, reseller.token);
        assert.equal(head.status, 204, `HEAD of container ${JSON.stringify(name)}: ${head.status}`);
        objects += Number(head.headers['x-container-object-count']);
        bytes += Number(head.headers['x-container-bytes-used']);
      }
      marker = names.at(-1)!;
    }
    return { objects, bytes };
  };
  return { account, token, total };
}

describe('account-wide kinds under attack', () => {
  let swift: string;
  let proxy: RunningProxy;
  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, quota: QUOTA, preciseMode: false });
  });
  after(() => proxy.close());

  const via = (who: Who) => (path: string) => `${accountUrl(proxy.url, who.account)}${path}`;
  const auth = (who: Who) => ({ 'x-auth-token': who.token });

  test('legacy history mode: a delete at the account_usage limit moves the object into the archive (the total stays): it is not refused', async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/harch'), auth(who))).status, 201);
    assert.equal((await call('PUT', url('/h'), { ...auth(who), 'x-history-location': 'harch' })).status, 201);
    assert.equal((await call('PUT', url('/h/o'), auth(who), Buffer.alloc(4_000, 'o'))).status, 201);
    assert.equal((await call('PUT', url('/h/fill'), auth(who), Buffer.alloc(6_000, 'f'))).status, 201);
    assert.deepEqual(await who.total(), { objects: 2, bytes: 10_000 });
    const deleted = await call('DELETE', url('/h/o'), auth(who));
    // Swift copies o into harch, adds a 0-byte marker and deletes o: 10,000 bytes before and after.
    assert.equal(deleted.status, 204, `${deleted.status} ${deleted.headers['x-quota-exceeded'] ?? ''} ${deleted.body}`);
    assert.deepEqual(await who.total(), { objects: 3, bytes: 10_000 });
  });

  test('legacy history mode: a delete one object below account_object_count adds one object (the marker), not two', async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/harch'), auth(who))).status, 201);
    assert.equal((await call('PUT', url('/h'), { ...auth(who), 'x-history-location': 'harch' })).status, 201);
    for (let i = 0; i < 5; i++) assert.equal((await call('PUT', url(`/h/o${i}`), auth(who), 'x')).status, 201);
    assert.deepEqual(await who.total(), { objects: 5, bytes: 5 });
    const deleted = await call('DELETE', url('/h/o0'), auth(who));
    assert.equal(deleted.status, 204, `${deleted.status} ${deleted.headers['x-quota-exceeded'] ?? ''} ${deleted.body}`);
    assert.deepEqual(await who.total(), { objects: 6, bytes: 5 });
  });

  test('legacy stack mode: an overwrite that takes the total exactly to account_usage is not refused (the old version is held twice)', async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/sarch'), auth(who))).status, 201);
    assert.equal((await call('PUT', url('/s'), { ...auth(who), 'x-versions-location': 'sarch' })).status, 201);
    assert.equal((await call('PUT', url('/s/o'), auth(who), Buffer.alloc(1_000, 'a'))).status, 201);
    assert.equal((await call('PUT', url('/s/fill'), auth(who), Buffer.alloc(7_000, 'f'))).status, 201);
    assert.deepEqual(await who.total(), { objects: 2, bytes: 8_000 });
    // Swift archives the 1,000 bytes of o and stores 2,000 new ones: 10,000 in all, the limit.
    const overwrite = await call('PUT', url('/s/o'), auth(who), Buffer.alloc(2_000, 'b'));
    assert.equal(overwrite.status, 201, `${overwrite.status} ${overwrite.headers['x-quota-exceeded'] ?? ''} ${overwrite.body}`);
    assert.deepEqual(await who.total(), { objects: 3, bytes: 10_000 });
  });

  test('legacy stack mode: a delete that restores a larger version shrinks the total: it is not refused at the limit', async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/karch'), auth(who))).status, 201);
    assert.equal((await call('PUT', url('/k'), { ...auth(who), 'x-versions-location': 'karch' })).status, 201);
    assert.equal((await call('PUT', url('/k/o'), auth(who), Buffer.alloc(3_000, 'a'))).status, 201);
    assert.equal((await call('PUT', url('/k/o'), auth(who), Buffer.alloc(1_000, 'b'))).status, 201);
    assert.equal((await call('PUT', url('/k/fill'), auth(who), Buffer.alloc(6_000, 'f'))).status, 201);
    assert.deepEqual(await who.total(), { objects: 3, bytes: 10_000 });
    // Swift copies the 3,000-byte version back over o and removes it from karch: 9,000 bytes after.
    const deleted = await call('DELETE', url('/k/o'), auth(who));
    assert.equal(deleted.status, 204, `${deleted.status} ${deleted.headers['x-quota-exceeded'] ?? ''} ${deleted.body}`);
    assert.deepEqual(await who.total(), { objects: 2, bytes: 9_000 });
  });

  test('a tenant at its limit with many containers: ten refused 1-byte PUTs in a row read the total (a HEAD per container) once at most', async (t) => {
    const who = await tenant(swift);
    const url = via(who);
    const CONTAINERS = 300;
    for (let i = 0; i < CONTAINERS; i += 20) {
      const made = await Promise.all(Array.from({ length: 20 }, (_, j) => call('PUT', url(`/e${String(i + j).padStart(3, '0')}`), auth(who))));
      assert.deepEqual(made.map((m) => m.status), Array(20).fill(201));
    }
    assert.equal((await call('PUT', url('/e000/full'), auth(who), Buffer.alloc(10_000, 'f'))).status, 201);
    const heads = async () => {
      const text = (await call('GET', `${proxy.url}/metrics`)).body;
      return [...text.matchAll(/^swift_quota_proxy_usage_lookups_total\{[^}]*target="container"[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    };
    const before = await heads();
    const started = Date.now();
    for (let i = 0; i < 10; i++) {
      const refused = await call('PUT', url(`/e001/x${i}`), auth(who), 'x');
      assert.equal(refused.status, 413);
    }
    const spent = (await heads()) - before;
    const ms = Date.now() - started;
    t.diagnostic(`10 refused writes: ${spent} container HEADs, ${ms} ms`);
    // A container check costs a HEAD at most; a reading of the account's total one per container. Ten refusals in
    // a row, with nothing changed in between, need not read the total more than once.
    assert.ok(spent <= CONTAINERS + 10 * 2, `10 refused 1-byte writes made the proxy send ${spent} container HEADs to Swift in ${ms} ms (${CONTAINERS} containers)`);
    // Not fixed (reported): an overwrite at the limit counts on top of the reading until a new one, so each of
    // a run of overwrites at the limit reads the total again.
    const beforeOverwrites = await heads();
    for (let i = 0; i < 3; i++) assert.equal((await call('PUT', url('/e000/full'), auth(who), Buffer.alloc(10_000, 'g'))).status, 201);
    t.diagnostic(`3 overwrites at the limit: ${(await heads()) - beforeOverwrites} container HEADs`);
  });

  test('containers with odd names (".", "..", "%", 256 bytes long, unicode and reserved characters) are all in the total as a fresh proxy reads it', async () => {
    const who = await tenant(swift);
    const names = ['.', '..', 'a%zz', '\u00fc ?#+&=;', 'z'.repeat(256)];
    for (const name of names) {
      // Made straight in Swift: containers the account had before, or made through any door.
      assert.equal((await raw(swift, 'PUT', `/v1/AUTH_${who.account}/${encodeURIComponent(name)}`, who.token)).status, 201, JSON.stringify(name));
      assert.equal((await raw(swift, 'PUT', `/v1/AUTH_${who.account}/${encodeURIComponent(name)}/o`, who.token, Buffer.alloc(1_800, 'n'))).status, 201, JSON.stringify(name));
    }
    assert.equal((await call('PUT', via(who)('/plain'), auth(who))).status, 201);
    assert.deepEqual(await who.total(), { objects: 5, bytes: 9_000 });
    const fresh = await startProxy({ upstream: swift, quota: QUOTA, preciseMode: false });
    try {
      const url = (path: string) => `${accountUrl(fresh.url, who.account)}${path}`;
      const over = await call('PUT', url('/plain/over'), auth(who), Buffer.alloc(1_001, 'x'));
      assert.equal(over.status, 413, `${over.status} ${over.body}`);
      assert.equal(over.headers['x-quota-exceeded'], 'account_usage');
      assert.equal((await call('PUT', url('/plain/fits'), auth(who), Buffer.alloc(1_000, 'x'))).status, 201);
    } finally {
      await fresh.close();
    }
    assert.deepEqual(await who.total(), { objects: 6, bytes: 10_000 });
  });

  test('object_versioning: versions and delete markers are objects Swift stores past account_object_count (documented: counted in bytes only)', { todo: 'docs/quotas.md: the objects are the ones container HEADs count' }, async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/ov'), { ...auth(who), 'x-versions-enabled': 'true' })).status, 201);
    for (let i = 0; i < 6; i++) {
      assert.equal((await call('PUT', url('/ov/o'), auth(who), 'v')).status, 201);
      assert.equal((await call('DELETE', url('/ov/o'), auth(who))).status, 204);
    }
    const versions = JSON.parse((await call('GET', `${accountUrl(swift, who.account)}/ov?versions&format=json`, auth(who))).body) as unknown[];
    assert.deepEqual(await who.total(), { objects: 0, bytes: 6 });
    assert.ok(versions.length <= QUOTA.account_object_count.default, `${versions.length} objects kept in the account (versions and markers) under account_object_count ${QUOTA.account_object_count.default}`);
  });

  test('S3: initiates of one key held in flight together each store a marker object; the proxy takes them as one object (past account_object_count)', async () => {
    const who = await tenant(swift);
    const url = via(who);
    assert.equal((await call('PUT', url('/mpb'), auth(who))).status, 201);
    assert.equal((await call('PUT', url('/mpb+segments'), auth(who))).status, 201);
    for (let i = 0; i < 5; i++) assert.equal((await call('PUT', url(`/mpb/o${i}`), auth(who), 'x')).status, 201);
    assert.deepEqual(await who.total(), { objects: 5, bytes: 5 });
    const as = { endpoint: proxy.url, access: `${who.account}:admin`, secret: `${who.account}pass` };
    const presigned = await s3(Array.from({ length: 8 }, () => ({ ...as, op: 'presign_op', operation: 'create_multipart_upload', params: { Bucket: 'mpb', Key: 'k' } })));
    assert.ok(presigned.every((p) => p.ok), JSON.stringify(presigned));
    // Each held on its way (its body held back) until all are admitted: each is admitted while the others are in flight.
    const held = presigned.map((p) => {
      const signed = new URL(p.url!);
      return rawRequest(proxy.url, 'POST', signed.pathname + signed.search, [['Host', signed.host], ['Content-Length', '1'], ['Expect', '100-continue'], ['Connection', 'close']]);
    });
    const admitted = await Promise.all(held.map((h) => h.admitted));
    const answers = await Promise.all(held.map((h, i) => (admitted[i] === 'continue' ? h.finish('x') : h.response)));
    const initiated = answers.filter((a) => a.status === 200).length;
    // One marker fits (6 objects); Swift stores one per initiate admitted.
    assert.deepEqual(await who.total(), { objects: 5 + initiated, bytes: 5 });
    assert.ok(5 + initiated <= QUOTA.account_object_count.default, `${initiated} initiates admitted: ${5 + initiated} objects stored under account_object_count ${QUOTA.account_object_count.default} (${answers.map((a) => a.status).join(' ')})`);
  });

  test('two proxies on one Redis: at the limit, a delete through one gives room through the other at once (a refusal there just before)', async () => {
    const who = await tenant(swift);
    const shared = { upstream: swift, quota: QUOTA, preciseMode: false, extraProxyLines: [`ledger = ${await redisUrl()}`, `ledger_prefix = awa-${randomBytes(3).toString('hex')}:`] };
    const [a, b] = [await startProxy(shared), await startProxy(shared)];
    try {
      const on = (p: RunningProxy, path: string) => `${accountUrl(p.url, who.account)}${path}`;
      for (const container of ['x', 'y']) assert.equal((await call('PUT', on(a, `/${container}`), auth(who))).status, 201);
      assert.equal((await call('PUT', on(a, '/x/big'), auth(who), Buffer.alloc(6_000, 'b'))).status, 201);
      assert.equal((await call('PUT', on(a, '/y/rest'), auth(who), Buffer.alloc(4_000, 'r'))).status, 201);
      // Refused through a: a has just read the total live.
      assert.equal((await call('PUT', on(a, '/y/more'), auth(who), Buffer.alloc(3_000, 'm'))).status, 413);
      assert.equal((await call('DELETE', on(b, '/x/big'), auth(who))).status, 204);
      const after = await call('PUT', on(a, '/y/more'), auth(who), Buffer.alloc(3_000, 'm'));
      assert.equal(after.status, 201, `${after.status} ${after.body}`);
      assert.deepEqual(await who.total(), { objects: 2, bytes: 7_000 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('S3 (per-container kinds too): initiates of one key held in flight together store a marker each in the segments container, past its object_count', async () => {
    const who = await tenant(swift);
    const narrow = await startProxy({ upstream: swift, quota: { container_count: { default: 10 }, object_count: { default: 3 }, container_usage: { default: 1_000_000 } }, preciseMode: false });
    try {
      assert.equal((await call('PUT', `${accountUrl(narrow.url, who.account)}/seg`, auth(who))).status, 201);
      assert.equal((await call('PUT', `${accountUrl(narrow.url, who.account)}/seg+segments`, auth(who))).status, 201);
      const as = { endpoint: narrow.url, access: `${who.account}:admin`, secret: `${who.account}pass` };
      const presigned = await s3(Array.from({ length: 6 }, () => ({ ...as, op: 'presign_op', operation: 'create_multipart_upload', params: { Bucket: 'seg', Key: 'k' } })));
      const held = presigned.map((p) => {
        const signed = new URL(p.url!);
        return rawRequest(narrow.url, 'POST', signed.pathname + signed.search, [['Host', signed.host], ['Content-Length', '1'], ['Expect', '100-continue'], ['Connection', 'close']]);
      });
      const admitted = await Promise.all(held.map((h) => h.admitted));
      const answers = await Promise.all(held.map((h, i) => (admitted[i] === 'continue' ? h.finish('x') : h.response)));
      const markers = Number((await call('HEAD', `${accountUrl(swift, who.account)}/seg+segments`, auth(who))).headers['x-container-object-count']);
      assert.ok(markers <= 3, `${markers} markers in seg+segments under object_count 3 (${answers.map((a) => a.status).join(' ')})`);
    } finally {
      await narrow.close();
    }
  });
});
