/**
 * Identity before effect: quota details go only to callers Swift authorises, and a caller Swift would turn away
 * holds nothing, counts no refusal, fires no event and makes the proxy write nothing. Signed writes (temp URLs)
 * count once their signature is one Swift accepts; lookups made for a request run with the caller's rights.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, type Answer } from '../helpers/http.js';
import { assertNoQuotaDetail, LIMITS, MODES, makeContainer, openArena, putDirect, statuses, type Arena, type Tenant } from './arena.js';
import { tempUrl } from './signing.js';

const ACCOUNTS = { 'cached mode': [17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28], 'precise mode': [29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40] } as const;

/** A counter's value in the proxy's /metrics (0 when absent). */
async function metric(arena: Arena, pattern: RegExp): Promise<number> {
  const text = (await call('GET', `${arena.proxy.url}/metrics`)).body;
  return text.split('\n').filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

const REJECTIONS = /^swift_quota_proxy_quota_rejections_total\{/;
const EVENTS = /^swift_quota_proxy_quota_events_total\{/;

for (const mode of MODES) {
  describe(`identity before effect, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraQuotaLines: ['soft_ratio = 0.8'] });
    });
    after(() => arena.close());

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    async function fullContainer(tenant: Tenant, name = 'full'): Promise<void> {
      await makeContainer(tenant, name);
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/${name}/o${i}`, 'x');
    }

    test('no token, a bad token, or a token without write rights: Swift\'s own answer, nothing held, counted, told or written', async () => {
      const tenant = await arena.tenant();
      await fullContainer(tenant);
      for (let i = 0; i < LIMITS.containers - 1; i++) await makeContainer(tenant, `more${i}`);
      const [rejectionsBefore, eventsBefore] = [await metric(arena, REJECTIONS), await metric(arena, EVENTS)];
      const attempts: Array<[string, Promise<Answer>]> = [
        ['PUT, no token', call('PUT', tenant.viaProxy('/full/new'), {}, 'x')],
        ['PUT, bad token', call('PUT', tenant.viaProxy('/full/new'), { 'x-auth-token': 'AUTH_tkbogus' }, 'x')],
        ['PUT, bad token spelled X_Auth_Token', call('PUT', tenant.viaProxy('/full/new'), { x_auth_token: 'AUTH_tkbogus' }, 'x')],
        ['PUT, reader without write ACL', call('PUT', tenant.viaProxy('/full/new'), { 'x-auth-token': tenant.readerToken }, 'x')],
        ['COPY, no token', call('COPY', tenant.viaProxy('/full/o1'), { destination: 'full/copy' })],
        ['PUT X-Copy-From, bad token', call('PUT', tenant.viaProxy('/full/copy'), { 'x-auth-token': 'AUTH_tkbogus', 'x-copy-from': 'full/o1', 'content-length': '0' })],
        ['container PUT past the limit, no token', call('PUT', tenant.viaProxy('/fourth'), {})],
        ['container PUT past the limit, reader', call('PUT', tenant.viaProxy('/fourth'), { 'x-auth-token': tenant.readerToken })],
        ['level change, no token', call('POST', tenant.viaProxy(), { 'x-account-meta-quota': 'roomy' })],
        ['level change, bad token', call('POST', tenant.viaProxy(), { 'x-auth-token': 'AUTH_tkbogus', 'x-account-meta-quota': 'roomy' })],
        ['proxy metadata, no token', call('POST', tenant.viaProxy('/full'), { 'x-container-meta-quota-proxy-hits': '0' })],
      ];
      for (const [what, pending] of attempts) {
        const answer = await pending;
        assert.ok(answer.status === 401 || answer.status === 403, `${what}: ${answer.status} ${answer.body}`);
        assertNoQuotaDetail(answer, what);
      }
      await arena.proxy.gate.watch.flush();
      assert.deepEqual(await arena.proxyMetadata(tenant, 'full'), {}, 'no refusal counted in Swift for the container');
      assert.deepEqual(await arena.proxyMetadata(tenant), {}, 'nor for the account');
      assert.equal(await metric(arena, REJECTIONS), rejectionsBefore, 'no rejection counted');
      assert.equal(await metric(arena, EVENTS), eventsBefore, 'no quota event');
      assert.deepEqual(await arena.listing(tenant, 'full'), ['o0', 'o1', 'o2', 'o3', 'o4']);
      assert.equal(await arena.containers(tenant), LIMITS.containers);
      // The same write with the owner's token, where there is room, is admitted and stored.
      const owner = await call('PUT', tenant.viaProxy('/more0/new'), auth(tenant), 'x');
      assert.equal(owner.status, 201, owner.body);
      assert.deepEqual(await arena.listing(tenant, 'more0'), ['new']);
    });

    test('a writer Swift authorises through a container ACL is counted and told why', async () => {
      const owner = await arena.tenant();
      const guest = await arena.tenant();
      await makeContainer(owner, 'shared');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(owner, `/shared/o${i}`, 'x');
      assert.equal((await call('POST', owner.direct('/shared'), { ...auth(owner), 'x-container-write': `${guest.account}:admin` })).status, 204);
      const asGuest = (name: string) => call('PUT', owner.viaProxy(`/shared/${name}`), auth(guest), 'x');
      const stored = await asGuest('guest');
      assert.equal(stored.status, 201, stored.body);
      const refused = await asGuest('guest2');
      assert.equal(refused.status, 413);
      assert.equal(refused.headers['x-quota-exceeded'], 'object_count');
      assert.deepEqual(await arena.listing(owner, 'shared'), ['guest', 'o0', 'o1', 'o2', 'o3']);
    });

    test('temp URLs that Swift would refuse (wrong key, expired, other object, other method, altered) get its 401 and nothing else', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'full');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/full/o${i}`, 'x');
      assert.equal((await call('POST', tenant.direct(), { ...auth(tenant), 'x-account-meta-temp-url-key': 'account-secret' })).status, 204);
      const path = `/v1/${tenant.swiftAccount}/full/new`;
      const good = await tempUrl('PUT', path, 'account-secret');
      const bad = [
        await tempUrl('PUT', path, 'wrong-secret'),
        await tempUrl('PUT', path, 'account-secret', { seconds: -10 }),
        (await tempUrl('PUT', `/v1/${tenant.swiftAccount}/full/other`, 'account-secret')).replace('/other', '/new'),
        await tempUrl('GET', path, 'account-secret'),
        good.replace(/temp_url_sig=(.)/, (_m, c: string) => `temp_url_sig=${c === 'a' ? 'b' : 'a'}`),
        good.replace(/&temp_url_expires=[^&]*/, ''),
      ];
      const before = await metric(arena, REJECTIONS);
      for (const url of bad) {
        const answer = await call('PUT', `${arena.proxy.url}${url}`, {}, 'x');
        assert.equal(answer.status, 401, `${url}: ${answer.status} ${answer.body}`);
        assertNoQuotaDetail(answer, url);
      }
      await arena.proxy.gate.watch.flush();
      assert.deepEqual(await arena.proxyMetadata(tenant, 'full'), {});
      assert.equal(await metric(arena, REJECTIONS), before);
      assert.deepEqual(await arena.usage(tenant, 'full'), { objects: LIMITS.objects - 1, bytes: LIMITS.objects - 1 });
      // The valid one is stored and counted: the container is then full for the next valid one.
      const stored = await call('PUT', `${arena.proxy.url}${good}`, {}, 'x');
      assert.equal(stored.status, 201, stored.body);
      const next = await call('PUT', `${arena.proxy.url}${await tempUrl('PUT', `/v1/${tenant.swiftAccount}/full/next`, 'account-secret')}`, {}, 'x');
      assert.deepEqual([next.status, next.headers['x-quota-exceeded']], [413, 'object_count'], next.body);
      assert.deepEqual(await arena.listing(tenant, 'full'), ['new', 'o0', 'o1', 'o2', 'o3']);
    });

    test('temp URL uploads count like any upload: account and container keys, prefix URLs, sha512 and ISO 8601 expiry, concurrent', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'tu', { 'x-container-meta-temp-url-key': 'container-secret' });
      assert.equal((await call('POST', tenant.direct(), { ...auth(tenant), 'x-account-meta-temp-url-key-2': 'account-secret' })).status, 204);
      const base = `/v1/${tenant.swiftAccount}/tu`;
      const urls = [
        await tempUrl('PUT', `${base}/a`, 'container-secret'),
        await tempUrl('PUT', `${base}/b`, 'account-secret', { digest: 'sha512' }),
        await tempUrl('PUT', `${base}/c`, 'account-secret', { iso8601: true, digest: 'sha1' }),
        ...(await Promise.all(['p/d', 'p/e', 'p/f', 'p/g'].map(async (name) => (await tempUrl('PUT', `${base}/p/`, 'container-secret', { prefix: true })).replace(`${base}/p/`, `${base}/${name}`)))),
      ];
      const answers = await Promise.all(urls.map((url) => call('PUT', `${arena.proxy.url}${url}`, {}, Buffer.alloc(100, 't'))));
      // 7 uploads for 5 places: which 5 win varies; 5 stored and 2 told the container is full does not.
      const outcomes = answers.map((a) => (a.status === 413 ? `413 ${a.headers['x-quota-exceeded']}` : a.status));
      assert.deepEqual([...outcomes].sort(), [201, 201, 201, 201, 201, '413 object_count', '413 object_count'].sort(), statuses(answers));
      const names = ['a', 'b', 'c', 'p/d', 'p/e', 'p/f', 'p/g'];
      assert.deepEqual(await arena.listing(tenant, 'tu'), names.filter((_, i) => answers[i]!.status === 201));
      assert.deepEqual(await arena.usage(tenant, 'tu'), { objects: LIMITS.objects, bytes: LIMITS.objects * 100 });
    });

    test('quota headers on a container go to those Swift lets read the account, not to a reader of the container alone', async () => {
      const owner = await arena.tenant();
      const guest = await arena.tenant();
      await makeContainer(owner, 'public', { 'x-container-read': `.r:*,.rlistings,${guest.account}:admin` });
      const asOwner = await call('HEAD', owner.viaProxy('/public'), auth(owner));
      assert.equal(asOwner.headers['x-container-quota-object-count'], String(LIMITS.objects));
      const asGuest = await call('HEAD', owner.viaProxy('/public'), auth(guest));
      assert.equal(asGuest.status, 204);
      assertNoQuotaDetail({ headers: asGuest.headers, body: '' }, 'reader from another account');
      const anonymous = await call('GET', owner.viaProxy('/public'));
      assert.equal(anonymous.status, 204);
      assertNoQuotaDetail({ headers: anonymous.headers, body: '' }, 'anonymous reader of a public container');
    });

    test('a copy from an object the caller may not read reveals nothing and stores nothing', async () => {
      const attacker = await arena.tenant();
      const victim = await arena.tenant();
      await makeContainer(victim, 'private');
      await putDirect(victim, '/private/secret', Buffer.alloc(9000, 's'));
      await makeContainer(attacker, 'mine');
      await putDirect(attacker, '/mine/base', Buffer.alloc(5000, 'm'));
      const copies = [
        await call('PUT', attacker.viaProxy('/mine/stolen'), { ...auth(attacker), 'x-copy-from': 'private/secret', 'x-copy-from-account': victim.swiftAccount, 'content-length': '0' }),
        await call('PUT', attacker.viaProxy('/mine/stolen'), { ...auth(attacker), 'x-copy-from': 'private/nothing', 'x-copy-from-account': victim.swiftAccount, 'content-length': '0' }),
      ];
      const direct = await call('PUT', attacker.direct('/mine/stolen'), { ...auth(attacker), 'x-copy-from': 'private/secret', 'x-copy-from-account': victim.swiftAccount, 'content-length': '0' });
      for (const answer of copies) {
        assert.notEqual(answer.status, 413, 'an existing object and a missing one look the same');
        assert.ok(answer.status >= 400, `${answer.status}`);
        assertNoQuotaDetail(answer, 'copy of an unreadable source');
      }
      assert.equal(copies[0]!.status, direct.status, 'the answer Swift gives the caller directly');
      assert.equal(copies[1]!.status, copies[0]!.status, 'a missing source answers as an existing one');
      assert.deepEqual(await arena.usage(attacker, 'mine'), { objects: 1, bytes: 5000 });
    });

    test('overwriting a symlink is credited with the symlink (0 bytes), not with the large object it points to', async () => {
      const attacker = await arena.tenant();
      const other = await arena.tenant();
      await makeContainer(other, 'far');
      await putDirect(other, '/far/huge', Buffer.alloc(9000, 'h'));
      await makeContainer(attacker, 'c');
      await putDirect(attacker, '/c/big', Buffer.alloc(9000, 'b'));
      await putDirect(attacker, '/c/link', '', { 'x-symlink-target': 'far/huge', 'x-symlink-target-account': other.swiftAccount });
      const overwrite = await call('PUT', attacker.viaProxy('/c/link'), auth(attacker), Buffer.alloc(5000, 'o'));
      assert.deepEqual([overwrite.status, overwrite.headers['x-quota-exceeded']], [413, 'container_usage'], 'replacing a 0-byte symlink with 5000 bytes passes 10000');
      assert.deepEqual(await arena.usage(attacker, 'c'), { objects: 2, bytes: 9000 });
      // What does fit (1000 bytes in place of the symlink's 0) is stored.
      const fits = await call('PUT', attacker.viaProxy('/c/link'), auth(attacker), Buffer.alloc(1000, 'o'));
      assert.equal(fits.status, 201, fits.body);
      assert.deepEqual(await arena.usage(attacker, 'c'), { objects: 2, bytes: LIMITS.bytes });
    });

    test('a refusal is not remembered: a reader granted write access right after a refused write writes, and is counted', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'shared');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/shared/o${i}`, 'x');
      const reader = { 'x-auth-token': tenant.readerToken };
      assert.equal((await call('PUT', tenant.viaProxy('/shared/r1'), reader, 'x')).status, 403);
      assert.equal((await call('POST', tenant.direct('/shared'), { ...auth(tenant), 'x-container-write': `${tenant.account}:reader` })).status, 204);
      const granted = await call('PUT', tenant.viaProxy('/shared/r1'), reader, 'x');
      assert.equal(granted.status, 201, granted.body);
      // Counted: the container is now full for the reader as for anyone.
      assert.equal((await call('PUT', tenant.viaProxy('/shared/r2'), reader, 'x')).status, 413);
      assert.equal((await arena.usage(tenant, 'shared')).objects, LIMITS.objects);
    });
  });
}
