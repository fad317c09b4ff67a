import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { BadPathError, encodePath, parseContainerObject, parseSwiftPath } from '../../src/swift/path.js';

/** The path without its query, as a plain object (absent parts stay absent). */
function parts(url: string) {
  const path = parseSwiftPath(url);
  if (!path) return undefined;
  const { query: _query, ...rest } = path;
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
    assert.equal(path.query.get('multipart-manifest'), 'get');
    assert.equal(path.query.has('extract-archive'), true);
    assert.equal(parseSwiftPath('/v1/AUTH_a/c/o')!.query.toString(), '');
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

  test('non-ASCII names that arrive unencoded are kept', () => {
    assert.deepEqual(parts('/v1/AUTH_a/ü/日本'), { version: 'v1', account: 'AUTH_a', container: 'ü', object: '日本' });
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

  for (const bad of ['/v1/AUTH_a/c/%zz', '/v1/AUTH_a/%', '/v1/AUTH_a/c/o%E0%A4%A', '/v1/AUTH_a/c/%FF', '/v1/AUTH_%/c']) {
    test(`bad percent-encoding is a BadPathError: ${bad}`, () => {
      assert.throws(() => parseSwiftPath(bad), (error: unknown) => {
        assert.ok(error instanceof BadPathError);
        assert.equal(error.statusCode, 400);
        assert.equal(error.code, 'SQP_ERR_BAD_PATH');
        return true;
      });
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
      assert.equal(path.query.toString(), '');
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

  for (const bad of ['', '/', 'c', '/c', 'c/', '/c/', '//o', '///']) {
    test(`no container and object in ${JSON.stringify(bad)} → undefined`, () => {
      assert.equal(parseContainerObject(bad), undefined);
    });
  }
});
