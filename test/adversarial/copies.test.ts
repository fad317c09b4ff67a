/**
 * Server-side copies are counted at what Swift's copy middleware stores: its source read from the account,
 * container and object Swift reads (every header it honours, in every spelling eventlet merges), and its size
 * as Swift's GET of that source answers the request's Range (one range: its length; several: the
 * multipart/byteranges body, each part carrying the source's content type; an unsatisfiable Range: 416 and
 * nothing stored). What Swift stores is measured on Swift directly: the expected size of every copy is the
 * length of Swift's own answer to a GET of the source with the same Range.
 *
 * On the unfixed proxy (5 objects / 10,000 bytes per container), the same in both modes: 50 ranges of a 50-byte
 * source with a 2,000-byte content type were admitted and stored 106,836 bytes; 2 ranges of a 6,000-byte SLO
 * 16,216; a COPY with X-Copy-From-Account 50,000 (a DLO in the other account, sized from a 32-byte object here);
 * 40 ranges of a source whose content type grew meanwhile 85,476 (as they also did with the ranges counted but
 * the source not held still); a Range making an SLO manifest of a JSON document that is none stored a 6th
 * object in a 5-object container; and a 100-byte range of a 20,000-byte source was refused (413).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest, type HeaderList, type RawResponse } from '../helpers/raw-http.js';
import { call } from '../helpers/http.js';
import { LONG_TYPE, repeatRange, sendRaw, swiftGet, dloTwinOf } from './attacks.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [185, 186, 187, 188, 189, 190, 191, 192, 193, 194], 'precise mode': [195, 196, 197, 198, 199, 200, 201, 202, 203, 204] } as const;

const repeat = repeatRange;

for (const mode of MODES) {
  describe(`server-side copies, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    /** A request through the proxy with header names, duplicates and bytes exactly as given. */
    function send(tenant: Tenant, method: string, path: string, headers: HeaderList, body = ''): Promise<RawResponse> {
      return sendRaw(arena.proxy.url, tenant, method, path, headers, body);
    }

    /**
     * Copies `source` (a path in the tenant's account) with `range` headers into a fresh container, through the
     * proxy, and checks the outcome on Swift: admitted and stored exactly what Swift's GET serves when that
     * fits, refused (413) and nothing stored when it does not, Swift's own 416 when it answers the GET with one.
     */
    async function copyChecked(tenant: Tenant, container: string, source: string, range: HeaderList, how: 'PUT' | 'COPY' = 'PUT'): Promise<number> {
      await makeContainer(tenant, container);
      const expected = await swiftGet(tenant, source, range);
      const answer = how === 'PUT'
        ? await send(tenant, 'PUT', `/${container}/copy`, [['X-Copy-From', source], ...range])
        : await send(tenant, 'COPY', source, [['Destination', `${container}/copy`], ...range]);
      const usage = await arena.usage(tenant, container);
      const what = `${how} ${source} ${JSON.stringify(range).slice(0, 120)}: ${answer.status}, Swift's GET ${expected.status} of ${expected.length} bytes, stored ${JSON.stringify(usage)}`;
      if (expected.status === 416) {
        assert.equal(answer.status, 416, what);
        assert.deepEqual(usage, { objects: 0, bytes: 0 }, what);
      } else if (expected.length <= LIMITS.bytes) {
        assert.equal(answer.status, 201, what);
        assert.deepEqual(usage, { objects: 1, bytes: expected.length }, what);
      } else {
        assert.equal(answer.status, 413, what);
        assert.deepEqual(usage, { objects: 0, bytes: 0 }, what);
      }
      return expected.length;
    }

    test('a Range of several byte ranges is counted at the multipart/byteranges body Swift stores', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await putDirect(tenant, '/src/small', Buffer.alloc(50, 's'), { 'content-type': LONG_TYPE });
      // The shape: identical ranges are not "overlapping" to swob, 50 of them are honoured.
      const stored = await copyChecked(tenant, 'd0', '/src/small', [['Range', repeat('0-49', 50)]]);
      assert.ok(stored > 100_000, `Swift serves ${stored} bytes`);
      // Two ranges of the long type fit: counted exactly.
      await copyChecked(tenant, 'd1', '/src/small', [['Range', 'bytes=0-9,20-29']]);
      await copyChecked(tenant, 'd2', '/src/small', [['Range', 'bytes=0-49,0-49,0-49']]);
      // Spelled with spaces and capitals, and on a COPY.
      await copyChecked(tenant, 'd3', '/src/small', [['Range', ` BYTES = 0-49 , 0-49 ,${' 0-49,'.repeat(6)}0-49`]]);
      await copyChecked(tenant, 'd4', '/src/small', [['Range', repeat('0-49', 10)]], 'COPY');
    });

    test('single, suffix, past-the-end, unsatisfiable and ignored ranges are counted as Swift serves them', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await putDirect(tenant, '/src/big', Buffer.alloc(20_000, 'b'));
      await putDirect(tenant, '/src/small', Buffer.alloc(50, 's'), { 'content-type': LONG_TYPE });
      const cases: Array<[string, HeaderList]> = [
        ['/src/big', [['Range', 'bytes=0-99']]],
        ['/src/big', [['Range', 'bytes=19990-30000']]],
        ['/src/big', [['Range', 'bytes=-10']]],
        ['/src/big', [['Range', 'bytes=+5-99']]],
        ['/src/big', [['Range', 'bytes=1_0-99']]],
        ['/src/small', [['Range', 'bytes=-100000']]],
        ['/src/small', [['Range', 'bytes=-0']]],
        ['/src/small', [['Range', 'bytes=60-']]],
        ['/src/small', [['Range', 'bytes=0-30,10-40,20-49']]],
        ['/src/small', [['Range', repeat('0-0', 51)]]],
        ['/src/small', [['Range', 'bytes=7-7,6-6,5-5,4-4,3-3,2-2,1-1,0-0']]],
        ['/src/small', [['Range', 'bytes=7-7,6-6,5-5,4-4,3-3,2-2,1-1']]],
        ['/src/small', [['Range', 'bytes=0-1,60-70,-0']]],
        // Ignored by swob (the whole object is copied): an end before the start, another unit, an empty spec.
        ['/src/big', [['Range', 'bytes=5-3']]],
        ['/src/big', [['Range', 'bites=0-99']]],
        ['/src/big', [['Range', 'bytes=0-99,']]],
        // Two Range headers: eventlet joins them ("bytes=0-9,bytes=20-29"), which swob ignores.
        ['/src/big', [['Range', 'bytes=0-9'], ['range', 'bytes=20-29']]],
        ['/src/small', [['Range', 'bytes=0-9'], ['Range', 'bytes=0-9']]],
      ];
      let i = 0;
      for (const [source, range] of cases) await copyChecked(tenant, `d${i++}`, source, range);
    });

    test('large objects: an SLO serves every range (parts and all), a DLO the whole object for several', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'seg');
      await makeContainer(tenant, 'src');
      for (const i of [0, 1]) await putDirect(tenant, `/seg/s${i}`, Buffer.alloc(3000, 'l'));
      const manifest = JSON.stringify([{ path: '/seg/s0' }, { path: '/seg/s1' }]);
      assert.equal((await call('PUT', tenant.direct('/src/slo?multipart-manifest=put'), { 'x-auth-token': tenant.token, 'content-type': LONG_TYPE }, manifest)).status, 201);
      await putDirect(tenant, '/src/dlo', '', { 'x-object-manifest': 'seg/s', 'content-type': LONG_TYPE });
      const cases: Array<[string, string]> = [
        ['/src/slo', 'bytes=0-5999,0-5999'],
        ['/src/slo', 'bytes=0-1,2999-3000'],
        ['/src/slo', 'bytes=100-199'],
        ['/src/slo', 'bytes=6000-'],
        ['/src/dlo', 'bytes=0-5999,0-5999'],
        ['/src/dlo', 'bytes=2990-3009'],
        ['/src/dlo', 'bytes=-5'],
        ['/src/dlo', 'bytes=7000-'],
      ];
      let i = 0;
      for (const [source, range] of cases) await copyChecked(tenant, `d${i++}`, source, [['Range', range]]);
    });

    test('the source is read from the account Swift reads: X-Copy-From-Account on a COPY, in any spelling', async () => {
      const { attacker, other } = await dloTwinOf(arena);
      const attempts: Array<[string, HeaderList]> = [
        ['d0', [['X-Copy-From-Account', other.swiftAccount]]],
        ['d1', [['X_Copy_From_Account', other.swiftAccount]]],
        ['d2', [['x-copy-from_ACCOUNT', other.swiftAccount]]],
      ];
      for (const [container, headers] of attempts) {
        await makeContainer(attacker, container);
        const answer = await send(attacker, 'COPY', '/src/o', [['Destination', `${container}/copy`], ...headers]);
        const usage = await arena.usage(attacker, container);
        assert.deepEqual(usage, { objects: 0, bytes: 0 }, `${JSON.stringify(headers)}: ${answer.status}, stored ${JSON.stringify(usage)}`);
        assert.equal(answer.status, 413);
      }
      // With Destination-Account, Swift reads the path's own account whatever X-Copy-From-Account says.
      await makeContainer(attacker, 'd3');
      const own = await send(attacker, 'COPY', '/src/o', [['Destination', 'd3/copy'], ['Destination-Account', attacker.swiftAccount], ['X-Copy-From-Account', other.swiftAccount]]);
      assert.equal(own.status, 201, own.body);
      assert.deepEqual(await arena.usage(attacker, 'd3'), { objects: 1, bytes: 32 });
      // A PUT reads X-Copy-From-Account (an empty one is the request's own account).
      await makeContainer(attacker, 'd4');
      const put = await send(attacker, 'PUT', '/d4/copy', [['X-Copy-From', 'src/o'], ['X-Copy-From-Account', other.swiftAccount]]);
      assert.equal(put.status, 413, put.body);
      const empty = await send(attacker, 'PUT', '/d4/copy', [['X-Copy-From', 'src/o'], ['X-Copy-From-Account', '']]);
      assert.equal(empty.status, 201, empty.body);
      assert.deepEqual(await arena.usage(attacker, 'd4'), { objects: 1, bytes: 32 });
    });

    test('copies the proxy lets through uncounted are ones Swift refuses without writing', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'dst');
      await putDirect(tenant, '/src/big', Buffer.alloc(20_000, 'b'));
      const attempts: Array<[string, string, HeaderList, string]> = [
        ['PUT', '/dst/a', [['X-Copy-From', 'src/big']], 'body'],
        ['PUT', '/dst/b', [['X-Copy-From', 'srcbig']], ''],
        ['PUT', '/dst/c', [['X-Copy-From', 'src/big'], ['X-Copy-From-Account', 'a/b']], ''],
        ['PUT', '/dst/d', [['X-Copy-From', 'src/%FF']], ''],
        ['PUT', '/dst/e', [['X-Copy-From', 'src/big'], ['X-Copy-From-Account', '%FF']], ''],
        ['COPY', '/src/big', [], ''],
        ['COPY', '/src/big', [['Destination', '']], ''],
        ['COPY', '/src/big', [['Destination', 'dst']], ''],
        ['COPY', '/src/big', [['Destination', 'dst/f'], ['Destination-Account', '']], ''],
        ['COPY', '/src/big', [['Destination', 'dst/g'], ['Destination-Account', 'a/b']], ''],
        ['COPY', '/src/big', [['Destination', 'dst/h'], ['Destination-Account', '%FF']], ''],
        ['COPY', '/src/big', [['Destination', 'dst/i'], ['X-Copy-From-Account', 'a/b']], ''],
      ];
      const host = new URL(arena.swift).host;
      for (const [method, path, headers, body] of attempts) {
        const target = `/v1/${tenant.swiftAccount}${path}`;
        const direct = await rawRequest(arena.swift, method, target, [['Host', host], ['X-Auth-Token', tenant.token], ['Content-Length', String(body.length)], ...headers], body).response;
        const proxied = await send(tenant, method, path, headers, body);
        // Swift's own refusals, the same through the proxy: a copy with a body (400); malformed names, empty or
        // slashed accounts (412); names that are not UTF-8 once unquoted (412, or a 500 of Swift's own).
        assert.ok([400, 412, 500].includes(direct.status), `${method} ${path} ${JSON.stringify(headers)}: Swift ${direct.status}`);
        assert.equal(proxied.status, direct.status, `${method} ${path} ${JSON.stringify(headers)}: ${proxied.body}`);
      }
      assert.deepEqual(await arena.usage(tenant, 'dst'), { objects: 0, bytes: 0 });
    });

    test('symlinks and manifests: a copy reads its source through them with the Range, and is counted so', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'seg');
      await putDirect(tenant, '/src/small', Buffer.alloc(50, 's'), { 'content-type': LONG_TYPE });
      await putDirect(tenant, '/src/link', '', { 'x-symlink-target': 'src/small' });
      // One range of a symlink's target is counted exactly; several are refused (the chain cannot be held still).
      await copyChecked(tenant, 'd0', '/src/link', [['Range', 'bytes=0-9']]);
      await makeContainer(tenant, 'd1');
      const several = await send(tenant, 'PUT', '/d1/copy', [['X-Copy-From', 'src/link'], ['Range', 'bytes=0-9,20-29']]);
      assert.equal(several.status, 400, several.body);
      assert.deepEqual(await arena.usage(tenant, 'd1'), { objects: 0, bytes: 0 });
      // A copy made into an SLO manifest: the Range picks a manifest out of a JSON document that is none.
      await putDirect(tenant, '/seg/s0', Buffer.alloc(3000, 'l'));
      const document = JSON.stringify({ wrapped: [{ path: '/seg/s0' }] });
      await putDirect(tenant, '/src/doc.json', document);
      const inner = `bytes=${document.indexOf('[')}-${document.lastIndexOf(']')}`;
      await makeContainer(tenant, 'm');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/m/o${i}`, 'x');
      const made = await send(tenant, 'PUT', '/m/made?multipart-manifest=put', [['X-Copy-From', 'src/doc.json'], ['Range', inner]]);
      assert.equal(made.status, 413, made.body);
      assert.deepEqual(await arena.usage(tenant, 'm'), { objects: LIMITS.objects, bytes: LIMITS.objects });
      // With room, it is made, and counted at the manifest SLO stores.
      await makeContainer(tenant, 'm2');
      const room = await send(tenant, 'PUT', '/m2/made?multipart-manifest=put', [['X-Copy-From', 'src/doc.json'], ['Range', inner]]);
      assert.equal(room.status, 201, room.body);
      const stored = await arena.usage(tenant, 'm2');
      assert.equal(stored.objects, 1);
      assert.ok(stored.bytes > 100, JSON.stringify(stored));
    });

    test('a source\'s content type cannot grow between the check and Swift\'s copy of several ranges', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'dst');
      await putDirect(tenant, '/src/small', Buffer.alloc(50, 's'), { 'content-type': 'text/plain' });
      for (let round = 0; round < 4; round++) {
        await call('POST', tenant.direct('/src/small'), { 'x-auth-token': tenant.token, 'content-type': 'text/plain' });
        const copy = send(tenant, 'PUT', `/dst/r${round}`, [['X-Copy-From', 'src/small'], ['Range', repeat('0-49', 40)]]);
        const posts = Array.from({ length: 3 }, () => call('POST', tenant.viaProxy('/src/small'), { 'x-auth-token': tenant.token, 'content-type': LONG_TYPE }));
        const [answer] = await Promise.all([copy, ...posts]);
        const usage = await arena.usage(tenant, 'dst');
        assert.ok(usage.bytes <= LIMITS.bytes, `round ${round}: copy ${answer!.status}, ${JSON.stringify(usage)} stored`);
      }
    });

    test('a content type of raw UTF-8 bytes is counted as swob writes it into every part (each byte above 0x7f as two)', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      // Raw bytes, as a client sends them (Swift answered 503 to a 1,000-byte one, and error-limited its node).
      const type = Buffer.from(`text/${'é'.repeat(200)}`, 'utf8').toString('latin1');
      const host = new URL(arena.swift).host;
      const put = await rawRequest(arena.swift, 'PUT', new URL(tenant.direct('/src/small')).pathname, [['Host', host], ['X-Auth-Token', tenant.token], ['Content-Length', '50'], ['Content-Type', type]], 'u'.repeat(50)).response;
      assert.equal(put.status, 201);
      const stored = await copyChecked(tenant, 'd0', '/src/small', [['Range', 'bytes=0-9,20-29']]);
      assert.equal(stored, 1838); // 2 parts of 878 + their Content-Range lines and bytes, and the closing boundary
      await copyChecked(tenant, 'd1', '/src/small', [['Range', repeat('0-0', 6)]]);
    });
  });
}
