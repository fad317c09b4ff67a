/**
 * `npm test`: installs what the suite needs (Debian's Swift, memcached and Redis, as root), starts one real Swift
 * and one Redis for the whole run, runs every unit and integration test file against it with node's test runner, and
 * stops Swift. One Swift per run keeps the suite inside CI's time on a 2-core machine.
 *
 * The files run on the Node LTS the image ships (helpers/node-runtime.ts: fetched from the npm registry when
 * this Node is another). When this Node is another, the unit tests run on it too, after the suite: it is the Node
 * the quick start's `npm run demo` uses on that machine.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LTS_MAJOR, ltsNode, majorOf } from './helpers/node-runtime.js';
import { ensureSwiftInstalled, startSwift } from './swift/cluster.js';
import { startRedis } from './swift/redis.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function testFiles(folder: string): string[] {
  const dir = join(root, 'test', folder);
  return readdirSync(dir)
    .filter((name) => name.endsWith('.test.ts'))
    .sort()
    .map((name) => relative(root, join(dir, name)));
}

// Node 20's runner finds no .ts files from a directory or a quoted glob: name every file.
const files = [...testFiles('unit'), ...testFiles('integration'), ...testFiles('adversarial')];
const only = process.argv.slice(2);
const selected = only.length > 0 ? files.filter((file) => only.some((pattern) => file.includes(pattern))) : files;

function runFiles(node: string, list: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise<number>((resolve) => {
    // A hung test fails after 15 minutes (Swift's functional suite, twice, takes about 6) instead of eating CI's 90.
    const child = spawn(node, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=900000', ...list], { cwd: root, stdio: 'inherit', env });
    child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  });
}

const log = (line: string) => process.stdout.write(`${line}\n`);
const node = await ltsNode(log);
log(`test files run on Node ${LTS_MAJOR} (${node === process.execPath ? 'this Node' : node.slice(root.length + 1)})`);
await ensureSwiftInstalled();
const swift = await startSwift({ log, hostAddressing: true });
const redis = await startRedis();
let code = 1;
try {
  // `node` on the PATH is that Node too, for what the tests start by name (npm, npx, the built command).
  const PATH = node === process.execPath ? process.env.PATH : `${dirname(node)}:${process.env.PATH ?? ''}`;
  code = await runFiles(node, selected, { ...process.env, PATH, SWIFT_URL: swift.url, SWIFT_DNS: swift.dns, REDIS_URL: redis.url });
} finally {
  await redis.stop();
  await swift.stop();
}
const units = selected.filter((file) => file.startsWith('test/unit/'));
if (majorOf(process.versions.node) !== LTS_MAJOR && units.length > 0) {
  log(`unit tests on this machine's Node ${process.versions.node} too`);
  const unitCode = await runFiles(process.execPath, units, process.env);
  if (code === 0) code = unitCode;
}
process.exit(code);
