/**
 * Restarts without failed requests (docs/operations.md, "Restarts and upgrades"), measured against the test
 * Swift with keep-alive clients GETting and PUTting all the while:
 * - SIGTERM: readiness turns 503 at once, the port keeps serving for drain_delay (answers carry
 *   `Connection: close`), then the process drains and exits;
 * - an upgrade that starts the new instance first, on the same port (reuse_port), then stops the old one;
 * - SIGUSR1 to a primary with `workers = 2`: every worker replaced one at a time.
 * Every answer counted must be a 2xx; a connection error or any other status is a failed request.
 *
 * When a listener of a SO_REUSEPORT group closes, the connections the kernel already queued on it are reset
 * unless net.ipv4.tcp_migrate_req = 1 (Linux >= 5.14) moves them to a sibling: the tests turn it on for their
 * run where they may (and put back what was there), as docs/operations.md tells operators to. With
 * RESTARTS_KEEP_MIGRATE_REQ=1 they leave it as it is (to measure without it). Workers share the primary's
 * socket, which never closes during a rolling restart: that one needs no such setting.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Pool } from 'undici';
import { proxyConfigText } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { call, login } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { MAIN, startCli, type StartedCli } from '../helpers/cli.js';

const MIGRATE_REQ = '/proc/sys/net/ipv4/tcp_migrate_req';
/** Short, for the tests: production defaults are 5 s and 60 s (config/restart.ts). */
const RESTART_LINES = ['drain_delay = 2', 'drain_timeout = 10', 'reuse_port = true'];

let migrateBefore: string | undefined;
let dir: string;
let swift: string;

before(async () => {
  swift = await swiftUrl();
  dir = await mkdtemp(join(tmpdir(), 'sqp-restarts-'));
  if (process.env.RESTARTS_KEEP_MIGRATE_REQ === '1') return;
  try {
    migrateBefore = (await readFile(MIGRATE_REQ, 'utf8')).trim();
    if (migrateBefore !== '1') await writeFile(MIGRATE_REQ, '1');
  } catch (error) {
    process.stderr.write(`# ${MIGRATE_REQ} cannot be set (${(error as Error).message}): a closing listener may reset a queued connection\n`);
    migrateBefore = undefined;
  }
});

after(async () => {
  if (migrateBefore !== undefined && migrateBefore !== '1') await writeFile(MIGRATE_REQ, migrateBefore).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

async function configFile(name: string, port: number, extra: string[] = []): Promise<string> {
  const file = join(dir, `${name}.conf`);
  await writeFile(file, proxyConfigText({ upstream: swift, port, extraProxyLines: [...RESTART_LINES, 'access_log = false', ...extra] }));
  return file;
}

function exitOf(started: StartedCli): Promise<number | null> {
  return new Promise((resolve) => {
    if (started.child.exitCode !== null) resolve(started.child.exitCode);
    else started.child.once('exit', (code) => resolve(code));
  });
}

interface Tally {
  ok: number;
  /** Failed requests by what went wrong: a status or an error code. */
  failed: Record<string, number>;
  stop(): Promise<void>;
}

/**
 * Keep-alive clients (one undici Pool, a connection per loop) GETting and PUTting in `accounts` until stopped:
 * each account gets a GET loop and a PUT loop.
 */
async function steadyLoad(origin: string, accounts: readonly string[]): Promise<Tally> {
  const pool = new Pool(origin, { connections: accounts.length * 2 });
  const tally: Tally = { ok: 0, failed: {}, stop: async () => {} };
  const body = randomBytes(1024);
  const tokens = await Promise.all(accounts.map(async (account) => (await login(swift, `${account}:admin`, `${account}pass`)).token));
  for (const [i, account] of accounts.entries()) {
    // Straight to Swift: the container and the object the GETs read.
    assert.equal((await call('PUT', `${swift}/v1/AUTH_${account}/restarts`, { 'x-auth-token': tokens[i]! })).status < 300, true);
    assert.equal((await call('PUT', `${swift}/v1/AUTH_${account}/restarts/read-me`, { 'x-auth-token': tokens[i]! }, body)).status, 201);
  }
  let running = true;
  const loop = async (method: 'GET' | 'PUT', account: string, token: string) => {
    const path = `/v1/AUTH_${account}/restarts/${method === 'GET' ? 'read-me' : `written-${randomBytes(2).toString('hex')}`}`;
    while (running) {
      try {
        const answer = await pool.request({ method, path, headers: { 'x-auth-token': token }, ...(method === 'PUT' ? { body } : {}) });
        await answer.body.dump();
        if (answer.statusCode >= 200 && answer.statusCode < 300) tally.ok++;
        else tally.failed[String(answer.statusCode)] = (tally.failed[String(answer.statusCode)] ?? 0) + 1;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        tally.failed[code] = (tally.failed[code] ?? 0) + 1;
        await sleep(20);
      }
    }
  };
  const loops = accounts.flatMap((account, i) => [loop('GET', account, tokens[i]!), loop('PUT', account, tokens[i]!)]);
  let stopped: Promise<void> | undefined;
  tally.stop = () => {
    running = false;
    stopped ??= Promise.all(loops).then(() => pool.close());
    return stopped;
  };
  return tally;
}

function failures(tally: Tally): number {
  return Object.values(tally.failed).reduce((sum, n) => sum + n, 0);
}

describe('restarts without failed requests', () => {
  test('SIGTERM: /readyz 503 at once, the port serves on for drain_delay with "Connection: close", then the process exits 0 (SIGUSR1 before: a warning)', async () => {
    const port = await freePort();
    const started = await startCli(['--config', await configFile('sigterm', port)]);
    const origin = `http://127.0.0.1:${port}`;
    try {
      assert.equal((await call('GET', `${origin}/readyz`)).status, 200);
      // SIGUSR1 to one process: says what to do instead (Node's default would open its inspector) and serves on.
      started.child.kill('SIGUSR1');
      await until(() => /SIGUSR1: a rolling restart needs workers > 1/.test(started.output()), 'the SIGUSR1 warning', 10_000);
      assert.equal((await call('GET', `${origin}/readyz`)).status, 200);
      const exited = exitOf(started);
      const signalled = Date.now();
      started.child.kill('SIGTERM');
      await sleep(300);
      const health = await call('GET', `${origin}/healthz`).catch((error: Error & { cause?: { code?: string } }) => error.cause?.code ?? error.message);
      assert.equal(typeof health === 'string' ? health : health.status, 200, 'the port still serves during drain_delay');
      assert.equal(typeof health === 'string' ? undefined : health.headers.connection, 'close', 'and tells keep-alive clients to go');
      const ready = await call('GET', `${origin}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.body, /shutting down/);
      assert.equal(await exited, 0);
      const took = Date.now() - signalled;
      assert.ok(took >= 2000 && took < 6000, `exited ${took} ms after SIGTERM (drain_delay = 2)`);
      await assert.rejects(call('GET', `${origin}/healthz`), 'the port is closed afterwards');
    } finally {
      started.child.kill('SIGKILL');
    }
  });

  test('an upgrade that starts the new instance first on the same port: 0 failed requests', async () => {
    const port = await freePort();
    const file = await configFile('upgrade', port);
    const old = await startCli(['--config', file]);
    let fresh: StartedCli | undefined;
    const load = await steadyLoad(`http://127.0.0.1:${port}`, ['ops31', 'ops32', 'ops33', 'ops34']);
    try {
      await sleep(1000);
      // The new instance binds the port the old one holds (before reuse_port: EADDRINUSE, exit 2).
      const second = await startCli(['--config', file]).catch((error: Error) => error);
      if (second instanceof Error) {
        // What an upgrade had to do before: stop the old one, then start the new one.
        assert.match(second.message, /EADDRINUSE/);
        old.child.kill('SIGTERM');
        await exitOf(old);
        fresh = await startCli(['--config', file]);
      } else {
        fresh = second;
        const beforeStop = load.ok;
        old.child.kill('SIGTERM');
        assert.equal(await exitOf(old), 0);
        assert.ok(load.ok > beforeStop, 'requests went on while the old one drained');
      }
      await sleep(1000);
      await load.stop();
      process.stdout.write(`# upgrade: ${load.ok} answers 2xx, failed ${JSON.stringify(load.failed)}\n`);
      assert.equal(second instanceof Error ? second.message.split('\n')[0] : 'the new instance started beside the old one', 'the new instance started beside the old one');
      assert.equal(failures(load), 0, `failed requests: ${JSON.stringify(load.failed)} (${load.ok} answered 2xx)`);
      assert.ok(load.ok > 100, `${load.ok} requests answered`);
    } finally {
      await load.stop();
      old.child.kill('SIGKILL');
      fresh?.child.kill('SIGKILL');
    }
  });

  test('workers = 2, SIGUSR1: every worker replaced one at a time, 0 failed requests', async () => {
    const port = await freePort();
    const ledger = [`ledger = ${await redisUrl()}`, `ledger_prefix = restarts-${randomBytes(4).toString('hex')}:`, 'workers = 2'];
    const file = await configFile('workers', port, ledger);
    const started = await startCli(['--config', file]);
    const load = await steadyLoad(`http://127.0.0.1:${port}`, ['ops35', 'ops36', 'ops37', 'ops38']);
    try {
      await sleep(1000);
      const pidsBefore = await workerPids(started.child.pid!);
      assert.equal(pidsBefore.length, 2);
      started.child.kill('SIGUSR1');
      await until(() => /rolling restart done/.test(started.output()), 'the rolling restart', 60_000).catch(() => {});
      await sleep(500);
      await load.stop();
      // The roll moves on once an old worker's listener is closed; its last requests (and its exit) may take longer.
      const old = new Set(pidsBefore);
      await untilAsync(async () => !(await workerPids(started.child.pid!)).some((pid) => old.has(pid)), 'the old workers\' exit', 30_000).catch(() => {});
      process.stdout.write(`# rolling restart: ${load.ok} answers 2xx, failed ${JSON.stringify(load.failed)}\n`);
      const pidsAfter = await workerPids(started.child.pid!);
      assert.deepEqual(pidsAfter.filter((pid) => pidsBefore.includes(pid)), [], `workers before ${pidsBefore}, after ${pidsAfter}`);
      assert.equal(pidsAfter.length, 2);
      assert.equal(failures(load), 0, `failed requests: ${JSON.stringify(load.failed)} (${load.ok} answered 2xx)`);
      assert.ok(load.ok > 100, `${load.ok} requests answered`);

      // A config broken since: the new worker cannot start, the roll stops there and the old workers serve on.
      await writeFile(file, (await readFile(file, 'utf8')).replace('drain_delay = 2', 'drain_delay = soon'));
      started.child.kill('SIGUSR1');
      await until(() => /the rolling restart stops, the running workers serve on/.test(started.output()), 'the stopped roll', 30_000);
      assert.deepEqual(await workerPids(started.child.pid!), pidsAfter);
      assert.equal((await call('GET', `http://127.0.0.1:${port}/healthz`)).status, 200);
      const exited = exitOf(started);
      started.child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      await load.stop();
      started.child.kill('SIGKILL');
    }
  });

  test('--version prints the version and the build revision', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [...MAIN, '--version']);
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    assert.match(stdout, new RegExp(`^swift-quota-proxy ${version.replaceAll('.', '\\.')} \\(revision (unknown|[0-9a-f]{7,40}), Node\\.js v\\d+\\.\\d+\\.\\d+\\)\\n$`));
  });
});

async function until(check: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await sleep(50);
  }
}

async function untilAsync(check: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await sleep(100);
  }
}

/** The worker processes of primary `pid`, from /proc (tsx's esbuild service is a child too). */
async function workerPids(pid: number): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
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
  return pids.sort();
}
