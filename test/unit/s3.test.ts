import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkS3Signature, s3Credential, type S3Credential, type SignedRequest } from '../../src/s3/signature.js';
import { DEFAULT_S3_CONFIG, isS3Request, s3Action, s3Address } from '../../src/s3/request.js';
import { SwiftHeaders } from '../../src/swift/request.js';

// The worked examples of AWS's own documentation (Signature Version 4 for S3, and the REST authentication
// page for Version 2): signatures computed by AWS, not by this code.
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const MAY_24_2013 = Date.UTC(2013, 4, 24) / 1000;

function signed(method: string, path: string, query: string | undefined, headers: Array<[string, string]>, bucketInHost?: string): { request: SignedRequest; header: (name: string) => string | undefined } {
  const raw = headers.flat();
  const view = SwiftHeaders.fromRaw(raw);
  return {
    request: { method, rawPath: path, decodedPath: decodeURIComponent(path), query, rawHeaders: raw, bucketInHost },
    header: (name) => view.get(name),
  };
}

function verdict(method: string, path: string, query: string | undefined, headers: Array<[string, string]>, now: number, bucketInHost?: string) {
  const { request, header } = signed(method, path, query, headers, bucketInHost);
  const credential = s3Credential(request, header) as S3Credential;
  assert.ok('accessKey' in credential, JSON.stringify(credential));
  return checkS3Signature(request, header, credential, SECRET, { location: 'us-east-1', clockSkewSeconds: 900 }, now);
}

const V4_GET: Array<[string, string]> = [
  ['Host', 'examplebucket.s3.amazonaws.com'],
  ['Range', 'bytes=0-9'],
  ['x-amz-content-sha256', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  ['x-amz-date', '20130524T000000Z'],
];
const v4Authorization = (signature: string) =>
  `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${signature}`;

describe('S3 signatures, checked as s3api checks them', () => {
  test('Version 4 in the Authorization header: AWS\'s GET example verifies; any change to what is signed does not', () => {
    const good = v4Authorization('f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
    assert.equal(verdict('GET', '/test.txt', undefined, [...V4_GET, ['Authorization', good]], MAY_24_2013), undefined);
    assert.equal(verdict('PUT', '/test.txt', undefined, [...V4_GET, ['Authorization', good]], MAY_24_2013)?.code, 'SignatureDoesNotMatch');
    assert.equal(verdict('GET', '/test2.txt', undefined, [...V4_GET, ['Authorization', good]], MAY_24_2013)?.code, 'SignatureDoesNotMatch');
    const otherRange = V4_GET.map(([name, value]): [string, string] => [name, name === 'Range' ? 'bytes=0-10' : value]);
    assert.equal(verdict('GET', '/test.txt', undefined, [...otherRange, ['Authorization', good]], MAY_24_2013)?.code, 'SignatureDoesNotMatch');
    // Outside the allowed clock skew, even a good signature is refused.
    assert.equal(verdict('GET', '/test.txt', undefined, [...V4_GET, ['Authorization', good]], MAY_24_2013 + 3600)?.code, 'RequestTimeTooSkewed');
  });

  test('Version 4 in the Authorization header: AWS\'s PUT example, a path with a character that is escaped when signed', () => {
    const headers: Array<[string, string]> = [
      ['Host', 'examplebucket.s3.amazonaws.com'],
      ['Date', 'Fri, 24 May 2013 00:00:00 GMT'],
      ['x-amz-date', '20130524T000000Z'],
      ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
      ['x-amz-content-sha256', '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072'],
      [
        'Authorization',
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
      ],
    ];
    assert.equal(verdict('PUT', '/test%24file.text', undefined, headers, MAY_24_2013), undefined);
    assert.equal(verdict('PUT', '/test%24file.text', undefined, headers.slice(0, 3).concat(headers.slice(4)), MAY_24_2013)?.code, 'SignatureDoesNotMatch');
  });

  test('Version 4 in the query (a presigned URL): AWS\'s example verifies until it expires', () => {
    const query =
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';
    const headers: Array<[string, string]> = [['Host', 'examplebucket.s3.amazonaws.com']];
    assert.equal(verdict('GET', '/test.txt', query, headers, MAY_24_2013 + 3600), undefined);
    assert.equal(verdict('GET', '/test.txt', query, headers, MAY_24_2013 + 86_401)?.code, 'AccessDenied');
    assert.equal(verdict('PUT', '/test.txt', query, headers, MAY_24_2013 + 3600)?.code, 'SignatureDoesNotMatch');
    assert.equal(verdict('GET', '/test.txt', query.replace('X-Amz-Expires=86400', 'X-Amz-Expires=86401'), headers, MAY_24_2013)?.code, 'SignatureDoesNotMatch');
  });

  test('Version 2 in the Authorization header: AWS\'s example, the bucket from Host signed in front of the path', () => {
    const headers: Array<[string, string]> = [
      ['Host', 'awsexamplebucket1.s3.us-west-1.amazonaws.com'],
      ['Date', 'Tue, 27 Mar 2007 19:36:42 +0000'],
      ['Authorization', 'AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g='],
    ];
    const march27 = Date.UTC(2007, 2, 27, 19, 36, 42) / 1000;
    assert.equal(verdict('GET', '/photos/puppy.jpg', undefined, headers, march27, 'awsexamplebucket1'), undefined);
    assert.equal(verdict('GET', '/photos/puppy.jpg', undefined, headers, march27, 'otherbucket')?.code, 'SignatureDoesNotMatch');
    assert.equal(verdict('PUT', '/photos/puppy.jpg', undefined, headers, march27, 'awsexamplebucket1')?.code, 'SignatureDoesNotMatch');
    assert.equal(verdict('GET', '/photos/puppy.jpg', undefined, headers, march27 + 901, 'awsexamplebucket1')?.code, 'RequestTimeTooSkewed');
  });

  test('who signs: the access key of either version; no credential at all is refused before any key is looked up', () => {
    const of = (headers: Array<[string, string]>, query?: string) => {
      const { request, header } = signed('PUT', '/b/k', query, headers);
      return s3Credential(request, header);
    };
    assert.deepEqual(of([['Authorization', 'AWS acct:user:c2ln']]), { accessKey: 'acct:user', version: 2, style: 'header' });
    assert.deepEqual(of([], 'AWSAccessKeyId=acct%3Auser&Expires=1&Signature=x'), { accessKey: 'acct:user', version: 2, style: 'query' });
    assert.deepEqual(of([['Authorization', v4Authorization('00')]]), { accessKey: 'AKIAIOSFODNN7EXAMPLE', version: 4, style: 'header' });
    assert.equal((of([['Authorization', 'Bearer x']]) as { code: string }).code, 'AccessDenied');
  });
});

describe('S3 requests, addressed and dispatched as s3api does', () => {
  const headers = (pairs: Record<string, string> = {}) => SwiftHeaders.from(pairs);
  const address = (path: string, host = '127.0.0.1:8080') => s3Address(path, host, { ...DEFAULT_S3_CONFIG, storageDomains: ['s3.test'] })!;

  test('any Authorization header or signed query makes an S3 request, whatever the path', () => {
    assert.equal(isS3Request(headers({ authorization: 'AWS a:b' }), undefined), true);
    assert.equal(isS3Request(headers(), 'X-Amz-Credential=x'), true);
    assert.equal(isS3Request(headers(), 'AWSAccessKeyId=x'), true);
    assert.equal(isS3Request(headers({ 'x-auth-token': 't' }), 'temp_url_sig=x'), false);
  });

  test('path style and virtual-hosted style; a path that looks like Swift\'s is a bucket and key', () => {
    assert.deepEqual(address('/v1/AUTH_x/c'), { bucket: 'v1', key: 'AUTH_x/c', bucketInHost: undefined, decodedPath: '/v1/AUTH_x/c' });
    assert.deepEqual(address('/bkt/'), { bucket: 'bkt', key: undefined, bucketInHost: undefined, decodedPath: '/bkt/' });
    assert.deepEqual(address('/a%20b', 'bkt.s3.test:8080'), { bucket: 'bkt', key: 'a b', bucketInHost: 'bkt', decodedPath: '/a b' });
    assert.equal(s3Address('/b/%ff', undefined, DEFAULT_S3_CONFIG), undefined);
  });

  test('every write is named: buckets, objects, parts in <bucket>+segments, copies, initiate and complete', () => {
    assert.deepEqual(s3Action('PUT', address('/bkt'), undefined, headers()), { kind: 'bucket-create', bucket: 'bkt' });
    assert.deepEqual(s3Action('PUT', address('/bkt'), 'acl', headers()), { kind: 'bucket-update', bucket: 'bkt' });
    assert.deepEqual(s3Action('PUT', address('/bkt/k'), undefined, headers()), { kind: 'object-put', container: 'bkt', object: 'k' });
    assert.deepEqual(s3Action('PUT', address('/bkt/k'), 'partNumber=2&uploadId=U', headers()), { kind: 'object-put', container: 'bkt+segments', object: 'k/U/2' });
    assert.deepEqual(s3Action('PUT', address('/bkt/k'), 'partNumber=1&uploadId=U', headers({ 'x-amz-copy-source': '/src/o', 'x-amz-copy-source-range': 'bytes=0-99' })), {
      kind: 'object-put',
      container: 'bkt+segments',
      object: 'k/U/1',
      copy: { container: 'src', object: 'o' },
      copyRange: 100,
    });
    assert.deepEqual(s3Action('PUT', address('/bkt/k'), undefined, headers({ 'x-amz-copy-source': 'src/a%2Fb?versionId=1700000000.12345' })), {
      kind: 'object-put',
      container: 'bkt',
      object: 'k',
      copy: { container: 'src', object: 'a/b', versionId: '1700000000.12345' },
    });
    assert.deepEqual(s3Action('POST', address('/bkt/k'), 'uploads', headers()), { kind: 'initiate', bucket: 'bkt', key: 'k' });
    assert.deepEqual(s3Action('POST', address('/bkt/k'), 'uploadId=U', headers()), { kind: 'complete', bucket: 'bkt', key: 'k', uploadId: 'U' });
  });

  test('part numbers, upload ids, copy sources and ranges are taken in their canonical spelling only, else refused with s3api\'s error', () => {
    const part = (query: string, extra: Record<string, string> = {}) => s3Action('PUT', address('/bkt/k'), query, headers(extra));
    const refusal = (action: ReturnType<typeof s3Action>) => (action.kind === 'refuse' ? `${action.error.status} ${action.error.code}: ${action.error.message}` : action.kind);
    const badNumber = '400 InvalidArgument: Part number must be an integer between 1 and 1000, inclusive';
    for (const spelling of ['1_0', '+1', '01', ' 1', '1 ', '%D9%A1', '0', '10001', '', '1.0', '0x1', '1e1']) {
      assert.equal(refusal(part(`partNumber=${spelling}&uploadId=U`)), badNumber, spelling);
    }
    // The last of repeated parameters is the one s3api reads.
    assert.equal(refusal(part('partNumber=1&partNumber=1_0&uploadId=U')), badNumber);
    assert.deepEqual(part('partNumber=1_0&partNumber=10&uploadId=U'), { kind: 'object-put', container: 'bkt+segments', object: 'k/U/10' });
    assert.equal(refusal(part('partNumber=1')), '400 InvalidArgument: Unexpected query string parameter');
    const noUpload = '404 NoSuchUpload: The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.';
    for (const uploadId of ['', 'a%2Fb', '%C3%A9', 'a+b', '.', 'a'.repeat(129)]) {
      assert.equal(refusal(part(`partNumber=1&uploadId=${uploadId}`)), noUpload, uploadId);
      assert.equal(refusal(s3Action('POST', address('/bkt/k'), `uploadId=${uploadId}`, headers())), noUpload, uploadId);
    }
    const badRange = '400 InvalidArgument: The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy';
    for (const range of ['bytes=0-', 'bytes=-5', 'bytes=+0-5', 'bytes=0_0-5', 'bytes= 0-5', 'Bytes=0-5', 'bytes=00-5', 'bytes=5-4', 'bytes=0-1,3-4', '', 'bytes=0-1234567890123456']) {
      assert.equal(refusal(part('partNumber=1&uploadId=U', { 'x-amz-copy-source': 'src/o', 'x-amz-copy-source-range': range })), badRange, range);
    }
    const badSource = '400 InvalidArgument: Copy Source must mention the source bucket and key: sourcebucket/sourcekey';
    for (const source of ['', 'src', 'src/', '/src/', '//src/o', 'src/\u00e9', 'src/%ff', 'src/a%00b', 'src/a,b', 'src/a b', 'src/%zz']) {
      assert.equal(refusal(part('partNumber=1&uploadId=U', { 'x-amz-copy-source': source })), badSource, source);
      assert.equal(refusal(part('', { 'x-amz-copy-source': source })), badSource, source);
    }
    const badQuery = '400 InvalidArgument: Unsupported copy source parameter.';
    for (const source of ['src/o?', 'src/o?versionId=', 'src/o?versionId=v1', 'src/o?versionid=1700000000.12345', 'src/o?versionId=1700000000.12345&x=1', 'src/o?versionId=%31700000000.12345']) {
      assert.equal(refusal(part('', { 'x-amz-copy-source': source })), badQuery, source);
    }
    assert.deepEqual(part('', { 'x-amz-copy-source': '/src/%C3%A9/x%2By?versionId=null' }), { kind: 'object-put', container: 'bkt', object: 'k', copy: { container: 'src', object: '\u00e9/x+y' } });
    assert.equal(refusal(part('', { 'x-amz-copy-source': 'src/o', 'x-amz-copy-source-range': 'bytes=0-1' })), '400 InvalidArgument: Illegal copy header');
    // A leading U+FEFF is part of the name, as Python decodes it.
    assert.deepEqual(part('', { 'x-amz-copy-source': '%EF%BB%BFsrc/o' }), { kind: 'object-put', container: 'bkt', object: 'k', copy: { container: '\ufeffsrc', object: 'o' } });
    // The refusal names the configured max_upload_part_num.
    assert.match(refusal(s3Action('PUT', address('/bkt/k'), 'partNumber=x&uploadId=U', headers(), { ...DEFAULT_S3_CONFIG, maxUploadPartNum: 10_000 })), /between 1 and 10000,/);
  });

  test('partNumber on anything but an object PUT, and sub-resource names in another case, are what s3api makes of them', () => {
    assert.deepEqual(s3Action('POST', address('/bkt/k'), 'partNumber=1_0&uploadId=', headers()), { kind: 'pass' });
    assert.deepEqual(s3Action('GET', address('/bkt/k'), 'partNumber=x', headers()), { kind: 'pass' });
    assert.deepEqual(s3Action('PUT', address('/bkt'), 'partNumber=x', headers()), { kind: 'pass' });
    assert.deepEqual(s3Action('PUT', address('/bkt/k'), 'PartNumber=1_0&UploadId=', headers()), { kind: 'object-put', container: 'bkt', object: 'k' });
  });

  test('PUT ?versioning is a versioning change of its bucket (on a key too); reads and deletes pass, deletes marked as shrinking', () => {
    assert.deepEqual(s3Action('PUT', address('/bkt'), 'versioning', headers()), { kind: 'bucket-versioning', bucket: 'bkt' });
    assert.deepEqual(s3Action('PUT', address('/bkt/k'), 'versioning', headers()), { kind: 'bucket-versioning', bucket: 'bkt' });
    assert.deepEqual(s3Action('GET', address('/bkt'), 'versioning', headers()), { kind: 'pass' });
    assert.deepEqual(s3Action('DELETE', address('/bkt/k'), undefined, headers()), { kind: 'pass', shrinks: { bucket: 'bkt' } });
    assert.deepEqual(s3Action('POST', address('/bkt'), 'delete', headers()), { kind: 'pass', shrinks: { bucket: 'bkt' } });
    assert.deepEqual(s3Action('GET', address('/bkt/k'), undefined, headers()), { kind: 'pass' });
  });
});
