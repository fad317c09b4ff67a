import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { needsCnameLookup, remapDomain, restoreLocation, storageDomainList, type DomainRemapConfig } from '../../src/swift/host-addressing.js';

const REMAP: DomainRemapConfig = { storageDomains: storageDomainList('example.com'), pathRoot: 'v1/', resellerPrefixes: ['AUTH'], defaultResellerPrefix: undefined, mangleClientPaths: false };

function remapped(host: string, path: string, config: DomainRemapConfig = REMAP): string | undefined {
  const outcome = remapDomain(config, host, Buffer.from(path, 'latin1'));
  return outcome.kind === 'remapped' ? outcome.pathInfo.toString('latin1') : outcome.kind;
}

describe('remapDomain: as domain_remap maps a host to a path (its documented examples)', () => {
  test('container and account from the host, the path kept as the object', () => {
    assert.equal(remapped('container.AUTH-account.example.com', '/object'), '/v1/AUTH_account/container/object');
    assert.equal(remapped('container.AUTH-account.example.com', '/v1/object'), '/v1/AUTH_account/container/v1/object');
    assert.equal(remapped('AUTH-account.example.com', '/container/object'), '/v1/AUTH_account/container/object');
    assert.equal(remapped('AUTH-account.example.com:8080', '/'), '/v1/AUTH_account/');
  });

  test('a Swift path on a storage-domain host is only an object name', () => {
    assert.equal(remapped('c.auth-x.example.com', '/v1/AUTH_y/d/o'), '/v1/AUTH_x/c/v1/AUTH_y/d/o');
    assert.equal(remapped('c.auth-x.example.com', 'http://h/v1/AUTH_y/d/o'), '/v1/AUTH_x/c/ttp://h/v1/AUTH_y/d/o');
  });

  test('the reseller prefix in any case, with "-" or "_"', () => {
    for (const host of ['auth-account.example.com', 'AUTH-account.example.com', 'auth_account.example.com', 'AUTH_account.example.com', 'Auth-account.example.com']) {
      assert.equal(remapped(host, '/c/o'), '/v1/AUTH_account/c/o', host);
    }
    assert.equal(remapped('auth-my-account.example.com', '/c'), '/v1/AUTH_my-account/c');
  });

  test('hosts it leaves alone, and the one it refuses', () => {
    assert.equal(remapped('127.0.0.1:8080', '/v1/AUTH_x/c'), 'unchanged');
    assert.equal(remapped('example.com', '/c'), 'unchanged');
    assert.equal(remapped('c.other-account.example.com', '/o'), 'unchanged');
    assert.equal(remapped('C.AUTH-X.EXAMPLE.COM', '/o'), 'unchanged');
    assert.equal(remapped('a.b.auth-x.example.com', '/o'), 'bad-domain');
  });

  test('default_reseller_prefix, path_root and mangle_client_paths', () => {
    const config = { ...REMAP, defaultResellerPrefix: 'AUTH', pathRoot: 'v2/', mangleClientPaths: true };
    assert.equal(remapped('c.account.example.com', '/o', config), '/v2/AUTH_account/c/o');
    assert.equal(remapped('c.account.example.com', '/v2/o', config), '/v2/AUTH_account/c/o');
    assert.equal(remapped('c.account.example.com', '/v2', config), '/v2/AUTH_account/c/');
    assert.equal(remapped('c.account.example.com', '/v1/o', config), '/v2/AUTH_account/c/v1/o');
  });
});

describe('cname_lookup: which hosts it looks up, and the Location headers it puts back', () => {
  const config = { storageDomains: storageDomainList('example.com'), lookupDepth: 1, nameservers: [] };

  test('names outside the storage domain are looked up; IP addresses and storage-domain names are not', () => {
    assert.equal(needsCnameLookup(config, 'files.customer.net'), true);
    assert.equal(needsCnameLookup(config, 'localhost'), true);
    assert.equal(needsCnameLookup(config, 'c.auth-x.example.com'), false);
    assert.equal(needsCnameLookup(config, 'example.com'), false);
    assert.equal(needsCnameLookup(config, '10.0.0.1'), false);
    assert.equal(needsCnameLookup(config, '::1'), false);
  });

  test('a Location on the name found goes back on the name asked for', () => {
    assert.equal(restoreLocation('http://c.auth-x.example.com:8080/o', 'c.auth-x.example.com:8080', 'files.customer.net:8080'), 'http://files.customer.net:8080/o');
    assert.equal(restoreLocation('https://c.auth-x.example.com', 'c.auth-x.example.com', 'files.customer.net'), 'https://files.customer.net');
    assert.equal(restoreLocation('http://elsewhere/o', 'c.auth-x.example.com', 'files.customer.net'), 'http://elsewhere/o');
    assert.equal(restoreLocation('/relative', 'c.auth-x.example.com', 'files.customer.net'), '/relative');
  });
});
