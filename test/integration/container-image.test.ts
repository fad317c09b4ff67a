/**
 * The container image really works: docker/verify-image.sh builds it with podman (no Docker engine here),
 * runs it against this run's Swift with the compose config mounted, and sends requests through it. Needs
 * root (it installs podman from Debian when missing); about 2 minutes the first time, 40 s after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { swiftUrl } from '../helpers/swift-env.js';

const run = promisify(execFile);

test('the image builds, starts as a non-root user and serves Swift through it', async (t) => {
  const upstream = await swiftUrl();
  const { stdout } = await run('bash', ['docker/verify-image.sh', '--', '--upstream', upstream], {
    timeout: 10 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
    assert.fail(`verify-image.sh failed: ${error.message}\n${error.stdout ?? ''}\n${error.stderr ?? ''}`.slice(-6000));
  });
  const size = /image \S+: (\d+) MB \(base/.exec(stdout);
  t.diagnostic(size ? `image size ${size[1]} MB` : 'image size not reported');
  assert.match(stdout, /all \d+ checks passed/);
  assert.match(stdout, /verify-image\.sh: OK in \d+ s/);
});
