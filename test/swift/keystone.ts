/**
 * A real Keystone (Debian's python3-keystone, sqlite in a temp dir) and a second Swift proxy-server that
 * authenticates with it (keystonemiddleware's authtoken, Swift's keystoneauth), in front of the storage servers
 * and rings of the test Swift that cluster.ts runs: the setting of most production Swift clusters, on loopback.
 *
 * Debian's `keystone` package is not used: its postinst runs dbconfig, bootstraps an admin and starts a uwsgi
 * Keystone service on port 5000. python3-keystone has the same Keystone, `keystone-manage` and the WSGI app,
 * and starts nothing.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { freePorts } from '../helpers/ports.js';
import { KeystoneAdmin } from '../helpers/keystone-api.js';
import { commonDefaults, installMissingPackages, PYTHON, RunningCluster, START_TIMEOUT_MS, swiftServerArgs, waitForPort } from './cluster.js';

// Test credentials of these local services only.
const KEYSTONE_ADMIN_PASSWORD = 'keystone-test-admin';
/** The user Swift's authtoken validates tokens as (role `service`, project `service`). */
const SWIFT_SERVICE_USER = { name: 'swift', password: 'swift-test-service' };

/** keystoneauth's settings in the Swift this harness runs (the names the tests give roles). */
export const SWIFT_ROLES = {
  resellerAdmin: 'ResellerAdmin',
  operator: 'swiftoperator',
  /** keystoneauth's system_reader_roles: GET and HEAD on every account, nothing else. */
  systemReader: 'SwiftReader',
} as const;

const REQUIRED_PACKAGES: ReadonlyArray<{ pkg: string; file: string }> = [
  { pkg: 'python3-keystone', file: '/usr/bin/keystone-manage' },
  { pkg: 'python3-keystonemiddleware', file: '/usr/lib/python3/dist-packages/keystonemiddleware/auth_token/__init__.py' },
];

let installing: Promise<void> | undefined;

/** Installs Keystone and keystonemiddleware from Debian if missing (as root). */
export function ensureKeystoneInstalled(): Promise<void> {
  installing ??= installMissingPackages(REQUIRED_PACKAGES, 'Keystone test service').catch((err: unknown) => {
    installing = undefined;
    throw err;
  });
  return installing;
}

export interface KeystoneSwift {
  /** Keystone's base URL (`auth_url` without /v3). */
  keystoneUrl: string;
  /** The Swift proxy-server with authtoken + keystoneauth. */
  swiftUrl: string;
  admin: KeystoneAdmin;
  stop(): Promise<void>;
}

function keystoneConf(dir: string): string {
  return `[DEFAULT]
use_stderr = true

[database]
connection = sqlite:///${path.join(dir, 'keystone.db')}

[fernet_tokens]
key_repository = ${path.join(dir, 'fernet-keys')}

[fernet_receipts]
key_repository = ${path.join(dir, 'fernet-keys')}

[credential]
key_repository = ${path.join(dir, 'credential-keys')}
# Keystone's cache keeps a credential without its encrypted blob: every s3tokens and EC2 credential read after
# the first answered 500 (KeyError 'encrypted_blob' in credential/core.py), with [cache] enabled below.
caching = false

[identity]
# bcrypt's least work: every token request of a user checks a password hash.
password_hash_rounds = 4

[token]
expiration = 3600

[cache]
# Keystone's own cache, in its process: a token validated once is answered from memory (here 25 ms instead of
# 150-250 ms assembling it from sqlite again, per request Swift gets); revoking tokens invalidates it.
enabled = true
backend = dogpile.cache.memory
`;
}

// Keystone in one python process, whose import of Keystone (about 2 s on a 2-core machine) each step shares:
// keystone-manage's db_sync, fernet_setup and credential_setup (at once), then bootstrap, each in a fork of this
// process (keystone-manage parses its arguments once per process), then Keystone's WSGI app in the standard
// library's WSGI server, as Debian's keystone-wsgi-public serves it for testing.
//   python3 run-keystone.py KEYSTONE_CONF HOST PORT '<json: {"owner": [...], "bootstrap": [...]}>'
// - The database goes to WAL mode after db_sync: Keystone's API now and then leaves a read transaction open in a
//   pooled sqlite connection (a GET of /v3/roles?name= then a POST of /v3/roles waited 5 s and failed with
//   "database is locked"); in WAL mode a reader does not hold writers off. The mode is kept in the file.
// - One request at a time (the sqlite backend is not shared between threads), with a listen backlog that holds a
//   burst (Swift's authtoken asks Keystone once per request).
const KEYSTONE_LAUNCHER = `import json, os, sqlite3, sys, traceback
conf, host, port, args = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
from keystone.cmd import cli

def manage(*commands):
    children = []
    for command in commands:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                cli.main(argv=['keystone-manage', '--config-file', conf] + command)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        children.append((pid, command[0]))
    for pid, name in children:
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
            sys.exit('keystone-manage %s failed' % name)

manage(['db_sync'], ['fernet_setup'] + args['owner'], ['credential_setup'] + args['owner'])
sqlite3.connect(args['database']).execute('PRAGMA journal_mode=WAL').fetchall()
manage(['bootstrap'] + args['bootstrap'])

import wsgiref.simple_server as wss
from keystone.server.wsgi import initialize_public_application
sys.argv[1:] = ['--config-file', conf]
class Server(wss.WSGIServer):
    request_queue_size = 128
wss.make_server(host, port, initialize_public_application(), server_class=Server).serve_forever()
`;

/**
 * Swift's proxy with Keystone authentication as its documentation shows it (authtoken, then keystoneauth; s3api
 * and s3token between them for S3 with EC2 credentials, as s3api's documentation orders them: authtoken first, so
 * that it does not clear what s3token sets), on the test cluster's rings. authtoken validates every token with
 * Keystone (token_cache_time = -1): a revoked token is refused at once, as the renewal test needs. No memcache:
 * nothing here needs to be shared between proxies.
 */
function swiftProxyConf(clusterDir: string, port: number, keystoneUrl: string): string {
  return `${commonDefaults(clusterDir, port)}
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats authtoken s3api s3token keystoneauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = ${keystoneUrl}/v3
auth_url = ${keystoneUrl}
auth_type = password
username = ${SWIFT_SERVICE_USER.name}
password = ${SWIFT_SERVICE_USER.password}
user_domain_id = default
project_name = service
project_domain_id = default
delay_auth_decision = true
token_cache_time = -1
include_service_catalog = false
service_token_roles_required = true

[filter:s3api]
use = egg:swift#s3api

# S3 with EC2 credentials as Swift's documentation sets it up: s3token asks Keystone's /v3/s3tokens for each
# request (secret_cache_duration 0, its default: a deleted credential is refused at once).
[filter:s3token]
use = egg:swift#s3token
auth_uri = ${keystoneUrl}/v3
reseller_prefix = AUTH_
auth_url = ${keystoneUrl}
auth_type = password
username = ${SWIFT_SERVICE_USER.name}
password = ${SWIFT_SERVICE_USER.password}
user_domain_id = default
project_name = service
project_domain_id = default

# Both kinds of versioning, as in the tempauth test Swift (S3's PutBucketVersioning needs object_versioning).
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, ${SWIFT_ROLES.operator}
reseller_admin_role = ${SWIFT_ROLES.resellerAdmin}
system_reader_roles = ${SWIFT_ROLES.systemReader}

${['catch_errors', 'gatekeeper', 'healthcheck', 'listing_formats', 'copy', 'dlo', 'slo', 'symlink'].map((name) => `[filter:${name}]\nuse = egg:swift#${name}\n`).join('\n')}
[filter:proxy-logging]
use = egg:swift#proxy_logging
`;
}

async function waitFor(what: string, cluster: RunningCluster, ready: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    cluster.assertAllRunning();
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`);
    await delay(100);
  }
}

const is2xx = (code: number) => code >= 200 && code < 300;

async function status(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<number> {
  const response = await request(url, { method, headers });
  await response.body.dump();
  return response.statusCode;
}

/** Starts Keystone and the Keystone-authenticated Swift proxy on the rings of the test cluster in `clusterDir`. */
export async function startKeystoneSwift(clusterDir: string, opts: { log?: (line: string) => void } = {}): Promise<KeystoneSwift> {
  await ensureKeystoneInstalled();
  const startedAt = Date.now();
  const cluster = new RunningCluster(await mkdtemp(path.join(os.tmpdir(), 'keystone-')));
  const { dir } = cluster;
  try {
    await mkdir(path.join(dir, 'logs'));
    const [keystonePort, swiftPort] = (await freePorts(2)) as [number, number];
    const keystoneUrl = `http://127.0.0.1:${keystonePort}`;
    const conf = path.join(dir, 'keystone.conf');
    await writeFile(conf, keystoneConf(dir));
    await writeFile(path.join(dir, 'run-keystone.py'), KEYSTONE_LAUNCHER);
    await writeFile(path.join(dir, 'proxy-server.conf'), swiftProxyConf(clusterDir, swiftPort, keystoneUrl));

    // Swift's proxy asks Keystone nothing until the first request: it starts while Keystone sets itself up.
    await cluster.spawn('swift-proxy-keystone', PYTHON, swiftServerArgs(clusterDir, '/usr/bin/swift-proxy-server', path.join(dir, 'proxy-server.conf')));

    const owner = ['--keystone-user', String(os.userInfo().uid), '--keystone-group', String(os.userInfo().gid)];
    // authtoken finds Keystone through the catalog's internal endpoint: all three interfaces, as Debian's
    // keystone package bootstraps them.
    const endpoints = ['public', 'internal', 'admin'].flatMap((i) => [`--bootstrap-${i}-url`, `${keystoneUrl}/v3`]);
    const bootstrap = ['--bootstrap-password', KEYSTONE_ADMIN_PASSWORD, '--bootstrap-region-id', 'RegionOne', ...endpoints];
    const args = { owner, bootstrap, database: path.join(dir, 'keystone.db') };
    await cluster.spawn('keystone', PYTHON, [path.join(dir, 'run-keystone.py'), conf, '127.0.0.1', String(keystonePort), JSON.stringify(args)]);
    // Its database, keys and admin come first: twice a server's time.
    await waitFor(`Keystone at ${keystoneUrl}`, cluster, async () => (await status(`${keystoneUrl}/v3`)) === 200, 2 * START_TIMEOUT_MS);

    const admin = await KeystoneAdmin.login(keystoneUrl, KEYSTONE_ADMIN_PASSWORD);
    const serviceProject = await admin.project('service');
    const swiftUser = await admin.user(SWIFT_SERVICE_USER.name, SWIFT_SERVICE_USER.password);
    await admin.grant(swiftUser, serviceProject, 'service');

    const swiftUrl = `http://127.0.0.1:${swiftPort}`;
    await waitForPort(cluster, swiftPort);
    // Ready when a Keystone token goes through authtoken and keystoneauth: the admin (an operator) on its own account.
    await waitFor(`Swift (keystone) at ${swiftUrl}`, cluster, async () => is2xx(await status(`${swiftUrl}/v1/AUTH_${admin.projectId}`, { 'x-auth-token': admin.token }, 'HEAD')));
    opts.log?.(`keystone: ${keystoneUrl} and its Swift ${swiftUrl} ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (dir ${dir})`);
    return { keystoneUrl, swiftUrl, admin, stop: () => cluster.stop() };
  } catch (err) {
    const logs = await cluster.logTails(30);
    await cluster.stop();
    throw new Error(`startKeystoneSwift failed: ${(err as Error).message}\n${logs}`);
  }
}
