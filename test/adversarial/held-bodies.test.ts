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
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [1, 2, 3, 4, 5, 6, 7, 8], 'precise mode': [9, 10, 11, 12, 13, 14, 15, 16] } as const;

/** A request through the proxy whose body is held back until the test sends it. */
function held(arena: Arena, tenant: Tenant, method: string, path: string, headers: HeaderList, length: number | 'chunked'): RawRequest {
  const url = new URL(tenant.viaProxy(path));
  const framing: HeaderList = length === 'chunked' ? [['Transfer-Encoding', 'chunked']] : [['Content-Length', String(length)]];
  return rawRequest(arena.proxy.url, method, url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Expect', '100-continue'], ...framing, ...headers]);
}

const EMPTY_CHUNKED = '0\r\n\r\n';

for (const mode of MODES) {
  describe(`held bodies, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    test('uploads admitted into a container that does not exist yet hold their quota: 8 held, container made, bodies sent → at most 5 stored', async () => {
      const tenant = await arena.tenant();
      const uploads = Array.from({ length: 8 }, (_, i) => held(arena, tenant, 'PUT', `/late/o${i}`, [], 10));
      const verdicts = await Promise.all(uploads.map((upload) => upload.admitted));
      await makeContainer(tenant, 'late');
      const answers = await Promise.all(uploads.map((upload, i) => (verdicts[i] === 'continue' ? upload.finish('0123456789') : upload.response)));
      assert.ok(answers.filter((a) => a.status === 201).length <= LIMITS.objects, answers.map((a) => a.status).join(' '));
      assert.ok((await arena.usage(tenant, 'late')).objects <= LIMITS.objects);
    });

    test('an overwrite admitted at the count limit holds its object: replaced object deleted, a new one tried, body sent → still 5', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'full');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/full/o${i}`, 'x');
      const overwrite = held(arena, tenant, 'PUT', '/full/o0', [], 1);
      assert.equal(await overwrite.admitted, 'continue', 'an overwrite at the limit is admitted');
      assert.equal((await call('DELETE', tenant.viaProxy('/full/o0'), auth(tenant))).status, 204);
      const newcomer = await call('PUT', tenant.viaProxy('/full/new'), auth(tenant), 'x');
      const last = await overwrite.finish('y');
      assert.equal(newcomer.status === 201 && last.status === 201, false, `new ${newcomer.status}, overwrite ${last.status}`);
      assert.ok((await arena.usage(tenant, 'full')).objects <= LIMITS.objects);
    });

    test('an overwrite admitted at the byte limit holds its bytes: replaced object deleted, 9000 bytes tried, body sent → at most 10000', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'bytes');
      await putDirect(tenant, '/bytes/a', Buffer.alloc(6000, 'a'));
      const overwrite = held(arena, tenant, 'PUT', '/bytes/a', [], 7000);
      assert.equal(await overwrite.admitted, 'continue', '7000 replacing 6000 fits');
      assert.equal((await call('DELETE', tenant.viaProxy('/bytes/a'), auth(tenant))).status, 204);
      const newcomer = await call('PUT', tenant.viaProxy('/bytes/b'), auth(tenant), Buffer.alloc(9000, 'b'));
      await overwrite.finish(Buffer.alloc(7000, 'c'));
      assert.ok((await arena.usage(tenant, 'bytes')).bytes <= LIMITS.bytes, `newcomer ${newcomer.status}`);
    });

    test('a container re-PUT admitted at the container limit holds its container: it is deleted, another made, body sent → still 3', async () => {
      const tenant = await arena.tenant();
      for (let i = 1; i <= LIMITS.containers; i++) await makeContainer(tenant, `c${i}`);
      const again = held(arena, tenant, 'PUT', '/c2', [], 1);
      assert.equal(await again.admitted, 'continue', 're-PUT of an existing container at the limit is admitted');
      assert.equal((await call('DELETE', tenant.viaProxy('/c2'), auth(tenant))).status, 204);
      const other = await call('PUT', tenant.viaProxy('/c4'), auth(tenant));
      const last = await again.finish('x');
      assert.ok((await arena.containers(tenant)) <= LIMITS.containers, `c4 ${other.status}, held c2 ${last.status}`);
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
      assert.ok((await arena.usage(tenant, 'dst')).bytes <= LIMITS.bytes, answers.map((a) => `${a.status}`).join(' '));
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
      assert.ok((await arena.usage(tenant, 'dst')).bytes <= LIMITS.bytes, `copy ${answer.status}`);
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
      assert.equal((await arena.usage(tenant, 'shared')).objects, LIMITS.objects);
    });
  });
}
