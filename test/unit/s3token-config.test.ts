import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromText } from '../../src/config/load.js';
import { capabilitiesFromInfo } from '../../src/swift/capabilities.js';
import { ec2Unverifiable } from '../../src/services.js';

const base = (extra: string, service = 'service_auth = keystone\nauth_url = http://127.0.0.1:5000/v3\nusername = q\npassword = p\nuser_domain_id = default\nproject_name = s\nproject_domain_id = default') =>
  `[quota-proxy]\nupstream = http://127.0.0.1:8080\n\n[filter:quota]\n${service}\nquota = {"container_count": {"default": 5}}\n\n[filter:keystoneauth]\nreseller_admin_role = ResellerAdmin\n\n${extra}`;

test('[filter:s3token] is read as s3token reads it: auth_uri, reseller_prefix with its "_", http_timeout, secret_cache_duration', () => {
  const config = configFromText(base('[filter:s3token]\nuse = egg:swift#s3token\nauth_uri = http://127.0.0.1:5000/v3/\nreseller_prefix = KEY\nsecret_cache_duration = 60\nauth_type = password\nusername = swift\n'), 'proxy.conf');
  assert.deepEqual(config.s3token, { authUri: 'http://127.0.0.1:5000/v3', resellerPrefix: 'KEY_', timeoutMs: 10_000, secretCacheSeconds: 60 });
  assert.equal(configFromText(base('[filter:s3token]\nauth_uri = https://ks/v3\n'), 'proxy.conf').s3token!.resellerPrefix, 'AUTH_');
  assert.equal(configFromText(base(''), 'proxy.conf').s3token, undefined);
});

test('a [filter:s3token] Swift would not start with, or without a Keystone service identity, stops start-up naming the section', () => {
  for (const [section, reason] of [
    ['[filter:s3token]\nauth_uri = ks:5000/v3\n', /scheme/],
    ['[filter:s3token]\nauth_uri = ftp://ks/v3\n', /http or https/],
    ['[filter:s3token]\nauth_uri = http://u@ks/v3\n', /username, query, or fragment/],
    ['[filter:s3token]\nauth_uri = http://ks/v3\nhttp_timeout = 0\n', /between 0 and 60/],
    ['[filter:s3token]\nauth_uri = http://ks/v3\nsecret_cache_duration = -1\n', /secret_cache_duration/],
  ] as const) {
    assert.throws(() => configFromText(base(section), 'proxy.conf'), (error: Error) => /filter:s3token/.test(error.message) && reason.test(error.message), section);
  }
  const tempauth = '[filter:tempauth]\nuser_reseller_reseller = reseller .reseller_admin\n\n[filter:s3token]\nauth_uri = http://ks/v3\n';
  assert.throws(() => configFromText(base(tempauth, 'service_user = reseller:reseller'), 'proxy.conf'), /filter:s3token.*Keystone service identity/);
});

test('in Swift\'s own proxy-server.conf, [filter:s3token] counts only where [pipeline:main] names s3token, as in Swift', () => {
  const section = '[filter:s3token]\nauth_uri = http://ks/v3\n';
  const unused = `[pipeline:main]\npipeline = catch_errors tempauth proxy-server\n\n${section}`;
  assert.equal(configFromText(base(unused), 'proxy-server.conf').s3token, undefined);
  const tempauth = '[filter:tempauth]\nuser_reseller_reseller = reseller .reseller_admin\n\n';
  assert.equal(configFromText(base(tempauth + unused, 'service_user = reseller:reseller'), 'proxy-server.conf').s3token, undefined, 'no Keystone identity needed for a section Swift does not use');
  const used = `[pipeline:main]\npipeline = catch_errors authtoken s3api\n  s3token keystoneauth proxy-server\n\n${section}`;
  assert.equal(configFromText(base(used), 'proxy-server.conf').s3token?.authUri, 'http://ks/v3');
});

test('Swift running s3api without tempauth needs [filter:s3token]; with tempauth, or not known, it does not', () => {
  const keystone = capabilitiesFromInfo({ swift: {}, s3api: {} });
  assert.match(ec2Unverifiable({ s3token: undefined }, keystone) ?? '', /copy Swift's \[filter:s3token\]/);
  assert.equal(ec2Unverifiable({ s3token: { authUri: 'http://ks/v3', resellerPrefix: 'AUTH_', timeoutMs: 1, secretCacheSeconds: 0 } }, keystone), undefined);
  assert.equal(ec2Unverifiable({ s3token: undefined }, capabilitiesFromInfo({ swift: {}, s3api: {}, tempauth: {} })), undefined);
  assert.equal(ec2Unverifiable({ s3token: undefined }, capabilitiesFromInfo({ swift: {} })), undefined);
  assert.equal(ec2Unverifiable({ s3token: undefined }, capabilitiesFromInfo(undefined)), undefined);
});
