/**
 * Debian's python-swiftclient `swift` command through the proxy: what operators and users type.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';

const run = promisify(execFile);

describe('the swift command line client through the proxy', () => {
  let proxy: RunningProxy;
  let dir: string;

  // Async execFile: a synchronous one would block the proxy, which runs in this process.
  const swift = async (...args: string[]) =>
    (await run('/usr/bin/swift', ['-A', `${proxy.url}/auth/v1.0`, '-U', 'qa8:admin', '-K', 'qa8pass', ...args], { cwd: dir, timeout: 120_000 })).stdout;

  before(async () => {
    proxy = await startProxy({ upstream: await swiftUrl() });
    dir = await mkdtemp(join(tmpdir(), 'sqp-swift-cli-'));
  });
  after(async () => {
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('stat shows the account, with the quota level and limits', async () => {
    const out = await swift('stat');
    assert.match(out, /Account: AUTH_qa8/);
    assert.match(out, /Quota-Level: default/);
    assert.match(out, /Quota-Container-Count: 100000/);
  });

  test('post, upload, list, download, delete', async () => {
    await swift('post', '-m', 'color:blue', 'box');
    assert.match(await swift('stat', 'box'), /Meta Color: blue/);
    await writeFile(join(dir, 'hello.txt'), 'hello through the proxy\n');
    await swift('upload', 'box', 'hello.txt');
    assert.equal((await swift('list', 'box')).trim(), 'hello.txt');
    await swift('download', 'box', 'hello.txt', '-o', 'copy.txt');
    assert.equal(await readFile(join(dir, 'copy.txt'), 'utf8'), 'hello through the proxy\n');
    await swift('delete', 'box', 'hello.txt');
    assert.equal((await swift('list', 'box')).trim(), '');
  });

  test('a segmented upload (--segment-size) makes a large object that downloads whole', async () => {
    const content = Buffer.alloc(300_000, 'segment ');
    await writeFile(join(dir, 'large.bin'), content);
    await swift('upload', '--segment-size', '100000', 'big', 'large.bin');
    assert.match(await swift('list', 'big_segments'), /large\.bin\/.*\/00000002/);
    await swift('download', 'big', 'large.bin', '-o', 'large.copy');
    assert.deepEqual(await readFile(join(dir, 'large.copy')), content);
    const stat = await swift('stat', 'big', 'large.bin');
    assert.match(stat, /Content Length: 300000/);
    assert.match(stat, /Manifest: big_segments\//);
    await swift('delete', 'big', 'large.bin');
  });
});
