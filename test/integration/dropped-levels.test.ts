/**
 * A level that accounts hold is never dropped silently (issue 25): accounts given a level through the proxy are
 * registered with it; a file that drops it fails --check-config and a reload naming how many accounts hold it,
 * until the operator maps it (retired_levels) or allows it; start-up warns. The service identity is a reseller
 * of its own account (awdrop:reseller), so the registry holds only this file's accounts: aw13..aw15.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accountUrl, call, login } from '../helpers/http.js';
import { MAIN, startCli, type StartedCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { proxyConfigText } from '../helpers/proxy.js';
import { until } from '../helpers/raw-http.js';
import { swiftUrl } from '../helpers/swift-env.js';

const WITH = { container_count: { default: 1, L2: 2, Ldrop: 3 }, object_count: { default: 10 }, container_usage: { default: 1000 } };
const WITHOUT = { container_count: { default: 1, L2: 2 }, object_count: { default: 10 }, container_usage: { default: 1000 } };
const ACCOUNTS = ['aw13', 'aw14', 'aw15'];
const SERVICE = ['service_user = awdrop:reseller'];

describe('dropped levels', () => {
  let swift: string;
  let dir: string;
  let proxy: StartedCli;
  let file: string;
  const configText = async (quota: object, extra: string[] = []) =>
    proxyConfigText({ upstream: swift, quota, port: await freePort(), serviceLines: SERVICE, extraQuotaLines: extra });
  const checkConfig = (path: string): Promise<{ code: number; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [...MAIN, '--check-config', path], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('exit', (code) => resolve({ code: code ?? -1, stderr }));
    });

  before(async () => {
    swift = await swiftUrl();
    dir = await mkdtemp(join(tmpdir(), 'sqp-dropped-'));
    file = join(dir, 'proxy.conf');
    await writeFile(file, await configText(WITH));
    proxy = await startCli(['--config', file]);
    const reseller = { 'x-auth-token': (await login(swift, 'awdrop:reseller', 'awdroppass')).token };
    for (const account of ACCOUNTS) assert.equal((await call('POST', accountUrl(proxy.url, account), { ...reseller, 'x-account-meta-quota': 'Ldrop' })).status, 204);
  });
  after(async () => {
    proxy.child.kill('SIGTERM');
    await new Promise((resolve) => proxy.child.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  });

  test('--check-config refuses a file that drops a level three accounts hold, naming them; a mapping or allow_dropped_levels lets it pass', async () => {
    const without = join(dir, 'without.conf');
    await writeFile(without, await configText(WITHOUT));
    // The registry is written once Swift took each change (in the background): the three are there in a moment.
    let checked = await checkConfig(without);
    await until(async () => /3 known accounts hold level "Ldrop"/.test((checked = await checkConfig(without)).stderr), 'the three accounts registered', 10_000).catch(() => {});
    assert.equal(checked.code, 2, checked.stderr);
    assert.match(checked.stderr, /3 known accounts hold level "Ldrop", which the file lacks \(AUTH_aw13, AUTH_aw14, AUTH_aw15\)/);
    assert.match(checked.stderr, /retired_levels = Ldrop:<level>/);

    const mapped = join(dir, 'mapped.conf');
    await writeFile(mapped, await configText(WITHOUT, ['retired_levels = Ldrop:L2']));
    assert.equal((await checkConfig(mapped)).code, 0);
    const allowed = join(dir, 'allowed.conf');
    await writeFile(allowed, await configText(WITHOUT, ['allow_dropped_levels = true']));
    const passed = await checkConfig(allowed);
    assert.equal(passed.code, 0, passed.stderr);
    assert.match(passed.stderr, /warning: 3 known accounts hold level "Ldrop"/);
    const unknownTarget = join(dir, 'bad.conf');
    await writeFile(unknownTarget, await configText(WITHOUT, ['retired_levels = Ldrop:L9']));
    const bad = await checkConfig(unknownTarget);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /retired_levels.*"L9" is not a level of quota/);
  });

  test('a reload that drops it is refused and the running file stays; mapped, it is taken, and the accounts get the mapped level\'s limits', async () => {
    const admin = { 'x-auth-token': (await login(swift, 'aw13:admin', 'aw13pass')).token };
    await writeFile(file, await configText(WITHOUT));
    proxy.child.kill('SIGHUP');
    await until(() => /SIGHUP: configuration not reloaded[^\n]*3 known accounts hold level \\"Ldrop\\"/.test(proxy.output()), 'the reload refused', 15_000);
    // Still Ldrop's three containers.
    for (const c of ['a', 'b', 'c']) assert.equal((await call('PUT', `${accountUrl(proxy.url, 'aw13')}/${c}`, admin)).status, 201, c);

    await writeFile(file, await configText(WITHOUT, ['retired_levels = Ldrop:L2']));
    proxy.child.kill('SIGHUP');
    await until(() => /SIGHUP: configuration reloaded[^\n]*quota/.test(proxy.output()), 'the mapped reload', 15_000);
    // Held to L2 (2 containers), not default (1): aw14 gets a second container, not a third.
    const second = { 'x-auth-token': (await login(swift, 'aw14:admin', 'aw14pass')).token };
    const made = [];
    for (const c of ['a', 'b', 'c']) made.push((await call('PUT', `${accountUrl(proxy.url, 'aw14')}/${c}`, second)).status);
    assert.deepEqual(made, [201, 201, 403]);
  });

  test('start-up with a file that drops it says so (and starts)', async () => {
    const without = join(dir, 'start.conf');
    await writeFile(without, await configText(WITHOUT));
    const other = await startCli(['--config', without]);
    try {
      await until(() => /3 known accounts hold level \\"Ldrop\\"/.test(other.output()), 'the start-up warning', 15_000);
    } finally {
      other.child.kill('SIGTERM');
      await new Promise((resolve) => other.child.once('exit', resolve));
    }
  });
});
