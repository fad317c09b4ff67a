/**
 * `swift-quota-proxy accounts …` against the real Swift (issue 25): a level set on 500 accounts in one command
 * (timed), listed back by level and by nearness to a limit, shown, copied, changed in a dry run (nothing
 * written), and the mistakes an operator makes refused with exit 2. Accounts AUTH_cli-<run>-NNN (made by the
 * command's --create, through Swift's account_autocreate).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, login } from '../helpers/http.js';
import { MAIN } from '../helpers/cli.js';
import { proxyConfigText, startProxy } from '../helpers/proxy.js';
import { eventually } from '../helpers/receiver.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { TEMPAUTH_USERS } from '../swift/cluster.js';

const LEVELS = {
  container_count: { default: 5, L1: 2, L2: 20 },
  object_count: { default: 100 },
  container_usage: { default: 1_000_000 },
  account_usage: { default: 10_000_000, L1: 1_000 },
};

describe('accounts: administration from the command line', () => {
  let swift: string;
  let dir: string;
  let file: string;
  let reseller: Record<string, string>;
  const run = randomBytes(3).toString('hex');
  const name = (n: number) => `AUTH_cli-${run}-${String(n).padStart(3, '0')}`;

  /** The command, with `input` on stdin: exit code and output. */
  function accounts(args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [...MAIN, 'accounts', '--config', file, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      child.stdin.end(input);
    });
  }
  const levelOf = async (account: string) => (await call('HEAD', `${swift}/v1/${account}`, reseller)).headers['x-account-meta-quota'];

  before(async () => {
    swift = await swiftUrl();
    dir = await mkdtemp(join(tmpdir(), 'sqp-accounts-'));
    file = join(dir, 'proxy.conf');
    // The service identity's user only: list reads every known account, and the test Swift has hundreds.
    await writeFile(file, proxyConfigText({ upstream: swift, quota: LEVELS, tempauthUsers: TEMPAUTH_USERS.filter((u) => u.account === 'reseller') }));
    reseller = { 'x-auth-token': (await login(swift, 'reseller:reseller', 'reseller')).token };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a level on 500 accounts in one command (from stdin), listed back by level', async () => {
    const names = Array.from({ length: 500 }, (_, i) => name(i + 1));
    const started = Date.now();
    const set = await accounts(['set', '--level', 'L1', '--create', '--file', '-'], `# the 500\n${names.join('\n')}\n`);
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`# accounts set --level L1 on 500 accounts: ${seconds.toFixed(1)} s\n`);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^500 accounts: 500 changed, 0 unchanged, 0 missing$/m);
    assert.equal(await levelOf(names[0]!), 'L1');
    assert.equal(await levelOf(names[499]!), 'L1');

    const listed = await accounts(['list', '--level', 'L1', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const mine = (JSON.parse(listed.stdout) as Array<{ account: string; level: string }>).filter((a) => a.account.startsWith(`AUTH_cli-${run}-`));
    assert.equal(mine.length, 500);
    assert.ok(mine.every((a) => a.level === 'L1'));

    const again = await accounts(['set', '--level', 'L1', name(1), name(2)]);
    assert.match(again.stdout, /^2 accounts: 0 changed, 2 unchanged, 0 missing$/m);
  });

  test('a dry run says what would change and writes nothing; an override, shown; copy to others', async () => {
    assert.equal((await accounts(['set', '--level', 'L1', '--create', name(3), name(4), name(5)])).code, 0);
    const dry = await accounts(['set', '--level', 'L2', '--limit', 'account_usage=5000', '--dry-run', name(3)]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`${name(3)}: level L1 -> L2, account_usage \\(level\\) -> 5000`));
    assert.match(dry.stdout, /dry run: nothing written/);
    assert.equal(await levelOf(name(3)), 'L1');

    assert.equal((await accounts(['set', '--limit', 'account_usage=5000', '--limit', 'container_count=7', name(3)])).code, 0);
    const shown = JSON.parse((await accounts(['show', name(3), '--json'])).stdout) as { level: string; overrides: object; limits: Record<string, number> };
    assert.equal(shown.level, 'L1');
    assert.deepEqual(shown.overrides, { account_usage: 5000, container_count: 7 });
    assert.equal(shown.limits.account_usage, 5000);
    assert.equal(shown.limits.container_count, 7);
    assert.equal(shown.limits.object_count, 100);

    const copied = await accounts(['copy', name(3), name(4), name(5)]);
    assert.equal(copied.code, 0, copied.stderr);
    const four = JSON.parse((await accounts(['show', name(4), '--json'])).stdout) as { overrides: object };
    assert.deepEqual(four.overrides, { account_usage: 5000, container_count: 7 });

    assert.equal((await accounts(['set', '--clear', 'account_usage', name(4)])).code, 0);
    assert.deepEqual((JSON.parse((await accounts(['show', name(4), '--json'])).stdout) as { overrides: object }).overrides, { container_count: 7 });
  });

  test('near a limit: listed with --near, most used first; an account Swift does not have is reported', async () => {
    // One container of L1's two: 50 % of container_count.
    assert.equal((await accounts(['set', '--level', 'L1', '--create', name(6)])).code, 0);
    assert.equal((await call('PUT', `${swift}/v1/${name(6)}/c`, reseller)).status, 201);
    const near = await accounts(['list', '--near', '0.5', '--sort', 'usage', '--json']);
    const mine = (JSON.parse(near.stdout) as Array<{ account: string; nearest: { kind: string; share: number } }>).filter((a) => a.account.startsWith(`AUTH_cli-${run}-`));
    assert.deepEqual(mine.map((a) => [a.account, a.nearest.kind, a.nearest.share]), [[name(6), 'container_count', 0.5]]);
    const far = JSON.parse((await accounts(['list', '--near', '0.9', '--json'])).stdout) as Array<{ account: string }>;
    assert.ok(!far.some((a) => a.account === name(6)));

    const missing = await accounts(['set', '--level', 'L2', `AUTH_cli-${run}-nobody`]);
    assert.equal(missing.code, 0);
    assert.match(missing.stdout, /does not exist in Swift/);
    assert.equal((await call('HEAD', `${swift}/v1/AUTH_cli-${run}-nobody`, reseller)).headers['x-account-meta-quota'], undefined);
    const shown = await accounts(['show', `AUTH_cli-${run}-nobody`]);
    assert.match(shown.stdout, /does not exist in Swift/);
  });

  test('mistakes: an unknown level or kind, nothing to set, no accounts: exit 2 with the usage', async () => {
    assert.equal((await accounts(['set', '--level', 'L1', '--create', name(7)])).code, 0);
    for (const args of [['set', '--level', 'Ll', name(7)], ['set', '--limit', 'bytes=5', name(7)], ['set', name(7)], ['set', '--level', 'L2'], ['frobnicate']]) {
      const answer = await accounts(args);
      assert.equal(answer.code, 2, `${args.join(' ')}: ${answer.stdout}${answer.stderr}`);
      assert.match(answer.stderr, /usage:/);
    }
    assert.equal(await levelOf(name(7)), 'L1');
  });

  test('accounts the proxy has seen (record_accounts): listed though neither tempauth nor Keystone names them; a recorded level is kept', async () => {
    const only = TEMPAUTH_USERS.filter((u) => u.account === 'reseller');
    const proxy = await startProxy({ upstream: swift, quota: LEVELS, tempauthUsers: only, extraQuotaLines: ['record_accounts = true'] });
    try {
      assert.equal((await accounts(['set', '--level', 'L1', '--create', 'AUTH_pol16'])).code, 0);
      for (const account of ['pol15', 'pol16']) {
        const { token } = await login(swift, `${account}:admin`, `${account}pass`);
        assert.equal((await call('PUT', `${proxy.url}/v1/AUTH_${account}/seen`, { 'x-auth-token': token })).status, 201);
      }
      const listed = async () => (JSON.parse((await accounts(['list', '--json'])).stdout) as Array<{ account: string; level: string }>).filter((a) => a.account === 'AUTH_pol15' || a.account === 'AUTH_pol16');
      await eventually(async () => (await listed()).length === 2, 'both accounts listed');
      assert.deepEqual((await listed()).map((a) => [a.account, a.level]).sort(), [['AUTH_pol15', 'default'], ['AUTH_pol16', 'L1']]);
      const l1 = (JSON.parse((await accounts(['list', '--level', 'L1', '--json'])).stdout) as Array<{ account: string }>).map((a) => a.account);
      assert.ok(l1.includes('AUTH_pol16'), 'the level recorded by accounts set is not overwritten by the seen record');
    } finally {
      await proxy.close();
    }
  });
});
