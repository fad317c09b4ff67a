/**
 * Swift's own proxy-server.conf, as Debian and Swift ship it, with the proxy's sections added (issue 23, item 2):
 * --check-config says ok, and the proxy starts on its own port (not Swift's [DEFAULT] one) and answers; what
 * start-up would refuse, --check-config refuses too. The samples are copied at test time: Debian's from the
 * installed swift-proxy package, Swift's from the source the functional tests fetch (test/swift/functional.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureSwiftInstalled, tempauthConfigLines } from '../swift/cluster.js';
import { ensureFunctionalSuite } from '../swift/functional.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login } from '../helpers/http.js';
import { MAIN, startCli } from '../helpers/cli.js';

const run = promisify(execFile);
const DEBIAN_SAMPLE = '/usr/share/doc/swift-proxy/examples/proxy-server.conf';
const ACCOUNT = 'ops11';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<Outcome> {
  return run(process.execPath, [...MAIN, ...args], { timeout: 30_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** 1-based line of the first line of `text` equal to `wanted` at or after `from`. */
function lineOf(text: string, wanted: string, from = 1): number {
  const index = text.split('\n').findIndex((line, i) => i + 1 >= from && line === wanted);
  assert.ok(index >= 0, `"${wanted}" is in the file`);
  return index + 1;
}

/**
 * The sample as it is, but for tempauth's users: the test Swift's, so that the proxy's service identity and the
 * test's account exist there (the sample's admin:admin does not).
 */
function withTestUsers(sample: string): string {
  let inTempauth = false;
  const out: string[] = [];
  for (const line of sample.split('\n')) {
    if (/^\[/.test(line)) inTempauth = line.trim() === '[filter:tempauth]';
    if (inTempauth && /^user(64)?_/.test(line)) continue;
    out.push(line);
    if (line.trim() === '[filter:tempauth]') out.push(...tempauthConfigLines());
  }
  return out.join('\n');
}

function proxySections(options: { upstream: string; port?: number; queueDir: string; extraProxyLines?: string[] }): string {
  return [
    '',
    '[quota-proxy]',
    'bind_ip = 127.0.0.1',
    ...(options.port === undefined ? [] : [`bind_port = ${options.port}`]),
    `upstream = ${options.upstream}`,
    // Swift's spelling, as the rest of the file writes it.
    'log_level = INFO',
    ...(options.extraProxyLines ?? []),
    '',
    '[filter:quota]',
    'service_user = reseller:reseller',
    // The test Swift is shared: other tests' accounts hold levels this file lacks, which --check-config rightly
    // refuses (dropped-levels.test.ts); these samples are about Swift's file, not about levels.
    'allow_dropped_levels = true',
    'quota = {"container_count": {"default": 1000}, "object_count": {"default": 100000}, "container_usage": {"default": 1000000000}}',
    '',
    '[notify:ops]',
    'type = webhook',
    'url = http://127.0.0.1:9/hook',
    `queue_dir = ${options.queueDir}`,
    '',
  ].join('\n');
}

async function answers(url: string): Promise<void> {
  assert.equal((await call('GET', `${url}/healthz`)).status, 200);
  const user = await login(url, `${ACCOUNT}:admin`, `${ACCOUNT}pass`);
  const container = `${accountUrl(url, ACCOUNT)}/swift-conf-${process.pid}`;
  assert.equal((await call('PUT', container, { 'x-auth-token': user.token })).status, 201);
  assert.equal((await call('PUT', `${container}/o`, { 'x-auth-token': user.token }, 'hello')).status, 201);
  assert.equal((await call('GET', `${container}/o`, { 'x-auth-token': user.token })).body, 'hello');
  await call('DELETE', `${container}/o`, { 'x-auth-token': user.token });
  await call('DELETE', container, { 'x-auth-token': user.token });
}

describe('Swift\'s own proxy-server.conf with the proxy\'s sections', () => {
  let dir: string;
  let swift: string;
  const samples: { name: string; text: string }[] = [];

  before(async () => {
    await ensureSwiftInstalled(); // swift-proxy brings Debian's sample
    swift = await swiftUrl();
    dir = await mkdtemp(join(tmpdir(), 'sqp-swift-conf-'));
    assert.ok(existsSync(DEBIAN_SAMPLE), `${DEBIAN_SAMPLE} (package swift-proxy)`);
    samples.push({ name: 'Debian', text: await readFile(DEBIAN_SAMPLE, 'utf8') });
    const source = await ensureFunctionalSuite();
    samples.push({ name: 'Swift', text: await readFile(join(source, 'etc', 'proxy-server.conf-sample'), 'utf8') });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('each full sample: --check-config ok, the proxy starts on its own port with log_level = INFO and answers', async () => {
    for (const sample of samples) {
      const port = await freePort();
      const file = join(dir, `${sample.name}.conf`);
      await writeFile(file, withTestUsers(sample.text) + proxySections({ upstream: swift, port, queueDir: join(dir, `${sample.name}-queue`) }));
      const checked = await cli(['--check-config', file]);
      assert.equal(checked.code, 0, `${sample.name}: ${checked.stderr}`);
      assert.equal(checked.stdout, `${file}: ok\n`);
      const started = await startCli(['--config', file]);
      try {
        assert.equal(started.url, `http://127.0.0.1:${port}`, sample.name);
        await answers(started.url);
      } finally {
        await stop(started.child);
      }
    }
  });

  test('without bind_port in [quota-proxy], Swift\'s [DEFAULT] bind_port is not taken: the proxy\'s default 8081 is', async (t) => {
    if (!(await portIsFree(8081))) return t.skip('127.0.0.1:8081 is in use on this machine');
    // Swift's [DEFAULT] names the running Swift's own port, as on a host where both run.
    const swiftPort = new URL(swift).port;
    const sample = samples[0]!.text.replace(/^bind_port = 8080$/m, `bind_port = ${swiftPort}`);
    const file = join(dir, 'no-bind-port.conf');
    await writeFile(file, withTestUsers(sample) + proxySections({ upstream: swift, queueDir: join(dir, 'q2') }));
    assert.equal((await cli(['--check-config', file])).code, 0);
    const started = await startCli(['--config', file]);
    try {
      assert.equal(started.url, 'http://127.0.0.1:8081');
      await answers(started.url);
    } finally {
      await stop(started.child);
    }
  });

  // Start-up reads the file with the same loader (config/startup-checks.ts): one command shows both refuse it.
  test('a bind_port that is Swift\'s own is refused by --check-config, at its line (before: "ok", then EADDRINUSE)', async () => {
    const swiftPort = new URL(swift).port;
    const file = join(dir, 'swift-port.conf');
    const text = withTestUsers(samples[0]!.text) + proxySections({ upstream: swift, port: Number(swiftPort), queueDir: join(dir, 'q3') });
    await writeFile(file, text);
    const line = lineOf(text, `bind_port = ${swiftPort}`, lineOf(text, '[quota-proxy]'));
    const outcome = await cli(['--check-config', file]);
    assert.equal(outcome.code, 2, outcome.stdout + outcome.stderr);
    assert.match(outcome.stderr, new RegExp(`^swift-quota-proxy: bad config: ${file}:${line}: \\[quota-proxy\\] bind_port: is the upstream's own address`));
  });

  test('--check-config makes start-up\'s checks: a queue_dir that cannot be made is refused at its line (before: "ok")', async () => {
    const blocker = join(dir, 'a-file');
    await writeFile(blocker, 'x');
    const file = join(dir, 'queue.conf');
    const text = withTestUsers(samples[0]!.text) + proxySections({ upstream: swift, port: await freePort(), queueDir: join(blocker, 'queue') });
    await writeFile(file, text);
    const line = lineOf(text, `queue_dir = ${join(blocker, 'queue')}`);
    // Start-up's refusal of the same queue_dir is in cli.test.ts; here the check that said "ok" before.
    const refused = await cli(['--check-config', file]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`^swift-quota-proxy: bad config: ${file}:${line}: \\[notify:ops\\] queue_dir: cannot use \\S+ for the event queue: ENOTDIR`));

    // An address this host lacks (refused by the check's bind probe): config-startup-checks.test.ts.
  });

  test('a key set twice is refused naming both lines, as Swift\'s own ConfigParser refuses the same file', async () => {
    const file = join(dir, 'twice.conf');
    const text = withTestUsers(samples[0]!.text) + proxySections({ upstream: swift, port: await freePort(), queueDir: join(dir, 'q5'), extraProxyLines: ['log_level = DEBUG'] });
    await writeFile(file, text);
    const first = lineOf(text, 'log_level = INFO');
    const second = lineOf(text, 'log_level = DEBUG');
    const outcome = await cli(['--check-config', file]);
    assert.equal(outcome.code, 2, outcome.stdout + outcome.stderr);
    assert.equal(outcome.stderr, `swift-quota-proxy: bad config: ${file}:${second}: [quota-proxy] log_level: set twice in [quota-proxy]: on line ${first} and on line ${second} (Swift's ConfigParser refuses this too, and which one counts would be a guess: keep one)\n`);
    // Swift reads the file with Python's ConfigParser (strict, names kept as written), through paste.deploy.
    const python = 'import configparser, sys\nc = configparser.ConfigParser()\nc.optionxform = str\ntry:\n    c.read(sys.argv[1])\nexcept configparser.DuplicateOptionError as e:\n    print(e.lineno, e.option)';
    const swiftSays = await run('/usr/bin/python3', ['-c', python, file]);
    assert.equal(swiftSays.stdout.trim(), `${second} log_level`);
  });
});
