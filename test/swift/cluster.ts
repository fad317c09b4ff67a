// Starts a real single-node OpenStack Swift (Debian's 2.30.1 packages) on loopback for tests and the demo.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { killGroup, runChecked, tail } from './run-command.js';
import { freePorts } from '../helpers/ports.js';
import { startDnsServer, STORAGE_DOMAIN } from './dns-server.js';

export interface SwiftCluster {
  url: string; // 'http://127.0.0.1:<proxyPort>' of Swift's proxy-server
  authUrl: string; // url + '/auth/v1.0'
  dir: string; // temp dir holding configs, rings, device, logs
  stop(): Promise<void>; // kills all servers + memcached, removes dir; idempotent
  /** With `hostAddressing`: the loopback DNS server (dns-server.ts) cname_lookup asks, `127.0.0.1:<port>`. */
  dns?: string;
}

/**
 * The environment variable naming the first cluster's dir in this process, set by startSwift: test files the
 * runner (test/run.ts) starts inherit its environment, and can start another proxy-server on the same rings
 * and storage servers (test/swift/keystone.ts).
 */
export const SWIFT_DIR_ENV = 'SWIFT_DIR';

/**
 * Swift's `[filter:domain_remap]` and `[filter:cname_lookup]` in the test pipeline (`hostAddressing`), in the
 * spelling the quota proxy reads them from its own config too. cname_lookup answers 400 to any host name that is
 * neither an IP nor a CNAME of the storage domain (`localhost` included), so the demo runs without them.
 */
export function hostAddressingSections(dns: string): string {
  return `[filter:domain_remap]
use = egg:swift#domain_remap
storage_domain = ${STORAGE_DOMAIN}

[filter:cname_lookup]
use = egg:swift#cname_lookup
storage_domain = ${STORAGE_DOMAIN}
lookup_depth = 2
nameservers = ${dns}
`;
}

export interface TempauthUser {
  account: string;
  user: string;
  key: string;
  groups: string[];
}

/** The quota tests' accounts qa1..qa24: an account admin and a reader without any group. */
function quotaTestUsers(): TempauthUser[] {
  return Array.from({ length: 24 }, (_, i) => [
    { account: `qa${i + 1}`, user: 'admin', key: `qa${i + 1}pass`, groups: ['.admin'] },
    { account: `qa${i + 1}`, user: 'reader', key: `qa${i + 1}read`, groups: [] },
  ]).flat();
}

/** The replica tests' accounts rep1..rep20 (test/integration/replicas.test.ts): an account admin. */
function replicaUsers(): TempauthUser[] {
  return Array.from({ length: 20 }, (_, i) => ({ account: `rep${i + 1}`, user: 'admin', key: `rep${i + 1}pass`, groups: ['.admin'] }));
}

/** The adversarial suite's tenants adv1..adv400 (test/adversarial/): an account admin and a reader without any group. */
function adversarialUsers(): TempauthUser[] {
  return Array.from({ length: 400 }, (_, i) => [
    { account: `adv${i + 1}`, user: 'admin', key: `adv${i + 1}pass`, groups: ['.admin'] },
    { account: `adv${i + 1}`, user: 'reader', key: `adv${i + 1}read`, groups: [] },
  ]).flat();
}

/** The operations tests' accounts ops1..ops60 (issue 23: workers, Sentinel, restarts, tracing): an account admin and a reader. */
function operationsUsers(): TempauthUser[] {
  return Array.from({ length: 60 }, (_, i) => [
    { account: `ops${i + 1}`, user: 'admin', key: `ops${i + 1}pass`, groups: ['.admin'] },
    { account: `ops${i + 1}`, user: 'reader', key: `ops${i + 1}read`, groups: [] },
  ]).flat();
}

/** The account-wide and override tests' accounts aw1..aw40 (test/integration/account-wide.test.ts, overrides.test.ts): an account admin. */
function accountWideUsers(): TempauthUser[] {
  return Array.from({ length: 40 }, (_, i) => ({ account: `aw${i + 1}`, user: 'admin', key: `aw${i + 1}pass`, groups: ['.admin'] }));
}

/**
 * The accounts pol1..pol30 of the storage-policy, account-wide soft-limit and seen-account tests
 * (test/integration/policies.test.ts, account-wide-soft.test.ts, accounts-cli.test.ts) and of the attacks on
 * them (test/adversarial/policy-attacks.test.ts: pol17..pol30): an account admin.
 */
function policyUsers(): TempauthUser[] {
  return Array.from({ length: 30 }, (_, i) => ({ account: `pol${i + 1}`, user: 'admin', key: `pol${i + 1}pass`, groups: ['.admin'] }));
}

/** The accounts lv1..lv12 of the tests of forms and S3 uploads into legacy-versioned containers (test/adversarial/legacy-uploads.test.ts). */
function legacyVersioningUsers(): TempauthUser[] {
  return Array.from({ length: 12 }, (_, i) => ({ account: `lv${i + 1}`, user: 'admin', key: `lv${i + 1}pass`, groups: ['.admin'] }));
}

export const TEMPAUTH_USERS: TempauthUser[] = [
  // The users of Swift's functional tests (test/sample.conf, etc/proxy-server.conf-sample). test5:tester5 is the
  // service-token user; its tests stay off unless test.conf names a service_prefix, as in sample.conf.
  { account: 'test', user: 'tester', key: 'testing', groups: ['.admin'] },
  { account: 'test', user: 'tester2', key: 'testing2', groups: ['.admin'] },
  { account: 'test', user: 'tester3', key: 'testing3', groups: [] },
  { account: 'test2', user: 'tester2', key: 'testing2', groups: ['.admin'] },
  { account: 'test5', user: 'tester5', key: 'testing5', groups: ['service'] },
  { account: 'reseller', user: 'reseller', key: 'reseller', groups: ['.reseller_admin'] },
  { account: 'system', user: 'root', key: 'testpass', groups: ['.admin'] },
  // A reader of every account that administers its own (test/integration/reseller-check.test.ts).
  { account: 'readers', user: 'auditor', key: 'auditorpass', groups: ['.admin', '.reseller_reader'] },
  ...quotaTestUsers(),
  ...adversarialUsers(),
  ...replicaUsers(),
  ...operationsUsers(),
  ...accountWideUsers(),
  ...policyUsers(),
  ...legacyVersioningUsers(),
  // A reseller admin of its own account: the dropped-level tests' service identity, with a registry of its own.
  { account: 'awdrop', user: 'reseller', key: 'awdroppass', groups: ['.reseller_admin'] },
];

/** tempauth's `user_<account>_<user> = <key> [groups]` lines, exactly as written into proxy-server.conf. */
export function tempauthConfigLines(users: TempauthUser[] = TEMPAUTH_USERS): string[] {
  return users.map((u) => `user_${u.account}_${u.user} = ${[u.key, ...u.groups].join(' ')}`);
}

// Each needed Debian package with a file it installs: checking files costs no subprocess.
const REQUIRED_PACKAGES: ReadonlyArray<{ pkg: string; file: string }> = [
  { pkg: 'swift', file: '/usr/bin/swift-ring-builder' },
  { pkg: 'swift-proxy', file: '/usr/bin/swift-proxy-server' },
  { pkg: 'swift-account', file: '/usr/bin/swift-account-server' },
  { pkg: 'swift-container', file: '/usr/bin/swift-container-server' },
  { pkg: 'swift-object', file: '/usr/bin/swift-object-server' },
  { pkg: 'python3-swiftclient', file: '/usr/bin/swift' },
  { pkg: 'memcached', file: '/usr/bin/memcached' },
  { pkg: 'python3-pytest', file: '/usr/lib/python3/dist-packages/pytest/__init__.py' },
  { pkg: 'python3-mock', file: '/usr/lib/python3/dist-packages/mock/__init__.py' },
  // The adversarial suite's S3 client (test/adversarial/s3_client.py): a signer that is not the proxy's.
  { pkg: 'python3-boto3', file: '/usr/lib/python3/dist-packages/boto3/__init__.py' },
  // cname_lookup's DNS client (eventlet pulls it in today; named because the test pipeline needs it).
  { pkg: 'python3-dnspython', file: '/usr/lib/python3/dist-packages/dns/resolver.py' },
  // The shared usage ledger of several proxies (ledger = redis://...).
  { pkg: 'redis-server', file: '/usr/bin/redis-server' },
  // A ledger that survives the loss of its primary (ledger = redis+sentinel://...): test/swift/sentinel.ts.
  { pkg: 'redis-sentinel', file: '/usr/bin/redis-sentinel' },
];

export const PYTHON = '/usr/bin/python3'; // Debian's python has the swift modules; one earlier on PATH may not
export const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;

let installing: Promise<void> | undefined;

/** Installs Swift, memcached and the functional tests' python modules from Debian if any is missing. */
export function ensureSwiftInstalled(): Promise<void> {
  installing ??= installMissingPackages(REQUIRED_PACKAGES, 'Swift test cluster').catch((err: unknown) => {
    installing = undefined; // let a later call try again
    throw err;
  });
  return installing;
}

/** apt-get installs those of `required` whose file is missing (as root; otherwise says what to install). */
export async function installMissingPackages(required: ReadonlyArray<{ pkg: string; file: string }>, what: string): Promise<void> {
  const missing = () => required.filter((r) => !existsSync(r.file)).map((r) => r.pkg);
  const packages = missing();
  if (packages.length === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${what}: Debian packages missing: ${packages.join(' ')}. Run as root so they can be installed, ` +
        `or install them first: apt-get update && apt-get install ${required.map((r) => r.pkg).join(' ')}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Another apt run on the machine (unattended upgrades, a second test run) may hold dpkg's lock: wait for it.
  const lockWait = ['-o', 'DPkg::Lock::Timeout=600'];
  await runChecked('apt-get', [...lockWait, 'update'], { env });
  await runChecked('apt-get', [...lockWait, 'install', '-y', '--no-install-recommends', ...packages], { env });
  const still = missing();
  if (still.length > 0) {
    throw new Error(`${what}: apt-get install left packages missing: ${still.join(' ')}`);
  }
}

type Server = 'proxy' | 'account' | 'container' | 'object';
const SERVERS: readonly Server[] = ['proxy', 'account', 'container', 'object'];
type Ports = Record<Server | 'memcached', number>;

/** A free loopback port per service, all different. */
async function allocatePorts(): Promise<Ports> {
  const [proxy, account, container, object, memcached] = (await freePorts(SERVERS.length + 1)) as [number, number, number, number, number];
  return { proxy, account, container, object, memcached };
}

// Settings every server shares. `user` is whoever runs the tests (root in CI): Swift drops privileges to it, and
// its default user `swift` could not write our dirs (every write would 503). log_address is no syslog socket, so
// Swift's syslog handler falls back to UDP on localhost:514, where nothing listens; the servers' `-v` console
// logging into dir/logs is what we read.
export function commonDefaults(dir: string, port: number): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 1
user = ${os.userInfo().username}
swift_dir = ${dir}
devices = ${path.join(dir, 'devices')}
mount_check = false
disable_fallocate = true
log_address = /dev/null
`;
}

function backendServerConf(dir: string, server: Exclude<Server, 'proxy'>, port: number): string {
  return `${commonDefaults(dir, port)}
[pipeline:main]
pipeline = healthcheck ${server}-server

[app:${server}-server]
use = egg:swift#${server}

[filter:healthcheck]
use = egg:swift#healthcheck
`;
}

// As an operator runs it: tempurl, formpost and the S3 API in front of the auth filter (they authenticate their
// own requests), and both kinds of object versioning allowed. Every middleware here can store data, and each
// is a way around the quota the proxy must close (test/adversarial/).
// cname_lookup and domain_remap where Swift documents them: after cache, before everything that reads the path.
const proxyPipeline = (hostAddressing: boolean) =>
  `catch_errors gatekeeper healthcheck proxy-logging cache listing_formats ${hostAddressing ? 'cname_lookup domain_remap ' : ''}bulk tempurl formpost s3api tempauth ` +
  'copy slo dlo versioned_writes symlink proxy-logging proxy-server';

// Filters whose config is only `use = egg:swift#<entry point>`.
const PLAIN_FILTERS: ReadonlyArray<[string, string]> = [
  ['catch_errors', 'catch_errors'],
  ['gatekeeper', 'gatekeeper'],
  ['healthcheck', 'healthcheck'],
  ['proxy-logging', 'proxy_logging'],
  ['listing_formats', 'listing_formats'],
  ['bulk', 'bulk'],
  ['tempurl', 'tempurl'],
  ['formpost', 'formpost'],
  ['s3api', 's3api'],
  ['copy', 'copy'],
  ['dlo', 'dlo'],
  ['symlink', 'symlink'],
];

function proxyServerConf(dir: string, ports: Ports, dns: string | undefined): string {
  const plain = PLAIN_FILTERS.map(([name, egg]) => `[filter:${name}]\nuse = egg:swift#${egg}\n`).join('\n');
  // Settings as in Swift's SAIO (doc/saio/swift/proxy-server.conf), which its functional tests assume.
  // The timeouts are Swift's defaults, spelled out so a test can see what the proxy in front must outlast.
  return `${commonDefaults(dir, ports.proxy)}
[pipeline:main]
pipeline = ${proxyPipeline(dns !== undefined)}

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true
client_timeout = 60
node_timeout = 10
conn_timeout = 0.5

${plain}
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${ports.memcached}

[filter:tempauth]
use = egg:swift#tempauth
${tempauthConfigLines().join('\n')}

[filter:slo]
use = egg:swift#slo
allow_async_delete = true

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true
${dns === undefined ? '' : `\n${hostAddressingSections(dns)}`}`;
}

function swiftConf(): string {
  const secret = () => randomBytes(8).toString('hex');
  return `[swift-hash]
swift_hash_path_prefix = ${secret()}
swift_hash_path_suffix = ${secret()}

[storage-policy:0]
name = Policy-0
default = yes

[storage-policy:1]
name = gold
`;
}

async function writeConfigs(dir: string, ports: Ports, dns: string | undefined): Promise<void> {
  await mkdir(path.join(dir, 'devices', 'd1'), { recursive: true });
  await mkdir(path.join(dir, 'logs'));
  await writeFile(path.join(dir, 'swift.conf'), swiftConf());
  await writeFile(path.join(dir, 'run-server.py'), SERVER_LAUNCHER);
  await writeFile(path.join(dir, 'proxy-server.conf'), proxyServerConf(dir, ports, dns));
  for (const server of ['account', 'container', 'object'] as const) {
    await writeFile(path.join(dir, `${server}-server.conf`), backendServerConf(dir, server, ports[server]));
  }
}

// swift-ring-builder's own CLI entry point, called once per command inside one python: nine separate
// swift-ring-builder processes spend about 4 s starting python on a 2-core machine.
const RING_BUILDER = `import json, sys
from swift.cli.ringbuilder import main
for command in json.loads(sys.argv[1]):
    try:
        main(['swift-ring-builder'] + command)
    except SystemExit as e:
        if e.code not in (None, 0):
            sys.exit('swift-ring-builder %s exited %s' % (' '.join(command), e.code))`;

/**
 * One 1-replica ring per ring type, each with the single device d1 on that server's port; storage policy 1
 * ("gold", for per-policy limits) has an object ring of its own on the same device.
 */
async function buildRings(dir: string, ports: Ports): Promise<void> {
  const rings = [['account', ports.account], ['container', ports.container], ['object', ports.object], ['object-1', ports.object]] as const;
  const commands = rings.flatMap(([ring, port]) => [
    [`${ring}.builder`, 'create', '10', '1', '1'],
    [`${ring}.builder`, 'add', `r1z1-127.0.0.1:${port}/d1`, '1'],
    [`${ring}.builder`, 'rebalance'],
  ]);
  await runChecked(PYTHON, ['-c', RING_BUILDER, JSON.stringify(commands)], { cwd: dir });
}

// Swift 2.30.1's servers read swift.conf (hash prefix/suffix, storage policies, constraints) from the fixed path
// /etc/swift/swift.conf; swift_dir only locates the rings. This launcher points that path at our own swift.conf
// before Swift's modules load it, then runs the real server script:
//   python3 run-server.py SWIFT_CONF /usr/bin/swift-proxy-server CONF -v
const SERVER_LAUNCHER = `import runpy, sys
from swift.common import utils
utils.SWIFT_CONF_FILE = sys.argv[1]
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
`;

/** PYTHON's arguments to run a Swift server `script` with `conf`, with the swift.conf of the cluster in `clusterDir`. */
export function swiftServerArgs(clusterDir: string, script: string, conf: string): string[] {
  return [path.join(clusterDir, 'run-server.py'), path.join(clusterDir, 'swift.conf'), script, conf, '-v'];
}

interface Daemon {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  logFile: string;
}

/** Every cluster not yet stopped, so the exit and signal handlers can kill what a crashed run left behind. */
const liveClusters = new Set<RunningCluster>();
let handlersInstalled = false;

function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const cluster of liveClusters) cluster.killNow();
  });
  // The servers run in process groups of their own (Swift calls setsid anyway), so a Ctrl-C never reaches them.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      for (const cluster of liveClusters) cluster.killNow();
      // Alone, our listener would swallow the signal: give it Node's default behaviour back and re-raise it.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/** Daemons started from one temp dir (configs, logs in dir/logs), stopped together, the dir removed with them. */
export class RunningCluster {
  private readonly daemons: Daemon[] = [];
  private stopping: Promise<void> | undefined;
  private dns: { close(): Promise<void> } | undefined;

  constructor(readonly dir: string) {
    installCleanupHandlers();
    liveClusters.add(this);
  }

  /** Starts a daemon in its own process group with its output going to dir/logs/<name>.log. */
  async spawn(name: string, cmd: string, args: string[]): Promise<void> {
    const logFile = path.join(this.dir, 'logs', `${name}.log`);
    const log = await open(logFile, 'a');
    try {
      const child = spawn(cmd, args, { stdio: ['ignore', log.fd, log.fd], detached: true });
      // Not holding the event loop open: a test that forgets stop() still exits, and the exit handler cleans up.
      child.unref();
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.once('error', () => resolve());
      });
      this.daemons.push({ name, child, exited, logFile });
    } finally {
      await log.close();
    }
  }

  /** The loopback DNS server cname_lookup asks, in this process; its `127.0.0.1:<port>`. */
  async startDns(): Promise<string> {
    const server = await startDnsServer();
    this.dns = server;
    return server.address;
  }

  /** Throws if a daemon has died, e.g. on a bad config or a port taken meanwhile. */
  assertAllRunning(): void {
    const dead = this.daemons.find((d) => d.child.exitCode !== null || d.child.signalCode !== null);
    if (dead) throw new Error(`${dead.name} exited with ${dead.child.exitCode ?? dead.child.signalCode}`);
  }

  async logTails(lines = 15): Promise<string> {
    const parts = await Promise.all(
      this.daemons.map(async (d) => {
        const text = await readFile(d.logFile, 'utf8').catch(() => '');
        return `--- ${d.name} (${d.logFile}) ---\n${tail(text, lines)}`;
      }),
    );
    return parts.join('\n');
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    await Promise.all(this.daemons.map((d) => terminate(d)));
    await this.dns?.close();
    await rm(this.dir, { recursive: true, force: true });
    liveClusters.delete(this);
  }

  /** Synchronous last resort for exit and signal handlers, which cannot wait. */
  killNow(): void {
    for (const d of this.daemons) killGroup(d.child.pid, 'SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    liveClusters.delete(this);
  }
}

/** SIGTERM to the daemon's process group (Swift's workers included), SIGKILL if it is not gone in time. */
async function terminate(d: Daemon): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  killGroup(d.child.pid, 'SIGTERM');
  const graceful = await Promise.race([d.exited.then(() => true), delay(STOP_GRACE_MS, false)]);
  if (!graceful) {
    killGroup(d.child.pid, 'SIGKILL');
    await d.exited;
  }
}

interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** One loopback request without keep-alive, so no pooled socket outlives the probe. */
function request(method: string, url: string, headers: Record<string, string> = {}, body = ''): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

function expectStatus(res: HttpResponse, what: string, ok: (status: number) => boolean): void {
  if (!ok(res.status)) throw new Error(`${what} answered ${res.status}`);
}

const is2xx = (status: number) => status >= 200 && status < 300;

/**
 * One readiness probe: healthcheck, a tempauth login, and a container + object write (cleaned up again). The
 * first writes after start can 503 while the backend servers are still binding.
 */
async function probeReady(url: string): Promise<void> {
  expectStatus(await request('GET', `${url}/healthcheck`), 'GET /healthcheck', (s) => s === 200);
  const tester = TEMPAUTH_USERS[0]!;
  const auth = await request('GET', `${url}/auth/v1.0`, {
    'X-Auth-User': `${tester.account}:${tester.user}`,
    'X-Auth-Key': tester.key,
  });
  expectStatus(auth, 'auth as test:tester', (s) => s === 200);
  const token = auth.headers['x-auth-token'];
  const storageUrl = auth.headers['x-storage-url'];
  if (typeof token !== 'string' || typeof storageUrl !== 'string') throw new Error('auth returned no token/URL');
  const headers = { 'X-Auth-Token': token };
  const container = `${storageUrl}/swift-cluster-probe`;
  expectStatus(await request('PUT', container, headers), 'container PUT', is2xx);
  expectStatus(await request('PUT', `${container}/probe`, headers, 'probe'), 'object PUT', is2xx);
  expectStatus(await request('DELETE', `${container}/probe`, headers), 'object DELETE', is2xx);
  expectStatus(await request('DELETE', container, headers), 'container DELETE', is2xx);
}

async function waitUntilReady(cluster: RunningCluster, url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastProblem = 'no probe finished';
  for (;;) {
    cluster.assertAllRunning();
    try {
      await probeReady(url);
      return;
    } catch (err) {
      lastProblem = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`not ready after ${START_TIMEOUT_MS} ms: ${lastProblem}`);
    await delay(200);
  }
}

export async function waitForPort(cluster: RunningCluster, port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    cluster.assertAllRunning();
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(true));
      socket.once('error', () => resolve(false));
      socket.once('connect', () => socket.destroy());
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${START_TIMEOUT_MS} ms`);
    await delay(50);
  }
}

export async function startSwift(opts: { log?: (line: string) => void; hostAddressing?: boolean } = {}): Promise<SwiftCluster> {
  const log = opts.log ?? (() => {});
  await ensureSwiftInstalled();
  const startedAt = Date.now();
  const cluster = new RunningCluster(await mkdtemp(path.join(os.tmpdir(), 'swift-cluster-')));
  const { dir } = cluster;
  try {
    const ports = await allocatePorts();
    const dns = opts.hostAddressing ? await cluster.startDns() : undefined;
    await writeConfigs(dir, ports, dns);
    await buildRings(dir, ports);
    const memcachedArgs = ['-l', '127.0.0.1', '-p', String(ports.memcached), '-U', '0'];
    // memcached refuses to run as root without -u.
    if (process.getuid?.() === 0) memcachedArgs.unshift('-u', 'root');
    await cluster.spawn('memcached', 'memcached', memcachedArgs);
    await waitForPort(cluster, ports.memcached);
    for (const server of SERVERS) {
      const script = `/usr/bin/swift-${server}-server`;
      const conf = path.join(dir, `${server}-server.conf`);
      await cluster.spawn(server, PYTHON, swiftServerArgs(dir, script, conf));
    }
    const url = `http://127.0.0.1:${ports.proxy}`;
    await waitUntilReady(cluster, url);
    log(`swift: proxy ${url} ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (dir ${dir})`);
    process.env[SWIFT_DIR_ENV] ??= dir;
    const stop = async () => {
      await cluster.stop();
      if (process.env[SWIFT_DIR_ENV] === dir) delete process.env[SWIFT_DIR_ENV];
    };
    return { url, authUrl: `${url}/auth/v1.0`, dir, stop, ...(dns ? { dns } : {}) };
  } catch (err) {
    const logs = await cluster.logTails();
    await cluster.stop();
    throw new Error(`startSwift failed: ${(err as Error).message}\n${logs}`);
  }
}
