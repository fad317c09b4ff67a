/**
 * No decision rests on a fact that can change before Swift acts. The proxy's request to Swift starts when the
 * client's body starts, so a client that has been admitted can hold its body while it (or anyone) deletes,
 * creates and overwrites; then it lets the body go. Each attack is driven over raw sockets with
 * `Expect: 100-continue` (the proxy answers `100 Continue` once it has admitted the request), and its outcome
 * is read straight from Swift.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { rawRequest, type HeaderList, type RawRequest } from '../helpers/raw-http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, statuses, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [1, 2, 3, 4, 5, 6, 7, 8], 'precise mode': [9, 10, 11, 12, 13, 14, 15, 16] } as const;

/** A request through the proxy whose body is held back until the test sends it. */
function held(arena: Arena, tenant: Tenant, method: string, path: string, headers: HeaderList, length: number | 'chunked'): RawRequest {
  const url = new URL(tenant.viaProxy(path));
  const framing: HeaderList = length === 'chunked' ? [['Transfer-Encoding', 'chunked']] : [['Content-Length', String(length)]];
  return rawRequest(arena.proxy.url, method, url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Expect', '100-continue'], ...framing, ...headers]);
}

const EMPTY_CHUNKED = '0\r\n\r\n';

/** Container names of an account, as Swift lists them. */
async function containerNames(arena: Arena, tenant: Tenant): Promise<string[]> {
  const listing = await call('GET', tenant.direct('?format=json'), { 'x-auth-token': arena.resellerToken });
  return listing.status === 204 ? [] : (JSON.parse(listing.body) as Array<{ name: string }>).map((c) => c.name);
}

for (const mode of MODES) {
  describe(`held bodies, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    test('uploads admitted into a container that does not exist yet hold their quota: 8 held, container made, bodies sent → exactly 5 stored', async () => {
      const tenant = await arena.tenant();
      const uploads = Array.from({ length: 8 }, (_, i) => held(arena, tenant, 'PUT', `/late/o${i}`, [], 10));
      const verdicts = await Promise.all(uploads.map((upload) => upload.admitted));
      await makeContainer(tenant, 'late');
      const answers = await Promise.all(uploads.map((upload, i) => (verdicts[i] === 'continue' ? upload.finish('0123456789') : upload.response)));
      // Which 5 win the race varies; that 5 are admitted and stored, and the other 3 told why, does not.
      assert.equal(verdicts.filter((verdict) => verdict === 'continue').length, LIMITS.objects, verdicts.join(' '));
      assert.deepEqual(answers.map((a, i) => (verdicts[i] === 'continue' ? a.status : `${a.status} ${a.headers['x-quota-exceeded']}`)).sort(),
        [...Array(LIMITS.objects).fill(201), ...Array(3).fill('413 object_count')].sort(), statuses(answers));
      const admitted = uploads.map((_, i) => `o${i}`).filter((_, i) => verdicts[i] === 'continue');
      assert.deepEqual(await arena.listing(tenant, 'late'), admitted);
      assert.deepEqual(await arena.usage(tenant, 'late'), { objects: LIMITS.objects, bytes: LIMITS.objects * 10 });
    });

    test('an overwrite admitted at the count limit holds its object: replaced object deleted, a new one tried (refused), body sent → still 5', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'full');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/full/o${i}`, 'x');
      const overwrite = held(arena, tenant, 'PUT', '/full/o0', [], 1);
      assert.equal(await overwrite.admitted, 'continue', 'an overwrite at the limit is admitted');
      assert.equal((await call('DELETE', tenant.viaProxy('/full/o0'), auth(tenant))).status, 204);
      const newcomer = await call('PUT', tenant.viaProxy('/full/new'), auth(tenant), 'x');
      const last = await overwrite.finish('y');
      // The held overwrite keeps its place: it is stored, the newcomer is told the container is full.
      assert.deepEqual([newcomer.status, newcomer.headers['x-quota-exceeded'], last.status], [413, 'object_count', 201], `new ${newcomer.status}, overwrite ${last.status}`);
      assert.deepEqual(await arena.listing(tenant, 'full'), ['o0', 'o1', 'o2', 'o3', 'o4']);
      assert.deepEqual(await arena.usage(tenant, 'full'), { objects: LIMITS.objects, bytes: LIMITS.objects });
    });

    test('an overwrite admitted at the byte limit holds its bytes: replaced object deleted, 9000 bytes tried (refused), body sent → 7000 stored', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'bytes');
      await putDirect(tenant, '/bytes/a', Buffer.alloc(6000, 'a'));
      const overwrite = held(arena, tenant, 'PUT', '/bytes/a', [], 7000);
      assert.equal(await overwrite.admitted, 'continue', '7000 replacing 6000 fits');
      assert.equal((await call('DELETE', tenant.viaProxy('/bytes/a'), auth(tenant))).status, 204);
      const newcomer = await call('PUT', tenant.viaProxy('/bytes/b'), auth(tenant), Buffer.alloc(9000, 'b'));
      const last = await overwrite.finish(Buffer.alloc(7000, 'c'));
      assert.deepEqual([newcomer.status, newcomer.headers['x-quota-exceeded'], last.status], [413, 'container_usage', 201], `newcomer ${newcomer.status}, overwrite ${last.status}`);
      assert.deepEqual(await arena.listing(tenant, 'bytes'), ['a']);
      assert.deepEqual(await arena.usage(tenant, 'bytes'), { objects: 1, bytes: 7000 });
    });

    test('a container re-PUT admitted at the container limit holds its container: it is deleted, another made, body sent → still 3', async () => {
      const tenant = await arena.tenant();
      for (let i = 1; i <= LIMITS.containers; i++) await makeContainer(tenant, `c${i}`);
      const again = held(arena, tenant, 'PUT', '/c2', [], 1);
      assert.equal(await again.admitted, 'continue', 're-PUT of an existing container at the limit is admitted');
      assert.equal((await call('DELETE', tenant.viaProxy('/c2'), auth(tenant))).status, 204);
      const other = await call('PUT', tenant.viaProxy('/c4'), auth(tenant));
      const last = await again.finish('x');
      assert.deepEqual([other.status, other.headers['x-quota-exceeded'], last.status], [403, 'container_count', 201], `c4 ${other.status}, held c2 ${last.status}`);
      assert.deepEqual(await containerNames(arena, tenant), ['c1', 'c2', 'c3']);
    });

    test('a copy held (empty chunked body) while its source grows copies what was checked or nothing: PUT X-Copy-From and COPY', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'dst');
      await putDirect(tenant, '/src/small', 'tiny');
      await putDirect(tenant, '/dst/base', Buffer.alloc(5000, 'd'));
      const copies = [
        held(arena, tenant, 'PUT', '/dst/copy1', [['X-Copy-From', 'src/small']], 'chunked'),
        held(arena, tenant, 'COPY', '/src/small', [['Destination', 'dst/copy2']], 'chunked'),
      ];
      for (const copy of copies) assert.equal(await copy.admitted, 'continue', 'a 4-byte copy fits');
      await putDirect(tenant, '/src/small', Buffer.alloc(9000, 's'));
      const answers = await Promise.all(copies.map((copy) => copy.finish(EMPTY_CHUNKED)));
      // The copies were pinned to the 4-byte source they were checked with: Swift finds it gone and refuses them.
      assert.deepEqual(answers.map((a) => a.status), [412, 412], answers.map((a) => `${a.status} ${a.body}`).join(' | '));
      assert.deepEqual(await arena.listing(tenant, 'dst'), ['base']);
      assert.deepEqual(await arena.usage(tenant, 'dst'), { objects: 1, bytes: 5000 });
    });

    test('a copy of a dynamic large object held while segments are added copies what was checked or nothing', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'segs');
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'dst');
      await putDirect(tenant, '/segs/part-0', 'seg0');
      await putDirect(tenant, '/src/dlo', '', { 'x-object-manifest': 'segs/part-' });
      await putDirect(tenant, '/dst/base', Buffer.alloc(5000, 'd'));
      const copy = held(arena, tenant, 'COPY', '/src/dlo', [['Destination', 'dst/copy']], 'chunked');
      assert.equal(await copy.admitted, 'continue', 'a 4-byte large object fits');
      for (let i = 1; i <= 3; i++) await putDirect(tenant, `/segs/part-${i}`, Buffer.alloc(3000, 'p'));
      const answer = await copy.finish(EMPTY_CHUNKED);
      assert.equal(answer.status, 412, `copy ${answer.status} ${answer.body}`);
      assert.deepEqual(await arena.listing(tenant, 'dst'), ['base']);
      assert.deepEqual(await arena.usage(tenant, 'dst'), { objects: 1, bytes: 5000 });
    });

    test('uploads held by a caller that may not write hold nothing: the owner still fills the container to exactly 5', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'shared');
      const host = new URL(arena.proxy.url).host;
      const strangers = Array.from({ length: 5 }, (_, i) =>
        rawRequest(arena.proxy.url, 'PUT', new URL(tenant.viaProxy(`/shared/s${i}`)).pathname, [['Host', host], ['Expect', '100-continue'], ['Content-Length', '10'], ['X-Auth-Token', tenant.readerToken]]),
      );
      const anonymous = Array.from({ length: 5 }, (_, i) =>
        rawRequest(arena.proxy.url, 'PUT', new URL(tenant.viaProxy(`/shared/a${i}`)).pathname, [['Host', host], ['Expect', '100-continue'], ['Content-Length', '10']]),
      );
      const early = await Promise.all([...strangers, ...anonymous].map((request) => request.admitted));
      assert.ok(early.every((verdict) => verdict === 401 || verdict === 403), `Swift's own refusal, at once: ${early.join(' ')}`);
      const owner = await Promise.all(Array.from({ length: 5 }, (_, i) => call('PUT', tenant.viaProxy(`/shared/o${i}`), auth(tenant), 'x')));
      assert.deepEqual(owner.map((a) => a.status), [201, 201, 201, 201, 201], `held by others: ${early.join(' ')}`);
      for (const request of [...strangers, ...anonymous]) request.destroy();
      assert.deepEqual(await arena.listing(tenant, 'shared'), ['o0', 'o1', 'o2', 'o3', 'o4']);
      assert.deepEqual(await arena.usage(tenant, 'shared'), { objects: LIMITS.objects, bytes: LIMITS.objects });
    });
  });
}
