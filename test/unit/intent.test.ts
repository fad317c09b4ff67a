import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { requestIntent, type Intent } from '../../src/quota/intent.js';
import { parseSwiftPath } from '../../src/swift/path.js';
import { SwiftHeaders, swiftHeaderName } from '../../src/swift/request.js';

type Headers = Record<string, string | string[] | undefined>;

/** A request's intent; framing (Content-Length, Transfer-Encoding) as Node reads it, from the exact names. */
function intent(method: string, url: string, headers: Headers = {}): Intent {
  const path = parseSwiftPath(url);
  assert.ok(path, `${url} should be a Swift path`);
  const single = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  };
  return requestIntent({
    method,
    path,
    headers: SwiftHeaders.from(headers),
    framing: { contentLength: single('content-length'), transferEncoding: single('transfer-encoding') },
    bulk: true,
  });
}

const PASS = { type: 'pass' };

function assertRefused(result: Intent, status: number, reason: RegExp): void {
  assert.equal(result.type, 'refuse');
  assert.equal(result.type === 'refuse' && result.status, status);
  assert.match(result.type === 'refuse' ? result.reason : '', reason);
}

describe('header names as Swift reads them', () => {
  test('swiftHeaderName folds case and "_" to "-"', () => {
    assert.equal(swiftHeaderName('X_Account_Meta_Quota'), 'x-account-meta-quota');
    assert.equal(swiftHeaderName('x-account_meta-QUOTA'), 'x-account-meta-quota');
    assert.equal(swiftHeaderName('Content-Length'), 'content-length');
  });

  test('every spelling is one header, its values joined with "," as eventlet joins them', () => {
    const headers = SwiftHeaders.from({ 'x-account-meta-quota': 'L1', x_account_meta_quota: ['L2', 'L3'], 'x-other': 'no' });
    assert.equal(headers.get('x-account-meta-quota'), 'L1,L2,L3');
    assert.equal(SwiftHeaders.from({}).get('x-account-meta-quota'), undefined);
    assert.equal(SwiftHeaders.from({ 'x-account-meta-quota': undefined }).get('x-account-meta-quota'), undefined);
  });
});

describe('requestIntent: account', () => {
  test('GET and HEAD describe the account', () => {
    assert.deepEqual(intent('GET', '/v1/AUTH_a'), { type: 'describe', account: 'AUTH_a' });
    assert.deepEqual(intent('HEAD', '/v1/AUTH_a/'), { type: 'describe', account: 'AUTH_a' });
  });

  test('POST or PUT with X-Account-Meta-Quota changes the level', () => {
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota': 'L1' }), { type: 'level-change', account: 'AUTH_a', level: 'L1' });
    assert.deepEqual(intent('PUT', '/v1/AUTH_a', { 'x-account-meta-quota': 'L2' }), { type: 'level-change', account: 'AUTH_a', level: 'L2' });
  });

  for (const name of ['X_Account_Meta_Quota', 'x_account_meta_quota', 'X-Account-Meta-Quota', 'x-ACCOUNT_meta-Quota']) {
    test(`the header spelled ${name} is the same header to Swift`, () => {
      assert.deepEqual(intent('POST', '/v1/AUTH_a', { [name]: 'L1' }), { type: 'level-change', account: 'AUTH_a', level: 'L1' });
    });
  }

  test('the level is trimmed', () => {
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota': '  L1 ' }), { type: 'level-change', account: 'AUTH_a', level: 'L1' });
  });

  test('an empty value removes the level, as in Swift (blanks around a value are not part of it)', () => {
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota': '' }), { type: 'level-change', account: 'AUTH_a', level: undefined });
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota': '   ' }), { type: 'level-change', account: 'AUTH_a', level: undefined });
  });

  test('several spellings make one value, as Swift stores it (and an unknown level is refused later)', () => {
    const headers = { 'x-account-meta-quota': '', x_account_meta_quota: 'L2' };
    assert.deepEqual(intent('POST', '/v1/AUTH_a', headers), { type: 'level-change', account: 'AUTH_a', level: ',L2' });
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota': 'L1', X_Account_Meta_Quota: 'L2' }), { type: 'level-change', account: 'AUTH_a', level: 'L1,L2' });
  });

  test('X-Remove-Account-Meta-Quota removes the level, whatever its value and spelling', () => {
    for (const headers of [
      { 'x-remove-account-meta-quota': 'x' },
      { 'x-remove-account-meta-quota': '' },
      { X_Remove_Account_Meta_Quota: '1' },
    ] as Headers[]) {
      assert.deepEqual(intent('POST', '/v1/AUTH_a', headers), { type: 'level-change', account: 'AUTH_a', level: undefined });
    }
  });

  test('a removal wins over a value sent with it', () => {
    const headers = { 'x-account-meta-quota': 'L1', 'x-remove-account-meta-quota': 'x' };
    assert.deepEqual(intent('POST', '/v1/AUTH_a', headers), { type: 'level-change', account: 'AUTH_a', level: undefined });
  });

  test('account writes without the quota headers pass', () => {
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-color': 'blue' }), PASS);
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quotable': '5' }), PASS);
    assert.deepEqual(intent('PUT', '/v1/AUTH_a'), PASS);
  });

  test('per-account overrides (X-Account-Meta-Quota-*, account_quotas\' Quota-Bytes among them) are a change for reseller admins, in every spelling, removals too', () => {
    const change = (changes: Array<{ header: string; value: string | undefined }>, then: object = PASS) => ({ type: 'override-change', account: 'AUTH_a', changes, then });
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota-bytes': '5' }), change([{ header: 'x-account-meta-quota-bytes', value: '5' }]));
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { X_Account_Meta_Quota_Count: ' 7 ' }), change([{ header: 'x-account-meta-quota-count', value: '7' }]));
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-remove-account-meta-quota-bytes': 'x', 'x-account-meta-quota-containers': '' }), change([
      { header: 'x-account-meta-quota-bytes', value: undefined },
      { header: 'x-account-meta-quota-containers', value: undefined },
    ]));
    // Unknown names of the reserved prefix are passed to the door, which refuses them.
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota-anything': '1' }), change([{ header: 'x-account-meta-quota-anything', value: '1' }]));
    // With the level: the level change follows.
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota': 'L1', 'x-account-meta-quota-bytes': '9' }), change([{ header: 'x-account-meta-quota-bytes', value: '9' }], { type: 'level-change', account: 'AUTH_a', level: 'L1' }));
  });

  test('other methods on an account pass, even with the quota header', () => {
    assert.deepEqual(intent('DELETE', '/v1/AUTH_a', { 'x-account-meta-quota': 'L1' }), PASS);
    assert.deepEqual(intent('OPTIONS', '/v1/AUTH_a'), PASS);
  });

  test('extract-archive into an account (which creates containers) is an extraction at the account', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a?extract-archive=tar'), { type: 'extract-archive', account: 'AUTH_a', base: '', gzip: false });
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/?extract-archive=.TAR.GZ.'), { type: 'extract-archive', account: 'AUTH_a', base: '', gzip: true });
    // bulk takes only PUT; a POST is the account POST it is.
    assert.deepEqual(intent('POST', '/v1/AUTH_a?extract-archive=tar', { 'x-account-meta-quota': 'L1' }), { type: 'level-change', account: 'AUTH_a', level: 'L1' });
  });

  test('extract-archive: bzip2 refused with a reason, formats bulk does not know left to Swift (400), the last value counts', () => {
    assertRefused(intent('PUT', '/v1/AUTH_a/c?extract-archive=tar.bz2'), 400, /tar\.bz2/);
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c?extract-archive=zip'), PASS);
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c?extract-archive=zip&extract-archive=tar'), { type: 'extract-archive', account: 'AUTH_a', base: 'c', gzip: false });
  });

  test('without bulk in Swift, extract-archive is just a query parameter', () => {
    const path = parseSwiftPath('/v1/AUTH_a/c?extract-archive=tar')!;
    assert.deepEqual(requestIntent({ method: 'PUT', path, headers: SwiftHeaders.from({}), framing: { contentLength: '0', transferEncoding: undefined }, bulk: false }), { type: 'container-create', account: 'AUTH_a', container: 'c' });
  });

  test('reading an account with extract-archive in the query is still a read', () => {
    assert.deepEqual(intent('GET', '/v1/AUTH_a?extract-archive=tar'), { type: 'describe', account: 'AUTH_a' });
  });
});

describe('requestIntent: container', () => {
  test('GET and HEAD describe the container', () => {
    assert.deepEqual(intent('GET', '/v1/AUTH_a/c'), { type: 'describe', account: 'AUTH_a', container: 'c' });
    assert.deepEqual(intent('HEAD', '/v1/AUTH_a/c/'), { type: 'describe', account: 'AUTH_a', container: 'c' });
  });

  test('PUT creates a container, named as decoded', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/my%20c'), { type: 'container-create', account: 'AUTH_a', container: 'my c' });
  });

  test('DELETE deletes a container', () => {
    assert.deepEqual(intent('DELETE', '/v1/AUTH_a/c'), { type: 'container-delete', account: 'AUTH_a', container: 'c' });
  });

  test('POST (metadata) and other methods pass', () => {
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { 'x-container-meta-color': 'red' }), PASS);
    assert.deepEqual(intent('OPTIONS', '/v1/AUTH_a/c'), PASS);
    assert.deepEqual(intent('COPY', '/v1/AUTH_a/c', { destination: '/c2/o' }), PASS);
  });

  test('extract-archive into a container is an extraction there; a POST is a container POST', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c?extract-archive=tar'), { type: 'extract-archive', account: 'AUTH_a', base: 'c', gzip: false });
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c?extract-archive=tar.gz'), PASS);
  });

  for (const [name, value] of [
    ['X-Versions-Enabled', 'true'],
    ['X-Versions-Enabled', 'True'],
    ['X-Versions-Enabled', 'yes'],
    ['X-Versions-Enabled', '1'],
    ['X-Versions-Enabled', 'on'],
    ['X-Versions-Enabled', 't'],
    ['X-Versions-Enabled', 'y'],
  ] as const) {
    test(`${name}: ${value} turns object_versioning on: a versioning change that may make the hidden container (PUT and POST)`, () => {
      const create = { type: 'container-create', account: 'AUTH_a', container: 'c' };
      assert.deepEqual(intent('PUT', '/v1/AUTH_a/c', { [name]: value }), { type: 'versioning-change', account: 'AUTH_a', container: 'c', enablesObjectVersioning: true, then: create });
      assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { [name]: value }), { type: 'versioning-change', account: 'AUTH_a', container: 'c', enablesObjectVersioning: true, then: PASS });
    });
  }

  for (const [name, value] of [
    ['X-Versions-Location', 'versions'],
    ['X-History-Location', 'history'],
    ['x_versions_location', 'versions'],
    // A container may be called "false": this one turns legacy versioning on.
    ['X-Versions-Location', 'false'],
    ['X-History-Location', 'False'],
    ['X-Versions-Enabled', 'false'],
    ['X-Versions-Enabled', 'False'],
    ['X-Versions-Enabled', 'no'],
    ['X-Versions-Enabled', '0'],
    ['X-Versions-Enabled', 'off'],
    ['X-Versions-Enabled', ''],
    ['X-Versions-Location', ''],
    ['X-History-Location', '  '],
    ['X-Remove-Versions-Location', 'x'],
    ['X-Remove-History-Location', 'x'],
  ] as const) {
    test(`${name}: ${JSON.stringify(value)} changes versioning without making a container (PUT and POST)`, () => {
      const create = { type: 'container-create', account: 'AUTH_a', container: 'c' };
      assert.deepEqual(intent('PUT', '/v1/AUTH_a/c', { [name]: value }), { type: 'versioning-change', account: 'AUTH_a', container: 'c', enablesObjectVersioning: false, then: create });
      assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { [name]: value }), { type: 'versioning-change', account: 'AUTH_a', container: 'c', enablesObjectVersioning: false, then: PASS });
    });
  }

  test('versioning headers on a read or a delete change nothing', () => {
    assert.deepEqual(intent('DELETE', '/v1/AUTH_a/c', { 'x-versions-location': 'v' }), { type: 'container-delete', account: 'AUTH_a', container: 'c' });
    assert.equal(intent('HEAD', '/v1/AUTH_a/c', { 'x-versions-location': 'v' }).type, 'describe');
  });
});

describe('requestIntent: object writes', () => {
  const target = { account: 'AUTH_a', container: 'c', object: 'dir/o.txt' };

  test('PUT with Content-Length is a write of that many bytes', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/dir/o.txt', { 'content-length': '1024' }), { type: 'object-write', target, size: 1024 });
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/dir/o.txt', { 'content-length': '0' }), { type: 'object-write', target, size: 0 });
  });

  test('PUT without Content-Length or Transfer-Encoding is refused with 411, as Swift does', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/dir/o.txt'), { type: 'refuse', status: 411, reason: 'Missing Content-Length header.' });
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/dir/o.txt', { 'content-length': '0' }), { type: 'object-write', target, size: 0 });
  });

  test('a chunked PUT has no known size', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/dir/o.txt', { 'transfer-encoding': 'chunked' }), { type: 'object-write', target, size: undefined });
    assert.deepEqual(
      intent('PUT', '/v1/AUTH_a/c/dir/o.txt', { 'transfer-encoding': 'chunked', 'content-length': '5' }),
      { type: 'object-write', target, size: undefined },
    );
  });

  test('an unreadable Content-Length gives no known size (never a smaller one)', () => {
    for (const value of ['abc', '-1', '1.5', '1e3x']) {
      assert.equal((intent('PUT', '/v1/AUTH_a/c/o', { 'content-length': value }) as { size?: number }).size, undefined, value);
    }
  });

  test('the object name is decoded', () => {
    const result = intent('PUT', '/v1/AUTH_a/c/caf%C3%A9%20au%20lait', { 'content-length': '1' });
    assert.deepEqual(result, { type: 'object-write', target: { account: 'AUTH_a', container: 'c', object: 'café au lait' }, size: 1 });
  });

  test('DELETE deletes an object from its container', () => {
    assert.deepEqual(intent('DELETE', '/v1/AUTH_a/c/o'), { type: 'object-delete', account: 'AUTH_a', container: 'c', object: 'o' });
  });

  test('GET, HEAD and OPTIONS on an object pass; a POST updates its metadata', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS']) assert.deepEqual(intent(method, '/v1/AUTH_a/c/o', { 'content-length': '5' }), PASS, method);
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c/o', { 'content-type': 'text/x' }), { type: 'object-update', account: 'AUTH_a', container: 'c', object: 'o' });
  });

  test('PUT ?multipart-manifest=put is an SLO manifest, read as swob reads the query (the last value)', () => {
    const put = intent('PUT', '/v1/AUTH_a/c/m?multipart-manifest=put', { 'content-length': '10' });
    assert.equal(put.type === 'object-write' && put.manifest, true);
    const last = intent('PUT', '/v1/AUTH_a/c/m?multipart-manifest=put&multipart-manifest=get', { 'content-length': '10' });
    assert.equal(last.type === 'object-write' && last.manifest, undefined);
    const laterPut = intent('PUT', '/v1/AUTH_a/c/m?multipart-manifest=get&multipart-manifest=put', { 'content-length': '10' });
    assert.equal(laterPut.type === 'object-write' && laterPut.manifest, true);
  });

  test('X-Container-Sync-To in any spelling is refused: the sync daemon writes from inside Swift', () => {
    assertRefused(intent('PUT', '/v1/AUTH_a/c', { x_container_sync_to: '//realm/cluster/AUTH_b/c' }), 400, /Container sync/);
    assertRefused(intent('POST', '/v1/AUTH_a/c', { 'X-Container-Sync-To': 'http://127.0.0.1/v1/AUTH_b/c' }), 400, /Container sync/);
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { 'x-container-sync-to': '' }), PASS);
  });

  test('extract-archive below a container is an extraction under that prefix', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/pre/fix?extract-archive=tar'), { type: 'extract-archive', account: 'AUTH_a', base: 'c/pre/fix', gzip: false });
  });
});

describe('requestIntent: PUT with X-Copy-From', () => {
  const target = { account: 'AUTH_a', container: 'c', object: 'copy' };

  test('the size comes from the source, in the same account', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/obj', 'content-length': '0' }), {
      type: 'object-write',
      target,
      size: undefined,
      copy: { ref: { account: 'AUTH_a', container: 'src', object: 'obj' }, query: undefined },
    });
  });

  test('a copy with a body is refused by Swift (400) and passes; a chunked one (held, maybe empty) is a copy', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/obj', 'content-length': '5' }), PASS);
    const chunked = intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/obj', 'transfer-encoding': 'chunked' });
    assert.equal(chunked.type === 'object-write' && chunked.copy?.ref.object, 'obj');
  });

  test('raw UTF-8 bytes in a copy header (latin-1 on the wire) name the same object as its percent-encoding', () => {
    const raw = intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/caf\u00c3\u00a9', 'content-length': '0' });
    assert.equal(raw.type === 'object-write' && raw.copy?.ref.object, 'café');
  });

  test('X-Copy-From-Account naming no account (empty after decoding, or with "/") is refused by Swift: it passes', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/obj', 'x-copy-from-account': 'a/b', 'content-length': '0' }), PASS);
  });

  test('a leading slash is allowed and the value is percent-decoded', () => {
    const result = intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': '/my%20src/dir/caf%C3%A9' });
    assert.deepEqual(result.type === 'object-write' && result.copy?.ref, { account: 'AUTH_a', container: 'my src', object: 'dir/café' });
  });

  test('a "%" that is no escape is kept, as Swift unquotes (the copy is still sized)', () => {
    const result = intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': '/src/big%zz', 'content-length': '0' });
    assert.deepEqual(result.type === 'object-write' && result.copy?.ref, { account: 'AUTH_a', container: 'src', object: 'big%zz' });
  });

  test('X-Copy-From-Account names the source account, percent-decoded as Swift does', () => {
    const result = intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/obj', 'x-copy-from-account': ' AUTH_other ' });
    assert.deepEqual(result.type === 'object-write' && result.copy?.ref, { account: 'AUTH_other', container: 'src', object: 'obj' });
    const encoded = intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/obj', 'x-copy-from-account': 'AUTH_t%C3%A9st' });
    assert.equal(encoded.type === 'object-write' && encoded.copy?.ref.account, 'AUTH_tést');
  });

  test('underscore spellings of the copy headers count', () => {
    const result = intent('PUT', '/v1/AUTH_a/c/copy', { x_copy_from: 'src/obj', x_copy_from_account: 'AUTH_b' });
    assert.deepEqual(result.type === 'object-write' && result.copy?.ref, { account: 'AUTH_b', container: 'src', object: 'obj' });
  });

  test('the source is read with the request\'s own query, as Swift reads it (multipart-manifest=get, symlink=get)', () => {
    const result = intent('PUT', '/v1/AUTH_a/c/copy?multipart-manifest=get', { 'x-copy-from': 'src/slo', 'content-length': '0' });
    assert.equal(result.type === 'object-write' && result.copy?.query, 'multipart-manifest=get');
    const plain = intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'src/slo', 'content-length': '0' });
    assert.equal(plain.type === 'object-write' && plain.copy?.query, undefined);
    const link = intent('PUT', '/v1/AUTH_a/c/copy?symlink=get', { 'x-copy-from': 'src/link', 'content-length': '0' });
    assert.equal(link.type === 'object-write' && link.copy?.query, 'symlink=get');
  });

  test('an X-Copy-From without container and object is refused by Swift (412); an empty one is no copy', () => {
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': 'justone', 'content-length': '0' }), PASS);
    assert.deepEqual(intent('PUT', '/v1/AUTH_a/c/copy', { 'x-copy-from': '', 'content-length': '7' }), { type: 'object-write', target, size: 7 });
  });
});

describe('requestIntent: COPY', () => {
  const source = { account: 'AUTH_a', container: 'c', object: 'o' };

  test('Destination names the target in the same account; the size comes from the source', () => {
    assert.deepEqual(intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/new/name' }), {
      type: 'object-write',
      target: { account: 'AUTH_a', container: 'c2', object: 'new/name' },
      size: undefined,
      copy: { ref: source, query: undefined },
    });
  });

  test('Destination without a leading slash, percent-encoded', () => {
    const result = intent('COPY', '/v1/AUTH_a/c/o', { destination: 'c%202/caf%C3%A9' });
    assert.deepEqual(result.type === 'object-write' && result.target, { account: 'AUTH_a', container: 'c 2', object: 'café' });
  });

  test('Destination-Account names the target account, percent-decoded as Swift does', () => {
    const result = intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/o2', 'destination-account': 'AUTH_b' });
    assert.deepEqual(result.type === 'object-write' && result.target, { account: 'AUTH_b', container: 'c2', object: 'o2' });
    assert.deepEqual(result.type === 'object-write' && result.copy?.ref, source);
    const encoded = intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/o2', 'destination-account': 'AUTH_%74est' });
    assert.equal(encoded.type === 'object-write' && encoded.target.account, 'AUTH_test');
  });

  test('X-Copy-From-Account (any spelling) names the source account of a COPY without Destination-Account, as Swift reads it', () => {
    for (const name of ['x-copy-from-account', 'X_Copy_From_Account']) {
      const result = intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/o2', [name]: 'AUTH_b' });
      assert.deepEqual(result.type === 'object-write' && result.copy?.ref, { ...source, account: 'AUTH_b' });
      assert.deepEqual(result.type === 'object-write' && result.target, { account: 'AUTH_a', container: 'c2', object: 'o2' });
    }
    // Empty: the path's account. With Destination-Account, Swift sets it to the path's account itself.
    const empty = intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/o2', 'x-copy-from-account': '' });
    assert.deepEqual(empty.type === 'object-write' && empty.copy?.ref, source);
    const both = intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/o2', 'destination-account': 'AUTH_c', 'x-copy-from-account': 'AUTH_b' });
    assert.deepEqual(both.type === 'object-write' && both.copy?.ref, source);
    // A slashed one is refused by Swift (412).
    assert.deepEqual(intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/o2', 'x-copy-from-account': 'a/b' }), PASS);
  });

  test('an empty Destination-Account is refused by Swift (412 "Account name cannot be empty"): it passes', () => {
    assert.deepEqual(intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/o2', 'destination-account': ' ' }), PASS);
  });

  test('multipart-manifest=get on a COPY is passed on to the source read', () => {
    const result = intent('COPY', '/v1/AUTH_a/c/slo?multipart-manifest=get', { destination: '/c2/o2' });
    assert.equal(result.type === 'object-write' && result.copy?.query, 'multipart-manifest=get');
  });

  test('a COPY without a usable Destination passes (Swift answers 412 itself)', () => {
    assert.deepEqual(intent('COPY', '/v1/AUTH_a/c/o'), PASS);
    assert.deepEqual(intent('COPY', '/v1/AUTH_a/c/o', { destination: 'onlyone' }), PASS);
    assert.deepEqual(intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/' }), PASS);
  });

  test('a Destination with a "%" that is no escape still names the target Swift writes', () => {
    const result = intent('COPY', '/v1/AUTH_a/c/o', { destination: '/c2/100%' });
    assert.deepEqual(result.type === 'object-write' && result.target, { account: 'AUTH_a', container: 'c2', object: '100%' });
  });
});

describe('requestIntent: the proxy\'s own metadata (X-*-Meta-Quota-Proxy-*) is for reseller admins only', () => {
  const names = [
    'x-account-meta-quota-proxy-hits',
    'X-Remove-Account-Meta-Quota-Proxy-Soft-Container-Count',
    'x_account_meta_quota_proxy_hits',
  ];
  for (const name of names) {
    test(`account POST with ${name}`, () => {
      assert.deepEqual(intent('POST', '/v1/AUTH_a', { [name.toLowerCase()]: '0' }), { type: 'protected-metadata', account: 'AUTH_a', then: PASS });
    });
  }

  test('a level change riding along is still a level change, after the reseller check', () => {
    assert.deepEqual(intent('POST', '/v1/AUTH_a', { 'x-account-meta-quota': 'L1', 'x-account-meta-quota-proxy-hits': '0' }), {
      type: 'protected-metadata',
      account: 'AUTH_a',
      then: { type: 'level-change', account: 'AUTH_a', level: 'L1' },
    });
  });

  for (const name of ['x-container-meta-quota-proxy-hits', 'x-remove-container-meta-quota-proxy-soft-object-count', 'X-Container-Meta-Quota-Proxy-Soft-Container-Usage']) {
    test(`container POST and PUT with ${name}`, () => {
      assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { [name.toLowerCase()]: '1' }), { type: 'protected-metadata', account: 'AUTH_a', container: 'c', then: PASS });
      assert.deepEqual(intent('PUT', '/v1/AUTH_a/c', { [name.toLowerCase()]: '1' }), {
        type: 'protected-metadata',
        account: 'AUTH_a',
        container: 'c',
        then: { type: 'container-create', account: 'AUTH_a', container: 'c' },
      });
    });
  }

  test('other quota-ish metadata is the user\'s (Swift\'s own container_quotas keys, the level itself)', () => {
    // container_quotas' keys are the owner's to set: the proxy reads the container again after (its limits changed).
    const owner = { type: 'owner-limits-change', account: 'AUTH_a', container: 'c', then: PASS };
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { 'x-container-meta-quota-bytes': '10' }), owner);
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { 'x-container-meta-quota-count': '10' }), owner);
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { 'x-remove-container-meta-quota-count': '1' }), owner);
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { 'x-container-meta-quota-proxyish': '1' }), PASS);
    // A reseller's override of one container's limits.
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c', { 'X-Container-Meta-Quota-Override-Bytes': '100' }), {
      type: 'override-change', account: 'AUTH_a', container: 'c', changes: [{ header: 'x-container-meta-quota-override-bytes', value: '100' }], then: PASS,
    });
    assert.deepEqual(intent('POST', '/v1/AUTH_a/c/o', { 'x-object-meta-quota-proxy-hits': '1' }), { type: 'object-update', account: 'AUTH_a', container: 'c', object: 'o' });
  });
});
