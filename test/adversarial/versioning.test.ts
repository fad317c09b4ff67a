/**
 * Object versioning through the proxy, counted where Swift stores the versions (src/quota/versioning.ts):
 * object_versioning keeps every version in the container's own bytes and makes a hidden container; legacy
 * versioned_writes archives into another container of the account, against that container's limits. Every
 * outcome is read straight from Swift.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, statuses, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = {
  'cached mode': [111, 112, 113, 114, 115, 116, 117, 118, 119, 120],
  'precise mode': [121, 122, 123, 124, 125, 126, 127, 128, 129, 130],
} as const;

for (const mode of MODES) {
  describe(`object versioning, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });
    const put = (tenant: Tenant, path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
      call('PUT', tenant.viaProxy(path), { ...auth(tenant), ...headers }, body);
    const accountContainers = async (tenant: Tenant) =>
      Number((await call('HEAD', tenant.direct(), { 'x-auth-token': arena.resellerToken })).headers['x-account-container-count']);
    const body = async (tenant: Tenant, path: string) => (await call('GET', tenant.direct(path), auth(tenant))).body;

    test('object_versioning: every version counts in the container\'s bytes; past 10000 an overwrite is refused; deleting a version frees it', async () => {
      const tenant = await arena.tenant();
      assert.equal((await put(tenant, '/ov', '', { 'x-versions-enabled': 'true' })).status, 201);
      assert.equal((await put(tenant, '/ov/o', 'a'.repeat(4000))).status, 201);
      assert.equal((await put(tenant, '/ov/o', 'b'.repeat(4000))).status, 201);
      // Without versioning this overwrite would leave 4000 bytes; with it Swift would keep 12000.
      const third = await put(tenant, '/ov/o', 'c'.repeat(4000));
      assert.equal(third.status, 413, third.body);
      assert.match(third.body, /container_usage/);
      assert.deepEqual(await arena.usage(tenant, 'ov'), { objects: 1, bytes: 8000 });
      // A delete writes a marker and frees nothing.
      assert.equal((await call('DELETE', tenant.viaProxy('/ov/o'), auth(tenant))).status, 204);
      assert.equal((await put(tenant, '/ov/p', 'd'.repeat(4000))).status, 413);
      // The versions list through the proxy as straight from Swift; deleting one frees its bytes.
      const viaProxy = await call('GET', tenant.viaProxy('/ov?versions&format=json'), auth(tenant));
      const direct = await call('GET', tenant.direct('/ov?versions&format=json'), auth(tenant));
      assert.equal(viaProxy.status, 200);
      assert.deepEqual(JSON.parse(viaProxy.body), JSON.parse(direct.body));
      const versions = JSON.parse(viaProxy.body) as Array<{ version_id: string; bytes: number; content_type: string }>;
      assert.equal(versions.length, 3, viaProxy.body); // two versions and the delete marker
      const oldest = versions.filter((version) => version.bytes === 4000).at(-1)!;
      assert.equal((await call('DELETE', tenant.viaProxy(`/ov/o?version-id=${oldest.version_id}`), auth(tenant))).status, 204);
      assert.equal((await arena.usage(tenant, 'ov')).bytes, 4000);
      assert.equal((await put(tenant, '/ov/p', 'd'.repeat(4000))).status, 201);
      assert.equal((await put(tenant, '/ov/q', 'e'.repeat(2001))).status, 413);
      assert.deepEqual(await arena.usage(tenant, 'ov'), { objects: 1, bytes: 8000 });
    });

    test('object_versioning: an overwrite at the object limit still passes (versions are not objects of the container)', async () => {
      const tenant = await arena.tenant();
      assert.equal((await put(tenant, '/oc', '', { 'x-versions-enabled': 'true' })).status, 201);
      for (let i = 0; i < LIMITS.objects; i++) assert.equal((await put(tenant, `/oc/o${i}`, 'x')).status, 201);
      assert.equal((await put(tenant, '/oc/o5', 'x')).status, 413);
      assert.equal((await put(tenant, '/oc/o0', 'again')).status, 201);
      assert.deepEqual(await arena.usage(tenant, 'oc'), { objects: LIMITS.objects, bytes: LIMITS.objects + 5 });
      // A version made current again (COPY of an old version onto the object) is one more version's bytes.
      const versions = JSON.parse((await call('GET', tenant.viaProxy('/oc?versions&format=json&prefix=o0'), auth(tenant))).body) as Array<{ version_id: string; bytes: number }>;
      const first = versions.find((version) => version.bytes === 1)!;
      const restore = await call('COPY', tenant.viaProxy(`/oc/o0?version-id=${first.version_id}`), { ...auth(tenant), destination: 'oc/o0' });
      assert.equal(restore.status, 201, restore.body);
      assert.equal(await body(tenant, '/oc/o0'), 'x');
      assert.deepEqual(await arena.usage(tenant, 'oc'), { objects: LIMITS.objects, bytes: LIMITS.objects + 6 });
    });

    test('turning object_versioning on makes a hidden container: refused at the container limit, nothing made', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c1');
      await makeContainer(tenant, 'c2');
      const both = await put(tenant, '/c3', '', { 'x-versions-enabled': 'true' });
      assert.equal(both.status, 403, both.body); // the proxy's answer to a container past container_count
      assert.match(both.body, /container_count/);
      assert.equal(await accountContainers(tenant), 2);
      assert.equal((await call('HEAD', tenant.direct('/c3'), auth(tenant))).status, 404);
      assert.equal((await call('POST', tenant.viaProxy('/c1'), { ...auth(tenant), 'x-versions-enabled': 'true' })).status, 204);
      assert.equal(await accountContainers(tenant), 3);
      assert.equal((await put(tenant, '/c3', '')).status, 403);
      // Off and on again: the hidden container is still there, nothing more is made.
      assert.equal((await call('POST', tenant.viaProxy('/c1'), { ...auth(tenant), 'x-versions-enabled': 'false' })).status, 204);
      assert.equal((await call('POST', tenant.viaProxy('/c1'), { ...auth(tenant), 'x-versions-enabled': 'true' })).status, 204);
      assert.equal(await accountContainers(tenant), 3);
    });

    test('turning versioning on waits for an overwrite in flight that counted on freeing the object it replaces', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'tg');
      await putDirect(tenant, '/tg/o', 'a'.repeat(6000));
      // 6000 + 6000 fits only because the overwrite frees the old 6000.
      const url = new URL(tenant.viaProxy('/tg/o'));
      const overwrite = rawRequest(arena.proxy.url, 'PUT', url.pathname, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Expect', '100-continue'], ['Content-Length', '6000']]);
      assert.equal(await overwrite.admitted, 'continue');
      let turnedOn = false;
      const enable = call('POST', tenant.viaProxy('/tg'), { ...auth(tenant), 'x-versions-enabled': 'true' }).then((answer) => {
        turnedOn = true;
        return answer;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(turnedOn, false, 'versioning turned on while the overwrite was held');
      assert.equal((await overwrite.finish('b'.repeat(6000))).status, 201);
      assert.equal((await enable).status, 204);
      assert.ok((await arena.usage(tenant, 'tg')).bytes <= LIMITS.bytes);
    });

    test('legacy stack mode: an overwrite archives the old object in the location, against its limits', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/arch/x${i}`, 'x');
      await makeContainer(tenant, 'vc', { 'x-versions-location': 'arch' });
      await putDirect(tenant, '/vc/o', 'old');
      const refused = await put(tenant, '/vc/o', 'new');
      assert.equal(refused.status, 413, refused.body);
      assert.match(refused.body, /object_count/);
      assert.equal(await body(tenant, '/vc/o'), 'old');
      assert.equal((await arena.usage(tenant, 'arch')).objects, LIMITS.objects);
      assert.equal((await call('DELETE', tenant.viaProxy('/arch/x0'), auth(tenant))).status, 204);
      assert.equal((await put(tenant, '/vc/o', 'new')).status, 201);
      assert.equal(await body(tenant, '/vc/o'), 'new');
      assert.deepEqual(await arena.usage(tenant, 'arch'), { objects: LIMITS.objects, bytes: LIMITS.objects - 1 + 3 });
      // A copy onto the object archives as well.
      assert.equal((await call('COPY', tenant.viaProxy('/vc/o'), { ...auth(tenant), destination: 'vc/o' })).status, 413);
    });

    test('legacy: overwrites of one object take turns, so the location holds what Swift archives: an overwrite held while another lands', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      await makeContainer(tenant, 'vc', { 'x-versions-location': 'arch' });
      await putDirect(tenant, '/vc/o', 'a'.repeat(100));
      const url = new URL(tenant.viaProxy('/vc/o'));
      const first = rawRequest(arena.proxy.url, 'PUT', url.pathname, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Expect', '100-continue'], ['Content-Length', '10']]);
      assert.equal(await first.admitted, 'continue');
      // Would archive the 100 bytes, then the held one would archive these 9950: 10050 in the location.
      const second = put(tenant, '/vc/o', 'b'.repeat(9950));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal((await first.finish('c'.repeat(10))).status, 201);
      assert.equal((await second).status, 201);
      const arch = await arena.usage(tenant, 'arch');
      assert.deepEqual(arch, { objects: 2, bytes: 110 });
      // Now the current object is 9950 bytes: archiving it would pass the location's 10000.
      const third = await put(tenant, '/vc/o', 'd');
      assert.equal(third.status, 413, third.body);
      assert.equal((await arena.usage(tenant, 'arch')).bytes, 110);
    });

    test('legacy: concurrent overwrites with one place left in the location store exactly one archive', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/arch/x${i}`, 'x');
      await makeContainer(tenant, 'vc', { 'x-versions-location': 'arch' });
      await putDirect(tenant, '/vc/o', 'old');
      const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => put(tenant, '/vc/o', `new${i}`)));
      assert.equal(answers.filter((answer) => answer.status === 201).length, 1, statuses(answers));
      assert.equal((await arena.usage(tenant, 'arch')).objects, LIMITS.objects);
    });

    test('legacy history mode: a delete archives the object and a marker; at the location\'s limit it is refused and the object stays', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/arch/x${i}`, 'x');
      await makeContainer(tenant, 'hc', { 'x-history-location': 'arch' });
      await putDirect(tenant, '/hc/o', 'kept');
      const refused = await call('DELETE', tenant.viaProxy('/hc/o'), auth(tenant));
      assert.equal(refused.status, 413, refused.body);
      assert.equal(await body(tenant, '/hc/o'), 'kept');
      assert.equal((await arena.usage(tenant, 'arch')).objects, LIMITS.objects - 1);
      assert.equal((await call('DELETE', tenant.viaProxy('/arch/x0'), auth(tenant))).status, 204);
      assert.equal((await call('DELETE', tenant.viaProxy('/hc/o'), auth(tenant))).status, 204);
      assert.equal((await call('HEAD', tenant.direct('/hc/o'), auth(tenant))).status, 404);
      assert.deepEqual(await arena.usage(tenant, 'arch'), { objects: LIMITS.objects, bytes: LIMITS.objects - 2 + 4 });
      // A delete of a missing object still writes a marker there (and answers 404): refused now.
      assert.equal((await call('DELETE', tenant.viaProxy('/hc/o'), auth(tenant))).status, 413);
      assert.equal((await arena.usage(tenant, 'arch')).objects, LIMITS.objects);
    });

    if (mode.precise) {
      test('precise mode: versioning turned on around the proxy is seen by the next delete (history archive refused at the limit)', async () => {
        const tenant = await arena.tenant();
        await makeContainer(tenant, 'arch');
        for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/arch/x${i}`, 'x');
        await makeContainer(tenant, 'hc');
        for (const name of ['a', 'b']) await putDirect(tenant, `/hc/${name}`, name);
        // A delete through the proxy while the container has no versioning: remembered as such in cached mode.
        assert.equal((await call('DELETE', tenant.viaProxy('/hc/a'), auth(tenant))).status, 204);
        assert.equal((await call('POST', tenant.direct('/hc'), { ...auth(tenant), 'x-history-location': 'arch' })).status, 204);
        const refused = await call('DELETE', tenant.viaProxy('/hc/b'), auth(tenant));
        assert.equal(refused.status, 413, refused.body);
        assert.equal(await body(tenant, '/hc/b'), 'b');
        assert.equal((await arena.usage(tenant, 'arch')).objects, LIMITS.objects - 1);
      });
    }

    test('legacy stack mode: a delete that would copy a larger version back past the container\'s bytes is refused', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      await makeContainer(tenant, 'vc', { 'x-versions-location': 'arch' });
      await putDirect(tenant, '/vc/o', 'a'.repeat(9000));
      await putDirect(tenant, '/vc/o', 'b'.repeat(100)); // Swift archives the 9000 bytes
      await putDirect(tenant, '/vc/big', 'c'.repeat(5000));
      assert.deepEqual(await arena.usage(tenant, 'vc'), { objects: 2, bytes: 5100 });
      const refused = await call('DELETE', tenant.viaProxy('/vc/o'), auth(tenant));
      assert.equal(refused.status, 413, refused.body);
      assert.match(refused.body, /container_usage/);
      assert.deepEqual(await arena.usage(tenant, 'vc'), { objects: 2, bytes: 5100 });
      assert.equal((await arena.usage(tenant, 'arch')).objects, 1);
      assert.equal((await call('DELETE', tenant.viaProxy('/vc/big'), auth(tenant))).status, 204);
      assert.equal((await call('DELETE', tenant.viaProxy('/vc/o'), auth(tenant))).status, 204);
      assert.equal(await body(tenant, '/vc/o'), 'a'.repeat(9000));
      assert.deepEqual(await arena.usage(tenant, 'arch'), { objects: 0, bytes: 0 });
    });
  });
}
