/**
 * Bulk extraction (`?extract-archive`) through the proxy: every file of the archive counts as the object it
 * becomes, and every container an account-level extraction makes, before any of its bytes reach Swift; the
 * archive is stopped at the first file past a limit and Swift's answer lists it. Outcomes read on Swift.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { call } from '../helpers/http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, statuses, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [133, 134, 135, 139], 'precise mode': [136, 137, 138, 140] } as const;

async function archive(files: Array<[string, number]>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, size] of files) pack.entry({ name }, Buffer.alloc(size, 'x'));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

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
