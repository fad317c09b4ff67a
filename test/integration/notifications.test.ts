/**
 * Soft limits, grace periods, quota events, providers, hit counters and the usage report, against a real
 * Swift and real HTTP receivers on loopback. Accounts qa17..qa24 are this file's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login, type Login } from '../helpers/http.js';
import { eventually, startReceiver, type Receiver } from '../helpers/receiver.js';
import { freePort } from '../helpers/ports.js';

const run = promisify(execFile);
const provider = (name: string) => fileURLToPath(new URL(`../fixtures/providers/${name}`, import.meta.url));

/** Hard limits; soft limits: object_count 8 (default) / 15 (L1) absolute, everything else 0.6 × hard. */
const LEVELS = {
  container_count: { default: 5, L1: 10 },
  object_count: { default: 10, L1: 20 },
  container_usage: { default: 100_000, L1: 1_000_000 },
};
const SOFT_LINES = ['soft_quota = {"object_count": {"default": 8, "L1": 15}}', 'soft_ratio = 0.6', 'hit_flush_interval = 1'];

interface QuotaEventJson {
  id: string;
  type: string;
  account: string;
  container: string | null;
  kind: string;
  level: string;
  limit: number;
  soft_limit: number | null;
  hard_limit: number | null;
  usage: number;
  grace_expires: string | null;
  caller: string | null;
  request: { method: string; path: string; transaction_id: string | null } | null;
}

const recorded = async (): Promise<QuotaEventJson[]> =>
  ((await import(provider('recording.mjs'))) as { events: QuotaEventJson[] }).events;
const eventsOf = async (account: string) => (await recorded()).filter((e) => e.account === `AUTH_${account}`);

let swift: string;
let reseller: Login;
const logins = new Map<string, Login>();

async function as(base: string, account: string): Promise<Login> {
  const key = `${base} ${account}`;
  if (!logins.has(key)) logins.set(key, await login(base, `${account}:admin`, `${account}pass`));
  return logins.get(key)!;
}

function proxyOptions(extra: Partial<ProxyOptions> & { sections?: string[] } = {}): ProxyOptions {
  return {
    upstream: swift,
    quota: LEVELS,
    extraQuotaLines: [...SOFT_LINES, ...(extra.extraQuotaLines ?? [])],
    extraSections: extra.sections ?? [],
  };
}

/** Swift's own view of a container or account (straight to Swift, as the reseller). */
async function direct(path: string): Promise<Record<string, string>> {
  const answer = await call('HEAD', `${swift}/v1/${path}`, { 'x-auth-token': reseller.token });
  assert.ok(answer.status >= 200 && answer.status < 300, `HEAD ${path}: ${answer.status}`);
  return answer.headers;
}

async function put(proxy: RunningProxy, account: string, path: string, body = 'x', headers: Record<string, string> = {}) {
  const who = await as(proxy.url, account);
  return call('PUT', `${accountUrl(proxy.url, account)}${path}`, { 'x-auth-token': who.token, ...headers }, body);
}

async function del(proxy: RunningProxy, account: string, path: string) {
  const who = await as(proxy.url, account);
  return call('DELETE', `${accountUrl(proxy.url, account)}${path}`, { 'x-auth-token': who.token });
}

async function fill(proxy: RunningProxy, account: string, container: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const answer = await put(proxy, account, `/${container}/o${i}`);
    assert.equal(answer.status, 201, `o${i}: ${answer.status} ${answer.body}`);
  }
}

/** The queued events in a webhook's queue_dir (beside them: the delivery lease). */
async function eventFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.json'));
}

async function metric(proxy: RunningProxy, line: RegExp): Promise<number> {
  const text = await proxy.metrics.registry.metrics();
  const found = text.split('\n').find((l) => line.test(l));
  return found ? Number(found.split(' ').at(-1)) : 0;
}

before(async () => {
  swift = await swiftUrl();
  reseller = await login(swift, 'reseller:reseller', 'reseller');
});

describe('soft limits and events, with a module and a webhook provider', () => {
  let proxy: RunningProxy;
  let receiver: Receiver;
  let queueDir: string;

  before(async () => {
    receiver = await startReceiver();
    queueDir = await mkdtemp(join(tmpdir(), 'sqp-hook-'));
    proxy = await startProxy(
      proxyOptions({
        sections: [
          '[notify:recorder]', 'type = module', `module = ${provider('recording.mjs')}`, '',
          '[notify:hook]', 'type = webhook', `url = ${receiver.url}`, 'bearer_token = t0ken', 'secret = s3cret', `queue_dir = ${queueDir}`, '',
        ],
      }),
    );
  });
  after(async () => {
    await proxy.close();
    await receiver.close();
    await rm(queueDir, { recursive: true, force: true });
  });

  test('one soft_limit_exceeded however many writes follow; one hard_limit_hit however many refusals; back below, once each', async () => {
    assert.equal((await put(proxy, 'qa17', '/c', '')).status, 201);
    await fill(proxy, 'qa17', 'c', 0, 8);
    assert.deepEqual(await eventsOf('qa17'), [], 'reaching the soft limit (8) exactly is within it');

    const [ninth, tenth] = await Promise.all([put(proxy, 'qa17', '/c/o8'), put(proxy, 'qa17', '/c/o9')]);
    assert.deepEqual([ninth.status, tenth.status], [201, 201], 'over the soft limit, writes still pass');
    const refusals = [await put(proxy, 'qa17', '/c/o10'), await put(proxy, 'qa17', '/c/o11'), await put(proxy, 'qa17', '/c/o12')];
    assert.deepEqual(refusals.map((r) => r.status), [413, 413, 413]);
    assert.equal(refusals[0]!.headers['x-quota-enforced'], 'hard');

    await eventually(async () => (await eventsOf('qa17')).length >= 2, 'soft and hard events');
    const [soft, hard, ...rest] = await eventsOf('qa17');
    assert.deepEqual(rest, [], 'no event per request');
    assert.equal(soft!.type, 'soft_limit_exceeded');
    assert.deepEqual(
      { account: soft!.account, container: soft!.container, kind: soft!.kind, level: soft!.level, limit: soft!.limit, soft: soft!.soft_limit, hard: soft!.hard_limit, usage: soft!.usage },
      { account: 'AUTH_qa17', container: 'c', kind: 'object_count', level: 'default', limit: 8, soft: 8, hard: 10, usage: 9 },
    );
    assert.equal(soft!.caller, 'qa17:admin', 'the caller logged in through the proxy');
    assert.equal(soft!.request?.method, 'PUT');
    assert.match(soft!.request?.path ?? '', /^\/v1\/AUTH_qa17\/c\/o[89]$/);
    const crossing = soft!.request!.path.endsWith('o8') ? ninth : tenth;
    assert.equal(soft!.request?.transaction_id, crossing!.headers['x-trans-id']);
    assert.ok(Date.parse(soft!.grace_expires!) - Date.now() > 6 * 86_400_000, 'a 7-day grace period by default');
    assert.equal(hard!.type, 'hard_limit_hit');
    // A refusal never reaches Swift: the event names it by the proxy's own id, the one its 413 carries.
    assert.deepEqual([hard!.limit, hard!.usage, hard!.request?.path, hard!.request?.transaction_id], [10, 10, '/v1/AUTH_qa17/c/o10', refusals[0]!.headers['x-trans-id']]);

    // The state is in Swift: the soft crossing at once, the refusals with the next batch.
    const since = Number((await direct('AUTH_qa17/c'))['x-container-meta-quota-proxy-soft-object-count']);
    assert.ok(Math.abs(since - Date.now() / 1000) < 120, `soft-since ${since}`);
    await eventually(async () => (await direct('AUTH_qa17/c'))['x-container-meta-quota-proxy-hits'] === '3', 'container hit counter');
    assert.equal((await direct('AUTH_qa17'))['x-account-meta-quota-proxy-hits'], '3');

    assert.equal((await del(proxy, 'qa17', '/c/o0')).status, 204);
    await eventually(async () => (await eventsOf('qa17')).length >= 3, 'back below hard');
    assert.equal((await del(proxy, 'qa17', '/c/o1')).status, 204);
    await eventually(async () => (await eventsOf('qa17')).length >= 4, 'back below soft');
    const all = await eventsOf('qa17');
    assert.deepEqual(all.map((e) => [e.type, e.usage]), [['soft_limit_exceeded', 9], ['hard_limit_hit', 10], ['back_below_hard', 9], ['back_below_soft', 8]]);
    await eventually(async () => (await direct('AUTH_qa17/c'))['x-container-meta-quota-proxy-soft-object-count'] === undefined, 'soft state removed');

    // The webhook got the same events, in the same order, authenticated and signed.
    await eventually(() => receiver.received.filter((r) => r.event.account === 'AUTH_qa17').length >= 4, 'webhook deliveries');
    const hooked = receiver.received.filter((r) => r.event.account === 'AUTH_qa17');
    assert.deepEqual(hooked.map((r) => r.event.id), all.map((e) => e.id));
    for (const { headers, body } of hooked) {
      assert.equal(headers.authorization, 'Bearer t0ken');
      assert.equal(headers['content-type'], 'application/json');
      // Standard Webhooks, checked with the scheme's reference verifier (which also refuses a stale timestamp).
      const event = JSON.parse(body) as { id: string };
      assert.equal(headers['webhook-id'], event.id);
      assert.ok(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000) < 120, `webhook-timestamp ${headers['webhook-timestamp']}`);
      assert.equal(headers['webhook-signature'], `v1,${createHmac('sha256', 's3cret').update(`${event.id}.${headers['webhook-timestamp']}.${body}`).digest('base64')}`);
      assert.deepEqual(new Webhook('s3cret', { format: 'raw' }).verify(body, headers as Record<string, string>), event);
      assert.equal(headers['x-quota-signature'], undefined, 'the legacy header only when asked for');
    }
    // A delivery counts once the receiver's answer is read, a moment after the receiver has the event.
    await eventually(async () => (await metric(proxy, /^swift_quota_proxy_notification_deliveries_total\{provider="hook",outcome="ok"\}/)) >= 4, 'four deliveries counted');
    assert.ok((await metric(proxy, /^swift_quota_proxy_quota_events_total\{type="soft_limit_exceeded"\}/)) >= 1);
  });

  test('a soft limit given as a ratio: container_count 0.6 × 5 = 3', async () => {
    for (const name of ['k1', 'k2', 'k3']) assert.equal((await put(proxy, 'qa18', `/${name}`, '')).status, 201);
    assert.deepEqual(await eventsOf('qa18'), []);
    assert.equal((await put(proxy, 'qa18', '/k4', '')).status, 201);
    assert.equal((await put(proxy, 'qa18', '/k5', '')).status, 201);
    await eventually(async () => (await eventsOf('qa18')).length >= 1, 'container soft event');
    const events = await eventsOf('qa18');
    assert.deepEqual(events.map((e) => [e.type, e.kind, e.container, e.limit, e.usage]), [['soft_limit_exceeded', 'container_count', null, 3, 4]]);
    const head = () => call('HEAD', accountUrl(proxy.url, 'qa18'), { 'x-auth-token': logins.get(`${proxy.url} qa18`)!.token });
    assert.equal((await head()).headers['x-account-quota-soft-container-count'], '3');
    await eventually(async () => (await head()).headers['x-account-meta-quota-proxy-soft-container-count'] !== undefined, 'the state, visible to the account');
  });

  test('clients cannot set or remove the proxy\'s metadata; a reseller admin can', async () => {
    const token = (await as(proxy.url, 'qa18')).token;
    const before = await direct('AUTH_qa18');
    const attempts: Array<[string, string, Record<string, string>]> = [
      ['POST', '', { 'x-account-meta-quota-proxy-hits': '0' }],
      ['POST', '', { 'X-Remove-Account-Meta-Quota-Proxy-Soft-Container-Count': 'x' }],
      ['POST', '', { 'x_account_meta_quota_proxy_soft_container_count': '' }],
      ['POST', '/k1', { 'x-container-meta-quota-proxy-hits': '0' }],
      ['POST', '/k1', { 'x-remove-container-meta-quota-proxy-soft-object-count': 'x' }],
      ['PUT', '/k9', { 'x-container-meta-quota-proxy-hits': '99' }],
    ];
    for (const [method, path, headers] of attempts) {
      const answer = await call(method as 'POST', `${accountUrl(proxy.url, 'qa18')}${path}`, { 'x-auth-token': token, ...headers });
      assert.equal(answer.status, 403, `${method} ${path} ${JSON.stringify(headers)} → ${answer.status}`);
      assert.match(answer.body, /reseller admins only/);
    }
    const afterwards = await direct('AUTH_qa18');
    assert.equal(afterwards['x-account-meta-quota-proxy-soft-container-count'], before['x-account-meta-quota-proxy-soft-container-count']);
    assert.equal((await call('HEAD', `${swift}/v1/AUTH_qa18/k9`, { 'x-auth-token': reseller.token })).status, 404, 'the refused PUT created nothing');

    const cleared = await call('POST', accountUrl(proxy.url, 'qa18'), { 'x-auth-token': (await login(proxy.url, 'reseller:reseller', 'reseller')).token, 'x-remove-account-meta-quota-proxy-soft-container-count': 'x' });
    assert.equal(cleared.status, 204);
    assert.equal((await direct('AUTH_qa18'))['x-account-meta-quota-proxy-soft-container-count'], undefined);
  });
});

describe('hit counters', () => {
  test('a client hammering a full container: every refusal counted, written in a few batches, kept across a restart', async () => {
    const options = proxyOptions({ sections: ['[notify:recorder]', 'type = module', `module = ${provider('recording.mjs')}`, ''] });
    let proxy = await startProxy(options);
    try {
      assert.equal((await put(proxy, 'qa19', '/full', '')).status, 201);
      const big = 'x'.repeat(100_001); // over container_usage 100000 in one go
      const writesBefore = await metric(proxy, /^swift_quota_proxy_usage_lookups_total\{target="metadata"/);
      for (let round = 0; round < 4; round++) {
        const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => put(proxy, 'qa19', `/full/big${round}-${i}`, big)));
        assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([413]));
      }
      await eventually(async () => (await direct('AUTH_qa19/full'))['x-container-meta-quota-proxy-hits'] === '40', 'container hits 40');
      assert.equal((await direct('AUTH_qa19'))['x-account-meta-quota-proxy-hits'], '40');
      const writes = (await metric(proxy, /^swift_quota_proxy_usage_lookups_total\{target="metadata"/)) - writesBefore;
      assert.ok(writes <= 12, `40 refusals took ${writes} metadata writes (batched per second, container + account)`);
      assert.deepEqual((await eventsOf('qa19')).map((e) => e.type), ['hard_limit_hit'], 'one hard_limit_hit for the whole episode');
      await proxy.close();

      proxy = await startProxy(options);
      const seen = await call('HEAD', `${accountUrl(proxy.url, 'qa19')}/full`, { 'x-auth-token': (await as(proxy.url, 'qa19')).token });
      assert.equal(seen.headers['x-container-meta-quota-proxy-hits'], '40', 'visible after the restart');
      assert.equal((await put(proxy, 'qa19', '/full/again', big)).status, 413);
    } finally {
      await proxy.close(); // writes the last refusal on the way out
    }
    assert.equal((await direct('AUTH_qa19/full'))['x-container-meta-quota-proxy-hits'], '41');
  });
});

describe('grace period (2 s in this test)', () => {
  test('expiry is reported on its own, turns the soft limit hard, survives a restart, and ends when usage is back under it', async () => {
    const options = proxyOptions({
      extraQuotaLines: ['grace_period = 2s'],
      sections: ['[notify:recorder]', 'type = module', `module = ${provider('recording.mjs')}`, ''],
    });
    let proxy = await startProxy(options);
    try {
      assert.equal((await put(proxy, 'qa20', '/g', '')).status, 201);
      await fill(proxy, 'qa20', 'g', 0, 9);
      await eventually(async () => (await eventsOf('qa20')).some((e) => e.type === 'grace_expired'), 'grace_expired with no request', 10_000);
      const expired = (await eventsOf('qa20')).find((e) => e.type === 'grace_expired')!;
      assert.deepEqual([expired.kind, expired.limit, expired.usage, expired.request], ['object_count', 8, 9, null]);
      await eventually(async () => /^\d+ notified$/.test((await direct('AUTH_qa20/g'))['x-container-meta-quota-proxy-soft-object-count'] ?? ''), 'notified mark');

      const refused = await put(proxy, 'qa20', '/g/new');
      assert.equal(refused.status, 413, 'hard limit 10 has room, but the soft limit is enforced now');
      assert.equal(refused.headers['x-quota-enforced'], 'soft-grace-expired');
      assert.equal(refused.headers['x-quota-limit'], '8');
      assert.match(refused.body, /past its grace period/);
      assert.equal((await put(proxy, 'qa20', '/g/o0')).status, 201, 'an overwrite does not grow the count');

      await proxy.close();
      proxy = await startProxy(options);
      assert.equal((await put(proxy, 'qa20', '/g/new')).status, 413, 'the expired grace period survives a restart');
      assert.equal((await eventsOf('qa20')).filter((e) => e.type === 'grace_expired').length, 1, 'and is not reported again');

      assert.equal((await del(proxy, 'qa20', '/g/o1')).status, 204);
      await eventually(async () => (await eventsOf('qa20')).some((e) => e.type === 'back_below_soft'), 'back below soft');
      assert.equal((await put(proxy, 'qa20', '/g/new')).status, 201, 'at the soft limit again, a write may cross it: a new grace period');
      await eventually(async () => (await eventsOf('qa20')).filter((e) => e.type === 'soft_limit_exceeded').length === 2, 'second crossing');
      assert.deepEqual(
        (await eventsOf('qa20')).map((e) => e.type),
        ['soft_limit_exceeded', 'grace_expired', 'back_below_soft', 'soft_limit_exceeded'],
        'refusals under an expired grace period are counted, not announced: grace_expired said so',
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('webhook delivery through outages and restarts', () => {
  test('events wait on disk while the receiver is down and arrive in order when it is back, also after a proxy restart', async () => {
    const port = await freePort();
    const queueDir = await mkdtemp(join(tmpdir(), 'sqp-queue-'));
    const options = proxyOptions({
      sections: ['[notify:hook]', 'type = webhook', `url = http://127.0.0.1:${port}/hook`, `queue_dir = ${queueDir}`, 'retry_min = 1', 'retry_max = 1', ''],
    });
    let proxy = await startProxy(options);
    let receiver: Receiver | undefined;
    try {
      assert.equal((await put(proxy, 'qa21', '/w', '')).status, 201);
      await fill(proxy, 'qa21', 'w', 0, 10); // soft_limit_exceeded at 9
      assert.equal((await put(proxy, 'qa21', '/w/o10')).status, 413); // hard_limit_hit
      await eventually(async () => (await eventFiles(queueDir)).length === 2, 'two events on disk');
      await eventually(async () => (await metric(proxy, /^swift_quota_proxy_notification_queue_depth\{provider="hook"\}/)) === 2, 'queue depth 2');
      // The first attempt waits out the queue's ordering delay (half a second, notify/webhook.ts), then fails.
      await eventually(async () => (await metric(proxy, /^swift_quota_proxy_notification_deliveries_total\{provider="hook",outcome="failed"\}/)) >= 1, 'a failed delivery counted');

      receiver = await startReceiver(port);
      await eventually(() => receiver!.received.length === 2, 'delivery once the receiver is back');
      assert.deepEqual(receiver.received.map((r) => r.event.type), ['soft_limit_exceeded', 'hard_limit_hit']);
      await eventually(async () => (await eventFiles(queueDir)).length === 0, 'queue emptied');
      await receiver.close();

      assert.equal((await del(proxy, 'qa21', '/w/o0')).status, 204); // back_below_hard
      assert.equal((await del(proxy, 'qa21', '/w/o1')).status, 204); // back_below_soft
      await eventually(async () => (await eventFiles(queueDir)).length === 2, 'two more events on disk');
      await proxy.close();

      receiver = await startReceiver(port);
      receiver.received.length = 0;
      proxy = await startProxy(options);
      await eventually(() => receiver!.received.length === 2, 'delivery after the proxy restarted');
      assert.deepEqual(receiver.received.map((r) => r.event.type), ['back_below_hard', 'back_below_soft']);
      assert.deepEqual(receiver.received.map((r) => r.event.account), ['AUTH_qa21', 'AUTH_qa21']);
    } finally {
      await proxy.close();
      await receiver?.close();
      await rm(queueDir, { recursive: true, force: true });
    }
  });
});

describe('failing providers', () => {
  test('a provider that throws, one that never answers and a webhook that hangs do not affect client requests', async () => {
    const receiver = await startReceiver();
    receiver.mode = 'hang';
    const queueDir = await mkdtemp(join(tmpdir(), 'sqp-hang-'));
    const proxy = await startProxy(
      proxyOptions({
        sections: [
          '[notify:throws]', 'type = module', `module = ${provider('throwing.mjs')}`, '',
          '[notify:hangs]', 'type = module', `module = ${provider('hanging.mjs')}`, 'timeout = 2', '',
          '[notify:hook]', 'type = webhook', `url = ${receiver.url}`, `queue_dir = ${queueDir}`, 'timeout = 60', '',
        ],
      }),
    );
    try {
      assert.equal((await put(proxy, 'qa22', '/f', '')).status, 201);
      await fill(proxy, 'qa22', 'f', 0, 10);
      for (let i = 10; i < 15; i++) assert.equal((await put(proxy, 'qa22', `/f/o${i}`)).status, 413);
      assert.equal((await call('GET', `${accountUrl(proxy.url, 'qa22')}/f`, { 'x-auth-token': (await as(proxy.url, 'qa22')).token })).status, 200);
      await eventually(async () => (await metric(proxy, /^swift_quota_proxy_notification_deliveries_total\{provider="throws",outcome="failed"\}/)) === 2, 'throwing provider failures');
      await eventually(async () => (await metric(proxy, /^swift_quota_proxy_notification_deliveries_total\{provider="hangs",outcome="failed"\}/)) >= 1, 'hanging provider timed out');
      assert.equal(await metric(proxy, /^swift_quota_proxy_notification_deliveries_total\{provider="hook",outcome="ok"\}/), 0);
    } finally {
      await proxy.close();
      await receiver.close();
      await rm(queueDir, { recursive: true, force: true });
    }
  });
});

describe('usage report', () => {
  let proxy: RunningProxy;
  let configFile: string;
  let dir: string;

  before(async () => {
    proxy = await startProxy(proxyOptions());
    dir = await mkdtemp(join(tmpdir(), 'sqp-report-'));
    configFile = join(dir, 'proxy-server.conf');
    await writeFile(configFile, proxy.configText);
    const resellerViaProxy = await login(proxy.url, 'reseller:reseller', 'reseller');
    assert.equal((await call('POST', accountUrl(proxy.url, 'qa23'), { 'x-auth-token': resellerViaProxy.token, 'x-account-meta-quota': 'L1' })).status, 204);
    assert.equal((await put(proxy, 'qa23', '/docs', '')).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await put(proxy, 'qa23', `/docs/d${i}`, 'y'.repeat(100))).status, 201);
    assert.equal((await put(proxy, 'qa24', '/busy', '')).status, 201);
    await fill(proxy, 'qa24', 'busy', 0, 10);
    assert.equal((await put(proxy, 'qa24', '/busy/o10')).status, 413);
  });
  after(async () => {
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('report --json: levels, usage against soft and hard limits, grace state and hits', async () => {
    await proxy.gate.watch.flush();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'report', '--config', configFile, '--account', 'qa23', '--json']);
    const report = JSON.parse(stdout) as { accounts: Array<Record<string, unknown>> };
    assert.equal(report.accounts.length, 1);
    assert.deepEqual(report.accounts[0], {
      account: 'AUTH_qa23',
      exists: true,
      level: 'L1',
      containers: { used: 1, soft: 6, hard: 10, grace: null },
      objects_used: 3,
      bytes_used: 300,
      objects_limit: null,
      bytes_limit: null,
      total_objects: { used: 3, soft: null, hard: null, grace: null },
      total_bytes: { used: 300, soft: null, hard: null, grace: null },
      hits: 0,
      container_list: [
        {
          name: 'docs',
          objects: { used: 3, soft: 15, hard: 20, grace: null },
          bytes: { used: 300, soft: 600_000, hard: 1_000_000, grace: null },
          hits: 0,
        },
      ],
    });

    const other = JSON.parse((await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'report', '--config', configFile, '--account', 'AUTH_qa24', '--json'])).stdout) as {
      accounts: Array<{ level: string; hits: number; container_list: Array<{ objects: { used: number; soft: number; hard: number; grace: { state: string; remaining_seconds: number } }; hits: number }> }>;
    };
    const busy = other.accounts[0]!;
    assert.equal(busy.level, 'default');
    assert.equal(busy.hits, 1);
    assert.deepEqual([busy.container_list[0]!.objects.used, busy.container_list[0]!.objects.soft, busy.container_list[0]!.objects.hard], [10, 8, 10]);
    assert.equal(busy.container_list[0]!.objects.grace.state, 'running');
    assert.ok(busy.container_list[0]!.objects.grace.remaining_seconds > 6 * 86_400);
    assert.equal(busy.container_list[0]!.hits, 1);
  });

  test('report as a table, for every tempauth account', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'report', '--config', configFile]);
    assert.match(stdout, /^Quota report generated \S+; grace period 7d\n/);
    assert.match(stdout, /\*\*\* AUTH_qa23 {2}level L1 {2}containers 1 \(soft 6, hard 10, grace -\) {2}objects 3 {2}bytes 300 B {2}hits 0/);
    const row = (name: string) => stdout.split('\n').find((line) => line.startsWith(`    ${name} `))?.trim().split(/ {2,}/);
    assert.deepEqual(row('docs'), ['docs', '3', '15', '20', '-', '300 B', '586 KiB', '977 KiB', '-', '0']);
    assert.deepEqual(row('busy'), ['busy', '10', '8', '10', '6d23h left', '10 B', '58.6 KiB', '97.7 KiB', '-', '1']);
    const lines = stdout.split('\n');
    const docs = lines.findIndex((line) => line.startsWith('    docs '));
    assert.match(lines[docs - 1]!, /^ {4}Container {2}Objects/);
    assert.equal(lines[docs]!.length, lines[docs - 1]!.length, 'columns line up under their headings');
    // Every tempauth account, as it is or as Swift does not have it (`*** AUTH_x: no such account in Swift`).
    for (const account of ['AUTH_test', 'AUTH_qa1', 'AUTH_qa24', 'AUTH_system']) assert.ok(stdout.includes(`*** ${account} `) || stdout.includes(`*** ${account}: no such account in Swift`), account);
  });

  test('over HTTP: a reseller sees every account, an account its own only', async () => {
    const route = `${proxy.url}/quota/report`;
    const resellerToken = (await login(proxy.url, 'reseller:reseller', 'reseller')).token;
    const all = await call('GET', route, { 'x-auth-token': resellerToken });
    assert.equal(all.status, 200);
    const accounts = (JSON.parse(all.body) as { accounts: Array<{ account: string }> }).accounts.map((a) => a.account);
    assert.ok(accounts.includes('AUTH_qa23') && accounts.includes('AUTH_qa24') && accounts.includes('AUTH_test'), accounts.join());

    const own = await call('GET', route, { 'x-auth-token': (await as(proxy.url, 'qa23')).token });
    assert.deepEqual((JSON.parse(own.body) as { accounts: Array<{ account: string }> }).accounts.map((a) => a.account), ['AUTH_qa23']);
    // A token obtained straight from Swift is not known to the proxy: Swift decides what it may read.
    const elsewhere = await login(swift, 'qa24:admin', 'qa24pass');
    const probed = await call('GET', route, { 'x-auth-token': elsewhere.token });
    assert.deepEqual((JSON.parse(probed.body) as { accounts: Array<{ account: string }> }).accounts.map((a) => a.account), ['AUTH_qa24']);
    const text = await call('GET', `${route}?format=text`, { 'x-auth-token': elsewhere.token });
    assert.match(text.body, /\*\*\* AUTH_qa24 {2}level default/);
    assert.equal((await call('GET', `${route}?account=qa24`, { 'x-auth-token': (await as(proxy.url, 'qa23')).token })).status, 403);
    assert.equal((await call('GET', route)).status, 401);
  });
});
