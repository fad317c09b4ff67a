/**
 * Several proxies in front of one Swift, sharing one usage ledger in Redis (`ledger = redis://...`): exact
 * together as one proxy is alone, in both modes; a proxy killed mid-upload frees its reservation within its
 * lease; a Redis that cannot be reached makes writes that need a check follow fail_mode. Every count is read
 * from Swift directly, not through a proxy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { proxyConfigText, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login, type Login } from '../helpers/http.js';
import { rawRequest, until, type RawResponse } from '../helpers/raw-http.js';
import { freePort } from '../helpers/ports.js';
import { startCli, type StartedCli } from '../helpers/cli.js';
import { eventually, startReceiver } from '../helpers/receiver.js';
import { startRedis } from '../swift/redis.js';

const LIMITS = {
  container_count: { default: 5 },
  object_count: { default: 10 },
  container_usage: { default: 10_000 },
};

const MODES = [
  { name: 'cached mode', precise: false, accounts: ['rep1', 'rep2', 'rep3', 'rep4'] },
  { name: 'precise mode', precise: true, accounts: ['rep5', 'rep6', 'rep7', 'rep8'] },
] as const;

/** A chunked PUT of `size` bytes (500-byte chunks) over a raw socket; its answer, whenever it comes. */
function chunkedUpload(origin: string, account: string, token: string, path: string, size: number): Promise<RawResponse> {
  const chunk = `${(500).toString(16)}\r\n${'c'.repeat(500)}\r\n`;
  const upload = rawRequest(origin, 'PUT', `/v1/AUTH_${account}${path}`, [['Host', new URL(origin).host], ['X-Auth-Token', token], ['Transfer-Encoding', 'chunked']]);
  for (let sent = 0; sent < size; sent += 500) upload.send(chunk);
  return upload.finish('0\r\n\r\n');
}

async function logins(swift: string, accounts: readonly string[]): Promise<Map<string, Login>> {
  const map = new Map<string, Login>();
  for (const account of accounts) map.set(account, await login(swift, `${account}:admin`, `${account}pass`));
  return map;
}

for (const mode of MODES) {
  describe(`three proxies, one Redis ledger, ${mode.name}`, () => {
    let swift: string;
    let dir: string;
    let proxies: StartedCli[];
    let tokens: Map<string, Login>;
    const auth = (account: string) => ({ 'x-auth-token': tokens.get(account)!.token });
    const via = (i: number, account: string, path: string) => `${accountUrl(proxies[i % proxies.length]!.url, account)}${path}`;
    const direct = (account: string, path: string) => `${accountUrl(swift, account)}${path}`;

    before(async () => {
      swift = await swiftUrl();
      dir = await mkdtemp(join(tmpdir(), 'sqp-replicas-'));
      const ledger = await redisUrl();
      const prefix = `replicas-${randomBytes(4).toString('hex')}:`;
      // Three proxy processes, as three replicas would be.
      proxies = await Promise.all(
        Array.from({ length: 3 }, async (_, i) => {
          const file = join(dir, `proxy${i}.conf`);
          const lines = [`ledger = ${ledger}`, `ledger_prefix = ${prefix}`];
          await writeFile(file, proxyConfigText({ upstream: swift, quota: LIMITS, preciseMode: mode.precise, port: await freePort(), extraProxyLines: lines }));
          return startCli(['--config', file]);
        }),
      );
      tokens = await logins(swift, mode.accounts);
    });
    after(async () => {
      await Promise.all(proxies.map((proxy) => new Promise((resolve) => {
        proxy.child.once('exit', resolve);
        proxy.child.kill('SIGTERM');
      })));
      await rm(dir, { recursive: true, force: true });
    });

    async function usage(account: string, container: string): Promise<{ objects: number; bytes: number }> {
      const head = await call('HEAD', direct(account, `/${container}`), auth(account));
      assert.equal(head.status, 204);
      return { objects: Number(head.headers['x-container-object-count']), bytes: Number(head.headers['x-container-bytes-used']) };
    }

    test('42 concurrent uploads spread over three proxies into a container with object_count 10: exactly 10 stored', async () => {
      const account = mode.accounts[0];
      assert.equal((await call('PUT', direct(account, '/race'), auth(account))).status, 201);
      const answers = await Promise.all(Array.from({ length: 42 }, (_, i) => call('PUT', via(i, account, `/race/o${i}`), auth(account), `object ${i}`)));
      const statuses = answers.map((a) => a.status);
      assert.equal(statuses.filter((s) => s === 201).length, 10, statuses.join(' '));
      assert.equal(statuses.filter((s) => s === 413).length, 32, statuses.join(' '));
      assert.equal((await usage(account, 'race')).objects, 10);
    });

    test('40 concurrent 1000-byte uploads over three proxies into container_usage 10000, repeated: exactly 10000 bytes each round', async () => {
      const account = mode.accounts[1];
      for (let round = 0; round < 3; round++) {
        const container = `bytes${round}`;
        assert.equal((await call('PUT', direct(account, `/${container}`), auth(account))).status, 201);
        const body = Buffer.alloc(1000, 'x');
        const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => call('PUT', via(i, account, `/${container}/o${i % 20}-${i}`), auth(account), body)));
        assert.equal(answers.filter((a) => a.status === 201).length, 10, `round ${round}: ${answers.map((a) => a.status).join(' ')}`);
        assert.deepEqual(await usage(account, container), { objects: 10, bytes: 10_000 });
      }
    });

    test('chunked uploads over three proxies are cut at the shared limit with the quota\'s 413: each stored whole or not at all, never past 10000 bytes', async () => {
      const account = mode.accounts[2];
      assert.equal((await call('PUT', direct(account, '/chunked'), auth(account))).status, 201);
      // Over raw sockets: an upload cut mid-body is answered before its body is all read, and that answer (not
      // an error of the client's) is what is checked.
      const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => chunkedUpload(proxies[i % proxies.length]!.url, account, tokens.get(account)!.token, `/chunked/o${i}`, 3000)));
      const outcomes = answers.map((a) => (a.status === 413 ? `413 ${a.headers['x-quota-exceeded']}` : a.status));
      const stored = await usage(account, 'chunked');
      // Three 3000-byte uploads fit in 10000: how the nine interleave decides which (and whether a cut one's
      // place is taken in time), but every upload is stored whole or cut with the quota refusal, and some are stored.
      assert.ok(outcomes.every((o) => o === 201 || o === '413 container_usage'), outcomes.join(' '));
      const admitted = outcomes.filter((o) => o === 201).length;
      assert.ok(admitted >= 1 && admitted <= 3, outcomes.join(' '));
      assert.deepEqual(stored, { objects: admitted, bytes: admitted * 3000 }, outcomes.join(' '));
    });

    test('20 concurrent container creations over three proxies, container_count 5: exactly 5', async () => {
      const account = mode.accounts[3];
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => call('PUT', via(i, account, `/made${i}`), auth(account))));
      assert.equal(answers.filter((a) => a.status === 201).length, 5, answers.map((a) => a.status).join(' '));
      const head = await call('HEAD', accountUrl(swift, account), auth(account));
      assert.equal(head.headers['x-account-container-count'], '5');
    });
  });
}

describe('a proxy killed mid-upload, and a Redis that cannot be reached', () => {
  let swift: string;
  let dir: string;
  let tokens: Map<string, Login>;
  const auth = (account: string) => ({ 'x-auth-token': tokens.get(account)!.token });

  before(async () => {
    swift = await swiftUrl();
    dir = await mkdtemp(join(tmpdir(), 'sqp-replicas-'));
    tokens = await logins(swift, ['rep9', 'rep10']);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('kill -9 with an upload in flight: the other proxy refuses while it is held, and admits within the lease after the kill', async () => {
    const account = 'rep9';
    const ledger = await redisUrl();
    const prefix = `killed-${randomBytes(4).toString('hex')}:`;
    const lines = [`ledger = ${ledger}`, `ledger_prefix = ${prefix}`, 'ledger_lease = 2'];
    const port = await freePort();
    const file = join(dir, 'killed.conf');
    await writeFile(file, proxyConfigText({ upstream: swift, quota: LIMITS, port, extraProxyLines: lines }).replace('log_level = warn', 'log_level = info'));
    const child = await startCli(['--config', file]);
    const survivor = await startProxy({ upstream: swift, quota: LIMITS, extraProxyLines: lines });
    try {
      assert.equal((await call('PUT', `${accountUrl(swift, account)}/held`, auth(account))).status, 201);
      for (let i = 0; i < 9; i++) assert.equal((await call('PUT', `${accountUrl(survivor.url, account)}/held/o${i}`, auth(account), 'x')).status, 201);
      // The tenth object, held open on the proxy that will die.
      const upload = rawRequest(child.url, 'PUT', `/v1/AUTH_${account}/held/slow`, [['Host', new URL(child.url).host], ['X-Auth-Token', tokens.get(account)!.token], ['Content-Length', '100'], ['Expect', '100-continue']]);
      assert.equal(await upload.admitted, 'continue');
      upload.send('x'.repeat(10));
      assert.equal((await call('PUT', `${accountUrl(survivor.url, account)}/held/other`, auth(account), 'x')).status, 413, 'the held upload has the last place');
      child.child.kill('SIGKILL');
      upload.destroy();
      const killed = Date.now();
      await until(async () => (await call('PUT', `${accountUrl(survivor.url, account)}/held/other`, auth(account), 'x')).status === 201, 'the place freed', 10_000);
      const freedAfter = Date.now() - killed;
      assert.ok(freedAfter <= 3_000, `freed ${freedAfter} ms after the kill (lease 2 s)`);
      const head = await call('HEAD', `${accountUrl(swift, account)}/held`, auth(account));
      assert.equal(head.headers['x-container-object-count'], '10');
    } finally {
      child.child.kill('SIGKILL');
      await survivor.close();
    }
  });

  test('Redis unreachable: a write that needs a check gets 503 with Retry-After (fail_mode = closed) and nothing is stored; reads go on; /readyz stays 200, /readyz/writes says why', async () => {
    const account = 'rep10';
    const deadPort = await freePort();
    const proxy = await startProxy({ upstream: swift, quota: LIMITS, extraProxyLines: [`ledger = redis://127.0.0.1:${deadPort}`] });
    try {
      assert.equal((await call('PUT', `${accountUrl(swift, account)}/c`, auth(account))).status, 201);
      const refused = await call('PUT', `${accountUrl(proxy.url, account)}/c/o`, auth(account), 'data');
      assert.equal(refused.status, 503, refused.body);
      assert.equal(refused.headers['retry-after'], '3');
      assert.match(refused.body, /usage ledger/);
      assert.equal((await call('HEAD', `${accountUrl(swift, account)}/c/o`, auth(account))).status, 404);
      assert.equal((await call('GET', `${accountUrl(proxy.url, account)}/c`, auth(account))).status, 204);
      // Reads are served: a balancer probing /readyz keeps the proxy; /readyz/writes says writes are refused.
      assert.equal((await call('GET', `${proxy.url}/readyz`)).status, 200);
      const writes = await call('GET', `${proxy.url}/readyz/writes`);
      assert.equal(writes.status, 503);
      assert.match(writes.body, /ledger/);
    } finally {
      await proxy.close();
    }
  });
});

describe('Redis down, then up again without its data, with a write in flight', () => {
  test('no overshoot beyond the write then in flight: readings from before are not trusted, and the ledger starts again from Swift', async () => {
    const swift = await swiftUrl();
    const account = 'rep13';
    const tokens = await logins(swift, [account]);
    const token = tokens.get(account)!.token;
    const auth = { 'x-auth-token': token };
    const redis = await startRedis(); // its own: this test kills it
    const lines = [`ledger = ${redis.url}`, 'ledger_lease = 3'];
    const [a, b] = await Promise.all([0, 1].map(() => startProxy({ upstream: swift, quota: LIMITS, extraProxyLines: lines })));
    const put = (proxy: RunningProxy, name: string) => call('PUT', `${accountUrl(proxy.url, account)}/lost/${name}`, auth, 'x');
    let held: ReturnType<typeof rawRequest> | undefined;
    try {
      assert.equal((await call('PUT', `${accountUrl(swift, account)}/lost`, auth)).status, 201);
      // B reads usage once (0) and counts its 8 writes on top of that reading, in the ledger.
      for (let i = 0; i < 8; i++) assert.equal((await put(b!, `b${i}`)).status, 201);
      // A holds a ninth open.
      held = rawRequest(a!.url, 'PUT', `/v1/AUTH_${account}/lost/held`, [['Host', new URL(a!.url).host], ['X-Auth-Token', token], ['Content-Length', '2'], ['Expect', '100-continue']]);
      assert.equal(await held.admitted, 'continue');

      await redis.kill();
      // Redis away: a write that needs a check is refused (fail_mode = closed), nothing is stored.
      const away = await put(b!, 'while-away');
      assert.equal(away.status, 503, away.body);
      assert.equal(away.headers['retry-after'], '3');
      assert.equal((await call('HEAD', `${accountUrl(swift, account)}/lost/while-away`, auth)).status, 404);
      // Reads are served, and readiness says so: /readyz 200 (a balancer keeps the proxy), /readyz/writes 503.
      assert.equal((await call('GET', `${accountUrl(b!.url, account)}/lost/b0`, auth)).status, 200);
      assert.equal((await call('GET', `${b!.url}/readyz`)).status, 200);
      assert.equal((await call('GET', `${b!.url}/readyz/writes`)).status, 503);
      assert.match((await call('GET', `${b!.url}/metrics`)).body, /^swift_quota_proxy_ledger_up 0$/m);
      await redis.restart();
      for (const proxy of [a!, b!]) await until(async () => (await call('GET', `${proxy.url}/readyz/writes`)).status === 200, 'the proxy reconnected', 10_000);

      // B's readings from before are of the lost generation, and the finished writes counted on top of them are
      // gone: only Swift's 8 (and A's write in flight, once A has put it back) may count.
      const answers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => put(b!, `after${i}`)));
      const admitted = answers.filter((answer) => answer.status === 201).length;
      assert.ok(admitted <= 2, `admitted ${admitted} with 8 stored: ${answers.map((answer) => answer.status).join(' ')}`);
      assert.equal((await held.finish('xy')).status, 201);
      const stored = Number((await call('HEAD', `${accountUrl(swift, account)}/lost`, auth)).headers['x-container-object-count']);
      assert.ok(stored <= 11, `stored ${stored}: at most the limit and the one write in flight when Redis lost its data`);
      assert.ok(stored >= 10, `stored ${stored}: the room there was got used`);
      // And from here the limit holds again, on both.
      assert.equal((await put(a!, 'later-a')).status, 413);
      assert.equal((await put(b!, 'later-b')).status, 413);
    } finally {
      held?.destroy(); // a proxy waits for its open requests before it closes
      await Promise.all([a!.close(), b!.close()]);
      await redis.stop();
    }
  });
});

describe('three proxies, one Redis ledger: events and refusal counters', () => {
  test('each crossing is reported once, whichever proxies see it; refusals are all counted', async () => {
    const swift = await swiftUrl();
    const account = 'rep12';
    const tokens = await logins(swift, [account]);
    const auth = { 'x-auth-token': tokens.get(account)!.token };
    const receiver = await startReceiver();
    const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = events-${randomBytes(4).toString('hex')}:`];
    const queues = await mkdtemp(join(tmpdir(), 'sqp-events-'));
    const proxies = await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        startProxy({
          upstream: swift,
          quota: LIMITS,
          extraProxyLines: lines,
          extraQuotaLines: ['soft_quota = {"object_count": {"default": 5}}', 'hit_flush_interval = 1'],
          extraSections: ['[notify:hook]', 'type = webhook', `url = ${receiver.url}`, `queue_dir = ${join(queues, String(i))}`, ''],
        }),
      ),
    );
    try {
      assert.equal((await call('PUT', `${accountUrl(swift, account)}/watched`, auth)).status, 201);
      const raced: string[] = [];
      for (let round = 0; round < 2; round++) {
        const answers = await Promise.all(
          Array.from({ length: 7 }, (_, i) => call('PUT', `${accountUrl(proxies[i % 3]!.url, account)}/watched/r${round}-${i}`, auth, 'x')),
        );
        raced.push(...answers.map((a) => (a.status === 413 ? `413 ${a.headers['x-quota-exceeded']}` : String(a.status))));
      }
      // 14 offered for 10 places: 10 stored, 4 refused by the quota.
      assert.deepEqual([...raced].sort(), [...Array(10).fill('201'), ...Array(4).fill('413 object_count')], raced.join(' '));
      const head = await call('HEAD', `${accountUrl(swift, account)}/watched`, auth);
      assert.equal(head.headers['x-container-object-count'], '10');
      // Refused more, on every proxy.
      const refused = await Promise.all(Array.from({ length: 9 }, (_, i) => call('PUT', `${accountUrl(proxies[i % 3]!.url, account)}/watched/late${i}`, auth, 'x')));
      assert.deepEqual(refused.map((a) => `${a.status} ${a.headers['x-quota-exceeded']}`), Array(9).fill('413 object_count'));

      const ofType = (type: string) => receiver.received.filter((r) => r.event.type === type && r.event.container === 'watched');
      await eventually(() => ofType('soft_limit_exceeded').length >= 1 && ofType('hard_limit_hit').length >= 1, 'the events');
      await eventually(async () => (await call('HEAD', `${accountUrl(swift, account)}/watched`, auth)).headers['x-container-meta-quota-proxy-hits'] === '13', 'all 13 refusals counted (4 in the race, 9 late)', 10_000);
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // anything late would be here by now
      const all = JSON.stringify(receiver.received.filter((r) => r.event.container === 'watched').map((r) => [r.event.type, r.event.usage, r.event.limit]));
      assert.equal(ofType('soft_limit_exceeded').length, 1, all);
      assert.equal(ofType('hard_limit_hit').length, 1, all);
      assert.equal((await call('HEAD', `${accountUrl(swift, account)}/watched`, auth)).headers['x-container-meta-quota-proxy-hits'], '13');
    } finally {
      await Promise.all(proxies.map((proxy) => proxy.close()));
      await receiver.close();
      await rm(queues, { recursive: true, force: true });
    }
  });
});

describe('workers = 2: one port, two processes, one ledger', () => {
  test('exact across the workers, metrics added up, a killed worker replaced, SIGTERM drains them all', async () => {
    const swift = await swiftUrl();
    const dir = await mkdtemp(join(tmpdir(), 'sqp-workers-'));
    const account = 'rep11';
    const tokens = await logins(swift, [account]);
    const auth = { 'x-auth-token': tokens.get(account)!.token };
    const file = join(dir, 'workers.conf');
    const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = workers-${randomBytes(4).toString('hex')}:`, 'workers = 2'];
    await writeFile(file, proxyConfigText({ upstream: swift, quota: LIMITS, port: await freePort(), extraProxyLines: lines }));
    const started = await startCli(['--config', file]);
    try {
      const workerPids = async () => (await childPids(started.child.pid!)).sort();
      await until(async () => (await workerPids()).length === 2, 'two workers', 20_000);

      assert.equal((await call('PUT', `${accountUrl(swift, account)}/race`, auth)).status, 201);
      const answers = await Promise.all(Array.from({ length: 42 }, (_, i) => call('PUT', `${accountUrl(started.url, account)}/race/o${i}`, auth, 'x')));
      assert.equal(answers.filter((a) => a.status === 201).length, 10, answers.map((a) => a.status).join(' '));
      const head = await call('HEAD', `${accountUrl(swift, account)}/race`, auth);
      assert.equal(head.headers['x-container-object-count'], '10');

      // Whichever worker answers the scrape, it counts every worker's requests.
      const putLine = (text: string) => text.split('\n').filter((line) => line.startsWith('swift_quota_proxy_requests_total{method="PUT"'));
      const puts = (text: string) => putLine(text).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
      for (let i = 0; i < 4; i++) assert.equal(puts((await call('GET', `${started.url}/metrics`)).body), 42);

      const [first] = await workerPids();
      process.kill(first!, 'SIGKILL');
      await until(async () => {
        const pids = await workerPids();
        return pids.length === 2 && !pids.includes(first!);
      }, 'the killed worker replaced', 20_000);
      assert.equal((await call('GET', `${accountUrl(started.url, account)}/race`, auth)).status, 200);

      // SIGHUP to the primary: every worker reloads (none is restarted), and both decide by the new limit.
      await until(async () => (started.output().match(/listening on/g) ?? []).length === 3, 'the new worker listening', 20_000);
      const before = await workerPids();
      await writeFile(file, proxyConfigText({ upstream: swift, quota: { ...LIMITS, object_count: { default: 15 } }, port: Number(new URL(started.url).port), extraProxyLines: lines }));
      started.child.kill('SIGHUP');
      await until(async () => (started.output().match(/SIGHUP: configuration reloaded from [^"]*: quota changed/g) ?? []).length === 2, 'both workers reloaded', 20_000);
      assert.deepEqual(await workerPids(), before, 'no worker restarted');
      const more = await Promise.all(Array.from({ length: 12 }, (_, i) => call('PUT', `${accountUrl(started.url, account)}/race/p${i}`, auth, 'x')));
      assert.equal(more.filter((a) => a.status === 201).length, 5, more.map((a) => a.status).join(' '));
      assert.equal((await call('HEAD', `${accountUrl(swift, account)}/race`, auth)).headers['x-container-object-count'], '15');

      const pids = await workerPids();
      const exited = new Promise<number | null>((resolve) => started.child.once('exit', (code) => resolve(code)));
      started.child.kill('SIGTERM');
      assert.equal(await exited, 0);
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'every worker has exited');
    } finally {
      started.child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The proxy processes (workers) whose parent is `pid`, from /proc (tsx's esbuild service is a child too). */
async function childPids(pid: number): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid && (await readFile(`/proc/${entry}/cmdline`, 'utf8')).includes('src/main.ts')) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
