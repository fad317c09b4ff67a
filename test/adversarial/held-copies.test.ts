/**
 * A copy is counted at the size of its source when the proxy reads it, and pinned to that source's ETag so that
 * Swift copies that version or nothing. An ETag does not pin a size: a DLO's is the MD5 of its segments' ETags,
 * which a plain object holding those hashes as text reproduces. The tenant sizes copies from such a small plain
 * object, holds their (empty, chunked) bodies while it replaces the source with the DLO, then lets them go.
 * Outcomes are read on Swift directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { call } from '../helpers/http.js';
import { rawRequest, type HeaderList } from '../helpers/raw-http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [330, 331, 332, 333], 'precise mode': [334, 335, 336, 337] } as const;

const SEGMENTS = 5;
const SEGMENT_BYTES = 2_000;
const md5 = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

for (const mode of MODES) {
  describe(`copies pinned by what decides their size, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    /** Segments of a 10,000-byte DLO, and a 160-byte plain `src/o` with the DLO's ETag. */
    async function twin(tenant: Tenant): Promise<string> {
      await makeContainer(tenant, 'seg');
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'c');
      const hashes: string[] = [];
      for (let i = 0; i < SEGMENTS; i++) {
        const segment = Buffer.alloc(SEGMENT_BYTES, String.fromCharCode(97 + i));
        await putDirect(tenant, `/seg/s${i}`, segment);
        hashes.push(md5(segment));
      }
      const text = hashes.join('');
      await putDirect(tenant, '/src/o', text);
      return md5(text);
    }

    function heldCopy(tenant: Tenant, name: string, headers: HeaderList = []) {
      const url = new URL(tenant.viaProxy(`/c/${name}`));
      return rawRequest(arena.proxy.url, 'PUT', url.pathname, [['Host', url.host], ['X-Auth-Token', tenant.token], ['X-Copy-From', 'src/o'], ['Transfer-Encoding', 'chunked'], ['Expect', '100-continue'], ...headers]);
    }

    async function attack(headers: HeaderList = []) {
      const tenant = await arena.tenant();
      const etag = await twin(tenant);
      const copies = Array.from({ length: 5 }, (_, i) => heldCopy(tenant, `copy${i}`, headers));
      for (const copy of copies) assert.equal(await copy.admitted, 'continue');
      // The source becomes the DLO: same ETag, 10,000 bytes.
      await putDirect(tenant, '/src/o', '', { 'x-object-manifest': 'seg/s' });
      const head = await call('HEAD', tenant.direct('/src/o'), { 'x-auth-token': tenant.token });
      assert.deepEqual([head.headers.etag, head.headers['content-length']], [`"${etag}"`, String(SEGMENTS * SEGMENT_BYTES)]);
      const answers = await Promise.all(copies.map((copy) => copy.finish('0\r\n\r\n')));
      return { tenant, statuses: answers.map((answer) => answer.status), usage: await arena.usage(tenant, 'c') };
    }

    test('five copies counted at 160 bytes each store at most 160 bytes each when the source becomes a 10,000-byte DLO with its ETag', async () => {
      const { statuses, usage } = await attack();
      assert.ok(usage.bytes <= LIMITS.bytes, `Swift stored ${usage.bytes} bytes in c (${statuses.join(' ')})`);
      // Each copy stores what was counted: the first 160 bytes of what the source now serves.
      assert.deepEqual(statuses, [201, 201, 201, 201, 201]);
      assert.deepEqual(usage, { objects: 5, bytes: 5 * 160 });
    });

    test('a copy of an open range (bytes=100-) is bounded as well', async () => {
      const { statuses, usage } = await attack([['Range', 'bytes=100-']]);
      assert.deepEqual(statuses, [201, 201, 201, 201, 201]);
      assert.deepEqual(usage, { objects: 5, bytes: 5 * 60 });
    });
  });
}
