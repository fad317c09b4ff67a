/**
 * The attack shapes of bulk, s3 and copies, run across two proxies sharing one Redis ledger: proxy A reads the
 * container first (it fills it most of the way, or makes the upload the attack names), then the attack goes
 * through proxy B, and an honest request after it through either shows that each counts what the other
 * admitted. Every refusal is the one the single proxy gives, and what Swift stores (read on Swift directly)
 * is exactly what was admitted: the hostile spellings are refused whichever proxy reads them, never forwarded
 * uncounted by one that has not seen the container.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { call } from '../helpers/http.js';
import type { RawResponse } from '../helpers/raw-http.js';
import type { RunningProxy } from '../helpers/proxy.js';
import { redisUrl } from '../helpers/swift-env.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';
import { archive, COPY_RANGE_SPELLINGS, LONG_TYPE, PART_NUMBER_SPELLINGS, renamedArchive, repeatRange, s3, sendRaw, sparseArchive, swallowingArchive, swiftGet, type S3Answer, dloTwinOf } from './attacks.js';

const ACCOUNTS = {
  'cached mode': [361, 362, 363, 364, 365, 366, 367, 368, 369, 370],
  'precise mode': [381, 382, 383, 384, 385, 386, 387, 388, 389, 390],
} as const;

interface BulkAnswer {
  'Response Status': string;
  'Number Files Created': number;
  'Response Body': string;
  Errors: Array<[string, string]>;
}

/** S3 answers as compact strings: `ok`, or `<status> <code>`. */
const verdicts = (answers: S3Answer[]) => answers.map((a) => (a.ok ? 'ok' : `${a.status} ${a.code}`));

for (const mode of MODES) {
  describe(`attacks across two proxies sharing one Redis ledger, ${mode.name}`, () => {
    let arena: Arena;
    let a: RunningProxy;
    let b: RunningProxy;
    before(async () => {
      const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = two-proxies-${randomBytes(4).toString('hex')}:`];
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraProxyLines: lines });
      a = arena.proxy;
      b = await arena.another();
    });
    after(async () => {
      await b.close();
      await arena.close();
    });

    const via = (proxy: RunningProxy, tenant: Tenant, path = '') => tenant.viaProxy(path).replace(arena.proxy.url, proxy.url);
    const as = (proxy: RunningProxy, tenant: Tenant, extra: Record<string, unknown> = {}) => ({ endpoint: proxy.url, access: `${tenant.account}:admin`, secret: `${tenant.account}pass`, ...extra });

    test('bulk: pax size 1_536, GNU.sparse.name and GNU.sparse.realsize through B, after A filled the container: refused, nothing stored', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'a');
      await makeContainer(tenant, 'b');
      assert.equal((await call('PUT', via(a, tenant, '/a/pre'), { 'x-auth-token': tenant.token }, Buffer.alloc(LIMITS.bytes - 1, 'p'))).status, 201);
      const extract = async (path: string, body: Buffer) => {
        const answer = await call('PUT', via(b, tenant, `${path}?extract-archive=tar`), { 'x-auth-token': tenant.token, accept: 'application/json' }, body);
        assert.equal(answer.status, 200, answer.body);
        const result = JSON.parse(answer.body) as BulkAnswer;
        return { created: result['Number Files Created'], status: result['Response Status'], invalidTar: result['Response Body'].startsWith('Invalid Tar File'), errors: result.Errors };
      };
      const refused = { created: 0, status: '400 Bad Request', invalidTar: true, errors: [] };
      // a/first counts 1 byte at A's nearly full `a`; tarfile reads it as 1,536 bytes, b/second's header and data with it.
      assert.deepEqual(await extract('', swallowingArchive('a/first', 'b/second')), refused);
      // Counted in the empty `b`, stored by tarfile in the nearly full `a`.
      assert.deepEqual(await extract('', renamedArchive('a/x', 'b/x', 'hello')), refused);
      // 1,024 bytes in the archive, a million once expanded.
      assert.deepEqual(await extract('/b', sparseArchive('sparse', 1_000_000)), refused);
      // An honest archive through B: A's 9,999 bytes leave room for one byte.
      assert.deepEqual(await extract('', await archive([['a/ok', 1], ['a/no', 1]])), { created: 1, status: '400 Bad Request', invalidTar: false, errors: [['a/no', '413 Request Entity Too Large']] });
      assert.deepEqual({ a: await arena.usage(tenant, 'a'), b: await arena.usage(tenant, 'b') }, { a: { objects: 2, bytes: LIMITS.bytes }, b: { objects: 0, bytes: 0 } });
      assert.deepEqual((await arena.listing(tenant, 'a')).sort(), ['ok', 'pre']);
    });

    test('S3: an upload made and filled through A, parts numbered in non-canonical spellings through B: refused', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'mpn');
      const [initiated] = await s3([{ ...as(a, tenant), op: 'initiate', bucket: 'mpn', key: 'k' }]);
      const part = (proxy: RunningProxy, number: number, size: number, spelling?: string) => ({
        ...as(proxy, tenant, spelling === undefined ? {} : { query: { partNumber: spelling } }),
        op: 'upload_part', bucket: 'mpn', key: 'k', upload_id: initiated!.upload_id, part: number, size,
      });
      const [first] = await s3([part(a, 1, 9000)]);
      const attacks = await s3(PART_NUMBER_SPELLINGS.map((spelling, i) => part(b, i + 2, 9000, spelling)));
      // Honest parts through B: 1,000 bytes fit beside A's 9,000, one more does not.
      const honest = await s3([part(b, 2, 1000), part(b, 3, 1)]);
      const outcome = { first: verdicts([first!]), attacks: verdicts(attacks), honest: verdicts(honest), stored: await arena.usage(tenant, 'mpn+segments') };
      assert.deepEqual(outcome, {
        first: ['ok'],
        attacks: PART_NUMBER_SPELLINGS.map(() => '400 InvalidArgument'),
        honest: ['ok', '400 EntityTooLarge'],
        stored: { objects: 3, bytes: LIMITS.bytes },
      });
    });

    test('S3: a part copied through A, copy-source ranges in non-canonical spellings through B: refused', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'mpc');
      await putDirect(tenant, '/src/big', Buffer.alloc(9000, 'b'));
      const [initiated] = await s3([{ ...as(a, tenant), op: 'initiate', bucket: 'mpc', key: 'k' }]);
      const copy = (proxy: RunningProxy, number: number, range: string) => ({
        ...as(proxy, tenant), op: 'upload_part_copy', bucket: 'mpc', key: 'k', upload_id: initiated!.upload_id, part: number, copy_source: 'src/big', copy_range: range,
      });
      const [first] = await s3([copy(a, 1, 'bytes=0-8999')]);
      const attacks = await s3(COPY_RANGE_SPELLINGS.map((range, i) => copy(b, i + 2, range)));
      const honest = await s3([copy(b, 2, 'bytes=0-999'), copy(b, 3, 'bytes=0-0')]);
      const outcome = { first: verdicts([first!]), attacks: verdicts(attacks), honest: verdicts(honest), stored: await arena.usage(tenant, 'mpc+segments') };
      assert.deepEqual(outcome, {
        first: ['ok'],
        attacks: COPY_RANGE_SPELLINGS.map(() => '400 InvalidArgument'),
        honest: ['ok', '400 EntityTooLarge'],
        stored: { objects: 3, bytes: LIMITS.bytes },
      });
    });

    test('S3: parts with an empty uploadId (a planted `<key>/` marker), through A and then through B: no such upload', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'mpe');
      await makeContainer(tenant, 'mpe+segments');
      await putDirect(tenant, '/mpe+segments/k/', '');
      const part = (proxy: RunningProxy, number: number) => ({
        ...as(proxy, tenant, { query: { uploadId: '' } }), op: 'upload_part', bucket: 'mpe', key: 'k', upload_id: 'x', part: number, size: 9000,
      });
      const answers = await s3([part(a, 1), part(a, 2), part(b, 3), part(b, 4), part(b, 5)]);
      const outcome = { answers: verdicts(answers), stored: await arena.usage(tenant, 'mpe+segments') };
      assert.deepEqual(outcome, { answers: answers.map(() => '404 NoSuchUpload'), stored: { objects: 1, bytes: 0 } });
    });

    test('copies: several ranges on X-Copy-From through B, after A half-filled the container, counted at the body Swift stores', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'dst');
      await putDirect(tenant, '/src/small', Buffer.alloc(50, 's'), { 'content-type': LONG_TYPE });
      assert.equal((await call('PUT', via(a, tenant, '/dst/pre'), { 'x-auth-token': tenant.token }, Buffer.alloc(5000, 'p'))).status, 201);
      const copy = (proxy: RunningProxy, name: string, range: string) => sendRaw(proxy.url, tenant, 'PUT', `/dst/${name}`, [['X-Copy-From', 'src/small'], ['Range', range]]);
      const two = await swiftGet(tenant, '/src/small', [['Range', 'bytes=0-9,20-29']]);
      // Each part carries the 2,000-byte content type: two copies of it do not fit beside A's 5,000 bytes.
      assert.ok(two.status === 206 && two.length > 2500 && 5000 + two.length <= LIMITS.bytes, JSON.stringify(two));
      const answers: RawResponse[] = [
        await copy(b, 'many', repeatRange('0-49', 50)), // Swift would store over 100,000 bytes
        await copy(b, 'two', 'bytes=0-9,20-29'),
        await copy(a, 'again', 'bytes=0-9,20-29'),
        await sendRaw(a.url, tenant, 'COPY', '/src/small', [['Destination', 'dst/ten'], ['Range', repeatRange('0-49', 10)]]),
      ];
      const outcome = { answers: answers.map((answer) => answer.status), stored: await arena.usage(tenant, 'dst') };
      assert.deepEqual(outcome, { answers: [413, 201, 413, 413], stored: { objects: 2, bytes: 5000 + two.length } });
      assert.deepEqual((await arena.listing(tenant, 'dst')).sort(), ['pre', 'two']);
    });

    test('copies: the source read from X-Copy-From-Account (a 50,000-byte DLO) through B, after A copied the local one: refused', async () => {
      const { attacker, other } = await dloTwinOf(arena);
      await makeContainer(attacker, 'd');
      const answers: RawResponse[] = [
        await sendRaw(a.url, attacker, 'COPY', '/src/o', [['Destination', 'd/own']]),
        await sendRaw(b.url, attacker, 'COPY', '/src/o', [['Destination', 'd/c1'], ['X-Copy-From-Account', other.swiftAccount]]),
        await sendRaw(b.url, attacker, 'COPY', '/src/o', [['Destination', 'd/c2'], ['x-copy-from_ACCOUNT', other.swiftAccount]]),
        await sendRaw(b.url, attacker, 'PUT', '/d/c3', [['X-Copy-From', 'src/o'], ['X-Copy-From-Account', other.swiftAccount]]),
        await sendRaw(a.url, attacker, 'PUT', '/d/c4', [['X-Copy-From', 'src/o'], ['X_Copy_From_Account', other.swiftAccount]]),
      ];
      const outcome = { answers: answers.map((answer) => answer.status), stored: await arena.usage(attacker, 'd') };
      assert.deepEqual(outcome, { answers: [201, 413, 413, 413, 413], stored: { objects: 1, bytes: 32 } });
    });
  });
}
