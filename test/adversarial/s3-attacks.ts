/**
 * The S3 API (s3api, in front of tempauth, or of s3token with Keystone EC2 credentials): buckets are containers and objects are objects, whatever path
 * they come by, so the quota holds for S3 requests as for Swift's own: bucket creation, object PUTs, copies
 * (x-amz-copy-source, and raw X-Copy-From headers s3api passes on), multipart parts, presigned URLs, held
 * bodies, bucket versioning. Only requests whose signature Swift accepts count. Requests are made and
 * signed by boto3 (s3_client.py), outcomes read straight from Swift.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { call } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startProxy } from '../helpers/proxy.js';
import { swiftDns } from '../helpers/swift-env.js';
import { hostAddressingSections } from '../swift/cluster.js';
import { COPY_RANGE_SPELLINGS, PART_NUMBER_SPELLINGS, s3, type S3Answer } from './attacks.js';
import { ADVERSARIAL_QUOTA, LIMITS, MODES, makeContainer, putDirect, type Arena, type Tenant } from './arena.js';

/** Who the attacks run as: tempauth users, or Keystone EC2 credentials (test/integration/keystone-ec2-arena.ts). */
export interface S3Variant {
  /** How the describe blocks are titled: `S3 API, cached mode`, or with the variant's name. */
  readonly title: (mode: Mode) => string;
  readonly modes: readonly Mode[];
  readonly open: (mode: Mode) => Promise<Arena>;
  /** Whether the proxy's Swift answers S3 on its storage domain's host names (the tempauth test Swift's does). */
  readonly hostAddressing: boolean;
}

type Mode = (typeof MODES)[number];

export function s3Attacks(variant: S3Variant): void {
  for (const mode of variant.modes) s3AttacksIn(variant, mode);
}

function s3AttacksIn(variant: S3Variant, mode: Mode): void {
  describe(variant.title(mode), () => {
    let arena: Arena;
    before(async () => {
      arena = await variant.open(mode);
    });
    after(() => arena?.close());

    // A tenant's S3 key: its EC2 credential, or its tempauth admin (`account:user`, the key the secret).
    const as = (tenant: Tenant, extra: Record<string, unknown> = {}) => ({ endpoint: arena.proxy.url, ...(tenant.s3 ?? { access: `${tenant.account}:admin`, secret: `${tenant.account}pass` }), ...extra });

    test('bucket creation counts against the container limit, in both signature versions', async () => {
      const tenant = await arena.tenant();
      const answers = await s3([
        ...[1, 2, 3, 4].map((i) => ({ ...as(tenant), op: 'create_bucket', bucket: `bucket-${i}` })),
        { ...as(tenant, { signature: 's3' }), op: 'create_bucket', bucket: 'bucket-v2' },
      ]);
      assert.equal(answers.filter((a) => a.ok).length, LIMITS.containers, JSON.stringify(answers));
      assert.ok(answers.filter((a) => !a.ok).every((a) => a.code === 'TooManyBuckets'), JSON.stringify(answers));
      assert.equal(await arena.containers(tenant), LIMITS.containers);
    });

    test('object PUTs count against objects and bytes; a bucket named like a Swift path (v1.0) is a bucket', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'objs');
      await makeContainer(tenant, 'v1.0');
      const answers = await s3([
        ...Array.from({ length: 7 }, (_, i) => ({ ...as(tenant), op: 'put_object', bucket: 'objs', key: `k${i}`, size: 10 })),
        ...Array.from({ length: 3 }, (_, i) => ({ ...as(tenant, { signature: 's3' }), op: 'put_object', bucket: 'v1.0', key: `AUTH_x/c/o${i}`, size: 4000 })),
      ]);
      assert.equal((await arena.usage(tenant, 'objs')).objects, LIMITS.objects, JSON.stringify(answers));
      assert.ok((await arena.usage(tenant, 'v1.0')).bytes <= LIMITS.bytes, JSON.stringify(answers));
      assert.ok(answers.filter((a) => !a.ok).every((a) => a.code === 'EntityTooLarge'), JSON.stringify(answers));
    });

    test('copies are sized from their source: x-amz-copy-source, and a raw X-Copy-From s3api passes on', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'dst');
      await putDirect(tenant, '/src/big', Buffer.alloc(6000, 'b'));
      await putDirect(tenant, '/dst/base', Buffer.alloc(5000, 'd'));
      const answers = await s3([
        { ...as(tenant), op: 'copy_object', bucket: 'dst', key: 'c1', src_bucket: 'src', src_key: 'big' },
        { ...as(tenant, { headers: { 'X-Copy-From': '/src/big' } }), op: 'put_object', bucket: 'dst', key: 'c2', size: 0 },
        { ...as(tenant, { headers: { 'X_Copy_From': '/src/big' } }), op: 'put_object', bucket: 'dst', key: 'c3', size: 0 },
      ]);
      assert.ok(answers.every((a) => !a.ok), JSON.stringify(answers));
      assert.deepEqual(await arena.usage(tenant, 'dst'), { objects: 1, bytes: 5000 });
    });

    test('multipart parts count in <bucket>+segments; a completed upload counts its manifest', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'mpu');
      const answers = await s3([
        { ...as(tenant), op: 'multipart', bucket: 'mpu', key: 'fits', parts: [3000] },
        { ...as(tenant), op: 'multipart', bucket: 'mpu', key: 'too-big', parts: [9000] },
      ]);
      assert.equal(answers[0]!.ok, true, JSON.stringify(answers));
      assert.equal(answers[1]!.ok, false, JSON.stringify(answers));
      assert.ok((await arena.usage(tenant, 'mpu+segments')).bytes <= LIMITS.bytes);
      assert.ok((await arena.usage(tenant, 'mpu')).objects === 1);
      assert.ok(await arena.containers(tenant) <= LIMITS.containers);
    });

    // Part numbers Python's int() reads and the proxy's reader did not: `1_0` is 10, `٢` (Arabic-Indic, sent as
    // UTF-8) is 2, `\u30003` and `4\u00a0` have whitespace int() strips, `+5` and `06` a sign and a zero. Before the fix,
    // each was forwarded uncounted: 8 of 8 parts admitted, `+segments` at 9 objects / 72,000 bytes.
    test('a part number in any spelling but plain decimal is refused as s3api refuses a malformed one', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'mpn');
      const [initiated] = await s3([{ ...as(tenant), op: 'initiate', bucket: 'mpn', key: 'k' }]);
      const part = (spelling: string | undefined, number: number) => ({
        ...as(tenant, spelling === undefined ? {} : { query: { partNumber: spelling } }),
        op: 'upload_part', bucket: 'mpn', key: 'k', upload_id: initiated!.upload_id, part: number, size: 9000,
      });
      const spellings = PART_NUMBER_SPELLINGS;
      const answers = await s3([part(undefined, 1), ...spellings.map((spelling, i) => part(spelling, i + 2))]);
      const stored = await arena.usage(tenant, 'mpn+segments');
      const outcome = { answers: answers.map((a) => (a.ok ? 'ok' : `${a.status} ${a.code}`)), stored };
      assert.deepEqual(outcome, { answers: ['ok', ...spellings.map(() => '400 InvalidArgument')], stored: { objects: 2, bytes: 9000 } });
    });

    // Copy-source ranges s3api's Range reads and the proxy's reader did not: open and suffix ranges, a sign, an
    // underscore, spaces, upper case, leading zeros. Before the fix each was forwarded uncounted: 8 of 8 part
    // copies admitted, `+segments` at 9 objects / 72,000 bytes.
    test('a copy-source range in any spelling but bytes=first-last is refused as s3api refuses a malformed one', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'mpc');
      await putDirect(tenant, '/src/big', Buffer.alloc(9000, 'b'));
      const [initiated] = await s3([{ ...as(tenant), op: 'initiate', bucket: 'mpc', key: 'k' }]);
      const copy = (range: string, number: number) => ({
        ...as(tenant), op: 'upload_part_copy', bucket: 'mpc', key: 'k', upload_id: initiated!.upload_id, part: number, copy_source: 'src/big', copy_range: range,
      });
      const ranges = COPY_RANGE_SPELLINGS;
      const answers = await s3([copy('bytes=0-8999', 1), ...ranges.map((range, i) => copy(range, i + 2))]);
      const stored = await arena.usage(tenant, 'mpc+segments');
      const outcome = { answers: answers.map((a) => (a.ok ? 'ok' : `${a.status} ${a.code}`)), stored };
      assert.deepEqual(outcome, { answers: ['ok', ...ranges.map(() => '400 InvalidArgument')], stored: { objects: 2, bytes: 9000 } });
    });

    // An empty uploadId names the upload whose marker is `<key>/` (s3api looks only for the marker object): with
    // one planted in `+segments`, s3api writes parts `<key>//<n>`. Before the fix such parts were forwarded
    // uncounted: 6 of 6 admitted, `+segments` at 7 objects / 54,000 bytes.
    test('an upload id s3api never makes (empty, or outside its alphabet) is refused as an upload that does not exist', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'mpe');
      await makeContainer(tenant, 'mpe+segments');
      await putDirect(tenant, '/mpe+segments/k/', '');
      const part = (uploadId: string, number: number) => ({
        ...as(tenant, { query: { uploadId } }), op: 'upload_part', bucket: 'mpe', key: 'k', upload_id: 'x', part: number, size: 9000,
      });
      const answers = await s3([1, 2, 3, 4, 5, 6].map((number) => part('', number)));
      const stored = await arena.usage(tenant, 'mpe+segments');
      const outcome = { answers: answers.map((a) => (a.ok ? 'ok' : `${a.status} ${a.code}`)), stored };
      assert.deepEqual(outcome, { answers: answers.map(() => '404 NoSuchUpload'), stored: { objects: 1, bytes: 0 } });
    });

    // s3api makes every x-amz-copy-source PUT a zero-byte one (CONTENT_LENGTH = 0) whatever the client sent, so
    // Swift's copy goes on; a Swift copy with a body is refused, and the proxy read it so. Before the fix, copies
    // with a 1-byte body were forwarded uncounted: 2 of 2 admitted, the bucket at 2 objects / 12,000 bytes.
    test('an S3 copy sent with a body is the copy s3api makes of it: s3api drops the body', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'cpb');
      await putDirect(tenant, '/src/big', Buffer.alloc(6000, 'b'));
      // Without a digest of the body (Swift checks an ETag against what it stores, and the proxy bounds the copy with a Range).
      const headers = { 'x-amz-copy-source': 'src/big', 'Content-MD5': null, 'x-amz-checksum-crc32': null, 'x-amz-sdk-checksum-algorithm': null };
      const answers = await s3([1, 2].map((i) => ({ ...as(tenant, { headers }), op: 'put_object', bucket: 'cpb', key: `c${i}`, size: 1 })));
      const stored = await arena.usage(tenant, 'cpb');
      const outcome = { answers: answers.map((a) => (a.ok ? 'ok' : `${a.status} ${a.code}`)), stored };
      assert.deepEqual(outcome, { answers: ['ok', '400 EntityTooLarge'], stored: { objects: 1, bytes: 6000 } });
    });

    // s3api's unquote turns an invalid UTF-8 escape into U+FFFD, and copies from the object of that name; the
    // proxy's reader found no source there. Before the fix such copies were forwarded uncounted: 2 of 2 admitted,
    // the bucket at 2 objects / 12,000 bytes.
    test('a copy source s3api reads as another name (an invalid UTF-8 escape) is refused as a malformed source', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'cpu');
      await putDirect(tenant, '/src/%EF%BF%BD', Buffer.alloc(6000, 'b'));
      const headers = { 'x-amz-copy-source': 'src/%FF', 'Content-MD5': null, 'x-amz-checksum-crc32': null, 'x-amz-sdk-checksum-algorithm': null };
      const answers = await s3([1, 2].map((i) => ({ ...as(tenant, { headers }), op: 'put_object', bucket: 'cpu', key: `c${i}`, size: 0 })));
      const stored = await arena.usage(tenant, 'cpu');
      const outcome = { answers: answers.map((a) => (a.ok ? 'ok' : `${a.status} ${a.code}`)), stored };
      assert.deepEqual(outcome, { answers: ['400 InvalidArgument', '400 InvalidArgument'], stored: { objects: 0, bytes: 0 } });
    });

    test('PutBucketVersioning: turning it on counts the hidden versions container, suspending never refuses, versions count', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'ver');
      await makeContainer(tenant, 'ver2');
      const versioningOf = async (bucket: string) => (await call('HEAD', tenant.direct(`/${bucket}`), { 'x-auth-token': arena.resellerToken })).headers['x-versions-enabled'];
      const [on] = await s3([{ ...as(tenant), op: 'put_versioning', bucket: 'ver' }]);
      assert.equal(on!.ok, true, JSON.stringify(on));
      assert.equal(await versioningOf('ver'), 'True');
      // Two buckets and the versions container: at the container limit (3), a second one does not fit.
      const [second] = await s3([{ ...as(tenant), op: 'put_versioning', bucket: 'ver2' }]);
      assert.equal(second!.code, 'TooManyBuckets', JSON.stringify(second));
      assert.equal(await versioningOf('ver2'), undefined);
      const [suspended] = await s3([{ ...as(tenant), op: 'put_versioning', bucket: 'ver2', status: 'Suspended' }]);
      assert.equal(suspended!.ok, true, `suspending makes no container: never refused at the limit ${JSON.stringify(suspended)}`);
      assert.equal(await versioningOf('ver2'), 'False');
      // The versions Swift keeps count in the bucket's bytes: the second 6,000 bytes of one key do not fit in 10,000.
      const puts = await s3([1, 2].map(() => ({ ...as(tenant), op: 'put_object', bucket: 'ver', key: 'k', size: 6_000 })));
      assert.deepEqual(puts.map((a) => (a.ok ? 'ok' : a.code)), ['ok', 'EntityTooLarge']);
      assert.equal((await arena.usage(tenant, 'ver')).bytes, 6_000);
    });

    test('S3 writes Swift refuses (bad secret, unknown key) hold nothing: the owner still fills the bucket', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'bkt');
      const forged = await s3([
        ...[0, 1, 2].map((i) => ({ ...as(tenant, { secret: 'wrong' }), op: 'put_object', bucket: 'bkt', key: `f${i}`, size: 10 })),
        { ...as(tenant, { access: 'nobody:here' }), op: 'put_object', bucket: 'bkt', key: 'n', size: 10 },
      ]);
      assert.ok(forged.every((a) => !a.ok && (a.code === 'SignatureDoesNotMatch' || a.code === 'AccessDenied')), JSON.stringify(forged));
      const owner = await s3(Array.from({ length: 5 }, (_, i) => ({ ...as(tenant), op: 'put_object', bucket: 'bkt', key: `o${i}`, size: 10 })));
      assert.ok(owner.every((a) => a.ok), JSON.stringify(owner));
      assert.equal((await arena.usage(tenant, 'bkt')).objects, LIMITS.objects);
    });

    test('presigned URLs count, also when their body is held while the bucket is made', async () => {
      const tenant = await arena.tenant();
      const urls = await s3(Array.from({ length: 8 }, (_, i) => ({ ...as(tenant), op: 'presign', bucket: 'late', key: `p${i}` })));
      const held = urls.map((answer) => {
        const url = new URL(answer.url!);
        return rawRequest(arena.proxy.url, 'PUT', url.pathname + url.search, [['Host', url.host], ['Content-Length', '10'], ['Expect', '100-continue']]);
      });
      const verdicts = await Promise.all(held.map((request) => request.admitted));
      await makeContainer(tenant, 'late');
      await Promise.all(held.map((request, i) => (verdicts[i] === 'continue' ? request.finish('0123456789') : request.response)));
      assert.ok((await arena.usage(tenant, 'late')).objects <= LIMITS.objects, verdicts.join(' '));
    });

    for (const across of [false, true]) {
      const where = across ? ', the completion through a second proxy' : '';
      test(`a multipart upload completed while one of its parts is being rewritten is sized by the part that lands${where}`, async () => {
        const tenant = await arena.tenant();
        // A second proxy in front of the same Swift cannot see the first one's writes on their way.
        const second = across ? await arena.another() : undefined;
        const completer = second ?? arena.proxy;
        try {
          await makeContainer(tenant, 'mpr');
          const [base, initiated] = await s3([
            { ...as(tenant), op: 'put_object', bucket: 'mpr', key: 'base', size: 8000 },
            { ...as(tenant), op: 'initiate', bucket: 'mpr', key: 'big' },
          ]);
          assert.ok(base!.ok && initiated!.ok, JSON.stringify([base, initiated]));
          const params = { Bucket: 'mpr', Key: 'big', UploadId: initiated!.upload_id! };
          const [small, partUrl, completeUrl] = await s3([
            { ...as(tenant), op: 'upload_part', bucket: 'mpr', key: 'big', upload_id: params.UploadId, part: 1, size: 1 },
            { ...as(tenant), op: 'presign_op', operation: 'upload_part', params: { ...params, PartNumber: 1 } },
            { ...as(tenant), op: 'presign_op', operation: 'complete_multipart_upload', params },
          ]);
          assert.ok(small!.ok && partUrl!.ok && completeUrl!.ok, JSON.stringify([small, partUrl, completeUrl]));
          const held = (via: { url: string }, presigned: S3Answer, method: string, headers: Array<[string, string]>) => {
            const url = new URL(presigned.url!);
            return rawRequest(via.url, method, url.pathname + url.search, [['Host', url.host], ...headers, ['Expect', '100-continue']]);
          };
          // Part 1 is rewritten with the same byte and a 2,500-character content type (Swift takes up to ~3,000),
          // which SLO copies into the manifest it stores: the manifest grows from ~250 bytes to ~2,750, and 'base'
          // (8,000) is beside it. The rewrite's body is held.
          const rewrite = held(arena.proxy, partUrl!, 'PUT', [['Content-Length', '1'], ['Content-Type', `application/x-${'a'.repeat(2500)}`]]);
          assert.equal(await rewrite.admitted, 'continue');
          // The upload is completed, its body held too: s3api reads the parts once the body has come.
          const xml = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${small!.etag!}</ETag></Part></CompleteMultipartUpload>`;
          const complete = held(completer, completeUrl!, 'POST', [['Content-Length', String(Buffer.byteLength(xml))]]);
          // The proxy may decide on the completion now (by the part as it is) or wait for the rewrite to land; either
          // way the rewrite's body goes next, and the completion's after it.
          const verdict = await Promise.race([complete.admitted, sleep(2000).then(() => 'still deciding' as const)]);
          assert.equal((await rewrite.finish('p')).status, 200);
          const final = verdict === 'still deciding' ? await complete.admitted : verdict;
          const answer = final === 'continue' ? await complete.finish(xml) : await complete.response;
          const usage = await arena.usage(tenant, 'mpr');
          assert.ok(usage.bytes <= LIMITS.bytes, `bucket on Swift: ${JSON.stringify(usage)}; completion: ${verdict} → ${final}, ${answer.status} ${answer.body.slice(0, 300)}`);
          assert.deepEqual(await arena.listing(tenant, 'mpr'), ['base']);
        } finally {
          await second?.close();
        }
      });
    }

    if (variant.hostAddressing) test('a host name may be a bucket: without Swift\'s [filter:s3api] section the proxy refuses S3 writes on host names, with it reads them as s3api does', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'named');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/named/o${i}`, 'x');
      // `swift.test` is the test Swift's storage domain itself: neither remapped nor looked up, so only s3api reads it.
      const sections = [hostAddressingSections((await swiftDns())!)];
      const withoutS3 = await startProxy({ upstream: arena.swift, quota: ADVERSARIAL_QUOTA, preciseMode: mode.precise, extraSections: sections });
      const withS3 = await startProxy({ upstream: arena.swift, quota: ADVERSARIAL_QUOTA, preciseMode: mode.precise, extraSections: [...sections, '[filter:s3api]\nuse = egg:swift#s3api\n'] });
      try {
        const onName = (endpoint: string, key: string) => ({ ...as(tenant), endpoint, headers: { Host: `swift.test:${new URL(endpoint).port}` }, op: 'put_object', bucket: 'named', key, size: 10 });
        const [refused] = await s3([onName(withoutS3.url, 'n1')]);
        assert.deepEqual([refused!.ok, refused!.code], [false, 'NotImplemented'], JSON.stringify(refused));
        const answers = await s3([onName(withS3.url, 'n2'), onName(withS3.url, 'n3')]);
        // The fifth object is stored, the sixth refused: counted in the bucket s3api reads.
        assert.deepEqual(answers.map((a) => (a.ok ? 'ok' : a.code)), ['ok', 'EntityTooLarge'], JSON.stringify(answers));
      } finally {
        await withoutS3.close();
        await withS3.close();
      }
      assert.equal((await arena.usage(tenant, 'named')).objects, LIMITS.objects);
    });
  });
}
