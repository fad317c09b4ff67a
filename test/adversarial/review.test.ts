/**
 * Hostile review of issue 21's copies and archives (both modes, 5 objects / 10,000 bytes per container).
 * Two copies of several ranges crossing each other (A into B while B into A): each held its source still
 * (pins.ts) and then waited for the other's pin on its target before going to Swift, so both waited for ever;
 * so did two SLO manifests each listing the other's object as its segment. Unfixed, in cached mode: 4 of 4 rounds
 * of copies and the first round of manifests stalled (no answer after 20 s, nothing written); now one of each
 * pair gives up with 503 when the two would wait for each other.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { rawRequest, type HeaderList, type RawResponse } from '../helpers/raw-http.js';
import { MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [321, 322, 323, 324], 'precise mode': [341, 342, 343, 344] } as const;

for (const mode of MODES) {
  describe(`review of copies, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    function send(tenant: Tenant, method: string, path: string, headers: HeaderList): Promise<RawResponse> {
      const host = new URL(arena.proxy.url).host;
      return rawRequest(arena.proxy.url, method, `/v1/${tenant.swiftAccount}${path}`, [['Host', host], ['X-Auth-Token', tenant.token], ['Content-Length', '0'], ...headers], '').response;
    }

    async function storedLength(tenant: Tenant, path: string): Promise<number> {
      const response = await request(tenant.direct(path), { method: 'HEAD', headers: { 'x-auth-token': tenant.token } });
      await response.body.dump();
      return Number(response.headers['content-length']);
    }

    test('two copies of several ranges crossing each other (A to B, B to A) are answered, and stored as counted', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'a');
      await makeContainer(tenant, 'b');
      const range: HeaderList = [['Range', 'bytes=0-1,3-4']];
      const statuses: string[] = [];
      const expected = { a: 0, b: 0 };
      let multipart = 0;
      for (let round = 0; round < 4; round++) {
        await putDirect(tenant, `/a/o${round}`, Buffer.alloc(100, 'a'), { 'content-type': 'text/plain' });
        await putDirect(tenant, `/b/o${round}`, Buffer.alloc(100, 'b'), { 'content-type': 'text/plain' });
        const served = await request(tenant.direct(`/a/o${round}`), { headers: { 'x-auth-token': tenant.token, range: 'bytes=0-1,3-4' } });
        multipart = (await served.body.arrayBuffer()).byteLength;
        const timeout = new Promise<'stalled'>((resolve) => setTimeout(() => resolve('stalled'), 20_000).unref());
        const answers = await Promise.race([
          Promise.all([
            send(tenant, 'PUT', `/b/o${round}`, [['X-Copy-From', `/a/o${round}`], ...range]),
            send(tenant, 'PUT', `/a/o${round}`, [['X-Copy-From', `/b/o${round}`], ...range]),
          ]),
          timeout,
        ]);
        if (answers === 'stalled') {
          statuses.push('stalled');
          break;
        }
        statuses.push(answers.map((a) => a.status).join('+'));
        // Each copy stored its multipart body (201), or nothing: it gave up before Swift saw it (503), or Swift found
        // its source changed by the other copy since the proxy read it (412, the ETag it was pinned to).
        expected.b += answers[0].status === 201 ? multipart : 100;
        expected.a += answers[1].status === 201 ? multipart : 100;
        assert.equal(await storedLength(tenant, `/b/o${round}`), answers[0].status === 201 ? multipart : 100);
        assert.equal(await storedLength(tenant, `/a/o${round}`), answers[1].status === 201 ? multipart : 100);
      }
      const usage = { a: await arena.usage(tenant, 'a'), b: await arena.usage(tenant, 'b') };
      const what = `answers ${statuses}, stored ${JSON.stringify(usage)}, multipart body ${multipart}`;
      for (const pair of statuses) assert.match(pair, /^(201\+(201|412|503)|(412|503)\+201)$/, what);
      assert.deepEqual(usage, { a: { objects: 4, bytes: expected.a }, b: { objects: 4, bytes: expected.b } }, what);
      console.log(what);
    });

    test('two SLO manifests each made of the other\'s object (B of A, A of B) are answered, and stored as counted', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'a');
      await makeContainer(tenant, 'b');
      const statuses: string[] = [];
      for (let round = 0; round < 2; round++) {
        await putDirect(tenant, `/a/m${round}`, Buffer.alloc(100, 'a'));
        await putDirect(tenant, `/b/m${round}`, Buffer.alloc(100, 'b'));
        const manifest = (path: string) => JSON.stringify([{ path }]);
        const put = (path: string, segment: string) => {
          const body = manifest(segment);
          const host = new URL(arena.proxy.url).host;
          return rawRequest(arena.proxy.url, 'PUT', `/v1/${tenant.swiftAccount}${path}?multipart-manifest=put`, [['Host', host], ['X-Auth-Token', tenant.token], ['Content-Length', String(body.length)]], body).response;
        };
        const timeout = new Promise<'stalled'>((resolve) => setTimeout(() => resolve('stalled'), 20_000).unref());
        const answers = await Promise.race([Promise.all([put(`/b/m${round}`, `/a/m${round}`), put(`/a/m${round}`, `/b/m${round}`)]), timeout]);
        statuses.push(answers === 'stalled' ? 'stalled' : answers.map((a) => a.status).join('+'));
        if (answers === 'stalled') break;
      }
      const usage = { a: await arena.usage(tenant, 'a'), b: await arena.usage(tenant, 'b') };
      const what = `answers ${statuses}, stored ${JSON.stringify(usage)}`;
      console.log(what);
      for (const pair of statuses) assert.match(pair, /^(201\+(201|400|503)|(400|503)\+201)$/, what);
      assert.deepEqual([usage.a.objects, usage.b.objects], [2, 2], what);
    });
  });
}
