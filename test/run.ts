/**
 * `npm test`: installs what the suite needs (Debian's Swift, memcached and Redis, as root), starts one real Swift
 * and one Redis for the whole run, runs every unit and integration test file against it with node's test runner, and
 * stops Swift. One Swift per run keeps the suite inside CI's time on a 2-core machine.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
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

await ensureSwiftInstalled();
const swift = await startSwift({ log: (line) => process.stdout.write(`${line}\n`), hostAddressing: true });
const redis = await startRedis();
let code = 1;
try {
  code = await new Promise<number>((resolve) => {
    // A hung test fails after 15 minutes (Swift's functional suite, twice, takes about 6) instead of eating CI's 90.
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=900000', ...selected], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, SWIFT_URL: swift.url, SWIFT_DNS: swift.dns, REDIS_URL: redis.url },
    });
    child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  });
} finally {
  await redis.stop();
  await swift.stop();
}
process.exit(code);
