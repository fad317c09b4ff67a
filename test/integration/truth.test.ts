/**
 * Events and numbers that tell the truth (issue 23, items 6 and 7), against the test Swift (and its Redis for
 * the workers): a level change re-evaluates soft-limit episodes against the new level's limits; the hit counts
 * of the CLI report, the HTTP report and the refusal metric agree (after the stated flush); with workers, the
 * per-process metrics are each worker's own, not a sum; /readyz on the client port names no internal address.
 *
 * Accounts: ops51..ops56 of the test cluster's tempauth users.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { proxyConfigText, startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login, type Login } from '../helpers/http.js';
import { eventually } from '../helpers/receiver.js';
import { until } from '../helpers/raw-http.js';
import { startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const run = promisify(execFile);
const provider = fileURLToPath(new URL('../fixtures/providers/recording.mjs', import.meta.url));
const fileRecorder = fileURLToPath(new URL('../fixtures/providers/file-recording.mjs', import.meta.url));

/** default: soft object_count 8 of 10; L2: room for everything here; L3: a soft object_count (6) under default's. */
const LEVELS = {
  container_count: { default: 5, L2: 50, L3: 20 },
  object_count: { default: 10, L2: 100, L3: 20 },
  container_usage: { default: 100_000, L2: 10_000_000, L3: 10_000_000 },
};
const SOFT_LINES = ['soft_quota = {"object_count": {"default": 8, "L2": 60, "L3": 6}}', 'soft_ratio = 0.6'];
const RECORDER = ['[notify:recorder]', 'type = module', `module = ${provider}`, ''];

interface QuotaEventJson {
  type: string;
  account: string;
  container: string | null;
  kind: string;
  level: string;
  limit: number;
  usage: number;
  grace_expires: string | null;
}

const eventsOf = async (account: string) =>
  ((await import(provider)) as { events: QuotaEventJson[] }).events.filter((e) => e.account === `AUTH_${account}`);

let swift: string;
const logins = new Map<string, Login>();

async function as(base: string, user: string, key: string): Promise<Login> {
  if (!logins.has(`${base} ${user}`)) logins.set(`${base} ${user}`, await login(base, user, key));
  return logins.get(`${base} ${user}`)!;
}

function options(lines: string[]): ProxyOptions {
  return { upstream: swift, quota: LEVELS, extraQuotaLines: [...SOFT_LINES, ...lines], extraSections: RECORDER };
}

async function put(proxy: { url: string }, account: string, path: string, body: string | NodeJS.ReadableStream = 'x') {
  const who = await as(proxy.url, `${account}:admin`, `${account}pass`);
  return call('PUT', `${accountUrl(proxy.url, account)}${path}`, { 'x-auth-token': who.token }, body);
}

async function fill(proxy: { url: string }, account: string, container: string, count: number): Promise<void> {
  assert.equal((await put(proxy, account, `/${container}`, '')).status, 201);
  for (let i = 0; i < count; i++) assert.equal((await put(proxy, account, `/${container}/o${i}`)).status, 201);
}

async function setLevel(proxy: { url: string }, account: string, level: string): Promise<void> {
  const reseller = await as(proxy.url, 'reseller:reseller', 'reseller');
  assert.equal((await call('POST', accountUrl(proxy.url, account), { 'x-auth-token': reseller.token, 'x-account-meta-quota': level })).status, 204);
}

before(async () => {
  swift = await swiftUrl();
});

describe('a level change re-evaluates soft-limit episodes (grace period 2 s)', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await startProxy(options(['grace_period = 2s']));
  });
  after(async () => {
    await proxy.close();
  });

  test('moved to a level whose soft limit it is under: the episode ends, and no grace_expired for the old level', async () => {
    await fill(proxy, 'ops51', 'c', 9);
    await eventually(async () => (await eventsOf('ops51')).length === 1, 'soft_limit_exceeded under default');
    const crossed = Date.now();
    await setLevel(proxy, 'ops51', 'L2');
    // At the change, not when the old level's grace period would have ended (2 s after the crossing).
    await eventually(async () => (await eventsOf('ops51')).length === 2, 'back_below_soft at the level change', 5_000);
    assert.ok(Date.now() - crossed < 1_500, `back below soft ${Date.now() - crossed} ms after the crossing`);
    // No request meanwhile: past the old grace period, the proxy's own look at grace periods (every 0.5 s) finds nothing.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const seen = (await eventsOf('ops51')).map((e) => [e.type, e.level, e.limit, e.usage]);
    assert.deepEqual(seen, [
      ['soft_limit_exceeded', 'default', 8, 9],
      ['back_below_soft', 'L2', 60, 9],
    ]);
    assert.equal((await put(proxy, 'ops51', '/c/more')).status, 201);
  });

  test('moved to a level whose soft limit it is still over: the episode goes on from when it began, told with the new limits', async () => {
    await fill(proxy, 'ops52', 'c', 9);
    await eventually(async () => (await eventsOf('ops52')).length === 1, 'soft_limit_exceeded under default');
    const began = (await eventsOf('ops52'))[0]!;
    await setLevel(proxy, 'ops52', 'L3');
    await eventually(async () => (await eventsOf('ops52')).some((e) => e.type === 'grace_expired'), 'grace_expired', 6_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // nothing more comes
    const events = await eventsOf('ops52');
    assert.deepEqual(events.map((e) => [e.type, e.level, e.limit, e.usage]), [
      ['soft_limit_exceeded', 'default', 8, 9],
      ['grace_expired', 'L3', 6, 9],
    ]);
    assert.equal(events[1]!.grace_expires, began.grace_expires, 'the grace period the tenant was promised, not a new one');
    const refused = await put(proxy, 'ops52', '/c/more');
    assert.equal(refused.status, 413);
    assert.equal(refused.headers['x-quota-limit'], '6');
  });
});

/** The sum of every sample of `name` (any labels). */
function metricTotal(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** An account's hits as the CLI report and the HTTP report (as the reseller) give them, asked at once. */
async function reports(configFile: string, url: string, account: string): Promise<{ cli: number; http: number; containers: number }> {
  const reseller = await as(url, 'reseller:reseller', 'reseller');
  const [cli, http] = await Promise.all([
    run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'report', '--config', configFile, '--account', account, '--json']).then((r) => r.stdout),
    call('GET', `${url}/quota/report?account=${account}`, { 'x-auth-token': reseller.token }).then((r) => r.body),
  ]);
  type Report = { accounts: Array<{ hits: number; container_list: Array<{ hits: number }> }> };
  const [fromCli, fromHttp] = [JSON.parse(cli) as Report, JSON.parse(http) as Report];
  return {
    cli: fromCli.accounts[0]!.hits,
    http: fromHttp.accounts[0]!.hits,
    containers: fromCli.accounts[0]!.container_list.reduce((sum, c) => sum + c.hits, 0),
  };
}

describe('hit counts: CLI report, HTTP report and the refusal metric', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sqp-truth-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  /** The proxy's own config file, for the CLI report. */
  async function reportsOf(proxy: RunningProxy, account: string) {
    const file = join(dir, 'proxy-server.conf');
    await writeFile(file, proxy.configText);
    return reports(file, proxy.url, account);
  }

  test('read from the same place; after a flush, every refusal the metric counted is in the account\'s hits', async () => {
    // A flush interval longer than the test: nothing is written to Swift until the proxy closes.
    let proxy = await startProxy(options(['hit_flush_interval = 600']));
    const refusedBefore = metricTotal(await proxy.metrics.registry.metrics(), 'swift_quota_proxy_quota_rejections_total');
    try {
      assert.equal((await put(proxy, 'ops53', '/full', '')).status, 201);
      for (let i = 0; i < 3; i++) assert.equal((await put(proxy, 'ops53', `/full/big${i}`, 'x'.repeat(100_001))).status, 413);
      // A chunked upload is refused as it streams (the limit is learnt on the way).
      async function* chunks() {
        for (let sent = 0; sent < 150_000; sent += 1000) yield Buffer.alloc(1000, 'c');
      }
      assert.equal((await put(proxy, 'ops53', '/full/streamed', Readable.from(chunks()))).status, 413);
      const refused = metricTotal(await proxy.metrics.registry.metrics(), 'swift_quota_proxy_quota_rejections_total') - refusedBefore;
      assert.equal(refused, 4);
      const unflushed = await reportsOf(proxy, 'ops53');
      assert.equal(unflushed.http, unflushed.cli, `at the same moment, HTTP ${unflushed.http} and CLI ${unflushed.cli}`);

      await proxy.close(); // writes what is pending
      proxy = await startProxy(options(['hit_flush_interval = 1']));
      const flushed = await reportsOf(proxy, 'ops53');
      assert.deepEqual(flushed, { cli: refused, http: refused, containers: refused }, 'account and container hits: every refusal');

      // With the interval at 1 s, Swift has a new refusal within about a second, and both reports with it.
      assert.equal((await put(proxy, 'ops53', '/full/again', 'x'.repeat(100_001))).status, 413);
      const counted = Date.now();
      const reseller = await as(swift, 'reseller:reseller', 'reseller');
      const inSwift = async () => (await call('HEAD', accountUrl(swift, 'ops53'), { 'x-auth-token': reseller.token })).headers['x-account-meta-quota-proxy-hits'];
      await eventually(async () => (await inSwift()) === String(refused + 1), 'the new refusal in Swift', 5_000);
      assert.ok(Date.now() - counted < 2_500, `written ${Date.now() - counted} ms after the refusal`);
      assert.deepEqual(await reportsOf(proxy, 'ops53'), { cli: refused + 1, http: refused + 1, containers: refused + 1 });
    } finally {
      await proxy.close();
    }
  });
});

describe('metrics with workers, and /readyz on the client port', () => {
  test('workers = 2: per-process metrics per worker; a level change seen by both; hit counts agree after a flush', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sqp-truth-workers-'));
    const opsPort = await freePort();
    const file = join(dir, 'workers.conf');
    const eventsFile = join(dir, 'events.jsonl');
    const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = truth-${process.pid}:`, 'workers = 2', `ops_bind_port = ${opsPort}`];
    await writeFile(
      file,
      proxyConfigText({
        upstream: swift,
        quota: LEVELS,
        port: await freePort(),
        extraProxyLines: lines,
        extraQuotaLines: [...SOFT_LINES, 'grace_period = 2s', 'hit_flush_interval = 1'],
        extraSections: ['[notify:file]', 'type = module', `module = ${fileRecorder}`, `file = ${eventsFile}`, ''],
      }),
    );
    const started = await startCli(['--config', file]);
    const ops = `http://127.0.0.1:${opsPort}`;
    try {
      const listening = () => [...started.output().matchAll(/"pid":(\d+),[^\n]*listening on /g)].map((m) => Number(m[1]));
      await until(() => listening().length === 2, 'both workers listening', 30_000);
      const text = (await call('GET', `${ops}/metrics`)).body;
      // Node raises its open-files limit to the hard limit at start: every worker has the same as this process.
      const limit = Number(/^Max open files\s+(\d+)/m.exec(await readFile('/proc/self/limits', 'utf8'))![1]);
      const maxFds = text.split('\n').filter((l) => l.startsWith('process_max_fds'));
      assert.equal(maxFds.length, 2, maxFds.join('\n'));
      for (const line of maxFds) {
        assert.match(line, /^process_max_fds\{worker="\d+"\} /);
        assert.equal(Number(line.slice(line.lastIndexOf(' ') + 1)), limit, line);
      }
      const starts = text.split('\n').filter((l) => l.startsWith('process_start_time_seconds'));
      assert.equal(starts.length, 2, `process_start_time_seconds, one per worker:\n${starts.join('\n')}`);
      for (const line of starts) assert.ok(Math.abs(Number(line.slice(line.lastIndexOf(' ') + 1)) - Date.now() / 1000) < 120, line);
      // The proxy's own series stay one for the whole proxy.
      assert.equal(text.split('\n').filter((l) => l.startsWith('swift_quota_proxy_upstream_up')).length, 1);

      // Requests go to both workers (round robin): both watch the container, one of them takes the level change.
      const proxy = { url: started.url };
      await fill(proxy, 'ops55', 'c', 9);
      const recorded = async () =>
        (await readFile(eventsFile, 'utf8').catch(() => ''))
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as QuotaEventJson)
          .filter((e) => e.account === 'AUTH_ops55');
      await eventually(async () => (await recorded()).length === 1, 'soft_limit_exceeded under default', 5_000);
      await setLevel(proxy, 'ops55', 'L2');
      await new Promise((resolve) => setTimeout(resolve, 3_500)); // past the old level's grace period
      assert.deepEqual((await recorded()).map((e) => [e.type, e.level, e.limit]), [
        ['soft_limit_exceeded', 'default', 8],
        ['back_below_soft', 'L2', 60],
      ]);

      // Each worker counts its own refusals and writes them every hit_flush_interval (1 s): then the CLI, the
      // HTTP report (whichever worker answers) and the metric (every worker's, added up) say the same.
      assert.equal((await put(proxy, 'ops56', '/full', '')).status, 201);
      for (let i = 0; i < 6; i++) assert.equal((await put(proxy, 'ops56', `/full/big${i}`, 'x'.repeat(100_001))).status, 413);
      const refused = metricTotal((await call('GET', `${ops}/metrics`)).body, 'swift_quota_proxy_quota_rejections_total');
      assert.equal(refused, 6);
      // Two workers writing one counter take turns (a shared lock): one may write at the next interval.
      const counted = Date.now();
      const reseller = await as(swift, 'reseller:reseller', 'reseller');
      // The account's counter and the container's are written apart (each scope's turn at the lock): both, then.
      const hits = async (path: string, type: 'account' | 'container') => (await call('HEAD', `${accountUrl(swift, 'ops56')}${path}`, { 'x-auth-token': reseller.token })).headers[`x-${type}-meta-quota-proxy-hits`];
      const inSwift = async () => [await hits('', 'account'), await hits('/full', 'container')].join(' ');
      await eventually(async () => (await inSwift()) === '6 6', 'every worker\'s refusals in Swift, in the account and in the container', 10_000);
      assert.ok(Date.now() - counted < 4_000, `written ${Date.now() - counted} ms after the last refusal`);
      assert.deepEqual(await reports(file, proxy.url, 'ops56'), { cli: 6, http: 6, containers: 6 });
    } finally {
      started.child.kill('SIGTERM');
      await new Promise((resolve) => started.child.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('Swift down: /readyz on the client port says not ready, naming no internal address; the ops port says why', async () => {
    const deadPort = await freePort();
    const upstream = `http://127.0.0.1:${deadPort}`;
    const publicOnly = await startProxy({ upstream, quota: LEVELS });
    try {
      const answer = await call('GET', `${publicOnly.url}/readyz`);
      assert.equal(answer.status, 503);
      assert.doesNotMatch(answer.body, new RegExp(`127\\.0\\.0\\.1|${deadPort}|ECONNREFUSED`), answer.body);
      assert.match(answer.body, /^not ready: upstream\n$/);
    } finally {
      await publicOnly.close();
    }
    const opsPort = await freePort();
    const withOps = await startProxy({ upstream, quota: LEVELS, extraProxyLines: [`ops_bind_port = ${opsPort}`] });
    try {
      const internal = await call('GET', `http://127.0.0.1:${opsPort}/readyz`);
      assert.equal(internal.status, 503);
      assert.match(internal.body, /Swift cannot be reached/, 'the ops port is internal: it says what is wrong');
    } finally {
      await withOps.close();
    }
  });
});
