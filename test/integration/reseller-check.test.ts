/**
 * Who the proxy takes for a reseller admin, against the tempauth Swift: a `.reseller_reader` may HEAD every
 * account, and administers its own, yet may not set its own level (the Keystone counterpart, keystoneauth's
 * system_reader_roles, is in keystone.test.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login } from '../helpers/http.js';

const LEVELS = {
  container_count: { default: 5, L1: 10 },
  object_count: { default: 100, L1: 200 },
  container_usage: { default: 10 ** 9, L1: 10 ** 10 },
};

describe('reseller admins, asked of tempauth', () => {
  let swift: string;
  let proxy: RunningProxy;
  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, quota: LEVELS });
  });
  after(() => proxy.close());

  test('a .reseller_reader that administers its own account may not set its level', async () => {
    const auditor = { 'x-auth-token': (await login(proxy.url, 'readers:auditor', 'auditorpass')).token };
    const reseller = { 'x-auth-token': (await login(proxy.url, 'reseller:reseller', 'reseller')).token };
    // What made a HEAD of an account nobody owns the wrong question: a reader passes it.
    const nobodys = await call('HEAD', accountUrl(swift, 'quota-proxy-reseller-probe'), auditor);
    assert.ok(nobodys.status >= 200 && nobodys.status < 300, `tempauth lets a reseller reader HEAD any account: ${nobodys.status}`);

    const attempt = await call('POST', accountUrl(proxy.url, 'readers'), { ...auditor, 'x-account-meta-quota': 'L1' });
    assert.equal(attempt.status, 403, attempt.body);
    assert.match(attempt.body, /only a reseller admin/);
    const stored = await call('HEAD', accountUrl(swift, 'readers'), reseller);
    assert.equal(stored.headers['x-account-meta-quota'], undefined);

    // Swift itself would have taken it: the account is the reader's own.
    const own = await call('POST', accountUrl(swift, 'readers'), { ...auditor, 'x-account-meta-color': 'blue' });
    assert.equal(own.status, 204);
    // And a reseller admin still may.
    assert.equal((await call('POST', accountUrl(proxy.url, 'readers'), { ...reseller, 'x-account-meta-quota': 'L1' })).status, 204);
    assert.equal((await call('HEAD', accountUrl(swift, 'readers'), reseller)).headers['x-account-meta-quota'], 'L1');
    assert.equal((await call('POST', accountUrl(proxy.url, 'readers'), { ...reseller, 'x-remove-account-meta-quota': 'x' })).status, 204);
  });
});
