/**
 * A reservation holds until Swift has answered the write it stands for, whatever the client does meanwhile. The
 * proxy reads an SLO manifest's whole body before it decides; Swift then validates the manifest, stores it and
 * answers. Between the two the client has nothing left to send (and may leave), and the proxy must still count
 * the manifest: a slow link between the proxy and Swift (test/helpers/slow-link.ts) holds the manifest's last
 * byte on its way to Swift for as long as each test needs, which makes that moment as long as a slow validation
 * would. Outcomes are read on Swift directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { openSlowLink, type SlowLink } from '../helpers/slow-link.js';
import { randomBytes } from 'node:crypto';
import type { RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [296, 297, 298, 299, 300, 346, 347], 'precise mode': [325, 326, 327, 328, 329, 348, 349] } as const;

/** 55 entries of one 1-byte segment: about 8 KB once stored, so a 9,000-byte object does not fit beside it. */
const MANIFEST = JSON.stringify(Array.from({ length: 55 }, () => ({ path: '/s/seg' })));
const FILLER = Buffer.alloc(9_000, 'f');

for (const mode of MODES) {
  describe(`reservations hold until Swift answers, ${mode.name}`, () => {
    let link: SlowLink;
    let arena: Arena;
    /** A second proxy on the same Redis ledger (and the same link to Swift). */
    let other: RunningProxy;
    before(async () => {
      link = await openSlowLink(await swiftUrl());
      const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = answered-${randomBytes(4).toString('hex')}:`];
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { upstream: link.url, extraProxyLines: lines });
      other = await arena.another();
    });
    after(async () => {
      await other.close();
      await arena.close();
      await link.close();
    });

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    async function tenantWithSegment(): Promise<Tenant> {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      await makeContainer(tenant, 's');
      await putDirect(tenant, '/s/seg', 'x');
      return tenant;
    }

    /** Sends the manifest through the proxy as a raw request (all of its body at once); the link holds it. */
    function sendManifest(tenant: Tenant, name: string) {
      const url = new URL(tenant.viaProxy(`/c/${name}?multipart-manifest=put`));
      return rawRequest(arena.proxy.url, 'PUT', url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Content-Length', String(MANIFEST.length)]], MANIFEST);
    }

    test('a manifest the proxy has read all of holds its bytes until Swift answers it: a write meanwhile that would not fit beside it is refused', async () => {
      const tenant = await tenantWithSegment();
      const held = link.hold('/c/held?multipart-manifest=put');
      const manifest = sendManifest(tenant, 'held');
      await held.caught;
      const meanwhile = await call('PUT', tenant.viaProxy('/c/filler'), auth(tenant), FILLER);
      held.release();
      assert.equal((await manifest.response).status, 201);
      assert.deepEqual([meanwhile.status, meanwhile.headers['x-quota-exceeded']], [413, 'container_usage'], meanwhile.body);
      const usage = await arena.usage(tenant, 'c');
      assert.deepEqual(await arena.listing(tenant, 'c'), ['held']);
      assert.ok(usage.bytes > LIMITS.bytes - FILLER.length && usage.bytes <= LIMITS.bytes, `the manifest is stored at ${usage.bytes} bytes`);
    });

    test('through another proxy on the same ledger, the manifest held on its way to Swift keeps its bytes as well', async () => {
      const tenant = await tenantWithSegment();
      const held = link.hold('/c/twice?multipart-manifest=put');
      const manifest = sendManifest(tenant, 'twice');
      await held.caught;
      const meanwhile = await call('PUT', tenant.viaProxy('/c/filler').replace(arena.proxy.url, other.url), auth(tenant), FILLER);
      held.release();
      assert.equal((await manifest.response).status, 201);
      assert.deepEqual([meanwhile.status, meanwhile.headers['x-quota-exceeded']], [413, 'container_usage'], meanwhile.body);
      assert.deepEqual(await arena.listing(tenant, 'c'), ['twice']);
    });

    test('a client that leaves once its manifest is sent does not end the reservation: it ends with Swift\'s answer', async () => {
      const tenant = await tenantWithSegment();
      const held = link.hold('/c/left?multipart-manifest=put');
      const manifest = sendManifest(tenant, 'left');
      await held.caught;
      manifest.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const meanwhile = await call('PUT', tenant.viaProxy('/c/filler'), auth(tenant), FILLER);
      held.release();
      assert.deepEqual([meanwhile.status, meanwhile.headers['x-quota-exceeded']], [413, 'container_usage'], meanwhile.body);
      // Swift stored the manifest (the proxy's request to it went on without the client) and nothing else.
      const deadline = Date.now() + 10_000;
      while ((await arena.listing(tenant, 'c')).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(await arena.listing(tenant, 'c'), ['left']);
      assert.ok((await arena.usage(tenant, 'c')).bytes <= LIMITS.bytes);
      // Once Swift has answered, the room left is what Swift has: a write that fits in it is admitted.
      const room = LIMITS.bytes - (await arena.usage(tenant, 'c')).bytes;
      assert.equal((await call('PUT', tenant.viaProxy('/c/small'), auth(tenant), Buffer.alloc(room, 's'))).status, 201);
    });

    test('a manifest whose request to Swift fails holds nothing afterwards: the write it kept out fits then', async () => {
      const tenant = await tenantWithSegment();
      const held = link.hold('/c/cut?multipart-manifest=put');
      const manifest = sendManifest(tenant, 'cut');
      await held.caught;
      const meanwhile = await call('PUT', tenant.viaProxy('/c/filler'), auth(tenant), FILLER);
      assert.equal(meanwhile.status, 413, meanwhile.body);
      held.cut();
      assert.ok((await manifest.response).status >= 500);
      const after = await call('PUT', tenant.viaProxy('/c/filler'), auth(tenant), FILLER);
      assert.equal(after.status, 201, after.body);
      assert.deepEqual(await arena.listing(tenant, 'c'), ['filler']);
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: 1, bytes: FILLER.length });
    });
  });
}
