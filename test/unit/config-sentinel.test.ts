/**
 * `ledger = redis+sentinel://...` (config/ledger-sentinel.ts): the Sentinels, the master name, the passwords of
 * Redis and of the Sentinels, in the file or in SWIFT_QUOTA_PROXY_LEDGER; errors name the file, line and key
 * and never repeat a password; Redis Cluster refused with its reason.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';
import { configFromText } from '../../src/config/load.js';
import { parseSentinelUrl, redact } from '../../src/config/ledger-sentinel.js';

const FILE = 'test.conf';
const config = (ledger: string) =>
  [
    '[quota-proxy]', 'upstream = http://127.0.0.1:8080', `ledger = ${ledger}`, '',
    '[filter:quota]', 'use = egg:swift#quota', 'quota = {"container_count": {"default": 5}, "object_count": {"default": 100}, "container_usage": {"default": 1000}}', '',
    '[filter:tempauth]', 'use = egg:swift#tempauth', 'user_reseller_reseller = reseller .reseller_admin', '',
  ].join('\n');
const LEDGER_LINE = 3;
const fail = (reason: string): never => {
  throw new Error(reason);
};

describe('ledger = redis+sentinel://', () => {
  test('a Sentinel password holding "=" (base64 padding) is read whole, not cut at its second "="', () => {
    assert.equal(parseSentinelUrl('redis+sentinel://127.0.0.1/m?sentinel_password=c2VjcmV0==', fail).sentinelPassword, 'c2VjcmV0==');
  });

  test('the Sentinels (26379 by default, IPv6 in brackets), the master name, a database, both passwords', () => {
    const target = parseSentinelUrl('redis+sentinel://app:s%40cret@10.0.0.1,10.0.0.2:26380,[fd00::3]:26381/mymaster/2?sentinel_password=sp&sentinel_username=watch', fail);
    assert.deepEqual(target, {
      sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26380 }, { host: 'fd00::3', port: 26381 }],
      name: 'mymaster',
      db: 2,
      tls: false,
      username: 'app',
      password: 's@cret',
      sentinelUsername: 'watch',
      sentinelPassword: 'sp',
    });
    const plain = parseSentinelUrl('rediss+sentinel://:pw@s1:26379/ledger', fail);
    assert.deepEqual(plain, { sentinels: [{ host: 's1', port: 26379 }], name: 'ledger', db: 0, tls: true, password: 'pw' });
  });

  test('in the file: the ledger config carries the target beside the URL, lease and prefix', () => {
    const ledger = configFromText(config('redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/ledger'), FILE).ledger;
    assert.equal(ledger.kind, 'redis');
    assert.ok(ledger.kind === 'redis' && ledger.sentinel);
    assert.equal(ledger.sentinel.name, 'ledger');
    assert.equal(ledger.sentinel.sentinels.length, 2);
  });

  test('in SWIFT_QUOTA_PROXY_LEDGER, passwords included', () => {
    const ledger = configFromText(config('memory'), FILE, { ledger: 'redis+sentinel://:pw@127.0.0.1:26379/ledger?sentinel_password=spw' }).ledger;
    assert.ok(ledger.kind === 'redis' && ledger.sentinel);
    assert.equal(ledger.sentinel.password, 'pw');
    assert.equal(ledger.sentinel.sentinelPassword, 'spw');
    assert.throws(() => configFromText(config('memory'), FILE, { ledger: 'redis+sentinel://127.0.0.1:26379' }), (error: unknown) =>
      error instanceof ConfigError && error.file === 'SWIFT_QUOTA_PROXY_LEDGER' && /master name/.test(error.reason));
  });

  for (const [value, reason] of [
    ['redis+sentinel://127.0.0.1:26379', /master name/],
    ['redis+sentinel://127.0.0.1:99999/ledger', /port must be 1-65535/],
    ['redis+sentinel://127.0.0.1:26379/ledger/x', /database number/],
    ['redis+sentinel://127.0.0.1:26379/ledger?password=x', /unknown parameter "password"/],
    ['redis+sentinel://user@127.0.0.1:26379/ledger', /no password given/],
    ['redis+sentinel://127.0.0.1:26379,,127.0.0.2/ledger', /host\[:port\]/],
    ['redis+cluster://127.0.0.1:7000,127.0.0.1:7001', /Redis Cluster is not supported.*Sentinel/],
  ] as const) {
    test(`ledger = ${value} stops start-up naming the file, line and key`, () => {
      assert.throws(() => configFromText(config(value), FILE), (error: unknown) =>
        error instanceof ConfigError && error.file === FILE && error.line === LEDGER_LINE && error.key === 'ledger' && reason.test(error.reason));
    });
  }

  test('an error never repeats a password', () => {
    assert.throws(() => configFromText(config('redis+sentinel://:topsecret@127.0.0.1:26379?sentinel_password=alsosecret'), FILE), (error: unknown) =>
      error instanceof ConfigError && !/topsecret|alsosecret/.test(error.message));
    assert.equal(redact('redis+sentinel://u:p@h/m?sentinel_password=s'), 'redis+sentinel://u:***@h/m?sentinel_password=***');
  });
});
