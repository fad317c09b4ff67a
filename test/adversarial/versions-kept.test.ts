/**
 * Writes of one name in a container with object_versioning on (`X-Versions-Enabled`): Swift keeps every one of
 * them as a version and reports the bytes of all versions as the container's `X-Container-Bytes-Used`, its
 * current objects (one per name) as `X-Container-Object-Count`. So writes of one name in flight together do not
 * replace each other byte-wise (only count-wise), nor do the members of one archive, nor does a multipart
 * completion free the object it replaces. Every outcome is read straight from Swift, the versions' bytes from
 * its `?versions` listing (the hidden versions container they are kept in).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { accountUrl, call } from '../helpers/http.js';
import { rawRequest, type RawRequest } from '../helpers/raw-http.js';
import { redisUrl } from '../helpers/swift-env.js';
import type { RunningProxy } from '../helpers/proxy.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';
import { archive, s3 } from './attacks.js';

const ACCOUNTS = {
  'cached mode': { alone: [205, 206, 207, 208, 209, 210, 211, 212, 213], shared: [215, 216, 217, 218, 219] },
  'precise mode': { alone: [225, 226, 227, 228, 229, 230, 231, 232, 233], shared: [235, 236, 237, 238, 239] },
} as const;

const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

/** A PUT through `proxy` whose body is held until the test finishes it. */
function heldPut(proxy: RunningProxy, tenant: Tenant, path: string, length: number): RawRequest {
  const url = new URL(`${accountUrl(proxy.url, tenant.account)}${path}`);
  return rawRequest(proxy.url, 'PUT', url.pathname, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Expect', '100-continue'], ['Content-Length', String(length)]]);
}

/** The bytes of every version Swift keeps of a container's objects (its `?versions` listing), delete markers included. */
async function versionBytes(arena: Arena, tenant: Tenant, container: string): Promise<number> {
  const listing = await call('GET', tenant.direct(`/${container}?versions&format=json`), { 'x-auth-token': arena.resellerToken });
  assert.equal(listing.status, 200, listing.body);
  return (JSON.parse(listing.body) as Array<{ bytes: number }>).reduce((sum, version) => sum + version.bytes, 0);
}

async function versioned(tenant: Tenant, container: string): Promise<void> {
  await makeContainer(tenant, container, { 'x-versions-enabled': 'true' });
}

/** Sends `count` PUTs of one name with their bodies held (alternating over `proxies`); admitted ones get their body. */
async function heldSameName(proxies: RunningProxy[], tenant: Tenant, path: string, count: number, size: number): Promise<{ admitted: number; statuses: number[] }> {
  const held: RawRequest[] = [];
  const verdicts: Array<'continue' | number> = [];
  for (let i = 0; i < count; i++) {
    const request = heldPut(proxies[i % proxies.length]!, tenant, path, size);
    held.push(request);
    verdicts.push(await request.admitted);
  }
  const answers = await Promise.all(held.map((request, i) => (verdicts[i] === 'continue' ? request.finish('h'.repeat(size)) : request.response)));
  return { admitted: verdicts.filter((verdict) => verdict === 'continue').length, statuses: answers.map((answer) => answer.status) };
}

for (const mode of MODES) {
  describe(`writes of one name kept as versions, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name].alone]);
    });
    after(() => arena.close());

    test('ten members of one name in a bulk archive: each is a version, stored only up to the bytes limit', async () => {
      const tenant = await arena.tenant();
      await versioned(tenant, 'ov');
      const answer = await call('PUT', tenant.viaProxy('/ov?extract-archive=tar'), { ...auth(tenant), accept: 'application/json' }, await archive(Array.from({ length: 10 }, () => ['same', 3000] as [string, number])));
      assert.equal(answer.status, 200, answer.body);
      const created = (JSON.parse(answer.body) as { 'Number Files Created': number })['Number Files Created'];
      const stored = await arena.usage(tenant, 'ov');
      const report = `created ${created}, stored on Swift ${JSON.stringify(stored)}, versions ${await versionBytes(arena, tenant, 'ov')} bytes`;
      assert.equal(created, 3, report);
      assert.deepEqual(stored, { objects: 1, bytes: 9000 }, report);
      assert.equal(await versionBytes(arena, tenant, 'ov'), 9000, report);
    });

    test('six PUTs of one name held open, then finished: each is a version, only two fit (and one object)', async () => {
      const tenant = await arena.tenant();
      await versioned(tenant, 'hp');
      const { admitted, statuses } = await heldSameName([arena.proxy], tenant, '/hp/o', 6, 4000);
      const stored = await arena.usage(tenant, 'hp');
      const report = `admitted ${admitted} (${statuses.join(' ')}), stored on Swift ${JSON.stringify(stored)}`;
      assert.equal(admitted, 2, report);
      assert.deepEqual(stored, { objects: 1, bytes: 8000 }, report);
      assert.equal(await versionBytes(arena, tenant, 'hp'), 8000, report);
    });

    test('at the object limit, held PUTs of one name in a versioned container still count as one object', async () => {
      const tenant = await arena.tenant();
      await versioned(tenant, 'hc');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/hc/x${i}`, 'x');
      const { admitted, statuses } = await heldSameName([arena.proxy], tenant, '/hc/o', 4, 10);
      const stored = await arena.usage(tenant, 'hc');
      assert.equal(admitted, 4, statuses.join(' '));
      assert.deepEqual(stored, { objects: LIMITS.objects, bytes: LIMITS.objects - 1 + 40 });
    });

    test('a copy onto a name whose PUT is held: both are versions, the copy does not fit', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await putDirect(tenant, '/src/s', 'c'.repeat(6000));
      await versioned(tenant, 'cv');
      const put = heldPut(arena.proxy, tenant, '/cv/o', 6000);
      assert.equal(await put.admitted, 'continue');
      const copy = await call('PUT', tenant.viaProxy('/cv/o'), { ...auth(tenant), 'x-copy-from': 'src/s', 'content-length': '0' });
      const finished = await put.finish('p'.repeat(6000));
      const stored = await arena.usage(tenant, 'cv');
      const report = `copy ${copy.status}, held PUT ${finished.status}, stored on Swift ${JSON.stringify(stored)}`;
      assert.equal(copy.status, 413, report);
      assert.equal(finished.status, 201, report);
      assert.deepEqual(stored, { objects: 1, bytes: 6000 }, report);
    });

    test('an S3 multipart completion in a versioned bucket frees nothing: the object it replaces stays as a version', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'mpv');
      // Stored before versioning was on: a plain object, which Swift copies into the versions as it is replaced.
      await putDirect(tenant, '/mpv/big', 'b'.repeat(9900));
      assert.equal((await call('POST', tenant.direct('/mpv'), { ...auth(tenant), 'x-versions-enabled': 'true' })).status, 204);
      const as = { endpoint: arena.proxy.url, access: `${tenant.account}:admin`, secret: `${tenant.account}pass` };
      const [initiated] = await s3([{ ...as, op: 'initiate', bucket: 'mpv', key: 'big' }]);
      assert.ok(initiated!.ok, JSON.stringify(initiated));
      const [part] = await s3([{ ...as, op: 'upload_part', bucket: 'mpv', key: 'big', upload_id: initiated!.upload_id, part: 1, size: 100 }]);
      assert.ok(part!.ok, JSON.stringify(part));
      const [completed] = await s3([{ ...as, op: 'presign_op', operation: 'complete_multipart_upload', params: { Bucket: 'mpv', Key: 'big', UploadId: initiated!.upload_id } }]);
      const url = new URL((completed as { url?: string }).url!);
      const xml = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${part!.etag!}</ETag></Part></CompleteMultipartUpload>`;
      const answer = await call('POST', `${arena.proxy.url}${url.pathname}${url.search}`, { host: url.host }, xml);
      const stored = await arena.usage(tenant, 'mpv');
      const report = `completion ${answer.status} ${answer.body.slice(0, 200)}, stored on Swift ${JSON.stringify(stored)}, versions ${await versionBytes(arena, tenant, 'mpv')} bytes`;
      assert.ok(stored.bytes <= LIMITS.bytes, report);
      assert.deepEqual(stored, { objects: 1, bytes: 9900 }, report);
      assert.equal(answer.status, 400, report);
      assert.match(answer.body, /<Code>EntityTooLarge<\/Code>/, report);
    });

    test('versioning turned on at the same moment as overwrites that count on freeing what they replace', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'race');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/race/o${i}`, 'a'.repeat(1990));
      const overwrites = Array.from({ length: LIMITS.objects }, (_, i) => call('PUT', tenant.viaProxy(`/race/o${i}`), auth(tenant), 'b'.repeat(1990)));
      const enable = call('POST', tenant.viaProxy('/race'), { ...auth(tenant), 'x-versions-enabled': 'true' });
      const answers = await Promise.all(overwrites);
      assert.equal((await enable).status, 204);
      // Each overwrite either went before the change (and freed what it replaced) or after it (and was refused).
      assert.deepEqual(await arena.usage(tenant, 'race'), { objects: LIMITS.objects, bytes: LIMITS.objects * 1990 }, `overwrites ${answers.map((answer) => answer.status).join(' ')}`);
    });

    test('versioning turned on while two PUTs of one name are held waits for both of them (they were admitted as replacing each other)', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'tv');
      const first = heldPut(arena.proxy, tenant, '/tv/o', 6000);
      assert.equal(await first.admitted, 'continue');
      const second = heldPut(arena.proxy, tenant, '/tv/o', 6000);
      assert.equal(await second.admitted, 'continue');
      let turnedOn = false;
      const enable = call('POST', tenant.viaProxy('/tv'), { ...auth(tenant), 'x-versions-enabled': 'true' }).then((answer) => {
        turnedOn = true;
        return answer;
      });
      await sleep(500);
      const whileBoth = turnedOn;
      assert.equal((await second.finish('s'.repeat(6000))).status, 201);
      await sleep(500);
      const whileFirst = turnedOn;
      assert.equal((await first.finish('f'.repeat(6000))).status, 201);
      assert.equal((await enable).status, 204);
      const stored = await arena.usage(tenant, 'tv');
      const report = `turned on while both held: ${whileBoth}, while the first was: ${whileFirst}; stored on Swift ${JSON.stringify(stored)}`;
      assert.equal(whileBoth, false, report);
      assert.equal(whileFirst, false, report);
      assert.deepEqual(stored, { objects: 1, bytes: 6000 }, report);
    });
  });

  describe(`writes of one name kept as versions, two proxies sharing one Redis ledger, ${mode.name}`, () => {
    let arena: Arena;
    let second: RunningProxy;
    before(async () => {
      const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = versions-kept-${randomBytes(4).toString('hex')}:`];
      arena = await openArena(mode, [...ACCOUNTS[mode.name].shared], { extraProxyLines: lines });
      second = await arena.another();
    });
    after(async () => {
      await second.close();
      await arena.close();
    });

    test('six PUTs of one name held open over two proxies, then finished: only two fit', async () => {
      const tenant = await arena.tenant();
      await versioned(tenant, 'hp');
      const { admitted, statuses } = await heldSameName([arena.proxy, second], tenant, '/hp/o', 6, 4000);
      const stored = await arena.usage(tenant, 'hp');
      const report = `admitted ${admitted} (${statuses.join(' ')}), stored on Swift ${JSON.stringify(stored)}`;
      assert.equal(admitted, 2, report);
      assert.deepEqual(stored, { objects: 1, bytes: 8000 }, report);
    });

    test('versioning turned on through one proxy is seen by the other before it credits writes of one name with each other', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'late');
      // The first proxy reads the container (no versioning yet) and keeps that reading.
      assert.equal((await call('PUT', tenant.viaProxy('/late/first'), auth(tenant), 'f'.repeat(10))).status, 201);
      const enabled = await call('POST', `${accountUrl(second.url, tenant.account)}/late`, { ...auth(tenant), 'x-versions-enabled': 'true' });
      assert.equal(enabled.status, 204, enabled.body);
      const { admitted, statuses } = await heldSameName([arena.proxy], tenant, '/late/o', 6, 3000);
      const stored = await arena.usage(tenant, 'late');
      const report = `admitted ${admitted} (${statuses.join(' ')}), stored on Swift ${JSON.stringify(stored)}`;
      assert.equal(admitted, 3, report);
      assert.deepEqual(stored, { objects: 2, bytes: 9010 }, report);
    });

    test('held PUTs of one name over two proxies at the object limit still count as one object', async () => {
      const tenant = await arena.tenant();
      await versioned(tenant, 'hc');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/hc/x${i}`, 'x');
      const { admitted, statuses } = await heldSameName([arena.proxy, second], tenant, '/hc/o', 4, 10);
      assert.equal(admitted, 4, statuses.join(' '));
      assert.deepEqual(await arena.usage(tenant, 'hc'), { objects: LIMITS.objects, bytes: LIMITS.objects - 1 + 40 });
    });
  });
}
