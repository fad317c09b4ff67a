import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { encodePath, parseAccountName, parseContainerObject, parseSwiftPath } from '../../src/swift/path.js';

/** The path without its query, as a plain object (absent parts stay absent). */
function parts(url: string) {
  const path = parseSwiftPath(url);
  if (!path) return undefined;
  const { query: _query, rawQuery: _raw, decoded: _decoded, ...rest } = path;
  return rest;
}

describe('parseSwiftPath: accounts, containers, objects', () => {
  test('/v1/AUTH_a is an account request', () => {
    assert.deepEqual(parts('/v1/AUTH_a'), { version: 'v1', account: 'AUTH_a' });
  });

  test('/v1/AUTH_a/ is an account request too, as in Swift', () => {
    const path = parseSwiftPath('/v1/AUTH_a/')!;
    assert.deepEqual(parts('/v1/AUTH_a/'), { version: 'v1', account: 'AUTH_a' });
    assert.equal('container' in path, false);
    assert.equal('object' in path, false);
  });

  test('/v1/AUTH_a/c is a container request, with or without a trailing slash', () => {
    assert.deepEqual(parts('/v1/AUTH_a/c'), { version: 'v1', account: 'AUTH_a', container: 'c' });
    assert.deepEqual(parts('/v1/AUTH_a/c/'), { version: 'v1', account: 'AUTH_a', container: 'c' });
  });

  test('an object name keeps its slashes, including a trailing one', () => {
    assert.deepEqual(parts('/v1/AUTH_a/c/o'), { version: 'v1', account: 'AUTH_a', container: 'c', object: 'o' });
    assert.deepEqual(parts('/v1/AUTH_a/c/dir/sub/file.txt'), { version: 'v1', account: 'AUTH_a', container: 'c', object: 'dir/sub/file.txt' });
    assert.equal(parseSwiftPath('/v1/AUTH_a/c/dir/')!.object, 'dir/');
    assert.equal(parseSwiftPath('/v1/AUTH_a/c//')!.object, '/');
    assert.equal(parseSwiftPath('/v1/AUTH_a/c//o')!.object, '/o');
  });

  test('v1.0 is a Swift API version as well', () => {
    assert.deepEqual(parts('/v1.0/AUTH_a/c'), { version: 'v1.0', account: 'AUTH_a', container: 'c' });
  });

  test('the query is split off and parsed', () => {
    const path = parseSwiftPath('/v1/AUTH_a/c/o?multipart-manifest=get&extract-archive')!;
    assert.equal(path.object, 'o');
    assert.equal(path.query.last('multipart-manifest'), 'get');
    assert.equal(path.query.has('extract-archive'), true);
    assert.equal(path.rawQuery, 'multipart-manifest=get&extract-archive');
    assert.equal(parseSwiftPath('/v1/AUTH_a/c/o')!.query.size, 0);
  });

  test('a repeated query parameter is read as swob reads it (the last), and as tempurl reads it (the first)', () => {
    const path = parseSwiftPath('/v1/AUTH_a/c/o?multipart-manifest=get&multipart-manifest=put&x=%zz+y')!;
    assert.equal(path.query.last('multipart-manifest'), 'put');
    assert.equal(path.query.first('multipart-manifest'), 'get');
    assert.equal(path.query.last('x'), '%zz y');
  });
});

describe('parseSwiftPath: names are percent-decoded', () => {
  test('percent-encoded names are decoded', () => {
    assert.deepEqual(parts('/v1/AUTH_a/my%20c/caf%C3%A9%3Fx%25'), { version: 'v1', account: 'AUTH_a', container: 'my c', object: 'café?x%' });
    assert.equal(parseSwiftPath('/v1/AUTH_%74est')!.account, 'AUTH_test');
  });

  test('one container is one name however its characters are encoded', () => {
    assert.equal(parseSwiftPath('/v1/AUTH_a/caf%C3%A9/o')!.container, parseSwiftPath('/v1/AUTH_a/caf%c3%a9/o')!.container);
    assert.equal(parseSwiftPath('/v1/AUTH_a/%63/o')!.container, 'c');
  });

  test('non-ASCII names that arrive unencoded (raw UTF-8 bytes, as latin-1 characters from Node) are read as UTF-8', () => {
    assert.deepEqual(parts('/v1/AUTH_a/\u00c3\u00bc/\u00e6\u0097\u00a5'), { version: 'v1', account: 'AUTH_a', container: 'ü', object: '日' });
    assert.deepEqual(parts('/v1/AUTH_a/ü-in-a-test/日本'), { version: 'v1', account: 'AUTH_a', container: 'ü-in-a-test', object: '日本' });
  });

  test('an encoded "/" separates names, as it does in Swift (which splits the decoded path)', () => {
    assert.deepEqual(parts('/v1/AUTH_a/c%2Fx/o'), { version: 'v1', account: 'AUTH_a', container: 'c', object: 'x/o' });
    assert.deepEqual(parts('/v1/AUTH_a%2Fc'), { version: 'v1', account: 'AUTH_a', container: 'c' });
    assert.deepEqual(parts('/v1/AUTH_a/c/d%2Fo'), { version: 'v1', account: 'AUTH_a', container: 'c', object: 'd/o' });
  });

  test('an encoded "?" is part of a name, not the query', () => {
    const path = parseSwiftPath('/v1/AUTH_a/c/o%3Fextract-archive=tar')!;
    assert.equal(path.object, 'o?extract-archive=tar');
    assert.equal(path.query.has('extract-archive'), false);
  });

  // Python's unquote keeps a "%" that starts no valid escape as it is: these are names Swift stores.
  for (const [url, expected] of [
    ['/v1/AUTH_a/c/%zz', { container: 'c', object: '%zz' }],
    ['/v1/AUTH_a/c/y%', { container: 'c', object: 'y%' }],
    ['/v1/AUTH_a/c/z%2', { container: 'c', object: 'z%2' }],
    ['/v1/AUTH_a/%', { container: '%' }],
    ['/v1/AUTH_a/c%zz/o%20%zz%41', { container: 'c%zz', object: 'o %zzA' }],
    ['/v1/AUTH_%/c', { account: 'AUTH_%', container: 'c' }],
  ] as const) {
    test(`a malformed escape is a literal "%", as Swift reads it: ${url}`, () => {
      assert.deepEqual(parts(url), { version: 'v1', account: 'AUTH_a', ...expected });
    });
  }

  for (const bad of ['/v1/AUTH_a/c/o%E0%A4%A', '/v1/AUTH_a/c/%FF', '/v1/AUTH_a/c/o%00', '/v1/AUTH_a/c/\u00ff']) {
    test(`bytes that are not UTF-8, or NUL, reach no controller (Swift answers 412): ${JSON.stringify(bad)}`, () => {
      assert.equal(parseSwiftPath(bad), undefined);
    });
  }

  test('an encoded version is the version Swift sees', () => {
    assert.deepEqual(parts('/%76%31/AUTH_a/c'), { version: 'v1', account: 'AUTH_a', container: 'c' });
    assert.deepEqual(parts('/v1%2FAUTH_a'), { version: 'v1', account: 'AUTH_a' });
  });

  test('bad percent-encoding outside the Swift API is not a path error: it is not a Swift path', () => {
    assert.equal(parseSwiftPath('/auth/%zz'), undefined);
    assert.equal(parseSwiftPath('/info/%FF'), undefined);
  });

  test('an empty account or container reaches no controller (Swift answers 412 Bad URL)', () => {
    assert.equal(parseSwiftPath('/v1//c/o'), undefined);
    assert.equal(parseSwiftPath('/v1/AUTH_a//o'), undefined);
  });

  test('bad percent-encoding in the query is not a path error', () => {
    assert.equal(parseSwiftPath('/v1/AUTH_a/c/o?x=%zz')!.object, 'o');
  });
});

describe('parseSwiftPath: not Swift API requests', () => {
  for (const url of ['/auth/v1.0', '/info', '/healthcheck', '/metrics', '/', '', 'v1/AUTH_a', '/v1', '/v1/', '/v1?x', '/v2/AUTH_a', '/V1/AUTH_a', '/v1.1/AUTH_a', '/v1.0']) {
    test(`${JSON.stringify(url)} → undefined`, () => {
      assert.equal(parseSwiftPath(url), undefined);
    });
  }
});

describe('encodePath', () => {
  test('encodes each name and keeps the slashes of an object name', () => {
    assert.equal(encodePath('v1', 'AUTH_a'), '/v1/AUTH_a');
    assert.equal(encodePath('v1', 'AUTH_a', 'my c'), '/v1/AUTH_a/my%20c');
    assert.equal(encodePath('v1', 'AUTH_a', 'c', 'dir/caf é?#%'), '/v1/AUTH_a/c/dir/caf%20%C3%A9%3F%23%25');
  });

  test('round trip: parsing an encoded path gives the names back', () => {
    for (const [account, container, object] of [
      ['AUTH_a', 'c', 'o'],
      ['AUTH_tést', 'con tainer?', 'a/b/c d#e%f'],
      ['AUTH_x', '日本', 'dir/'],
      ['AUTH_x', 'c', '?multipart-manifest=get'],
    ] as const) {
      const path = parseSwiftPath(encodePath('v1', account, container, object))!;
      assert.deepEqual([path.account, path.container, path.object], [account, container, object]);
      assert.equal(path.query.size, 0);
      const containerPath = parseSwiftPath(encodePath('v1', account, container))!;
      assert.deepEqual([containerPath.account, containerPath.container, containerPath.object], [account, container, undefined]);
    }
  });
});

describe('parseContainerObject', () => {
  test('"c/o" and "/c/o" name container c, object o', () => {
    assert.deepEqual(parseContainerObject('c/o'), { container: 'c', object: 'o' });
    assert.deepEqual(parseContainerObject('/c/o'), { container: 'c', object: 'o' });
    assert.deepEqual(parseContainerObject('  /c/o  '), { container: 'c', object: 'o' });
  });

  test('the object name keeps its slashes', () => {
    assert.deepEqual(parseContainerObject('/c/dir/sub/o'), { container: 'c', object: 'dir/sub/o' });
    assert.deepEqual(parseContainerObject('c/o/'), { container: 'c', object: 'o/' });
    assert.deepEqual(parseContainerObject('c//o'), { container: 'c', object: '/o' });
  });

  test('the value is percent-decoded, as Swift unquotes it', () => {
    assert.deepEqual(parseContainerObject('/my%20c/caf%C3%A9'), { container: 'my c', object: 'café' });
    assert.deepEqual(parseContainerObject('c%2Fo'), { container: 'c', object: 'o' });
  });

  test('a "%" that starts no valid escape is kept, as Swift\'s unquote keeps it', () => {
    assert.deepEqual(parseContainerObject('/c/100%'), { container: 'c', object: '100%' });
    assert.deepEqual(parseContainerObject('/c/big%zz'), { container: 'c', object: 'big%zz' });
    assert.deepEqual(parseContainerObject('/c%20x/a%zz%20b'), { container: 'c x', object: 'a%zz b' });
  });

  test('raw UTF-8 bytes (latin-1 characters from Node) are read as UTF-8; invalid UTF-8 names no object', () => {
    assert.deepEqual(parseContainerObject('c/caf\u00c3\u00a9'), { container: 'c', object: 'café' });
    assert.equal(parseContainerObject('c/%FF'), undefined);
  });

  for (const bad of ['', '/', 'c', '/c', 'c/', '/c/', '//o', '///', '%2F%2Fo']) {
    test(`no container and object in ${JSON.stringify(bad)} → undefined`, () => {
      assert.equal(parseContainerObject(bad), undefined);
    });
  }
});

describe('parseAccountName', () => {
  test('percent-decoded as Swift does; empty, or with a "/", names no account (Swift answers 412)', () => {
    assert.equal(parseAccountName('AUTH_%74est'), 'AUTH_test');
    assert.equal(parseAccountName('AUTH_100%'), 'AUTH_100%');
    assert.equal(parseAccountName(''), undefined);
    assert.equal(parseAccountName('AUTH_a%2Fb'), undefined);
  });
});

describe('a leading U+FEFF is part of a name, as Python decodes it (no byte-order mark is dropped)', () => {
  test('in the path and in query parameter names', () => {
    assert.deepEqual(parts('/v1/AUTH_a/%EF%BB%BFc/%EF%BB%BFo'), { version: 'v1', account: 'AUTH_a', container: '\ufeffc', object: '\ufeffo' });
    const path = parseSwiftPath('/v1/AUTH_a/c/o?%EF%BB%BFmultipart-manifest=put')!;
    assert.equal(path.query.last('multipart-manifest'), undefined);
  });
});
