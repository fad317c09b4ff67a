/**
 * /metrics of running proxies in front of the test Swift, read as Prometheus reads it: `promtool check metrics`
 * after real traffic; counters at 0 before any; the request duration histogram and the client byte counters
 * against what the client did (byte for byte); Swift's reachability; quota checks that could not be made, per
 * fail_mode; the ops listener (ops_bind_port) with one process, its errors, and with workers.
 *
 * Accounts: rep17..rep19 of the test cluster's tempauth users (the replica tests use rep1..rep13).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { proxyConfigText, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login } from '../helpers/http.js';
import { until } from '../helpers/raw-http.js';
import { MAIN, startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { promtool } from '../helpers/promtool.js';

const run = promisify(execFile);
/** The proxy's own answers carry its own transaction ids (trans-id.ts); Swift's answers keep Swift's. */
const OWN_TRANS_ID = /^tx[0-9a-f]{21}-[0-9a-f]{10}-quota-proxy$/;
const LIMITS = { container_count: { default: 2 }, object_count: { default: 100 }, container_usage: { default: 64 * 1024 * 1024 } };

/** The value of the sample `series` (name and labels as the proxy writes them); undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The sum of every sample of a metric whose labels include `labels` (e.g. 'method="PUT"'). */
function total(text: string, name: string, labels = ''): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.slice(0, l.indexOf('}')).includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A scrape of `url`'s /metrics; one not answered within 15 s fails the test (it would hang it otherwise). */
async function scrape(url: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to GET ${url}/metrics within 15 s`)), 15_000);
  });
  try {
    const answer = await Promise.race([call('GET', `${url}/metrics`), late]);
    assert.equal(answer.status, 200, answer.body);
    return answer.body;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * GET on a connection of its own: the status, 'reset' if the connection was closed without an answer, or 'hung'
 * if nothing came back within `timeoutMs`.
 */
function freshGet(url: string, timeoutMs: number): Promise<number | 'reset' | 'hung'> {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode!));
      response.on('error', () => resolve('reset'));
    });
    request.on('timeout', () => {
      request.destroy();
      resolve('hung');
    });
    request.on('error', () => resolve('reset'));
  });
}

async function promtoolClean(text: string): Promise<void> {
  const checked = await promtool(['check', 'metrics'], { stdin: text });
  assert.equal(checked.code, 0, `promtool check metrics:\n${checked.output}`);
}

const opsUrl = (proxy: RunningProxy) => `http://127.0.0.1:${(proxy.ops!.server.address() as AddressInfo).port}`;

describe('metrics of a running proxy', () => {
  let swift: string;
  let proxy: RunningProxy;
  let opsProxy: RunningProxy;

  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, quota: LIMITS });
    opsProxy = await startProxy({ upstream: swift, quota: LIMITS, extraProxyLines: ['ops_bind_port = 0'] });
  });
  after(async () => {
    await proxy.close();
    await opsProxy.close();
  });

  test('before any request: counters at 0 for their label sets, Swift up, build_info', async () => {
    const text = await scrape(proxy.url);
    assert.equal(sample(text, 'swift_quota_proxy_requests_total{method="PUT",status_class="5xx"}'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_requests_total{method="GET",status_class="2xx"}'), 0, 'the scrape counts once answered');
    assert.equal(sample(text, 'swift_quota_proxy_quota_rejections_total{kind="container_count",level="default"}'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_upstream_errors_total{status="503"}'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_check_failures_total{cause="swift",action="refused"}'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_upstream_up'), 1);
    assert.match(text, /^swift_quota_proxy_build_info\{version="[^"]+",revision="[^"]+",nodejs_version="v\d+\.\d+\.\d+"\} 1$/m);
    await promtoolClean(text);
  });

  test('after traffic (logins, writes, a refusal, reads, a 404): promtool check metrics clean, and the counts are those requests', async () => {
    const before = await scrape(proxy.url);
    const user = await login(proxy.url, 'rep17:admin', 'rep17pass');
    const auth = { 'x-auth-token': user.token };
    const base = accountUrl(proxy.url, 'rep17');
    for (const c of ['m1', 'm2']) assert.ok([201, 202].includes((await call('PUT', `${base}/${c}`, auth)).status));
    assert.equal((await call('PUT', `${base}/m3`, auth)).status, 403, 'over container_count');
    assert.equal((await call('PUT', `${base}/m1/o`, auth, Buffer.alloc(100_000, 7))).status, 201);
    assert.equal((await call('GET', `${base}/m1/o`, auth)).status, 200);
    assert.equal((await call('HEAD', `${base}/m1/o`, auth)).status, 200);
    assert.equal((await call('GET', `${base}/m1/missing`, auth)).status, 404);
    const text = await scrape(proxy.url);
    await promtoolClean(text);

    const grew = (series: string) => sample(text, series)! - (sample(before, series) ?? 0);
    assert.equal(grew('swift_quota_proxy_requests_total{method="PUT",status_class="2xx"}'), 3);
    assert.equal(grew('swift_quota_proxy_requests_total{method="PUT",status_class="4xx"}'), 1);
    assert.equal(grew('swift_quota_proxy_requests_total{method="HEAD",status_class="2xx"}'), 1);
    assert.equal(grew('swift_quota_proxy_requests_total{method="GET",status_class="4xx"}'), 1);
    assert.equal(grew('swift_quota_proxy_quota_rejections_total{kind="container_count",level="default"}'), 1);
    // The histogram counts the same requests as the counter, each in a bucket.
    for (const labels of ['method="PUT",status_class="2xx"', 'method="PUT",status_class="4xx"', 'method="GET",status_class="2xx"', 'method="HEAD",status_class="2xx"']) {
      const count = sample(text, `swift_quota_proxy_request_duration_seconds_count{${labels}}`);
      assert.equal(count, sample(text, `swift_quota_proxy_requests_total{${labels}}`), labels);
      assert.equal(sample(text, `swift_quota_proxy_request_duration_seconds_bucket{${labels},le="+Inf"}`), count, labels);
      assert.ok(sample(text, `swift_quota_proxy_request_duration_seconds_sum{${labels}}`)! > 0, labels);
    }
  });

  test('a slow upload: its reservation ages while it lasts, its duration lands above 0.25 s, its bytes are counted as they arrive', async () => {
    const user = await login(opsProxy.url, 'rep18:admin', 'rep18pass');
    const base = `/v1/AUTH_rep18`;
    assert.ok([201, 202].includes((await call('PUT', `${opsProxy.url}${base}/slow`, { 'x-auth-token': user.token })).status));
    await until(async () => sample(await scrape(opsUrl(opsProxy)), 'swift_quota_proxy_reservations_in_flight') === 0, 'no write in flight');
    const before = await scrape(opsUrl(opsProxy));
    const above = (text: string) =>
      sample(text, 'swift_quota_proxy_request_duration_seconds_count{method="PUT",status_class="2xx"}')! -
      sample(text, 'swift_quota_proxy_request_duration_seconds_bucket{method="PUT",status_class="2xx",le="0.25"}')!;
    const received = (text: string) => sample(text, 'swift_quota_proxy_client_received_bytes_total')!;
    const sent = (text: string) => sample(text, 'swift_quota_proxy_client_sent_bytes_total')!;

    // Over a socket of the test's own, so that every byte each way is known.
    const body = Buffer.alloc(256 * 1024, 'b');
    const head = Buffer.from([`PUT ${base}/slow/object HTTP/1.1`, 'Host: 127.0.0.1', `X-Auth-Token: ${user.token}`, `Content-Length: ${body.length}`, 'Connection: close', '', ''].join('\r\n'), 'latin1');
    const socket = net.connect((opsProxy.app.server.address() as AddressInfo).port, '127.0.0.1');
    const answerBytes: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => answerBytes.push(chunk));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(head);
    socket.write(body.subarray(0, 1000));
    // The bytes of a connection still open are counted when scraped.
    await until(async () => received(await scrape(opsUrl(opsProxy))) - received(before) === head.length + 1000, 'the first bytes counted');
    await delay(400);
    const during = await scrape(opsUrl(opsProxy));
    assert.equal(sample(during, 'swift_quota_proxy_reservations_in_flight'), 1);
    const age = sample(during, 'swift_quota_proxy_reservation_oldest_age_seconds')!;
    assert.ok(age >= 0.3 && age < 60, `oldest reservation ${age} s`);
    socket.write(body.subarray(1000));
    await closed;
    const answer = Buffer.concat(answerBytes);
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 201 /);

    // Connection: close: once the proxy has closed it, its counts are final and exact.
    const answered = answer.length;
    await until(async () => sent(await scrape(opsUrl(opsProxy))) - sent(before) === answered, 'the answer\'s bytes counted');
    const afterwards = await scrape(opsUrl(opsProxy));
    assert.equal(received(afterwards) - received(before), head.length + body.length);
    assert.equal(sample(afterwards, 'swift_quota_proxy_reservations_in_flight'), 0);
    assert.equal(sample(afterwards, 'swift_quota_proxy_reservation_oldest_age_seconds'), 0);
    assert.equal(above(afterwards) - above(before), 1, 'the slow upload is above the 0.25 s bound');
    await promtoolClean(afterwards);
  });

  test('Swift unreachable: upstream_up 0; writes refused (fail_mode closed) or let through (open) are counted as checks that could not be made', async () => {
    const closed = await startProxy({ upstream: 'http://127.0.0.1:1' });
    const open = await startProxy({ upstream: 'http://127.0.0.1:1', failMode: 'open' });
    try {
      const auth = { 'x-auth-token': 'AUTH_tk0123456789abcdef' };
      const refused = await call('PUT', `${accountUrl(closed.url, 'rep19')}/c`, auth);
      assert.equal(refused.status, 503);
      assert.ok(refused.headers['retry-after']);
      const closedText = await scrape(closed.url);
      assert.equal(sample(closedText, 'swift_quota_proxy_upstream_up'), 0);
      assert.equal(sample(closedText, 'swift_quota_proxy_check_failures_total{cause="swift",action="refused"}'), 1);
      assert.equal(sample(closedText, 'swift_quota_proxy_check_failures_total{cause="swift",action="admitted"}'), 0);
      assert.equal(total(closedText, 'swift_quota_proxy_upstream_errors_total'), 0, 'refused by the proxy, never sent to Swift');
      await promtoolClean(closedText);

      assert.equal((await call('PUT', `${accountUrl(open.url, 'rep19')}/c`, auth)).status, 503);
      const openText = await scrape(open.url);
      assert.equal(sample(openText, 'swift_quota_proxy_check_failures_total{cause="swift",action="admitted"}'), 1);
      assert.equal(sample(openText, 'swift_quota_proxy_check_failures_total{cause="swift",action="refused"}'), 0);
      assert.equal(sample(openText, 'swift_quota_proxy_upstream_errors_total{status="503"}'), 1, 'let through, and Swift could not be reached');
    } finally {
      await closed.close();
      await open.close();
    }
  });

  describe('ops listener (ops_bind_port)', () => {
    test('/metrics, /healthz and /readyz are answered there; on the client port /metrics and /readyz are Swift\'s paths like any other, /healthz stays', async () => {
      const ops = opsUrl(opsProxy);
      assert.notEqual(ops, opsProxy.url);
      assert.equal((await call('GET', `${ops}/healthz`)).body, 'ok\n');
      assert.equal((await call('GET', `${ops}/readyz`)).body, 'ready\n');
      assert.match(await scrape(ops), /^swift_quota_proxy_requests_total\{/m);
      assert.equal((await call('POST', `${ops}/metrics`)).status, 405);
      for (const path of ['/metrics', '/readyz']) {
        const [proxied, direct] = await Promise.all([call('GET', `${opsProxy.url}${path}`), call('GET', `${swift}${path}`)]);
        assert.equal(proxied.status, direct.status, path);
        assert.ok(proxied.headers['x-trans-id'], `${path} answered by Swift`);
        assert.doesNotMatch(proxied.headers['x-trans-id']!, OWN_TRANS_ID, `${path} answered by Swift, not the proxy`);
      }
      // Liveness of the port that serves clients (the image's HEALTHCHECK asks it), and nothing more.
      const health = await call('GET', `${opsProxy.url}/healthz`);
      assert.equal(health.body, 'ok\n');
      assert.match(health.headers['x-trans-id'] ?? '', OWN_TRANS_ID, 'the proxy\'s own answer');
      assert.equal((await call('DELETE', `${opsProxy.url}/healthz`)).status, 405);
      // The report stays on the client port, still the proxy's own.
      assert.equal((await call('POST', `${opsProxy.url}/quota/report`)).status, 405);
    });

    test('its requests are not the clients\': scrapes are not counted in the request metrics', async () => {
      const ops = opsUrl(opsProxy);
      const first = await scrape(ops);
      const second = await scrape(ops);
      assert.equal(total(second, 'swift_quota_proxy_requests_total', 'method="GET"'), total(first, 'swift_quota_proxy_requests_total', 'method="GET"'));
    });

    test('closes with the proxy', async () => {
      const other = await startProxy({ upstream: swift, extraProxyLines: ['ops_bind_port = 0'] });
      const port = (other.ops!.server.address() as AddressInfo).port;
      assert.equal((await call('GET', `http://127.0.0.1:${port}/healthz`)).status, 200);
      await other.close();
      await assert.rejects(call('GET', `http://127.0.0.1:${port}/healthz`), /ECONNREFUSED/);
    });

    test('a port already taken stops start-up with one line naming it (exit 2)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sqp-ops-'));
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const { port } = taken.address() as AddressInfo;
      try {
        const file = join(dir, 'taken.conf');
        await writeFile(file, proxyConfigText({ upstream: swift, port: await freePort(), extraProxyLines: [`ops_bind_port = ${port}`] }));
        const failed = await run(process.execPath, [...MAIN, '--config', file], { timeout: 30_000 }).then(
          () => assert.fail('should have exited non-zero'),
          (error: { code: number; stderr: string }) => error,
        );
        assert.equal(failed.code, 2, failed.stderr);
        assert.match(failed.stderr, new RegExp(`swift-quota-proxy: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
        assert.doesNotMatch(failed.stderr, /\n\s+at /, 'no stack trace');
      } finally {
        taken.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    /** The CLI with `workers = 2` and an ops port, on the run's Redis ledger; `close` ends it and removes its files. */
    async function startWorkers(name: string, extraLines: string[] = []) {
      const dir = await mkdtemp(join(tmpdir(), `sqp-${name}-`));
      const opsPort = await freePort();
      const file = join(dir, 'workers.conf');
      const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = ${name}-${process.pid}:`, 'workers = 2', `ops_bind_port = ${opsPort}`, ...extraLines];
      await writeFile(file, proxyConfigText({ upstream: swift, quota: LIMITS, port: await freePort(), extraProxyLines: lines }));
      const started = await startCli(['--config', file]);
      const close = async () => {
        // A primary that has ended already (a failure of the test) has no exit to wait for.
        if (started.child.exitCode === null && started.child.signalCode === null) {
          const exited = new Promise((resolve) => started.child.once('exit', resolve));
          started.child.kill('SIGTERM');
          const stuck = setTimeout(() => started.child.kill('SIGKILL'), 20_000);
          await exited;
          clearTimeout(stuck);
        }
        await rm(dir, { recursive: true, force: true });
      };
      return { started, ops: `http://127.0.0.1:${opsPort}`, close };
    }

    test('with workers = 2: one ops port, every worker\'s requests added up, promtool check metrics clean', async () => {
      const { started, ops, close } = await startWorkers('ops-workers');
      try {
        await until(async () => (await call('GET', `${ops}/healthz`).catch(() => ({ status: 0 }))).status === 200, 'the ops port', 20_000);
        const heads = await Promise.all(Array.from({ length: 12 }, () => call('HEAD', `${started.url}/info`)));
        assert.ok(heads.every((h) => h.status === 200), heads.map((h) => h.status).join(' '));
        // Whichever worker takes the scrape, it answers for both.
        for (let i = 0; i < 3; i++) {
          const text = await scrape(ops);
          assert.equal(sample(text, 'swift_quota_proxy_requests_total{method="HEAD",status_class="2xx"}'), 12);
          assert.equal(sample(text, 'swift_quota_proxy_request_duration_seconds_count{method="HEAD",status_class="2xx"}'), 12);
          assert.equal(sample(text, 'swift_quota_proxy_upstream_up'), 1);
          await promtoolClean(text);
        }
        const clientPortId = (await call('GET', `${started.url}/metrics`)).headers['x-trans-id'];
        assert.notEqual(clientPortId, undefined, 'not on the client port');
        assert.doesNotMatch(clientPortId!, OWN_TRANS_ID, 'not on the client port: Swift answers it');
      } finally {
        await close();
      }
    });

    test('with workers = 2: while a worker is started (again, after a crash), scrapes are answered for the workers that run', async () => {
      // A worker is in the cluster from its fork, but answers for its metrics only once it has loaded: a scrape
      // that waited for it would fail after seconds (Prometheus: the target down) on every start and restart.
      const { started, ops, close } = await startWorkers('ops-restart');
      const listeningPids = () => [...started.output().matchAll(/"pid":(\d+),[^\n]*listening on /g)].map((m) => Number(m[1]));
      try {
        await until(() => listeningPids().length === 2, 'both workers listening', 30_000);
        const heads = await Promise.all(Array.from({ length: 12 }, () => call('HEAD', `${started.url}/info`)));
        assert.ok(heads.every((h) => h.status === 200), heads.map((h) => h.status).join(' '));
        assert.equal(sample(await scrape(ops), 'swift_quota_proxy_requests_total{method="HEAD",status_class="2xx"}'), 12);

        process.kill(listeningPids()[0]!, 'SIGKILL');
        // Connections opened as the worker dies: each is answered by the worker that lives, or at worst reset by
        // the one that died; none is left open unanswered. (With node:cluster's round robin, a connection the
        // primary was handing to the dying worker stayed open until the client gave up: a CI run's scrape hung.)
        const meanwhile = Promise.all(Array.from({ length: 40 }, (_, i) => delay(i * 5).then(() => freshGet(`${started.url}/info`, 10_000))));
        const statuses: (number | string)[] = [];
        let afterRestart = 0;
        const deadline = Date.now() + 30_000;
        while (afterRestart < 3 && Date.now() < deadline) {
          // A new connection each time: one kept alive to the worker that was killed would be reset with it.
          const answer = await freshGet(`${ops}/metrics`, 10_000);
          statuses.push(answer);
          if (answer !== 200) break;
          if (listeningPids().length === 3) afterRestart++;
          await delay(50);
        }
        const answered = await meanwhile;
        assert.deepEqual(answered.filter((outcome) => outcome === 'hung'), [], `requests while a worker died: ${answered.join(' ')}`);
        assert.equal(listeningPids().length, 3, `no worker started again:\n${started.output()}`);
        assert.ok(statuses.length > 3 && statuses.every((status) => status === 200), `scrapes while a worker started: ${statuses.join(' ')}`);
        // The one that ended is counted as the primary last read it (the scrape after the requests): the sum
        // does not go down, which Prometheus would take for a counter reset. The new worker counts from 0.
        const text = await scrape(ops);
        assert.equal(sample(text, 'swift_quota_proxy_requests_total{method="HEAD",status_class="2xx"}'), 12, 'the requests of the worker that crashed');
        assert.equal(sample(text, 'swift_quota_proxy_request_duration_seconds_count{method="HEAD",status_class="2xx"}'), 12);
        assert.equal(sample(text, 'swift_quota_proxy_upstream_up'), 1);
        await promtoolClean(text);
      } finally {
        await close();
      }
    });

    test('with workers = 2: a rolling restart (SIGUSR1) keeps every request counted, added to by the new workers', async () => {
      // Each retired worker sends its final counts to the primary before it exits: the sums neither drop (a
      // counter reset to Prometheus, +N that never happened in rate()) nor lose the requests since the last scrape.
      const { started, ops, close } = await startWorkers('ops-roll', ['drain_delay = 0', 'drain_timeout = 5']);
      const HEAD_2XX = 'swift_quota_proxy_requests_total{method="HEAD",status_class="2xx"}';
      const durations = (text: string) => sample(text, 'swift_quota_proxy_request_duration_seconds_count{method="HEAD",status_class="2xx"}');
      const heads = async (count: number) => {
        const answers = await Promise.all(Array.from({ length: count }, () => call('HEAD', `${started.url}/info`)));
        assert.ok(answers.every((h) => h.status === 200), answers.map((h) => h.status).join(' '));
      };
      try {
        await until(async () => (await call('GET', `${ops}/healthz`).catch(() => ({ status: 0 }))).status === 200, 'the ops port', 20_000);
        const listeningPids = () => [...started.output().matchAll(/"pid":(\d+),[^\n]*listening on /g)].map((m) => Number(m[1]));
        await until(() => listeningPids().length === 2, 'both workers listening', 30_000);
        const oldPids = listeningPids();
        await heads(20);
        assert.equal(sample(await scrape(ops), HEAD_2XX), 20);
        // Not scraped since: these are in the workers' final counts only.
        await heads(10);
        started.child.kill('SIGUSR1');
        await until(() => /rolling restart done: 2 workers replaced/.test(started.output()), 'the rolling restart', 60_000);
        // The roll moves on once a worker's listeners are closed; its exit follows its drain.
        await until(() => oldPids.every((pid) => !alive(pid)), 'the old workers\' exit', 20_000);
        const text = await scrape(ops);
        process.stdout.write(`# after a rolling restart of 2 workers: ${sample(text, HEAD_2XX)} of 30 HEAD requests counted\n`);
        assert.equal(sample(text, HEAD_2XX), 30, 'every request before the roll');
        assert.equal(durations(text), 30);
        await promtoolClean(text);
        await heads(5);
        const later = await scrape(ops);
        assert.equal(sample(later, HEAD_2XX), 35, 'the new workers add theirs');
        assert.equal(durations(later), 35);
      } finally {
        await close();
      }
    });
  });
});
