// Swift 2.30.1's own functional test suite (from Debian's source package), run against any Swift endpoint.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TEMPAUTH_USERS, ensureSwiftInstalled } from './cluster.js';
import { runChecked, runCommand, tail } from './run-command.js';

// Debian 12 (bookworm) ships Swift 2.30.1, the version whose servers and tests these helpers pair.
const DEBIAN_SUITE = 'bookworm';
const SWIFT_VERSION = '2.30.1';
const PYTHON = '/usr/bin/python3';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE_DIR = path.join(REPO_ROOT, '.cache', 'swift-src');
const TREE_DIR = path.join(CACHE_DIR, `swift-${SWIFT_VERSION}`);
const ORIG_TARBALL = path.join(CACHE_DIR, `swift_${SWIFT_VERSION}.orig.tar.xz`);
const treeIsComplete = () => existsSync(path.join(TREE_DIR, 'test', 'functional', 'tests.py'));

const TEST_FILES = [
  'test/functional/tests.py',
  'test/functional/test_account.py',
  'test/functional/test_container.py',
  'test/functional/test_object.py',
  'test/functional/test_slo.py',
  'test/functional/test_dlo.py',
  'test/functional/test_versioned_writes.py',
  'test/functional/test_object_versioning.py',
  'test/functional/test_tempurl.py',
];
// Stores 90 metadata items on one object: more xattr space than ext4 gives (Swift expects XFS), so the object
// server fails and then skips its only device for 60 s, failing every test after it.
const DESELECT = 'not testMetadataNumberLimit';
const DEFAULT_TIMEOUT_MS = 15 * 60_000;

export interface FunctionalResult {
  passed: number;
  failed: number;
  skipped: number;
  errors: number;
  durationSeconds: number;
  output: string;
  failures: string[];
}

/** Returns the unpacked Swift source tree (holding test/functional), fetching it with apt-get source once. */
export async function ensureFunctionalSuite(): Promise<string> {
  if (treeIsComplete()) return TREE_DIR;
  await ensureSwiftInstalled(); // the suite needs Debian's python3-swift, python3-pytest and python3-mock
  await mkdir(CACHE_DIR, { recursive: true });
  if (!existsSync(ORIG_TARBALL)) await downloadSource();
  await unpack();
  return TREE_DIR;
}

interface AptSource {
  uri: string;
  signedBy?: string;
}

/** Every `deb` entry of the system's apt sources, one-line (.list) and deb822 (.sources) formats alike. */
async function systemAptSources(): Promise<Array<AptSource & { suites: string[]; components: string[] }>> {
  const files = ['/etc/apt/sources.list'];
  const partsDir = '/etc/apt/sources.list.d';
  if (existsSync(partsDir)) files.push(...(await readdir(partsDir)).map((f) => path.join(partsDir, f)));
  const entries = [];
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = await readFile(file, 'utf8');
    if (file.endsWith('.sources')) entries.push(...parseDeb822(text));
    else if (file.endsWith('.list')) entries.push(...parseOneLine(text));
  }
  return entries;
}

function parseOneLine(text: string) {
  return text.split('\n').flatMap((raw) => {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) return [];
    const signedBy = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
    return [{ uri: m[2]!, signedBy, suites: [m[3]!], components: m[4]!.split(/\s+/) }];
  });
}

function parseDeb822(text: string) {
  const paragraphs = text.split(/\n\s*\n/);
  return paragraphs.flatMap((paragraph) => {
    const fields = new Map<string, string>();
    // Continuation lines (an inline Signed-By key) start with whitespace; only single-line fields matter here.
    for (const line of paragraph.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
    }
    const list = (name: string) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
    if (!list('types').includes('deb') || fields.get('enabled') === 'no') return [];
    const signedBy = fields.get('signed-by') || undefined; // empty when the key is inline
    return list('uris').map((uri) => ({ uri, signedBy, suites: list('suites'), components: list('components') }));
  });
}

/** The mirror this machine already uses for bookworm main, so no host is hard-coded here. */
async function debianMirror(): Promise<AptSource> {
  const entry = (await systemAptSources()).find(
    (e) => e.suites.includes(DEBIAN_SUITE) && e.components.includes('main'),
  );
  if (!entry) throw new Error(`no apt source for Debian ${DEBIAN_SUITE} main in /etc/apt: cannot fetch Swift's source`);
  return { uri: entry.uri, signedBy: entry.signedBy };
}

/**
 * apt-get source with a throw-away deb-src list, lists dir and no package cache files, so the system's apt state
 * stays exactly as it was. It works in a scratch dir and moves only the upstream tarball into the cache, in one
 * rename, so concurrent first runs cannot see a partial file.
 */
async function downloadSource(): Promise<void> {
  const scratch = await mkdtemp(path.join(CACHE_DIR, 'download-'));
  try {
    await mkdir(path.join(scratch, 'lists', 'partial'), { recursive: true });
    const mirror = await debianMirror();
    const options = mirror.signedBy ? `[signed-by=${mirror.signedBy}] ` : '';
    const sourcesFile = path.join(scratch, 'swift-src.list');
    await writeFile(sourcesFile, `deb-src ${options}${mirror.uri} ${DEBIAN_SUITE} main\n`);
    const aptOptions = [
      `Dir::Etc::sourcelist=${sourcesFile}`,
      'Dir::Etc::sourceparts=-',
      `Dir::State::Lists=${path.join(scratch, 'lists')}`,
      'Dir::Cache::pkgcache=',
      'Dir::Cache::srcpkgcache=',
    ].flatMap((o) => ['-o', o]);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await runChecked('apt-get', [...aptOptions, 'update'], { env });
    // --download-only needs no dpkg-dev; unpack() below does the one step of dpkg-source that is needed.
    await runChecked('apt-get', [...aptOptions, 'source', '--download-only', 'swift'], { cwd: scratch, env });
    const tarball = path.join(scratch, path.basename(ORIG_TARBALL));
    if (!existsSync(tarball)) {
      const why = `is ${DEBIAN_SUITE}'s Swift still ${SWIFT_VERSION}?`;
      throw new Error(`apt-get source swift brought no ${path.basename(tarball)}: ${why}`);
    }
    await rename(tarball, ORIG_TARBALL);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Unpacks the upstream tarball with python's tarfile (xz-utils is not on minimal Debian images, python3 is there
 * with Swift), into a scratch dir first so an interrupted run never leaves a half tree that looks complete.
 */
async function unpack(): Promise<void> {
  const scratch = await mkdtemp(path.join(CACHE_DIR, 'unpack-'));
  try {
    const script = 'import sys, tarfile\nwith tarfile.open(sys.argv[1]) as t:\n    t.extractall(sys.argv[2])';
    await runChecked(PYTHON, ['-c', script, ORIG_TARBALL, scratch]);
    await rename(path.join(scratch, `swift-${SWIFT_VERSION}`), TREE_DIR).catch((err: unknown) => {
      if (!treeIsComplete()) throw err; // else a concurrent run got there first: use its tree
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function keyOf(account: string, user: string): string {
  const found = TEMPAUTH_USERS.find((u) => u.account === account && u.user === user);
  if (!found) throw new Error(`no tempauth user ${account}:${user}`);
  return found.key;
}

/**
 * test.conf as in Swift's test/sample.conf: two admin accounts and a non-admin user of the first. Like
 * sample.conf it names no service_prefix, so the service-token tests skip themselves.
 */
function testConf(authHost: string, authPort: number): string {
  return `[func_test]
auth_host = ${authHost}
auth_port = ${authPort}
auth_ssl = no
auth_prefix = /auth/

account = test
username = tester
password = ${keyOf('test', 'tester')}

account2 = test2
username2 = tester2
password2 = ${keyOf('test2', 'tester2')}

username3 = tester3
password3 = ${keyOf('test', 'tester3')}

collate = C
insecure = no

[unit_test]
fake_syslog = False
`;
}

/** Reads pytest's closing line, e.g. `2 failed, 391 passed, 12 skipped, 9 deselected in 75.10s (0:01:15)`. */
function parseSummary(output: string): Pick<FunctionalResult, 'passed' | 'failed' | 'skipped' | 'errors'> | null {
  const line = output
    .split('\n')
    .reverse()
    .find((l) => /\b\d+ (passed|failed|skipped|errors?|deselected)\b.* in [\d.]+s\b/.test(l));
  if (!line) return null;
  const count = (re: RegExp) => Number(re.exec(line)?.[1] ?? 0);
  return {
    passed: count(/(\d+) passed/),
    failed: count(/(\d+) failed/),
    skipped: count(/(\d+) skipped/),
    errors: count(/(\d+) errors?\b/),
  };
}

/**
 * Runs the functional tests against the Swift (or Swift-compatible proxy) at authHost:authPort. Never run two at
 * once against one Swift: each test module deletes every container of its accounts.
 */
export async function runFunctionalSuite(opts: {
  treeDir: string;
  authHost: string;
  authPort: number;
  label: string;
  timeoutMs?: number;
}): Promise<FunctionalResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const confDir = await mkdtemp(path.join(os.tmpdir(), `swift-functional-${opts.label.replace(/\W+/g, '_')}-`));
  try {
    const confFile = path.join(confDir, 'test.conf');
    await writeFile(confFile, testConf(opts.authHost, opts.authPort));
    const env = {
      ...process.env,
      SWIFT_TEST_CONFIG_FILE: confFile,
      PYTHONPATH: opts.treeDir,
      PYTHONDONTWRITEBYTECODE: '1', // keep __pycache__ out of the cached tree
    };
    // -p no:cacheprovider: no .pytest_cache in the tree. -rfE: list failures and errors one per line.
    const args = ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rfE', '-k', DESELECT, ...TEST_FILES];
    const startedAt = Date.now();
    const result = await runCommand(PYTHON, args, { cwd: opts.treeDir, env, timeoutMs });
    const durationSeconds = (Date.now() - startedAt) / 1000;
    const counts = parseSummary(result.output);
    if (result.timedOut || !counts) {
      const why = result.timedOut ? `timed out after ${timeoutMs} ms` : `printed no summary (exit ${result.code})`;
      throw new Error(`functional suite [${opts.label}] ${why}:\n${tail(result.output, 40)}`);
    }
    const failures = result.output.split('\n').filter((l) => /^(FAILED|ERROR) /.test(l));
    return { ...counts, durationSeconds, output: result.output, failures };
  } finally {
    await rm(confDir, { recursive: true, force: true });
  }
}
