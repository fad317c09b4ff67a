/**
 * SLO manifests are counted as Swift stores them: SLO rewrites every manifest it is sent into one of its own,
 * far larger (each segment's name, size, ETag, content type and date). Manifests sent directly, copied as
 * manifests, or made by a copy are all counted at the size Swift stores, and the segments they rest on cannot
 * change (through the proxy) between the check and Swift's own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';
import { sizeManifest } from '../../src/quota/manifest-sizer.js';
import { ObjectPins } from '../../src/quota/pins.js';

const ACCOUNTS = { 'cached mode': [67, 68, 69, 70, 71, 245, 247], 'precise mode': [72, 73, 74, 75, 76, 246, 248] } as const;

/** A client manifest of `count` segments seg/s0, seg/s1, ... (each ~24 bytes sent, ~170 stored). */
function manifestOf(count: number, container = 'seg'): string {
  return JSON.stringify(Array.from({ length: count }, (_, i) => ({ path: `/${container}/s${i}` })));
}

for (const mode of MODES) {
  describe(`SLO manifests, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    /** A tenant (10000 bytes per container) with `count` 1-byte segments in container seg. */
    async function withSegments(count: number): Promise<Tenant> {
      const tenant = await arena.tenant('manifests');
      await makeContainer(tenant, 'seg');
      await makeContainer(tenant, 'm');
      // A few at a time: Swift's memcache client gives up (and with it every token check) under hundreds at once.
      for (let i = 0; i < count; i += 10) await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => putDirect(tenant, `/seg/s${i + j}`, 'x')));
      return tenant;
    }

    test('a manifest sent as 7 KB but stored as 50 KB is refused; one stored under the limit is counted at its stored size', async () => {
      const tenant = await withSegments(300);
      const big = manifestOf(300);
      assert.ok(big.length < LIMITS.bytes, 'what is sent fits');
      const refused = await call('PUT', tenant.viaProxy('/m/big?multipart-manifest=put'), auth(tenant), big);
      assert.equal(refused.status, 413, refused.body);
      assert.equal(refused.headers['x-quota-exceeded'], 'container_usage');
      assert.deepEqual(await arena.usage(tenant, 'm'), { objects: 0, bytes: 0 });

      const small = await call('PUT', tenant.viaProxy('/m/small?multipart-manifest=put'), auth(tenant), manifestOf(30));
      assert.equal(small.status, 201, small.body);
      const stored = (await arena.usage(tenant, 'm')).bytes;
      assert.ok(stored > manifestOf(30).length, `Swift stored ${stored} bytes`);
      // The proxy's computation of what SLO stores is exact, not just an upper bound.
      const predicted = await sizeManifest(Buffer.from(manifestOf(30)), tenant.swiftAccount, new ObjectPins(), async (container, object) => {
        const head = await call('HEAD', tenant.direct(`/${container}/${object}`), auth(tenant));
        return { status: head.status, headers: head.headers };
      }, {}, 1000);
      assert.equal(predicted.refusedBySlo, false);
      assert.equal(predicted.stored, stored);
      // Room is what Swift has stored, not what was sent: 30 more entries fit only if the stored size says so.
      const room = LIMITS.bytes - stored;
      const next = await call('PUT', tenant.viaProxy('/m/next?multipart-manifest=put'), auth(tenant), manifestOf(Math.floor((room / stored) * 30) + 5));
      assert.deepEqual([next.status, next.headers['x-quota-exceeded']], [413, 'container_usage'], next.body);
      assert.deepEqual(await arena.listing(tenant, 'm'), ['small']);
      assert.deepEqual(await arena.usage(tenant, 'm'), { objects: 1, bytes: stored });
    });

    test('any spelling swob reads as multipart-manifest=put is a manifest: the last of repeated parameters, heartbeat on', async () => {
      const tenant = await withSegments(300);
      const queries = ['multipart-manifest=get&multipart-manifest=put', 'multipart%2Dmanifest=put', 'multipart-manifest=put&heartbeat=on'];
      // Small ones are admitted, and Swift makes each a manifest (with heartbeat=on SLO answers 202 at once).
      for (const [i, query] of queries.entries()) {
        const answer = await call('PUT', tenant.viaProxy(`/m/small${i}?${query}`), auth(tenant), manifestOf(3));
        assert.equal(answer.status, query.includes('heartbeat') ? 202 : 201, `${query}: ${answer.status} ${answer.body}`);
        assert.equal((await call('HEAD', tenant.direct(`/m/small${i}`), auth(tenant))).headers['x-static-large-object'], 'True', query);
      }
      const admitted = await arena.usage(tenant, 'm');
      assert.equal(admitted.objects, queries.length);
      for (const query of queries) {
        const answer = await call('PUT', tenant.viaProxy(`/m/x?${query}`), auth(tenant), manifestOf(300));
        assert.deepEqual([answer.status, answer.headers['x-quota-exceeded']], [413, 'container_usage'], `${query}: ${answer.status} ${answer.body}`);
      }
      assert.deepEqual(await arena.listing(tenant, 'm'), ['small0', 'small1', 'small2']);
      assert.deepEqual(await arena.usage(tenant, 'm'), admitted);
    });

    test('copies that store a manifest are counted at the manifest Swift stores: multipart-manifest=get of an SLO, multipart-manifest=put of JSON', async () => {
      const tenant = await withSegments(300);
      await makeContainer(tenant, 'other');
      // An SLO made where there is room for it.
      assert.equal((await call('PUT', tenant.direct('/other/slo?multipart-manifest=put'), auth(tenant), manifestOf(300))).status, 201);
      await putDirect(tenant, '/other/plain.json', manifestOf(300));
      const attempts = [
        await call('COPY', tenant.viaProxy('/other/slo?multipart-manifest=get'), { ...auth(tenant), destination: 'm/copied' }),
        await call('PUT', tenant.viaProxy('/m/made?multipart-manifest=put'), { ...auth(tenant), 'x-copy-from': 'other/plain.json', 'content-length': '0' }),
      ];
      for (const answer of attempts) assert.deepEqual([answer.status, answer.headers['x-quota-exceeded']], [413, 'container_usage'], answer.body);
      assert.deepEqual(await arena.usage(tenant, 'm'), { objects: 0, bytes: 0 });
      // The same two copies of a 3-entry manifest fit, and go to Swift: the COPY stores that manifest; the PUT
      // is refused by Swift itself (422: copy sends the source's ETag, which SLO finds is not the manifest's).
      assert.equal((await call('PUT', tenant.direct('/other/slo-small?multipart-manifest=put'), auth(tenant), manifestOf(3))).status, 201);
      await putDirect(tenant, '/other/plain-small.json', manifestOf(3));
      const small = (await call('HEAD', tenant.direct('/other/slo-small?multipart-manifest=get'), auth(tenant))).headers['content-length'];
      const copies = [
        await call('COPY', tenant.viaProxy('/other/slo-small?multipart-manifest=get'), { ...auth(tenant), destination: 'm/copied' }),
        await call('PUT', tenant.viaProxy('/m/made?multipart-manifest=put'), { ...auth(tenant), 'x-copy-from': 'other/plain-small.json', 'content-length': '0' }),
      ];
      assert.deepEqual(copies.map((answer) => answer.status), [201, 422], copies.map((answer) => answer.body).join(' | '));
      const head = await call('HEAD', tenant.direct('/m/copied?multipart-manifest=get'), auth(tenant));
      assert.deepEqual([head.headers['x-static-large-object'], head.headers['content-length']], ['True', small]);
      assert.deepEqual(await arena.listing(tenant, 'm'), ['copied']);
      assert.deepEqual(await arena.usage(tenant, 'm'), { objects: 1, bytes: Number(small) });
    });

    test('segments cannot grow their content types between the check and Swift\'s own: their POSTs wait for the manifest', async () => {
      // 5 entries store ~850 bytes with short content types, ~16 KB with 3000-byte ones.
      const tenant = await withSegments(5);
      const longType = `application/${'x'.repeat(3000)}`;
      let admitted = 0;
      for (let round = 0; round < 4; round++) {
        await Promise.all(Array.from({ length: 5 }, (_, i) => call('POST', tenant.direct(`/seg/s${i}`), { ...auth(tenant), 'content-type': 'text/plain' })));
        const manifest = call('PUT', tenant.viaProxy(`/m/r${round}?multipart-manifest=put`), auth(tenant), manifestOf(5));
        const posts = Array.from({ length: 5 }, (_, i) => call('POST', tenant.viaProxy(`/seg/s${i}`), { ...auth(tenant), 'content-type': longType }));
        const [answer, ...updated] = await Promise.all([manifest, ...posts]);
        // Which comes first varies: the manifest (stored small, the POSTs then wait for it) or the POSTs (the
        // manifest is then sized with the long types, and refused). Never a refusal of the POSTs, nor of the
        // manifest for any other reason.
        assert.deepEqual(updated.map((post) => post.status), [202, 202, 202, 202, 202], `round ${round}`);
        assert.ok(answer!.status === 201 || `${answer!.status} ${answer!.headers['x-quota-exceeded']}` === '413 container_usage', `round ${round}: ${answer!.status} ${answer!.body}`);
        if (answer!.status === 201) admitted++;
        const stored = await arena.usage(tenant, 'm');
        assert.equal(stored.objects, admitted, `round ${round}: manifest ${answer!.status}`);
        assert.ok(stored.bytes <= LIMITS.bytes, `round ${round}: manifest ${answer!.status}, ${stored.bytes} bytes stored`);
      }
      // With no POST racing it, a manifest of the short types is admitted.
      await Promise.all(Array.from({ length: 5 }, (_, i) => call('POST', tenant.direct(`/seg/s${i}`), { ...auth(tenant), 'content-type': 'text/plain' })));
      const calm = await call('PUT', tenant.viaProxy('/m/calm?multipart-manifest=put'), auth(tenant), manifestOf(5));
      assert.equal(calm.status, 201, calm.body);
      assert.equal((await arena.usage(tenant, 'm')).objects, admitted + 1);
    });

    test('a manifest the proxy reads as one SLO refuses is counted at the most SLO could store, never passed uncounted', async () => {
      // A missing segment: SLO refuses it (400). Were the proxy's reading wrong, SLO could store up to the bound.
      const broken = JSON.stringify([{ path: '/seg/s0' }, { path: '/seg/missing' }]);
      const tight = await withSegments(1);
      const refused = await call('PUT', tight.viaProxy('/m/broken?multipart-manifest=put'), auth(tight), broken);
      assert.equal(refused.status, 413, refused.body);
      assert.equal(refused.headers['x-quota-exceeded'], 'container_usage');
      assert.deepEqual(await arena.usage(tight, 'm'), { objects: 0, bytes: 0 });
      // Where the bound fits, Swift gets it and answers as SLO does; nothing is stored, and nothing stays held.
      const roomy = await arena.tenant('roomy');
      await makeContainer(roomy, 'seg');
      await makeContainer(roomy, 'm');
      await putDirect(roomy, '/seg/s0', 'x');
      const direct = await call('PUT', roomy.direct('/m/broken?multipart-manifest=put'), auth(roomy), broken);
      const proxied = await call('PUT', roomy.viaProxy('/m/broken?multipart-manifest=put'), auth(roomy), broken);
      assert.equal(direct.status, 400);
      assert.equal(proxied.status, direct.status, proxied.body);
      assert.equal(proxied.body, direct.body);
      const good = await call('PUT', roomy.viaProxy('/m/good?multipart-manifest=put'), auth(roomy), manifestOf(1));
      assert.equal(good.status, 201, good.body);
      assert.deepEqual(await arena.listing(roomy, 'm'), ['good']);
    });
  });
}
