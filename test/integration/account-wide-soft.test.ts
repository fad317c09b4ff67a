/**
 * Soft limits, grace periods, events and hit counters of the account-wide kinds against the real Swift (issue 25):
 * the account's total is watched like an account or a container, its state kept in the account's metadata (so a
 * restart keeps it), its refusals counted in the account's and the container's hits. Accounts pol13..pol16.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { accountUrl, call, login, type Login } from '../helpers/http.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { eventually } from '../helpers/receiver.js';
import { swiftUrl } from '../helpers/swift-env.js';

const provider = (name: string) => fileURLToPath(new URL(`../fixtures/providers/${name}`, import.meta.url));

interface QuotaEventJson {
  type: string;
  account: string;
  container: string | null;
  kind: string;
  limit: number;
  soft_limit: number | null;
  hard_limit: number | null;
  usage: number;
  grace_expires: string | null;
}
const recorded = async (): Promise<QuotaEventJson[]> => ((await import(provider('recording.mjs'))) as { events: QuotaEventJson[] }).events;
const eventsOf = async (account: string) => (await recorded()).filter((e) => e.account === `AUTH_${account}`);

/** Per-container kinds roomy: account_usage 10,000 with a soft limit of 6,000. */
const LEVELS = { container_count: { default: 20 }, object_count: { default: 1000 }, container_usage: { default: 1_000_000 }, account_usage: { default: 10_000 } };

let swift: string;
let reseller: Login;
before(async () => {
  swift = await swiftUrl();
  reseller = await login(swift, 'reseller:reseller', 'reseller');
});

/** The account's metadata as Swift has it (straight to Swift). */
async function direct(account: string): Promise<Record<string, string>> {
  return (await call('HEAD', `${swift}/v1/AUTH_${account}`, { 'x-auth-token': reseller.token })).headers;
}

function options(graceSeconds: number): ProxyOptions {
  return {
    upstream: swift,
    quota: LEVELS,
    extraQuotaLines: ['soft_quota = {"account_usage": {"default": 6000}}', `grace_period = ${graceSeconds}s`, 'hit_flush_interval = 1'],
    extraSections: ['[notify:recorder]', 'type = module', `module = ${provider('recording.mjs')}`, ''],
  };
}

describe('the account\'s total under a soft limit', () => {
  let proxy: RunningProxy | undefined;
  // Each test closes its proxies; one a failed test left open is closed here (each is closed once).
  const opened: RunningProxy[] = [];
  const start = async (graceSeconds: number): Promise<RunningProxy> => {
    const started = await startProxy(options(graceSeconds));
    let closing: Promise<void> | undefined;
    const once = { ...started, close: () => (closing ??= started.close()) };
    opened.push(once);
    return once;
  };
  after(() => Promise.all(opened.map((p) => p.close())));

  test('crossing it over two containers is reported once; its grace period ends on its own, then turns it hard; a restart keeps that; a delete ends it', async () => {
    const account = 'pol13';
    proxy = await start(2);
    const { token } = await login(swift, `${account}:admin`, `${account}pass`);
    const put = (path: string, size: number) => call('PUT', `${accountUrl(proxy!.url, account)}${path}`, { 'x-auth-token': token }, Buffer.alloc(size, 'x'));
    for (const container of ['c1', 'c2', 'c3']) assert.equal((await put(`/${container}`, 0)).status, 201);
    assert.equal((await put('/c1/a', 5_000)).status, 201);
    assert.equal((await put('/c2/b', 1_000)).status, 201, 'at the soft limit exactly: within it');
    assert.deepEqual(await eventsOf(account), []);
    assert.equal((await put('/c3/c', 1_500)).status, 201, 'over the soft limit: admitted (the hard limit has room)');
    await eventually(async () => (await eventsOf(account)).length >= 1, 'soft_limit_exceeded');
    const [soft] = await eventsOf(account);
    assert.deepEqual([soft!.type, soft!.container, soft!.kind, soft!.limit, soft!.soft_limit, soft!.hard_limit, soft!.usage], ['soft_limit_exceeded', null, 'account_usage', 6_000, 6_000, 10_000, 7_500]);
    assert.ok(soft!.grace_expires);
    await eventually(async () => /^\d+$/.test((await direct(account))['x-account-meta-quota-proxy-soft-account-usage'] ?? ''), 'the state in the account\'s metadata');

    await eventually(async () => (await eventsOf(account)).some((e) => e.type === 'grace_expired'), 'grace_expired with no request', 10_000);
    const refused = await put('/c1/more', 1);
    assert.equal(refused.status, 413, 'the hard limit has room, but the soft limit is enforced now');
    assert.equal(refused.headers['x-quota-exceeded'], 'account_usage');
    assert.equal(refused.headers['x-quota-enforced'], 'soft-grace-expired');
    assert.equal(refused.headers['x-quota-limit'], '6000');
    assert.equal((await put('/c1/a', 5_000)).status, 201, 'an overwrite of the same size does not grow the total');

    await proxy!.close();
    proxy = await start(2);
    assert.equal((await put('/c2/more', 1)).status, 413, 'the expired grace period survives a restart');
    await eventually(async () => (await direct(account))['x-account-meta-quota-proxy-hits'] === '2', 'both refusals in the account\'s hits');
    assert.equal((await eventsOf(account)).filter((e) => e.type === 'grace_expired').length, 1, 'and is not reported again');

    assert.equal((await call('DELETE', `${accountUrl(proxy!.url, account)}/c3/c`, { 'x-auth-token': token })).status, 204);
    await eventually(async () => (await eventsOf(account)).some((e) => e.type === 'back_below_soft'), 'back below soft after the delete');
    assert.equal((await put('/c2/more', 1)).status, 201, 'back at the soft limit, a write may cross it: a new grace period');
    await eventually(async () => (await eventsOf(account)).filter((e) => e.type === 'soft_limit_exceeded').length === 2, 'second crossing');
    assert.deepEqual(
      (await eventsOf(account)).map((e) => e.type),
      ['soft_limit_exceeded', 'grace_expired', 'back_below_soft', 'soft_limit_exceeded'],
      'refusals under an expired grace period are counted, not announced: grace_expired said so',
    );
    await proxy!.close();
  });

  test('the hard limit: one hard_limit_hit per episode, counted in the account\'s and the container\'s hits', async () => {
    const account = 'pol14';
    proxy = await start(3600);
    const { token } = await login(swift, `${account}:admin`, `${account}pass`);
    const put = (path: string, size: number) => call('PUT', `${accountUrl(proxy!.url, account)}${path}`, { 'x-auth-token': token }, Buffer.alloc(size, 'x'));
    for (const container of ['c1', 'c2']) assert.equal((await put(`/${container}`, 0)).status, 201);
    assert.equal((await put('/c1/a', 9_000)).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await put(`/c2/b${i}`, 1_001)).status, 413);
    await eventually(async () => (await eventsOf(account)).some((e) => e.type === 'hard_limit_hit'), 'hard_limit_hit');
    const types = (await eventsOf(account)).map((e) => [e.type, e.kind, e.container]);
    assert.deepEqual(types, [['soft_limit_exceeded', 'account_usage', null], ['hard_limit_hit', 'account_usage', null]]);
    await eventually(async () => (await direct(account))['x-account-meta-quota-proxy-hits'] === '3', 'the account\'s hits');
    const c2 = await call('HEAD', `${swift}/v1/AUTH_${account}/c2`, { 'x-auth-token': reseller.token });
    assert.equal(c2.headers['x-container-meta-quota-proxy-hits'], '3', 'the container\'s hits');
    await proxy!.close();
  });
});
