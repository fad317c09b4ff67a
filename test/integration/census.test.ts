/**
 * The near-quota gauges (issue 25): every census_interval the proxy counts the known accounts and their
 * containers against their limits, by level, kind and state, with no per-account label. Account aw16, at a level
 * of its own (Lcensus) so that the counts are this test's alone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accountUrl, call, login } from '../helpers/http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { until } from '../helpers/raw-http.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { TEMPAUTH_USERS } from '../swift/cluster.js';

const LEVELS = {
  container_count: { default: 100, Lcensus: 1 },
  object_count: { default: 1000, Lcensus: 2 },
  container_usage: { default: 1_000_000 },
  account_usage: { default: 10_000_000, Lcensus: 100 },
};

describe('near-quota gauges', () => {
  let proxy: RunningProxy;
  before(async () => {
    // Only the users this test needs: a census reads every known account, and the test Swift has hundreds.
    const users = TEMPAUTH_USERS.filter((u) => u.account === 'reseller' || u.account === 'aw16');
    proxy = await startProxy({ upstream: await swiftUrl(), quota: LEVELS, extraQuotaLines: ['census_interval = 1'], tempauthUsers: users });
  });
  after(() => proxy.close());

  test('an account at its limits is counted at_hard per kind under its level, with no account in any label', async () => {
    const swift = await swiftUrl();
    const reseller = { 'x-auth-token': (await login(swift, 'reseller:reseller', 'reseller')).token };
    assert.equal((await call('POST', accountUrl(proxy.url, 'aw16'), { ...reseller, 'x-account-meta-quota': 'Lcensus' })).status, 204);
    const auth = { 'x-auth-token': (await login(swift, 'aw16:admin', 'aw16pass')).token };
    assert.equal((await call('PUT', `${accountUrl(proxy.url, 'aw16')}/c`, auth)).status, 201);
    for (const name of ['a', 'b']) assert.equal((await call('PUT', `${accountUrl(proxy.url, 'aw16')}/c/${name}`, auth, Buffer.alloc(50, 'x'))).status, 201);
    const sample = async (series: string) => {
      const line = (await proxy.metrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    const since = Date.now() / 1000;
    await until(async () => ((await sample('swift_quota_proxy_census_timestamp_seconds')) ?? 0) > since + 0.5, 'a census after the writes', 60_000);
    const at = (kind: string) => sample(`swift_quota_proxy_quota_scopes{level="Lcensus",kind="${kind}",state="at_hard"}`);
    assert.equal(await at('container_count'), 1);
    assert.equal(await at('object_count'), 1);
    assert.equal(await at('account_usage'), 1);
    assert.equal(await at('container_usage'), undefined, 'under its limit: not counted');
    const text = await proxy.metrics.registry.metrics();
    assert.doesNotMatch(text.split('\n').filter((l) => l.startsWith('swift_quota_proxy_quota_scopes')).join('\n'), /aw16/);
    assert.ok(((await sample('swift_quota_proxy_census_accounts')) ?? 0) >= 1);
  });
});
