/**
 * The command-line contract other tools drive: `swift-quota-proxy --config FILE [--listen HOST:PORT]
 * [--upstream URL]`, its start-up line, its errors, and draining on SIGTERM.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { proxyConfigText } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login } from '../helpers/http.js';
import { MAIN, startCli } from '../helpers/cli.js';

const run = promisify(execFile);

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); ) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
}

describe('command line', () => {
  let dir: string;
  let swift: string;

  before(async () => {
    swift = await swiftUrl();
    dir = await mkdtemp(join(tmpdir(), 'sqp-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a bad config stops start-up with a non-zero exit naming file, line and key', async () => {
    const file = join(dir, 'bad.conf');
    await writeFile(file, ['[quota-proxy]', 'upstream = http://127.0.0.1:1', '', '[filter:quota]', 'quota = {', '"object_count": {"default": -3}', '}', ''].join('\n'));
    const failed = await run(process.execPath, [...MAIN, '--config', file]).then(
      () => assert.fail('should have exited non-zero'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, new RegExp(`${file.replaceAll('/', '\\/')}:6: \\[filter:quota\\] quota: .*object_count.*whole number >= 0`));
  });

  test('a port already taken is one clear line and exit 2, with one process or with workers', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      for (const workers of [[], ['workers = 2', `ledger = ${await redisUrl()}`]]) {
        const file = join(dir, `taken${workers.length}.conf`);
        await writeFile(file, proxyConfigText({ upstream: swift, port, extraProxyLines: workers }));
        const failed = await run(process.execPath, [...MAIN, '--config', file], { timeout: 30_000 }).then(
          () => assert.fail('should have exited non-zero'),
          (error: { code: number; stderr: string }) => error,
        );
        assert.equal(failed.code, 2, `${workers.length ? 'workers' : 'one process'}: ${failed.stderr}`);
        assert.match(failed.stderr, new RegExp(`swift-quota-proxy: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
        assert.doesNotMatch(failed.stderr, /\n\s+at /, 'no stack trace');
      }
    } finally {
      taken.close();
    }
  });

  test('--check-config: "ok" and the warnings (exit 0), or what is wrong (exit 2); nothing started', async () => {
    const good = join(dir, 'check-good.conf');
    // A level missing a kind is a warning (it gets the default's limit), not an error.
    // Listening on 2 with a dead upstream on 1: the same port would be a proxy forwarding to itself (refused).
    await writeFile(good, proxyConfigText({ upstream: 'http://127.0.0.1:1', port: 2, quota: { container_count: { default: 5, L1: 10 }, object_count: { default: 5 }, container_usage: { default: 5 } } }));
    const ok = await run(process.execPath, [...MAIN, '--check-config', good]);
    assert.equal(ok.stdout, `${good}: ok\n`);
    assert.match(ok.stderr, /warning: .*\[filter:quota\] quota: level "L1" has no object_count limit/);
    const bad = join(dir, 'check-bad.conf');
    await writeFile(bad, proxyConfigText({ upstream: 'http://127.0.0.1:1', port: 2, extraProxyLines: ['workers = 2'] }));
    const failed = await run(process.execPath, [...MAIN, '--check-config', bad]).then(
      () => assert.fail('should have exited non-zero'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /bad config: .*\[quota-proxy\] workers: .*need a shared ledger/);
  });

  test('a misspelt key stops start-up (exit 2) naming file, line and the nearest key; no stack trace', async () => {
    const file = join(dir, 'typo.conf');
    await writeFile(file, proxyConfigText({ upstream: 'http://127.0.0.1:1', port: 0, extraQuotaLines: ['cache_timout = 5'] }));
    const line = (await readFile(file, 'utf8')).split('\n').findIndex((l) => l.startsWith('cache_timout')) + 1;
    for (const args of [['--check-config', file], ['--config', file]]) {
      const failed = await run(process.execPath, [...MAIN, ...args]).then(
        () => assert.fail(`${args[0]}: should have exited non-zero`),
        (error: { code: number; stderr: string }) => error,
      );
      assert.equal(failed.code, 2, args[0]);
      assert.equal(failed.stderr, `swift-quota-proxy: bad config: ${file}:${line}: [filter:quota] cache_timout: not a key of this section (did you mean "cache_timeout"?)\n`);
    }
  });

  test('a missing file and a missing --config are clear errors too', async () => {
    const missing = await run(process.execPath, [...MAIN, '--config', join(dir, 'nope.conf')]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((missing as { code: number }).code, 2);
    assert.match((missing as { stderr: string }).stderr, /nope\.conf: cannot read the config file/);
    const none = await run(process.execPath, MAIN).catch((e: { code: number; stderr: string }) => e);
    assert.equal((none as { code: number }).code, 2);
    assert.match((none as { stderr: string }).stderr, /--config is required/);
  });

  test('flags override the file; the start-up line says where it listens and what it serves; SIGTERM drains', async () => {
    const file = join(dir, 'good.conf');
    // The file names a dead upstream and port; the flags must win.
    await writeFile(file, proxyConfigText({ upstream: 'http://127.0.0.1:1', port: 1 }));
    const started = await startCli(['--config', file, '--listen', '127.0.0.1:0', '--upstream', swift]);
    assert.match(started.output(), new RegExp(`upstream ${swift.replaceAll('/', '\\/')}`));

    const user = await login(started.url, 'qa2:admin', 'qa2pass');
    assert.equal(user.storageUrl, `${started.url}/v1/AUTH_qa2`);
    assert.equal((await call('PUT', `${accountUrl(started.url, 'qa2')}/drain`, { 'x-auth-token': user.token })).status, 201);

    // An upload in flight when SIGTERM arrives completes; then the process exits 0.
    const exited = exitOf(started.child);
    const upload = new Promise<number>((resolve, reject) => {
      const req = http.request(`${accountUrl(started.url, 'qa2')}/drain/slow`, {
        method: 'PUT',
        agent: false,
        headers: { 'x-auth-token': user.token, 'content-length': '6' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('abc');
      setTimeout(() => {
        started.child.kill('SIGTERM');
        setTimeout(() => req.end('def'), 300);
      }, 200);
    });
    assert.equal(await upload, 201);
    assert.equal(await exited, 0);
    assert.equal((await call('GET', `${accountUrl(swift, 'qa2')}/drain/slow`, { 'x-auth-token': user.token })).body, 'abcdef');
  });

  test('a webhook queue_dir that cannot be written stops start-up: one line naming file, line and key, exit 2', async () => {
    const blocker = join(dir, 'not-a-directory');
    await writeFile(blocker, 'x');
    const file = join(dir, 'queue.conf');
    await writeFile(file, proxyConfigText({ upstream: swift, port: 0, extraSections: ['[notify:ops]', 'type = webhook', 'url = http://127.0.0.1:1/hook', `queue_dir = ${blocker}/queue`] }));
    const line = (await readFile(file, 'utf8')).split('\n').findIndex((l) => l.startsWith('queue_dir')) + 1;
    const failed = await run(process.execPath, [...MAIN, '--config', file]).then(
      () => assert.fail('should have exited non-zero'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, new RegExp(`^swift-quota-proxy: bad config: ${file.replaceAll('.', '\\.')}:${line}: \\[notify:ops\\] queue_dir: cannot use \\S+ for the event queue: ENOTDIR[^\\n]*\\n$`));
  });

  test('SIGHUP reloads levels and limits with an upload in flight: the upload completes, its reservation still counts; a bad file keeps the running config', async () => {
    const file = join(dir, 'hup.conf');
    const limits = (objects: number) => ({ container_count: { default: 1000 }, object_count: { default: objects }, container_usage: { default: 1e12 } });
    await writeFile(file, proxyConfigText({ upstream: swift, port: 0, quota: limits(2) }));
    const started = await startCli(['--config', file, '--listen', '127.0.0.1:0']);
    const exited = exitOf(started.child);
    try {
      const user = await login(started.url, 'qa2:admin', 'qa2pass');
      const container = `${accountUrl(started.url, 'qa2')}/hup-${Date.now()}`;
      const auth = { 'x-auth-token': user.token };
      assert.equal((await call('PUT', container, auth)).status, 201);
      assert.equal((await call('PUT', `${container}/o1`, auth, 'x')).status, 201);

      // o2 is admitted (its reservation taken) and its body held back across the reload.
      let finish!: () => void;
      const upload = new Promise<number>((resolve, reject) => {
        const req = http.request(`${container}/o2`, { method: 'PUT', agent: false, headers: { ...auth, 'content-length': '6' } });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write('abc');
        finish = () => req.end('def');
      });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await call('PUT', `${container}/o3`, auth, 'x')).status, 413, 'under the old limit, o1 and the reserved o2 fill it');

      await writeFile(file, proxyConfigText({ upstream: swift, port: 0, quota: limits(3) }));
      started.child.kill('SIGHUP');
      await waitFor(() => /SIGHUP: configuration reloaded from [^"]*: quota changed/.test(started.output()), 'reload logged');
      assert.equal((await call('PUT', `${container}/o3`, auth, 'x')).status, 201, 'the new limit applies');
      assert.equal((await call('PUT', `${container}/o4`, auth, 'x')).status, 413, 'o2 is still reserved: o1 + o2 + o3 = 3');
      finish();
      assert.equal(await upload, 201, 'the upload held across the reload completes');
      // On Swift itself: exactly the three admitted objects.
      const listing = await call('GET', `${swift}/v1/AUTH_qa2/${container.split('/').pop()}`, auth);
      assert.deepEqual(listing.body.split('\n').filter(Boolean), ['o1', 'o2', 'o3']);

      // A file that does not load: one error line, and the proxy runs on with what it had.
      await writeFile(file, proxyConfigText({ upstream: swift, port: 0, quota: limits(10), extraQuotaLines: ['cache_timout = 5'] }));
      started.child.kill('SIGHUP');
      await waitFor(() => /SIGHUP: configuration not reloaded/.test(started.output()), 'failed reload logged');
      const errors = started.output().split('\n').filter((line) => line.includes('SIGHUP: configuration not reloaded'));
      assert.equal(errors.length, 1);
      assert.match(errors[0]!, /"level":50.*hup\.conf:\d+: \[filter:quota\] cache_timout: not a key of this section \(did you mean \\"cache_timeout\\"\?\)/);
      assert.equal((await call('PUT', `${container}/o5`, auth, 'x')).status, 413, 'still the limit of 3');
      assert.equal(started.child.exitCode, null, 'still running');
    } finally {
      started.child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  test('log_level = info: one access line per request, each with the client address, even when the client has gone', async () => {
    const file = join(dir, 'access.conf');
    const limits = { container_count: { default: 1000 }, object_count: { default: 1 }, container_usage: { default: 1e12 } };
    await writeFile(file, proxyConfigText({ upstream: swift, port: 0, quota: limits }).replace('log_level = warn', 'log_level = info'));
    const started = await startCli(['--config', file, '--listen', '127.0.0.1:0']);
    const exited = exitOf(started.child);
    try {
      const since = started.output().length;
      const user = await login(started.url, 'qa2:admin', 'qa2pass');
      const auth = { 'x-auth-token': user.token };
      const container = `${accountUrl(started.url, 'qa2')}/access-${Date.now()}`;
      const path = new URL(container).pathname;
      let sent = 1;
      const expect = async (method: string, url: string, status: number, body?: string) => {
        assert.equal((await call(method as 'GET', url, auth, body)).status, status, `${method} ${url}`);
        sent++;
      };
      await expect('PUT', container, 201);
      await expect('PUT', `${container}/o1`, 201, 'x');
      await expect('PUT', `${container}/o2`, 413, 'x'); // refused by the proxy itself
      await expect('GET', `${container}/o1`, 200);
      await expect('HEAD', container, 204);
      await expect('GET', `${started.url}/healthz`, 200);
      // Clients that send a request and hang up at once: answered after their socket has closed.
      const { port } = new URL(started.url);
      for (let i = 0; i < 20; i++) {
        await new Promise<void>((resolve, reject) => {
          const socket = net.connect(Number(port), '127.0.0.1', () => {
            socket.end(`GET ${path}/o1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: ${user.token}\r\n\r\n`, () => {
              socket.destroy();
              resolve();
            });
          });
          socket.on('error', reject);
        });
        sent++;
      }
      const accessLines = () => started.output().slice(since).split('\n').filter((line) => line.includes('"access":true'));
      await waitFor(() => accessLines().length >= sent, `${sent} access lines`);
      await new Promise((r) => setTimeout(r, 300));
      const lines = started.output().slice(since).split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
      const info = lines.filter((line) => line.level === 30);
      assert.equal(info.length, sent, `one info line per request:\n${info.map((l) => JSON.stringify(l)).join('\n')}`);
      assert.ok(info.every((line) => line.access === true && line.client === '127.0.0.1'), info.filter((l) => l.client !== '127.0.0.1').map((l) => JSON.stringify(l)).join('\n'));
      assert.deepEqual(info.slice(0, 7).map((line) => [line.method, line.status]), [['GET', 200], ['PUT', 201], ['PUT', 201], ['PUT', 413], ['GET', 200], ['HEAD', 204], ['GET', 200]]);
      assert.equal(info[3]!.quota, 'rejected:object_count');
    } finally {
      started.child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  test('environment variables stand in for the flags (containers), and the flags win over them', async () => {
    const file = join(dir, 'env.conf');
    await writeFile(file, proxyConfigText({ upstream: 'http://127.0.0.1:1', port: 1 }));
    const viaEnv = await startCli([], {
      SWIFT_QUOTA_PROXY_CONFIG: file,
      SWIFT_QUOTA_PROXY_LISTEN: '127.0.0.1:0',
      SWIFT_QUOTA_PROXY_UPSTREAM: swift,
    });
    try {
      assert.match(viaEnv.output(), new RegExp(`upstream ${swift.replaceAll('/', '\\/')}`));
      assert.equal((await call('GET', `${viaEnv.url}/readyz`)).status, 200);
    } finally {
      viaEnv.child.kill('SIGTERM');
      await exitOf(viaEnv.child);
    }
    const flagsWin = await startCli(['--upstream', swift], { SWIFT_QUOTA_PROXY_CONFIG: file, SWIFT_QUOTA_PROXY_LISTEN: '127.0.0.1:0', SWIFT_QUOTA_PROXY_UPSTREAM: 'http://127.0.0.1:2' });
    try {
      assert.match(flagsWin.output(), new RegExp(`upstream ${swift.replaceAll('/', '\\/')}`));
    } finally {
      flagsWin.child.kill('SIGTERM');
      await exitOf(flagsWin.child);
    }
  });

  test('[notify:<name>] type = stdout prints one JSON line per event; a provider module that cannot load stops start-up', async () => {
    const bad = join(dir, 'bad-module.conf');
    await writeFile(bad, proxyConfigText({ upstream: swift, extraSections: ['[notify:mine]', 'type = module', 'module = ./missing-provider.mjs'] }));
    const failed = await run(process.execPath, [...MAIN, '--config', bad]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((failed as { code: number }).code, 2);
    assert.match((failed as { stderr: string }).stderr, /bad-module\.conf:\d+: \[notify:mine\] module: provider module \S*missing-provider\.mjs does not exist/);

    const file = join(dir, 'stdout.conf');
    await writeFile(
      file,
      proxyConfigText({
        upstream: swift,
        port: 0,
        quota: { object_count: { default: 3 } },
        extraQuotaLines: ['soft_quota = {"object_count": {"default": 1}}'],
        extraSections: ['[notify:out]', 'type = stdout'],
      }),
    );
    const started = await startCli(['--config', file]);
    try {
      const user = await login(started.url, 'qa2:admin', 'qa2pass');
      const container = `${accountUrl(started.url, 'qa2')}/events`;
      assert.equal((await call('PUT', container, { 'x-auth-token': user.token })).status, 201);
      for (const name of ['one', 'two', 'three']) assert.equal((await call('PUT', `${container}/${name}`, { 'x-auth-token': user.token }, 'x')).status, 201);
      const events = () =>
        started
          .output()
          .split('\n')
          .filter((line) => line.startsWith('{"id":'))
          .map((line) => JSON.parse(line) as { type: string; account: string; container: string; usage: number; caller: string });
      for (const deadline = Date.now() + 10_000; events().length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(
        events().map((e) => [e.type, e.account, e.container, e.usage, e.caller]),
        [['soft_limit_exceeded', 'AUTH_qa2', 'events', 2, 'qa2:admin']],
      );
    } finally {
      started.child.kill('SIGTERM');
      await exitOf(started.child);
    }
  });

  test('the built command runs as `npx swift-quota-proxy` after `npm run build`', async () => {
    await run('npm', ['run', 'build'], { timeout: 120_000 });
    const help = await run('npx', ['--no-install', 'swift-quota-proxy', '--help']);
    assert.match(help.stdout, /usage: swift-quota-proxy --config FILE/);
  });
});
