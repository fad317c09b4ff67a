/**
 * Pins, turns and versioning waits hold across processes (pins.ts, shared-pins.ts): two proxies on one Redis
 * ledger, and the CLI with `workers = 2`. Each attack is held through one process while the other process is
 * asked to change what the first decided on; the outcome is read on Swift directly.
 * - Legacy versioning: writes of one name take turns, whichever process each comes through.
 * - An SLO manifest's segment cannot get a longer content type through the other process while Swift
 *   validates the manifest (`heartbeat=on` tells the client when that is).
 * - A versioning change through the other process waits for writes in flight into the container.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { call } from '../helpers/http.js';
import { rawRequest, until, type HeaderList, type RawRequest, type RawResponse } from '../helpers/raw-http.js';
import { proxyConfigText, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { ADVERSARIAL_QUOTA, LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';
import { LONG_TYPE } from './attacks.js';

const ACCOUNTS = {
  'cached mode': [271, 272, 273, 274, 275, 276, 277, 278],
  'precise mode': [281, 282, 283, 284, 285, 286, 287, 288],
} as const;
const WORKER_ACCOUNTS = [291, 292, 293, 294, 295];

/** A request through the proxy at `origin` whose body is held back (Expect: 100-continue) until the test sends it. */
function held(origin: string, tenant: Tenant, method: string, path: string, length: number, headers: HeaderList = []): RawRequest {
  const url = new URL(tenant.viaProxy(path));
  return rawRequest(origin, method, url.pathname + url.search, [['Host', new URL(origin).host], ['X-Auth-Token', tenant.token], ['Expect', '100-continue'], ['Content-Length', String(length)], ...headers]);
}

/** A whole request on a connection of its own (with `workers`, each connection may go to another worker). */
function sent(origin: string, tenant: Tenant, method: string, path: string, body: string | Buffer = '', headers: HeaderList = []): Promise<RawResponse> {
  const url = new URL(tenant.viaProxy(path));
  return rawRequest(origin, method, url.pathname + url.search, [['Host', new URL(origin).host], ['X-Auth-Token', tenant.token], ['Content-Length', String(Buffer.byteLength(body))], ...headers], body).response;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tells when a promise has settled, without waiting for it. */
function watched<T>(promise: Promise<T>): { promise: Promise<T>; done: () => boolean } {
  let settled = false;
  void promise.then(() => (settled = true), () => (settled = true));
  return { promise, done: () => settled };
}

for (const mode of MODES) {
  describe(`pins shared by two proxies on one Redis ledger, ${mode.name}`, () => {
    let arena: Arena;
    let a: RunningProxy;
    let b: RunningProxy;
    before(async () => {
      const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = shared-pins-${randomBytes(4).toString('hex')}:`];
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraProxyLines: lines });
      a = arena.proxy;
      b = await arena.another();
    });
    after(async () => {
      await b.close();
      await arena.close();
    });

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    test('legacy versioning: an overwrite through B waits for the one held through A, so the location holds what was counted', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      await makeContainer(tenant, 'vc', { 'x-versions-location': 'arch' });
      await putDirect(tenant, '/vc/o', 'a'.repeat(100));
      const first = held(a.url, tenant, 'PUT', '/vc/o', 10);
      assert.equal(await first.admitted, 'continue');
      // Taking turns: the 100 bytes are archived by the first, then its 10 by the second. Without turns the
      // second archives the 100 bytes at once and the first then archives its 9,950 (counted as 100).
      const second = watched(sent(b.url, tenant, 'PUT', '/vc/o', 'b'.repeat(9950)));
      await pause(400);
      const early = second.done();
      const answers = [(await first.finish('c'.repeat(10))).status, (await second.promise).status];
      assert.deepEqual({ early, answers, arch: await arena.usage(tenant, 'arch') }, { early: false, answers: [201, 201], arch: { objects: 2, bytes: 110 } });
      // The current object is 9,950 bytes: archiving it passes the location's 10,000, whichever proxy is asked.
      assert.equal((await sent(a.url, tenant, 'PUT', '/vc/o', 'd')).status, 413);
      assert.equal((await sent(b.url, tenant, 'PUT', '/vc/o', 'd')).status, 413);
      assert.deepEqual(await arena.usage(tenant, 'arch'), { objects: 2, bytes: 110 });
      assert.equal((await call('GET', tenant.direct('/vc/o'), auth(tenant))).body.length, 9950);
    });

    test('SLO: a segment\'s content type changed through B while Swift validates a manifest checked through A waits for the manifest', async () => {
      const tenant = await arena.tenant('manifests');
      await makeContainer(tenant, 'seg');
      await makeContainer(tenant, 'm');
      await putDirect(tenant, '/seg/s0', 'x', { 'content-type': 'text/plain' });
      // 60 spellings of one segment: SLO HEADs each and writes the segment's content type into each entry
      // (~150 bytes each with text/plain: ~8.9 KB; ~2,150 bytes each with a 2,000-character type: ~128 KB).
      const manifest = JSON.stringify(Array.from({ length: 60 }, (_, i) => ({ path: `${'/'.repeat(i + 1)}seg/s0` })));
      // heartbeat=on: Swift answers 202 as it starts validating, and the outcome at the end of the body.
      const put = await request(tenant.viaProxy('/m/big?multipart-manifest=put&heartbeat=on'), { method: 'PUT', headers: auth(tenant), body: manifest });
      assert.equal(put.statusCode, 202);
      const post = await call('POST', tenant.viaProxy('/seg/s0').replace(a.url, b.url), { ...auth(tenant), 'content-type': LONG_TYPE });
      const outcome = await put.body.text();
      assert.equal(post.status, 202, post.body);
      assert.match(outcome, /201 Created/, outcome);
      const stored = await arena.usage(tenant, 'm');
      const entries = JSON.parse((await call('GET', tenant.direct('/m/big?multipart-manifest=get'), auth(tenant))).body) as Array<{ content_type: string }>;
      assert.deepEqual({ objects: stored.objects, entries: entries.length, types: [...new Set(entries.map((entry) => entry.content_type))], fits: stored.bytes <= LIMITS.bytes },
        { objects: 1, entries: 60, types: ['text/plain'], fits: true }, `stored ${stored.bytes} bytes`);
      // The POST did land, after the manifest: the segment has the long type now.
      assert.equal((await call('HEAD', tenant.direct('/seg/s0'), auth(tenant))).headers['content-type'], LONG_TYPE);
    });

    test('object_versioning turned on through B waits for an overwrite held through A that counted on freeing the old object', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'tg');
      await putDirect(tenant, '/tg/o', 'a'.repeat(6000));
      // 6,000 + 6,000 fits only because the overwrite frees the old 6,000.
      const overwrite = held(a.url, tenant, 'PUT', '/tg/o', 6000);
      assert.equal(await overwrite.admitted, 'continue');
      const enable = watched(call('POST', tenant.viaProxy('/tg').replace(a.url, b.url), { ...auth(tenant), 'x-versions-enabled': 'true' }));
      await pause(500);
      const early = enable.done();
      const answers = [(await overwrite.finish('b'.repeat(6000))).status, (await enable.promise).status];
      assert.deepEqual({ early, answers, tg: await arena.usage(tenant, 'tg') }, { early: false, answers: [201, 204], tg: { objects: 1, bytes: 6000 } });
    });

    test('a versioning change through B waits for every write in flight into the container through A, a new object (nothing credited) too', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      await makeContainer(tenant, 'nc');
      const upload = held(a.url, tenant, 'PUT', '/nc/new', 100);
      assert.equal(await upload.admitted, 'continue');
      const enable = watched(call('POST', tenant.viaProxy('/nc').replace(a.url, b.url), { ...auth(tenant), 'x-versions-location': 'arch' }));
      await pause(500);
      const early = enable.done();
      const answers = [(await upload.finish('n'.repeat(100))).status, (await enable.promise).status];
      assert.deepEqual({ early, answers, nc: await arena.usage(tenant, 'nc'), arch: await arena.usage(tenant, 'arch') },
        { early: false, answers: [201, 204], nc: { objects: 1, bytes: 100 }, arch: { objects: 0, bytes: 0 } });
    });

    test('legacy versioning turned on through B waits for an overwrite held through A (nothing archived uncounted)', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'arch');
      await makeContainer(tenant, 'vl');
      await putDirect(tenant, '/vl/o', 'a'.repeat(6000));
      const overwrite = held(a.url, tenant, 'PUT', '/vl/o', 100);
      assert.equal(await overwrite.admitted, 'continue');
      const enable = watched(call('POST', tenant.viaProxy('/vl').replace(a.url, b.url), { ...auth(tenant), 'x-versions-location': 'arch' }));
      await pause(500);
      const early = enable.done();
      const answers = [(await overwrite.finish('b'.repeat(100))).status, (await enable.promise).status];
      assert.deepEqual({ early, answers, vl: await arena.usage(tenant, 'vl'), arch: await arena.usage(tenant, 'arch') },
        { early: false, answers: [201, 204], vl: { objects: 1, bytes: 100 }, arch: { objects: 0, bytes: 0 } });
      // Now on: the next overwrite archives the 100 bytes, counted.
      assert.equal((await sent(b.url, tenant, 'PUT', '/vl/o', 'c')).status, 201);
      assert.deepEqual(await arena.usage(tenant, 'arch'), { objects: 1, bytes: 100 });
    });
  });
}

describe('pins shared by the workers of one proxy (workers = 2, cached mode)', () => {
  let dir: string;
  let url: string;
  let stop: () => Promise<void>;
  let arena: Arena;
  before(async () => {
    const swift = await swiftUrl();
    dir = await mkdtemp(join(tmpdir(), 'sqp-shared-pins-'));
    const file = join(dir, 'workers.conf');
    const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = shared-pins-workers-${randomBytes(4).toString('hex')}:`, 'workers = 2'];
    await writeFile(file, proxyConfigText({ upstream: swift, quota: ADVERSARIAL_QUOTA, preciseMode: false, cacheTimeout: 30, port: await freePort(), extraProxyLines: lines }));
    const started = await startCli(['--config', file]);
    const listening = () => [...started.output().matchAll(/"pid":(\d+),[^\n]*listening on /g)].length;
    await until(() => listening() === 2, 'both workers listening', 30_000);
    url = started.url;
    stop = async () => {
      started.child.kill('SIGTERM');
      await new Promise((resolve) => started.child.once('exit', resolve));
    };
    // The arena's own proxy is not used here: its tenants and its reads of Swift are.
    arena = await openArena(MODES[0], [...WORKER_ACCOUNTS]);
  });
  after(async () => {
    await stop();
    await arena.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('legacy versioning: overwrites of one name on two connections (one per worker) take turns', async () => {
    const tenant = await arena.tenant();
    await makeContainer(tenant, 'arch');
    await makeContainer(tenant, 'vc', { 'x-versions-location': 'arch' });
    // Connections go to the workers in turn: in each round the held overwrite and the other go to different ones.
    const early: boolean[] = [];
    for (const round of [0, 1]) {
      await putDirect(tenant, `/vc/o${round}`, 'a'.repeat(100));
      const first = held(url, tenant, 'PUT', `/vc/o${round}`, 10);
      assert.equal(await first.admitted, 'continue', `round ${round}`);
      const second = watched(sent(url, tenant, 'PUT', `/vc/o${round}`, 'b'.repeat(3000)));
      await pause(400);
      early.push(second.done());
      assert.equal((await first.finish('c'.repeat(10))).status, 201);
      assert.equal((await second.promise).status, 201);
    }
    // Each round archived the 100 bytes, then the 10: never the 3,000 (counted as 10).
    assert.deepEqual({ early, arch: await arena.usage(tenant, 'arch') }, { early: [false, false], arch: { objects: 4, bytes: 220 } });
  });
});
