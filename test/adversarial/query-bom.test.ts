/**
 * A query parameter whose name starts with U+FEFF (`%EF%BB%BF`): Python's parse_qsl keeps it as part of the name,
 * so Swift does not read `?\ufeffmultipart-manifest=put` as a manifest PUT and stores the body as it is; a
 * TextDecoder drops a leading U+FEFF as a byte-order mark, and the proxy read the request as a manifest PUT,
 * counting the size of its one 1-byte segment. Before the fix: 2 of 3 such 8,019-byte PUTs admitted, the
 * container at 2 objects / 16,038 bytes against 10,000 (both modes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { MODES, makeContainer, openArena, putDirect, type Arena } from './arena.js';

const ACCOUNTS = { 'cached mode': [174], 'precise mode': [184] } as const;

for (const mode of MODES) {
  describe(`query parameter names as Swift decodes them, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    test('?\\ufeffmultipart-manifest=put is no manifest PUT: the body is the object, counted at its size', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'seg');
      await makeContainer(tenant, 'c');
      await putDirect(tenant, '/seg/s', 'x');
      const body = JSON.stringify([{ path: '/seg/s' }]) + ' '.repeat(8000);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await call('PUT', tenant.viaProxy(`/c/o${i}?%EF%BB%BFmultipart-manifest=put`), { 'x-auth-token': tenant.token }, body)).status);
      }
      assert.deepEqual({ statuses, stored: await arena.usage(tenant, 'c') }, { statuses: [201, 413, 413], stored: { objects: 1, bytes: Buffer.byteLength(body) } });
    });
  });
}
