/**
 * The start-up checks --check-config makes too (config/startup-checks.ts), on real directories and sockets:
 * they refuse what start-up would refuse and change nothing on disk.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { configFromText } from '../../src/config/load.js';
import { checkStartup } from '../../src/config/startup-checks.js';

const FILE = 'checks.conf';

function config(extra: string[], proxyLines: string[] = ['bind_port = 0']) {
  const text = [
    '[quota-proxy]', 'upstream = http://127.0.0.1:8080', ...proxyLines, '',
    '[filter:quota]', 'quota = {"object_count": {"default": 1}, "container_count": {"default": 1}, "container_usage": {"default": 1}}', '',
    '[filter:tempauth]', 'user_r_r = r .reseller_admin', '',
    ...extra, '',
  ].join('\n');
  return { config: configFromText(text, FILE), line: (needle: string) => text.split('\n').findIndex((l) => l.startsWith(needle)) + 1 };
}

const webhook = (queueDir: string) => ['[notify:ops]', 'type = webhook', 'url = http://127.0.0.1:9/hook', `queue_dir = ${queueDir}`];

describe('checkStartup', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sqp-checks-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('a queue_dir that does not exist yet under a writable parent passes and is not created', async () => {
    const queue = join(dir, 'new', 'deeper', 'queue');
    assert.deepEqual(await checkStartup(config(webhook(queue)).config), []);
    assert.equal(existsSync(join(dir, 'new')), false, 'nothing created');
  });

  test('an existing queue_dir passes and keeps exactly its files (the probe is removed)', async () => {
    const queue = join(dir, 'existing');
    await mkdir(queue);
    await writeFile(join(queue, 'keep'), 'x');
    await checkStartup(config(webhook(queue)).config);
    assert.deepEqual(await readdir(queue), ['keep']);
  });

  test('a queue_dir under a file, or that is a file, is refused at its line', async () => {
    const file = join(dir, 'plain-file');
    await writeFile(file, 'x');
    for (const queue of [join(file, 'queue'), file]) {
      const { config: loaded, line } = config(webhook(queue));
      await assert.rejects(checkStartup(loaded), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.line, line('queue_dir'));
        assert.equal(error.section, 'notify:ops');
        assert.match(error.message, /cannot use .* for the event queue: ENOTDIR/);
        return true;
      });
    }
  });

  test('a provider module that does not exist is refused at its line', async () => {
    const { config: loaded, line } = config(['[notify:mine]', 'type = module', `module = ${join(dir, 'missing.mjs')}`]);
    await assert.rejects(checkStartup(loaded), (error: unknown) => error instanceof ConfigError && error.line === line('module') && /does not exist/.test(error.message));
  });

  test('listener probe: a port in use is a warning; an address this host lacks is an error; nothing stays bound', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const warnings = await checkStartup(config([], [`bind_port = ${port}`]).config, { probeListeners: true });
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} now: it is in use`));
      assert.deepEqual(await checkStartup(config([], [`bind_port = ${port}`]).config), [], 'start-up itself binds: no probe');
    } finally {
      taken.close();
    }
    await assert.rejects(checkStartup(config([], ['bind_ip = 192.0.2.1', 'bind_port = 18081']).config, { probeListeners: true }), /cannot listen on 192\.0\.2\.1:18081: EADDRNOTAVAIL/);

    const free = config([], ['bind_port = 0']).config;
    assert.deepEqual(await checkStartup(free, { probeListeners: true }), [], 'port 0: nothing to probe');
  });
});
