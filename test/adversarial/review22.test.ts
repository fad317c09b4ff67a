/**
 * Hostile review of issue 22 items 1–3 (reservations held until Swift answers, pins that hold what they promise,
 * grants re-checked). Each attack is run as a tenant that wants more than it paid for; outcomes are read on
 * Swift directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { call } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { openSlowLink, type SlowLink } from '../helpers/slow-link.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import type { RunningProxy } from '../helpers/proxy.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [371, 372, 373, 374, 375, 391, 392, 393, 394, 395], 'precise mode': [376, 377, 378, 379, 380, 396, 397, 398, 399, 400] } as const;

const SEGMENT_BYTES = 3_000;
const md5 = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

for (const mode of MODES) {
  describe(`hostile review of issue 22, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, ACCOUNTS[mode.name].slice(0, 6));
    });
    after(() => arena.close());

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });
    const inFlight = async () => Number(/swift_quota_proxy_reservations_in_flight (\d+)/.exec((await call('GET', `${arena.proxy.url}/metrics`)).body)?.[1]);

    /**
     * A copy asked with `?multipart-manifest=get` copies an SLO as a manifest: SLO stores a manifest of its own,
     * rebuilt from the segments as they are then (their content types included). Swift pins such a copy by the
     * manifest's stored ETag, the MD5 of the manifest's text, which a plain object holding that very text
     * reproduces. Sized from such a plain twin (its own bytes; no segment pinned), the copies are held while the
     * source becomes the SLO and its segment gets a 1,000-character content type, then let go.
     */
    test('copies with multipart-manifest=get sized from a plain twin of an SLO manifest store no more than was counted', async () => {
      const tenant = await arena.tenant();
      for (const container of ['seg', 'src', 'c']) await makeContainer(tenant, container);
      await putDirect(tenant, '/seg/s0', Buffer.alloc(SEGMENT_BYTES, 's'));
      const manifest = JSON.stringify(Array.from({ length: 10 }, () => ({ path: '/seg/s0' })));
      await putDirect(tenant, '/src/slo?multipart-manifest=put', manifest);
      const stored = await call('GET', tenant.direct('/src/slo?multipart-manifest=get'), auth(tenant));
      assert.equal(stored.status, 200);
      const counted = Buffer.byteLength(stored.body);
      // The plain twin: the stored manifest's text, as a plain object.
      await putDirect(tenant, '/src/o', stored.body);
      const copies = Array.from({ length: 5 }, (_, i) => {
        const url = new URL(tenant.viaProxy(`/c/copy${i}?multipart-manifest=get`));
        return rawRequest(arena.proxy.url, 'PUT', url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['X-Copy-From', 'src/o'], ['Transfer-Encoding', 'chunked'], ['Expect', '100-continue']]);
      });
      for (const copy of copies) assert.equal(await copy.admitted, 'continue');
      // The source becomes the SLO (its manifest has the twin's ETag), and its segment a long content type.
      assert.equal((await call('PUT', tenant.viaProxy('/src/o?multipart-manifest=put'), auth(tenant), manifest)).status, 201);
      const head = await call('HEAD', tenant.direct('/src/o?multipart-manifest=get'), auth(tenant));
      assert.deepEqual([head.headers.etag, head.headers['x-static-large-object']], [md5(stored.body), 'True']);
      const retyped = call('POST', tenant.viaProxy('/seg/s0'), { ...auth(tenant), 'content-type': `application/x-${'t'.repeat(1_000)}` });
      await Promise.race([retyped, new Promise((resolve) => setTimeout(resolve, 1_000))]);
      const answers = await Promise.all(copies.map((copy) => copy.finish('0\r\n\r\n')));
      assert.equal((await retyped).status, 202);
      const usage = await arena.usage(tenant, 'c');
      const statuses = answers.map((answer) => answer.status);
      assert.ok(usage.bytes <= LIMITS.bytes, `Swift stored ${usage.bytes} bytes in c (${statuses.join(' ')}), counted ${5 * counted}`);
      // Each copy stores the manifest as it was counted: the segment's content type is the one read.
      assert.deepEqual({ statuses, usage }, { statuses: [201, 201, 201, 201, 201], usage: { objects: 5, bytes: 5 * counted } });
      assert.equal(await inFlight(), 0);
    });

    /**
     * Nothing held is left behind: clients that leave a twin copy while it is sized (segments pinned), or once
     * admitted and waiting for its body, leave no reservation in flight and no pin (a write to the segment
     * goes at once).
     */
    test('twin copies left by their clients at any moment hold nothing afterwards', async () => {
      const tenant = await arena.tenant();
      for (const container of ['seg', 'src', 'c']) await makeContainer(tenant, container);
      await putDirect(tenant, '/seg/s0', Buffer.alloc(SEGMENT_BYTES, 's'));
      await putDirect(tenant, '/src/slo?multipart-manifest=put', JSON.stringify(Array.from({ length: 10 }, () => ({ path: '/seg/s0' }))));
      await putDirect(tenant, '/src/o', (await call('GET', tenant.direct('/src/slo?multipart-manifest=get'), auth(tenant))).body);
      const copies = ([0, 5, 20, 50, 'admitted'] as const).map(async (leaveAfter, i) => {
        const url = new URL(tenant.viaProxy(`/c/left${i}?multipart-manifest=get`));
        const copy = rawRequest(arena.proxy.url, 'PUT', url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['X-Copy-From', 'src/o'], ['Transfer-Encoding', 'chunked'], ['Expect', '100-continue']]);
        if (leaveAfter === 'admitted') assert.equal(await copy.admitted, 'continue');
        else await new Promise((resolve) => setTimeout(resolve, leaveAfter));
        copy.destroy();
      });
      await Promise.all(copies);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const started = Date.now();
      const retyped = await call('POST', tenant.viaProxy('/seg/s0'), { ...auth(tenant), 'content-type': 'text/plain' });
      assert.equal(retyped.status, 202);
      assert.ok(Date.now() - started < 2_000, `the segment's write waited ${Date.now() - started} ms`);
      assert.equal(await inFlight(), 0);
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: 0, bytes: 0 });
    });

    /**
     * Item 3: a revoked grantee's held uploads must not keep the owner out. Uploads whose bodies have not started
     * are refused once the grant is revoked; an upload that has sent one byte of its body (so Swift has seen its
     * head) and then holds the rest back is one the grantee can keep open for as long as it dribbles bytes
     * (Swift waits 60 s between reads), and it holds its room meanwhile.
     */
    async function startedUploads(owner: Tenant) {
      await makeContainer(owner, 'c', { 'x-container-write': `${owner.account}:reader` });
      const held = ['g1', 'g2'].map((name) => {
        const url = new URL(owner.viaProxy(`/c/${name}`));
        return rawRequest(arena.proxy.url, 'PUT', url.pathname, [['Host', url.host], ['X-Auth-Token', owner.readerToken], ['Content-Length', '5000'], ['Expect', '100-continue']]);
      });
      for (const upload of held) assert.equal(await upload.admitted, 'continue');
      // One byte each: the requests go to Swift, which authorises them on their heads.
      for (const upload of held) upload.send('g');
      await new Promise((resolve) => setTimeout(resolve, 500));
      return held;
    }

    test('uploads a revoked grantee has started and then holds do not keep the owner out', async () => {
      const owner = await arena.tenant();
      const held = await startedUploads(owner);
      assert.equal((await call('POST', owner.viaProxy('/c'), { 'x-auth-token': owner.token, 'x-container-write': '' })).status, 204);
      const write = await call('PUT', owner.viaProxy('/c/mine'), { 'x-auth-token': owner.token }, Buffer.alloc(LIMITS.bytes, 'o'));
      const answers = await Promise.all(held.map((upload) => upload.finish(Buffer.alloc(4_999, 'g')).catch(() => ({ status: 0 }))));
      const outcome = { owner: write.status, grantee: answers.map((answer) => answer.status), listing: await arena.listing(owner, 'c'), usage: await arena.usage(owner, 'c') };
      assert.deepEqual(outcome, { owner: 201, grantee: outcome.grantee.map(() => 403), listing: ['mine'], usage: { objects: 1, bytes: LIMITS.bytes } });
      assert.equal(await inFlight(), 0);
    });

    test('while the grant stands, started uploads keep their room and are stored; the owner is refused', async () => {
      const owner = await arena.tenant();
      const held = await startedUploads(owner);
      const write = await call('PUT', owner.viaProxy('/c/mine'), { 'x-auth-token': owner.token }, Buffer.alloc(LIMITS.bytes, 'o'));
      const answers = await Promise.all(held.map((upload) => upload.finish(Buffer.alloc(4_999, 'g'))));
      const outcome = { owner: write.status, grantee: answers.map((answer) => answer.status), listing: await arena.listing(owner, 'c'), usage: await arena.usage(owner, 'c') };
      assert.deepEqual(outcome, { owner: 413, grantee: [201, 201], listing: ['g1', 'g2'], usage: { objects: 2, bytes: LIMITS.bytes } });
      assert.equal(await inFlight(), 0);
    });

    /**
     * Item 2: a versioning change waits for every write in flight into the container. A delete with versioning
     * off frees its object; held (its one body byte not sent, so Swift has not seen it) while the owner turns
     * history mode on, it makes Swift archive the object into the location, which the proxy never counted.
     */
    test('a delete held while history versioning is turned on archives no uncounted object into the location', async () => {
      const tenant = await arena.tenant();
      for (const container of ['c', 'v']) await makeContainer(tenant, container);
      assert.equal((await call('PUT', tenant.viaProxy('/v/filler'), auth(tenant), Buffer.alloc(9_000, 'f'))).status, 201);
      assert.equal((await call('PUT', tenant.viaProxy('/c/o'), auth(tenant), Buffer.alloc(3_000, 'o'))).status, 201);
      const url = new URL(tenant.viaProxy('/c/o'));
      const deleting = rawRequest(arena.proxy.url, 'DELETE', url.pathname, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Content-Length', '1'], ['Expect', '100-continue']]);
      assert.equal(await deleting.admitted, 'continue');
      const turnedOn = call('POST', tenant.viaProxy('/c'), { ...auth(tenant), 'x-history-location': 'v' });
      await Promise.race([turnedOn, new Promise((resolve) => setTimeout(resolve, 500))]);
      const deleted = await deleting.finish('x');
      const outcome = { deleted: deleted.status, turnedOn: (await turnedOn).status, v: await arena.usage(tenant, 'v'), c: await arena.usage(tenant, 'c') };
      assert.ok(outcome.v.bytes <= LIMITS.bytes, `Swift stored ${outcome.v.bytes} bytes in v: ${JSON.stringify(outcome)}`);
      // The change waits for the delete, which frees the object as counted; history mode is on afterwards.
      assert.deepEqual(outcome, { deleted: 204, turnedOn: 204, v: { objects: 1, bytes: 9_000 }, c: { objects: 0, bytes: 0 } });
      assert.equal(await inFlight(), 0);
    });

    /**
     * Swift's bulk delete (`POST ?bulk-delete`, a list of objects in the body) deletes each object as a single
     * DELETE would, legacy versioning included: in history mode each deleted object is archived into the
     * location. A single delete whose archive does not fit is refused; the same delete listed in a bulk delete
     * must not store it either. Bulk deletes elsewhere go on as before.
     */
    test('a bulk delete archives nothing uncounted in a history-versioned container, and deletes as before elsewhere', async () => {
      const tenant = await arena.tenant();
      for (const container of ['c', 'v', 'plain']) await makeContainer(tenant, container);
      assert.equal((await call('PUT', tenant.viaProxy('/v/filler'), auth(tenant), Buffer.alloc(9_000, 'f'))).status, 201);
      assert.equal((await call('PUT', tenant.viaProxy('/c/o'), auth(tenant), Buffer.alloc(3_000, 'o'))).status, 201);
      assert.equal((await call('PUT', tenant.viaProxy('/plain/p'), auth(tenant), Buffer.alloc(100, 'p'))).status, 201);
      assert.equal((await call('POST', tenant.viaProxy('/c'), { ...auth(tenant), 'x-history-location': 'v' })).status, 204);
      const single = await call('DELETE', tenant.viaProxy('/c/o'), auth(tenant));
      assert.deepEqual([single.status, single.headers['x-quota-exceeded']], [413, 'container_usage']);
      const bulk = await call('POST', tenant.viaProxy('?bulk-delete'), { ...auth(tenant), 'content-type': 'text/plain', accept: 'application/json' }, 'plain/p\n%2Fc/o\n');
      const elsewhere = await call('POST', tenant.viaProxy('?bulk-delete'), { ...auth(tenant), 'content-type': 'text/plain', accept: 'application/json' }, 'plain/p\n');
      const outcome = { bulk: bulk.status, elsewhere: [elsewhere.status, (JSON.parse(elsewhere.body) as { 'Number Deleted': number })['Number Deleted']], v: await arena.usage(tenant, 'v'), c: await arena.usage(tenant, 'c'), plain: await arena.usage(tenant, 'plain') };
      assert.ok(outcome.v.bytes <= LIMITS.bytes, `Swift stored ${outcome.v.bytes} bytes in v: ${JSON.stringify(outcome)}`);
      assert.deepEqual(outcome, { bulk: 400, elsewhere: [200, 1], v: { objects: 1, bytes: 9_000 }, c: { objects: 1, bytes: 3_000 }, plain: { objects: 0, bytes: 0 } });
      assert.equal(await inFlight(), 0);
    });
  });
}

for (const mode of MODES) {
  describe(`hostile review of issue 22 through a slow link to Swift, ${mode.name}`, () => {
    let link: SlowLink;
    let arena: Arena;
    /** A second proxy on the same Redis ledger (and the same link to Swift). */
    let other: RunningProxy;
    before(async () => {
      link = await openSlowLink(await swiftUrl());
      const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = review22-${randomBytes(4).toString('hex')}:`];
      arena = await openArena(mode, ACCOUNTS[mode.name].slice(6), { upstream: link.url, extraProxyLines: lines });
      other = await arena.another();
    });
    after(async () => {
      await other.close();
      await arena.close();
      await link.close();
    });

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    /**
     * A copy of an SLO as a manifest (`multipart-manifest=get`) is pinned to the ETag the proxy HEADed, then the
     * manifest is read again (`format=raw`) to be sized. If that read is not pinned to the same ETag, the source
     * can be another manifest at that moment (a one-segment one) and the first one again when Swift copies it: the
     * copy is counted as the small manifest and stored as the large one.
     */
    test('a manifest copy is sized from the version Swift copies, not from what the source was between the two reads', async () => {
      const tenant = await arena.tenant();
      for (const container of ['seg', 'src', 'c']) await makeContainer(tenant, container);
      const entries = 50;
      for (let i = 0; i < entries; i++) await putDirect(tenant, `/seg/s${String(i).padStart(2, '0')}`, 'x');
      const large = JSON.stringify(Array.from({ length: entries }, (_, i) => ({ path: `/seg/s${String(i).padStart(2, '0')}` })));
      const small = JSON.stringify([{ path: '/seg/s00' }]);
      await putDirect(tenant, '/src/o?multipart-manifest=put', large);
      const first = await call('HEAD', tenant.direct('/src/o?multipart-manifest=get'), auth(tenant));
      const holds = [0, 1, 2].map(() => link.holdBodiless('/src/o?multipart-manifest=get&format=raw'));
      const copies = [0, 1, 2].map((i) => {
        const url = new URL(tenant.viaProxy(`/c/copy${i}?multipart-manifest=get`));
        return rawRequest(arena.proxy.url, 'PUT', url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['X-Copy-From', 'src/o'], ['Transfer-Encoding', 'chunked'], ['Expect', '100-continue']]);
      });
      for (const hold of holds) await hold.caught;
      // The proxy has HEADed the large manifest; it reads the small one.
      await putDirect(tenant, '/src/o?multipart-manifest=put', small);
      for (const hold of holds) hold.release();
      const admitted = await Promise.all(copies.map((copy) => copy.admitted));
      // The large manifest again, with the same ETag, before Swift copies it.
      await putDirect(tenant, '/src/o?multipart-manifest=put', large);
      const again = await call('HEAD', tenant.direct('/src/o?multipart-manifest=get'), auth(tenant));
      assert.equal(again.headers.etag, first.headers.etag);
      const answers = await Promise.all(copies.map((copy) => copy.finish('0\r\n\r\n')));
      const usage = await arena.usage(tenant, 'c');
      const statuses = answers.map((answer) => answer.status);
      assert.ok(usage.bytes <= LIMITS.bytes, `Swift stored ${usage.bytes} bytes in c (${admitted.join(' ')} / ${statuses.join(' ')}; the large manifest is ${first.headers['content-length']} bytes)`);
      // Read pinned to the ETag HEADed, the small manifest is not read: Swift is asked for a version none has.
      assert.deepEqual({ statuses, usage }, { statuses: [412, 412, 412], usage: { objects: 0, bytes: 0 } });
    });

    /**
     * Item 2: an SLO manifest's segments are pinned by name until Swift has validated the manifest. A segment that
     * is a symlink is HEADed through it, by the proxy and by SLO alike: what SLO stores (the content type) is the
     * symlink's target's, which no pin holds. The manifest is held on its way to Swift while the target's content
     * type grows.
     */
    for (const through of ['the same proxy', 'another proxy on the same Redis ledger'] as const) {
    test(`a manifest whose segments are symlinks stores no more than was counted when their target changes meanwhile through ${through}`, async () => {
      const tenant = await arena.tenant();
      for (const container of ['seg', 'c']) await makeContainer(tenant, container);
      await putDirect(tenant, '/seg/target', 'x');
      const entries = 40;
      for (let i = 0; i < entries; i++) await putDirect(tenant, `/seg/l${String(i).padStart(2, '0')}`, '', { 'x-symlink-target': 'seg/target' });
      const manifest = JSON.stringify(Array.from({ length: entries }, (_, i) => ({ path: `/seg/l${String(i).padStart(2, '0')}` })));
      // The manifest as SLO stores it with the target as it is: what the proxy counts.
      await putDirect(tenant, '/seg/reference?multipart-manifest=put', manifest);
      const counted = Number((await call('HEAD', tenant.direct('/seg/reference?multipart-manifest=get'), auth(tenant))).headers['content-length']);
      const held = link.hold(`/c/m${through.length}?multipart-manifest=put`);
      const url = new URL(tenant.viaProxy(`/c/m${through.length}?multipart-manifest=put`));
      const sent = rawRequest(arena.proxy.url, 'PUT', url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Content-Length', String(manifest.length)]], manifest);
      await held.caught;
      const retypeUrl = through === 'the same proxy' ? tenant.viaProxy('/seg/target') : tenant.viaProxy('/seg/target').replace(arena.proxy.url, other.url);
      const retyped = call('POST', retypeUrl, { ...auth(tenant), 'content-type': `application/x-${'t'.repeat(500)}` });
      await Promise.race([retyped, new Promise((resolve) => setTimeout(resolve, 1_000))]);
      held.release();
      const answer = await sent.response;
      assert.equal((await retyped).status, 202);
      const usage = await arena.usage(tenant, 'c');
      assert.ok(usage.bytes <= LIMITS.bytes, `Swift stored ${usage.bytes} bytes in c (${answer.status}), counted ${counted}`);
      // The target's POST waits for the manifest, which is stored as counted.
      assert.deepEqual({ status: answer.status, usage }, { status: 201, usage: { objects: 1, bytes: counted } });
    });
    }

    test('a delete held through one proxy while history versioning is turned on through the other archives nothing uncounted', async () => {
      const tenant = await arena.tenant();
      for (const container of ['c', 'v']) await makeContainer(tenant, container);
      assert.equal((await call('PUT', tenant.viaProxy('/v/filler'), auth(tenant), Buffer.alloc(9_000, 'f'))).status, 201);
      assert.equal((await call('PUT', tenant.viaProxy('/c/o'), auth(tenant), Buffer.alloc(3_000, 'o'))).status, 201);
      const url = new URL(tenant.viaProxy('/c/o'));
      const deleting = rawRequest(arena.proxy.url, 'DELETE', url.pathname, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Content-Length', '1'], ['Expect', '100-continue']]);
      assert.equal(await deleting.admitted, 'continue');
      const turnedOn = call('POST', tenant.viaProxy('/c').replace(arena.proxy.url, other.url), { ...auth(tenant), 'x-history-location': 'v' });
      await Promise.race([turnedOn, new Promise((resolve) => setTimeout(resolve, 500))]);
      const deleted = await deleting.finish('x');
      const outcome = { deleted: deleted.status, turnedOn: (await turnedOn).status, v: await arena.usage(tenant, 'v'), c: await arena.usage(tenant, 'c') };
      assert.ok(outcome.v.bytes <= LIMITS.bytes, `Swift stored ${outcome.v.bytes} bytes in v: ${JSON.stringify(outcome)}`);
      // The change (through the other proxy) waits for the delete, which frees the object as counted.
      assert.deepEqual(outcome, { deleted: 204, turnedOn: 204, v: { objects: 1, bytes: 9_000 }, c: { objects: 0, bytes: 0 } });
    });
  });
}
