/**
 * The proxy in front of a Swift that authenticates with a real Keystone (test/swift/keystone.ts: authtoken and
 * keystoneauth, on the test Swift's storage servers), its service identity a Keystone user (service_auth =
 * keystone) or application credential: who may set a level, the limits of each kind in cached and precise mode,
 * usage and state read and written as that identity, and its token renewed when Swift stops taking it. Every
 * outcome is checked on that Swift directly, not only through the proxy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { proxyConfigText, startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { MAIN } from '../helpers/cli.js';
import { swiftDir } from '../helpers/swift-env.js';
import { call } from '../helpers/http.js';
import { applicationCredential, projectToken, type KeystoneAdmin } from '../helpers/keystone-api.js';
import { startKeystoneSwift, SWIFT_ROLES, type KeystoneSwift } from '../swift/keystone.js';
import { ec2Tests } from './keystone-ec2.js';
import { ec2AttackTests } from './keystone-ec2-attacks.js';
import { openKeystoneArena } from './keystone-ec2-arena.js';
import { s3Attacks } from '../adversarial/s3-attacks.js';
import { MODES } from '../adversarial/arena.js';

const BIG = 10 ** 12;
const LEVELS = {
  container_count: { default: 3, count3: 100, bytes5k: 100 },
  object_count: { default: 1000, count3: 3, bytes5k: 1000 },
  container_usage: { default: BIG, count3: BIG, bytes5k: 5000 },
};

// Test credentials of the local Keystone only.
const SERVICE = { user: 'quota-proxy', password: 'quota-proxy-test-pw' };
const RESELLER = { user: 'reseller', password: 'reseller-test-pw' };
/** A service identity that may also list Keystone's projects (the admin role). */
const LISTER = { user: 'quota-lister', password: 'quota-lister-test-pw' };
const run = promisify(execFile);
const OWNER = { user: 'owner', password: 'owner-test-pw' };
const MEMBER = { user: 'member', password: 'member-test-pw' };
const AUDITOR = { user: 'auditor', password: 'auditor-test-pw' };
const PLAIN = { user: 'plain', password: 'plain-test-pw' };

interface Tenant {
  account: string;
  owner: { 'x-auth-token': string };
  member: { 'x-auth-token': string };
  /** A URL of the account through `proxy` (the suite's proxy unless given). */
  viaProxy(path?: string, proxy?: RunningProxy): string;
  /** The same URL straight to the Keystone Swift. */
  direct(path?: string): string;
}

describe('Keystone: service identity and quotas in front of authtoken + keystoneauth', () => {
  let ks: KeystoneSwift;
  let admin: KeystoneAdmin;
  let proxy: RunningProxy;
  let serviceProject: string;
  let serviceUser: string;
  let reseller: { 'x-auth-token': string };
  const users = new Map<string, string>();
  let tenants = 0;
  const proxies: RunningProxy[] = [];

  const passwordLines = (who: { user: string; password: string }) => [
    'service_auth = keystone',
    `auth_url = ${ks.keystoneUrl}/v3`,
    'auth_type = password',
    `username = ${who.user}`,
    'user_domain_name = Default',
    `password = ${who.password}`,
    'project_name = quota-service',
    'project_domain_id = default',
  ];

  async function another(options: Partial<ProxyOptions> = {}): Promise<RunningProxy> {
    // The Keystone Swift runs s3api with s3token: a proxy in front of it needs its [filter:s3token] (or it does not start).
    const s3token = ['[filter:s3token]', `auth_uri = ${ks.keystoneUrl}/v3`, ''];
    const started = await startProxy({ upstream: ks.swiftUrl, quota: LEVELS, serviceLines: passwordLines(SERVICE), ...options, extraSections: [...s3token, ...(options.extraSections ?? [])] });
    proxies.push(started);
    return started;
  }

  /** A fresh project: OWNER operates its account, MEMBER is a member without operator role. */
  async function tenant(level?: string): Promise<Tenant> {
    const project = await admin.project(`tenant${++tenants}`);
    await admin.grant(users.get(OWNER.user)!, project, SWIFT_ROLES.operator);
    await admin.grant(users.get(MEMBER.user)!, project, 'member');
    const account = `AUTH_${project}`;
    const made: Tenant = {
      account,
      owner: { 'x-auth-token': (await projectToken(ks.keystoneUrl, OWNER.user, OWNER.password, project)).token },
      member: { 'x-auth-token': (await projectToken(ks.keystoneUrl, MEMBER.user, MEMBER.password, project)).token },
      viaProxy: (path = '', through = proxy) => `${through.url}/v1/${account}${path}`,
      direct: (path = '') => `${ks.swiftUrl}/v1/${account}${path}`,
    };
    if (level) await setLevel(made, level);
    return made;
  }

  async function setLevel(t: Tenant, level: string, through = proxy): Promise<void> {
    const answer = await call('POST', t.viaProxy('', through), { ...reseller, 'x-account-meta-quota': level });
    assert.equal(answer.status, 204, answer.body);
  }

  /** The account's stored level, as Swift has it. */
  async function storedLevel(t: Tenant): Promise<string | undefined> {
    const head = await call('HEAD', t.direct(), reseller);
    assert.ok(head.status >= 200 && head.status < 300, `HEAD ${t.account}: ${head.status}`);
    return head.headers['x-account-meta-quota'];
  }

  async function usage(t: Tenant, container: string): Promise<{ objects: number; bytes: number }> {
    const head = await call('HEAD', t.direct(`/${container}`), reseller);
    assert.equal(head.status, 204, `HEAD ${container}: ${head.status}`);
    return { objects: Number(head.headers['x-container-object-count']), bytes: Number(head.headers['x-container-bytes-used']) };
  }

  async function makeContainer(t: Tenant, name: string, through = proxy): Promise<void> {
    const answer = await call('PUT', t.viaProxy(`/${name}`, through), t.owner);
    assert.equal(answer.status, 201, `PUT ${name}: ${answer.status} ${answer.body}`);
  }

  before(async () => {
    const startedAt = Date.now();
    ks = await startKeystoneSwift(await swiftDir(), { log: (line) => process.stdout.write(`${line}\n`) });
    admin = ks.admin;
    serviceProject = await admin.project('quota-service');
    serviceUser = await admin.user(SERVICE.user, SERVICE.password);
    await admin.grant(serviceUser, serviceProject, SWIFT_ROLES.resellerAdmin);
    const resellerProject = await admin.project('resellers');
    const resellerUser = await admin.user(RESELLER.user, RESELLER.password);
    await admin.grant(resellerUser, resellerProject, SWIFT_ROLES.resellerAdmin);
    reseller = { 'x-auth-token': (await projectToken(ks.keystoneUrl, RESELLER.user, RESELLER.password, resellerProject)).token };
    for (const who of [OWNER, MEMBER, AUDITOR, PLAIN]) users.set(who.user, await admin.user(who.user, who.password));
    proxy = await another();
    process.stdout.write(`keystone test setting ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`);
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await ks?.stop();
  });

  test('a reseller admin\'s Keystone token sets a level (204, held by Swift); an operator gets the proxy\'s 403, a member Swift\'s', async () => {
    const t = await tenant();
    await setLevel(t, 'count3');
    assert.equal(await storedLevel(t), 'count3');
    const described = await call('HEAD', t.viaProxy(), t.owner);
    assert.equal(described.headers['x-account-quota-level'], 'count3', 'the proxy reads the level as its service identity');
    assert.equal(described.headers['x-account-quota-container-count'], '100');

    const byOwner = await call('POST', t.viaProxy(), { ...t.owner, 'x-account-meta-quota': 'bytes5k' });
    assert.equal(byOwner.status, 403);
    assert.match(byOwner.body, /reseller admin/);
    const byMember = await call('POST', t.viaProxy(), { ...t.member, 'x-account-meta-quota': 'bytes5k' });
    assert.equal(byMember.status, 403, 'keystoneauth lets a member without an operator role change nothing');
    assert.doesNotMatch(byMember.body, /quota|reseller/i);
    assert.equal(await storedLevel(t), 'count3');
  });

  test('a reader of every account (keystoneauth\'s system_reader_roles) is no reseller admin, though Swift lets it HEAD any account', async () => {
    const own = await admin.project('auditors');
    const auditor = users.get(AUDITOR.user)!;
    await admin.grant(auditor, own, SWIFT_ROLES.operator);
    await admin.grant(auditor, own, SWIFT_ROLES.systemReader);
    const token = { 'x-auth-token': (await projectToken(ks.keystoneUrl, AUDITOR.user, AUDITOR.password, own)).token };
    const other = await tenant();
    // What made a HEAD of an account nobody owns the wrong question: a reader passes it.
    const nobodys = await call('HEAD', `${ks.swiftUrl}/v1/AUTH_quota-proxy-reseller-probe`, token);
    assert.ok(nobodys.status >= 200 && nobodys.status < 300, `Swift lets a system reader HEAD any account: ${nobodys.status}`);
    assert.ok((await call('HEAD', other.direct(), token)).status < 300);

    // An operator of its own account, which Swift would let it POST to: only the proxy stands in the way.
    const mine = `${proxy.url}/v1/AUTH_${own}`;
    const attempt = await call('POST', mine, { ...token, 'x-account-meta-quota': 'bytes5k' });
    assert.equal(attempt.status, 403, attempt.body);
    assert.match(attempt.body, /only a reseller admin/);
    const stored = await call('HEAD', `${ks.swiftUrl}/v1/AUTH_${own}`, reseller);
    assert.equal(stored.headers['x-account-meta-quota'], undefined);
  });

  test('container_count: the 4th container at level default (3) is refused with 403; Swift has 3', async () => {
    const t = await tenant();
    for (const name of ['c1', 'c2', 'c3']) await makeContainer(t, name);
    const fourth = await call('PUT', t.viaProxy('/c4'), t.owner);
    assert.equal(fourth.status, 403);
    assert.equal(fourth.headers['x-quota-exceeded'], 'container_count');
    assert.match(fourth.body, /^Reached container limit of 3/);
    const listing = await call('GET', t.direct(), t.owner);
    assert.deepEqual(listing.body.trim().split('\n'), ['c1', 'c2', 'c3']);
  });

  test('object_count and container_usage: the next object past the limit is refused with 413; Swift holds what was admitted', async () => {
    const counted = await tenant('count3');
    await makeContainer(counted, 'c');
    for (let i = 0; i < 3; i++) assert.equal((await call('PUT', counted.viaProxy(`/c/o${i}`), counted.owner, 'x')).status, 201);
    const fourth = await call('PUT', counted.viaProxy('/c/o3'), counted.owner, 'x');
    assert.equal(fourth.status, 413);
    assert.equal(fourth.headers['x-quota-exceeded'], 'object_count');
    assert.equal((await usage(counted, 'c')).objects, 3);

    const sized = await tenant('bytes5k');
    await makeContainer(sized, 'c');
    assert.equal((await call('PUT', sized.viaProxy('/c/a'), sized.owner, Buffer.alloc(4000))).status, 201);
    const over = await call('PUT', sized.viaProxy('/c/b'), sized.owner, Buffer.alloc(2000));
    assert.equal(over.status, 413);
    assert.equal(over.headers['x-quota-exceeded'], 'container_usage');
    assert.deepEqual(await usage(sized, 'c'), { objects: 1, bytes: 4000 });
  });

  test('precise mode: 12 concurrent uploads into a container with object_count 3 admit exactly 3', async () => {
    const precise = await another({ preciseMode: true });
    const t = await tenant('count3');
    await makeContainer(t, 'race', precise);
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => call('PUT', t.viaProxy(`/race/o${i}`, precise), t.owner, 'x')));
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 201).length, 3, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 413).length, 9, statuses.join(' '));
    assert.equal((await usage(t, 'race')).objects, 3);
  });

  test('the usage report, read as the service identity, is what Swift holds', async () => {
    const t = await tenant('bytes5k');
    await makeContainer(t, 'r');
    assert.equal((await call('PUT', t.viaProxy('/r/a'), t.owner, Buffer.alloc(1234))).status, 201);
    const answer = await call('GET', `${proxy.url}/quota/report?account=${t.account}`, reseller);
    assert.equal(answer.status, 200, answer.body);
    const report = JSON.parse(answer.body) as { accounts: Array<{ account: string; level: string; containers: { used: number }; container_list: Array<{ name: string; objects: { used: number }; bytes: { used: number; hard: number } }> }> };
    const [account] = report.accounts;
    assert.equal(account?.account, t.account);
    assert.equal(account.level, 'bytes5k');
    assert.equal(account.containers.used, 1);
    const direct = await usage(t, 'r');
    assert.deepEqual(account.container_list.map((c) => [c.name, c.objects.used, c.bytes.used, c.bytes.hard]), [['r', direct.objects, direct.bytes, 5000]]);
    assert.deepEqual(direct, { objects: 1, bytes: 1234 });
  });

  test('the proxy\'s own state goes to its Keystone project\'s account (AUTH_<project id>) when a tenant fills its metadata', async () => {
    const stateful = await another({ extraQuotaLines: ['soft_ratio = 0.5', 'grace_period = 1h'] });
    const t = await tenant('count3');
    await makeContainer(t, 'c', stateful);
    const full: Record<string, string> = { ...t.owner };
    for (let i = 0; i < 90; i++) full[`x-container-meta-k${i}`] = 'v';
    assert.equal((await call('POST', t.direct('/c'), full)).status, 204, 'Swift takes 90 metadata items, no more');
    // Soft limit 1 (half of 3): the second object starts the grace period, which must be kept somewhere.
    for (const name of ['a', 'b']) assert.equal((await call('PUT', t.viaProxy(`/c/${name}`, stateful), t.owner, 'x')).status, 201);
    await stateful.gate.watch.flush();
    const kept = await call('GET', `${ks.swiftUrl}/v1/AUTH_${serviceProject}/quota-proxy-state`, reseller);
    assert.equal(kept.status, 200, `the state container in the service project's account: ${kept.status}`);
    const names = kept.body.trim().split('\n');
    assert.equal(names.filter((name) => name.includes(t.account)).length, 1, names.join(', '));
  });

  test('a token Swift refuses (revoked in Keystone) is renewed, once, and the write goes on', async () => {
    const t = await tenant();
    await makeContainer(t, 'before'); // the proxy holds a token of the service identity now
    const issuedBefore = await projectToken(ks.keystoneUrl, SERVICE.user, SERVICE.password, serviceProject);
    assert.ok((await call('HEAD', t.direct(), { 'x-auth-token': issuedBefore.token })).status < 300);

    // Disabling a user revokes every token it was issued; enabled again, it gets new ones. Keystone's tokens
    // carry whole seconds: one issued in the second of the revocation would count as revoked too.
    await admin.setEnabled(serviceUser, false);
    await admin.setEnabled(serviceUser, true);
    await sleep(1100);
    const refused = await call('HEAD', t.direct(), { 'x-auth-token': issuedBefore.token });
    assert.equal(refused.status, 401, 'Swift refuses the tokens issued before, the proxy\'s among them');

    const fresh = await tenant();
    for (const name of ['c1', 'c2', 'c3']) await makeContainer(fresh, name);
    const fourth = await call('PUT', fresh.viaProxy('/c4'), fresh.owner);
    assert.equal(fourth.status, 403, `usage read with the renewed token: ${fourth.status} ${fourth.body}`);
    assert.equal(fourth.headers['x-quota-exceeded'], 'container_count');
    assert.equal((await call('GET', fresh.direct(), fresh.owner)).body.trim().split('\n').length, 3);
  });

  test('an application credential as the service identity', async () => {
    const owner = await projectToken(ks.keystoneUrl, SERVICE.user, SERVICE.password, serviceProject);
    const credential = await applicationCredential(ks.keystoneUrl, owner, 'quota-proxy', [SWIFT_ROLES.resellerAdmin]);
    const lines = ['service_auth = keystone', `auth_url = ${ks.keystoneUrl}`, 'auth_type = v3applicationcredential', `application_credential_id = ${credential.id}`, `application_credential_secret = ${credential.secret}`];
    const viaCredential = await another({ serviceLines: lines });
    const t = await tenant();
    await setLevel(t, 'count3', viaCredential);
    assert.equal(await storedLevel(t), 'count3');
    await makeContainer(t, 'c', viaCredential);
    for (let i = 0; i < 3; i++) assert.equal((await call('PUT', t.viaProxy(`/c/o${i}`, viaCredential), t.owner, 'x')).status, 201);
    const refused = await call('PUT', t.viaProxy('/c/o3', viaCredential), t.owner, 'x');
    assert.equal(refused.status, 413);
    assert.equal(refused.headers['x-quota-exceeded'], 'object_count');
    assert.equal((await usage(t, 'c')).objects, 3);
  });

  test('a service identity Keystone refuses, or whose token lacks the reseller admin role: writes get 503 and the log says why', async () => {
    await admin.grant(users.get(PLAIN.user)!, serviceProject, 'member');
    const cases = [
      { who: PLAIN, reason: /lacks the role ResellerAdmin: Swift's keystoneauth lets only that role read and write every account/ },
      { who: { ...SERVICE, password: 'not-the-password' }, reason: /Keystone refused the service identity, Keystone user quota-proxy \(domain Default\) in project quota-service .* \(status 401/ },
    ];
    for (const { who, reason } of cases) {
      const lines: string[] = [];
      const refusing = await another({ serviceLines: passwordLines(who), logStream: { write: (line) => lines.push(line) } });
      const t = await tenant();
      const answer = await call('PUT', t.viaProxy('/c', refusing), t.owner);
      assert.equal(answer.status, 503, answer.body);
      assert.equal((await call('HEAD', t.direct('/c'), t.owner)).status, 404, 'nothing was written');
      const logged = lines.map((line) => JSON.parse(line) as { msg: string; err?: { message: string } }).find((entry) => entry.err && reason.test(entry.err.message));
      assert.ok(logged, `a log line with ${reason}:\n${lines.join('')}`);
      assert.doesNotMatch(lines.join(''), /not-the-password|plain-test-pw/);
    }
  });
  test('accounts list knows the Keystone projects the service identity may list (with the admin role); without, it lists the others', async () => {
    const lister = await admin.user(LISTER.user, LISTER.password);
    await admin.grant(lister, serviceProject, SWIFT_ROLES.resellerAdmin);
    await admin.grant(lister, serviceProject, 'admin');
    // A project whose account has a container but no level set: known only from Keystone.
    const t = await tenant();
    await makeContainer(t, 'c');
    const dir = await mkdtemp(join(tmpdir(), 'sqp-ks-accounts-'));
    try {
      const listed = async (who: { user: string; password: string }) => {
        const file = join(dir, `${who.user}.conf`);
        // No tempauth users: the accounts are Keystone's (and the registry's).
        await writeFile(file, proxyConfigText({ upstream: ks.swiftUrl, quota: LEVELS, serviceLines: passwordLines(who), tempauthUsers: [] }));
        const { stdout } = await run(process.execPath, [...MAIN, 'accounts', '--config', file, 'list', '--json'], { timeout: 120_000 });
        return (JSON.parse(stdout) as Array<{ account: string; usage: { containers: number } }>).map((a) => a.account);
      };
      assert.ok((await listed(LISTER)).includes(t.account), 'a project of Keystone\'s, listed by an admin');
      assert.ok(!(await listed(SERVICE)).includes(t.account), 'not listed without the role to list projects');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  ec2Tests({ ks: () => ks, admin: () => admin, serviceProject: () => serviceProject, serviceLines: (who) => passwordLines(who) });
  ec2AttackTests({ ks: () => ks, admin: () => admin, serviceProject: () => serviceProject, serviceLines: (who) => passwordLines(who) });
  // The adversarial suite's S3 attacks, signed with EC2 credentials (cached mode: the admission after the
  // signature is the same code as tempauth's, which the adversarial suite runs in both modes).
  s3Attacks({
    title: (mode) => `S3 API with Keystone EC2 credentials, ${mode.name}`,
    modes: MODES.filter((mode) => !mode.precise),
    open: (mode) => openKeystoneArena({ ks, admin, serviceProject, serviceLines: passwordLines, resellerToken: reseller['x-auth-token'] }, mode, 'adv-ks'),
    hostAddressing: false,
  });
});
