/**
 * Bulk extraction (`?extract-archive`) through the proxy: every file of the archive counts as the object it
 * becomes, and every container an account-level extraction makes, before any of its bytes reach Swift; the
 * archive is stopped at the first file past a limit and Swift's answer lists it. Outcomes read on Swift.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { call } from '../helpers/http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, statuses, type Arena, type Tenant } from './arena.js';
import { END, file, header, pax, padded } from './tar-blocks.js';
import { archive, renamedArchive, sparseArchive, swallowingArchive } from './attacks.js';

const ACCOUNTS = { 'cached mode': [133, 134, 135, 139, 145, 146, 147, 148, 149], 'precise mode': [136, 137, 138, 140, 155, 156, 157, 158, 159] } as const;

interface BulkAnswer {
  'Response Status': string;
  'Number Files Created': number;
  Errors: Array<[string, string]>;
}

for (const mode of MODES) {
  describe(`bulk extraction, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    const extract = (tenant: Tenant, path: string, format: string, body: Buffer, accept = 'application/json') =>
      call('PUT', tenant.viaProxy(`${path}?extract-archive=${format}`), { 'x-auth-token': tenant.token, accept }, body);

    test('into a container: files past object_count or container_usage are not stored, and the answer lists the first refused', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      for (let i = 0; i < LIMITS.objects - 2; i++) await putDirect(tenant, `/c/pre${i}`, 'x');
      const answer = await extract(tenant, '/c', 'tar', await archive([['f1', 10], ['f2', 10], ['f3', 10], ['f4', 10]]));
      assert.equal(answer.status, 200);
      const result = JSON.parse(answer.body) as BulkAnswer;
      assert.equal(result['Number Files Created'], 2, answer.body);
      assert.equal(result['Response Status'], '400 Bad Request');
      assert.deepEqual(result.Errors, [['c/f3', '413 Request Entity Too Large']]);
      assert.equal((await arena.usage(tenant, 'c')).objects, LIMITS.objects);
      assert.deepEqual((await arena.listing(tenant, 'c')).filter((name) => name.startsWith('f')), ['f1', 'f2']);

      await makeContainer(tenant, 'bytes');
      const gz = await extract(tenant, '/bytes/sub', 'tar.gz', gzipSync(await archive([['a', 4000], ['b', 4000], ['c', 4000]])), 'text/plain');
      assert.match(gz.body, /Number Files Created: 2\n/);
      assert.match(gz.body, /bytes\/sub\/c, 413 Request Entity Too Large\n/);
      assert.deepEqual(await arena.usage(tenant, 'bytes'), { objects: 2, bytes: 8000 });
    });

    test('into an account: each container it lands in holds a place; past container_count its files are not stored', async () => {
      const tenant = await arena.tenant();
      const answer = await extract(tenant, '', 'tar.gz', gzipSync(await archive([['x/1', 1], ['y/1', 1], ['y/2', 1], ['z/1', 1], ['w/1', 1], ['x/2', 1]])));
      const result = JSON.parse(answer.body) as BulkAnswer;
      assert.equal(result['Number Files Created'], 4, answer.body);
      assert.deepEqual(result.Errors, [['w/1', '403 Forbidden']]);
      assert.equal(await arena.containers(tenant), LIMITS.containers);
      assert.deepEqual(await arena.listing(tenant, 'y'), ['1', '2']);
      assert.equal((await call('HEAD', tenant.direct('/w'), { 'x-auth-token': tenant.token })).status, 404);
      // The extraction stopped at w/1: x/2, after it in the archive, was not sent either.
      assert.deepEqual(await arena.listing(tenant, 'x'), ['1']);
    });

    test('into a container with legacy versioning: stopped before a file (it would archive what it replaces, uncounted)', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/arch/x${i}`, 'x');
      await makeContainer(tenant, 'vc', { 'x-versions-location': 'arch' });
      await putDirect(tenant, '/vc/o', 'old');
      const answer = await extract(tenant, '/vc', 'tar', await archive([['o', 5]]));
      const result = JSON.parse(answer.body) as BulkAnswer;
      assert.equal(result['Number Files Created'], 0, answer.body);
      assert.deepEqual(result.Errors, [['vc/o', '400 Bad Request']]);
      assert.equal((await call('GET', tenant.direct('/vc/o'), { 'x-auth-token': tenant.token })).body, 'old');
      assert.equal((await arena.usage(tenant, 'arch')).objects, LIMITS.objects);
    });

    test('concurrent extractions share the last places: at most 5 objects stored; an unreadable archive is answered as Swift answers it', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      for (let i = 0; i < LIMITS.objects - 3; i++) await putDirect(tenant, `/c/pre${i}`, 'x');
      const archives = await Promise.all([0, 1, 2].map((n) => archive([1, 2, 3].map((i) => [`a${n}-${i}`, 10] as [string, number]))));
      const answers = await Promise.all(archives.map((body) => extract(tenant, '/c', 'tar', body)));
      const created = answers.map((answer) => (JSON.parse(answer.body) as BulkAnswer)['Number Files Created']);
      assert.equal(created.reduce((a, b) => a + b, 0), 3, `${statuses(answers)} ${created.join(' ')}`);
      assert.equal((await arena.usage(tenant, 'c')).objects, LIMITS.objects);

      await makeContainer(tenant, 'g');
      const garbage = Buffer.from('not an archive '.repeat(100));
      const viaProxy = await extract(tenant, '/g', 'tar', garbage);
      const direct = await call('PUT', tenant.direct('/g?extract-archive=tar'), { 'x-auth-token': tenant.token, accept: 'application/json' }, garbage);
      assert.equal(viaProxy.status, direct.status);
      assert.deepEqual(JSON.parse(viaProxy.body), JSON.parse(direct.body));
      assert.equal((await arena.usage(tenant, 'g')).objects, 0);
    });
  });
}

/**
 * Archives whose pax records Python's tarfile (Swift's bulk) reads differently from a JavaScript tar reader.
 * The proxy reads the client's archive and writes Swift a tar of its own: only the name, size and metadata it
 * counted, so whatever the client's records say, Swift stores exactly what was admitted (or nothing, when the
 * proxy refuses a record it will not guess at). Outcomes read on Swift directly.
 */
for (const mode of MODES) {
  describe(`bulk extraction: the tar Swift reads is the one the proxy counted, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, mode.precise ? [155, 156, 157, 158, 159] : [145, 146, 147, 148, 149]);
    });
    after(() => arena.close());

    const extract = async (tenant: Tenant, path: string, body: Buffer) => {
      const answer = await call('PUT', tenant.viaProxy(`${path}?extract-archive=tar`), { 'x-auth-token': tenant.token, accept: 'application/json' }, body);
      assert.equal(answer.status, 200, answer.body);
      return JSON.parse(answer.body) as BulkAnswer & { 'Response Body': string };
    };
    /** Swift's answer and what it stores, in one value, so a failure shows every number. */
    const outcome = async (tenant: Tenant, path: string, body: Buffer, containers: string[]) => {
      const result = await extract(tenant, path, body);
      const stored: Record<string, { objects: number; bytes: number }> = {};
      for (const container of containers) stored[container] = await arena.usage(tenant, container);
      return { created: result['Number Files Created'], status: result['Response Status'], invalidTar: result['Response Body'].startsWith('Invalid Tar File'), stored };
    };
    const refused = { created: 0, status: '400 Bad Request', invalidTar: true };

    test('a sparse member (pax GNU.sparse.*), 1,024 bytes in the archive, a million once expanded: refused, nothing stored', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      const sparse = sparseArchive('sparse', 1_000_000);
      assert.deepEqual(await outcome(tenant, '/c', sparse, ['c']), { ...refused, stored: { c: { objects: 0, bytes: 0 } } });
    });

    test('a member whose pax GNU.sparse.name names another container: refused, neither container gets it', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'b');
      await makeContainer(tenant, 'f');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/b/pre${i}`, 'x');
      const moved = renamedArchive('b/x', 'f/x', 'hello');
      assert.deepEqual(await outcome(tenant, '', moved, ['b', 'f']), { ...refused, stored: { b: { objects: LIMITS.objects, bytes: LIMITS.objects }, f: { objects: 0, bytes: 0 } } });
    });

    test('a pax size spelled as Python reads it but not as a JavaScript reader does (1_536, 1_000_000): refused, no member swallows the next', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'a');
      await makeContainer(tenant, 'b');
      await putDirect(tenant, '/a/pre', Buffer.alloc(LIMITS.bytes - 1, 'p'));
      // a/first counts 1 byte; read by tarfile it is 1,536 bytes: its block, then b/second's header and data.
      const swallowing = swallowingArchive('a/first', 'b/second');
      assert.deepEqual(await outcome(tenant, '', swallowing, ['a', 'b']), { ...refused, stored: { a: { objects: 1, bytes: LIMITS.bytes - 1 }, b: { objects: 0, bytes: 0 } } });

      // The next member carries a pax record of a million bytes (a comment): big swallows it.
      await makeContainer(tenant, 'm');
      const million = Buffer.concat([
        pax([['size', '1_000_000']]),
        header({ name: 'big', size: 1 }),
        padded('x'),
        pax([['comment', 'c'.repeat(1_000_100)]]),
        file('pad', 'z'),
        END,
      ]);
      assert.deepEqual(await outcome(tenant, '/m', million, ['m']), { ...refused, stored: { m: { objects: 0, bytes: 0 } } });
    });

    test('ordinary pax and GNU records (long names, pax size and path, xattr metadata, a global comment) are stored exactly as admitted', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      const longName = `deep/${'d'.repeat(120)}/name`;
      const gnuName = `gnu/${'g'.repeat(150)}`;
      const ordinary = Buffer.concat([
        pax([['comment', '0123456789abcdef']], 'g'),
        pax([['path', longName], ['size', '7'], ['mtime', '1700000000.5'], ['SCHILY.xattr.user.mime_type', 'text/x-test'], ['SCHILY.xattr.user.meta.colour', 'blue'], ['SCHILY.xattr.security.selinux', 'x']]),
        header({ name: 'short', size: 7 }),
        padded('1234567'),
        header({ name: '././@LongLink', size: gnuName.length + 1, type: 'L', magic: 'gnu' }),
        padded(`${gnuName}\0`),
        file('truncated-gnu-name', 'abc', { magic: 'gnu' }),
        pax([['LIBARCHIVE.xattr.user.meta.shape', 'round']]),
        file('./plain', 'hello'),
        END,
      ]);
      const result = await extract(tenant, '/c', ordinary);
      assert.equal(result['Number Files Created'], 3, JSON.stringify(result));
      assert.equal(result['Response Status'], '201 Created');
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: 3, bytes: 15 });
      assert.deepEqual((await arena.listing(tenant, 'c')).sort(), [longName, gnuName, 'plain'].sort());
      const head = await call('HEAD', tenant.direct(`/c/${longName}`), { 'x-auth-token': tenant.token });
      assert.equal(head.headers['content-type'], 'text/x-test');
      assert.equal(head.headers['x-object-meta-colour'], 'blue');
      const plain = await call('GET', tenant.direct('/c/plain'), { 'x-auth-token': tenant.token });
      assert.equal(plain.body, 'hello');
      assert.equal(plain.headers['x-object-meta-shape'], 'round');
    });
  });
}
