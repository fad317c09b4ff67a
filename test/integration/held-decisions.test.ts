/**
 * A write whose decision waits (a manifest PUT whose body the client holds after `100 Continue`) is decided on
 * usage read once it is sized, not on a reading taken before the wait: writes finished meanwhile count even
 * when the ledger has forgotten them (its cache entry pushed out), and a delete meanwhile frees its bytes.
 * Found by a hostile review of issue 24's "usage read once": reading before the wait passed the first case
 * (10,119 bytes in a 10,000-byte container) and refused the second (413 into an empty container).
 * Accounts adv356..adv358.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { makeContainer, openArena, putDirect, type Arena, type Tenant } from '../adversarial/arena.js';

/** Starts a manifest PUT into `c` and holds its body once the proxy has sent `100 Continue`. */
async function holdManifest(arena: Arena, tenant: Tenant): Promise<{ finish: () => Promise<{ status: number; body: string }> }> {
  await makeContainer(tenant, 'c');
  await makeContainer(tenant, 'segs');
  await putDirect(tenant, '/segs/s1', 'abc');
  const manifest = JSON.stringify([{ path: '/segs/s1' }]);
  const url = new URL(tenant.viaProxy('/c/m?multipart-manifest=put'));
  const held = rawRequest(arena.proxy.url, 'PUT', url.pathname + url.search, [['Host', url.host], ['X-Auth-Token', tenant.token], ['Expect', '100-continue'], ['Content-Length', String(manifest.length)]]);
  assert.equal(await held.admitted, 'continue');
  return { finish: () => held.finish(manifest) };
}

describe('a held manifest is decided on usage read after the wait (cached mode, cache_max_entries = 1)', () => {
  let arena: Arena;
  before(async () => {
    arena = await openArena({ precise: false }, [356, 357], { extraQuotaLines: ['cache_max_entries = 1'] });
  });
  after(() => arena.close());

  for (const evict of [false, true]) {
    test(`9,950 bytes stored while the body is held${evict ? ', then another container written (the entry is evicted)' : ''}: refused`, async () => {
      const tenant = await arena.tenant();
      const auth = { 'x-auth-token': tenant.token };
      if (evict) await makeContainer(tenant, 'other');
      const held = await holdManifest(arena, tenant);
      const x = await call('PUT', tenant.viaProxy('/c/x'), auth, Buffer.alloc(9950, 'x'));
      assert.equal(x.status, 201, `x ${x.status} ${x.body}`);
      if (evict) assert.equal((await call('PUT', tenant.viaProxy('/other/y'), auth, 'y')).status, 201);
      const answer = await held.finish();
      const usage = await arena.usage(tenant, 'c');
      assert.equal(answer.status, 413, `the manifest does not fit: ${answer.status} ${answer.body}`);
      assert.ok(usage.bytes <= 10_000, `container c holds ${usage.bytes} bytes (limit 10000)`);
    });
  }
});

describe('a held manifest is decided on usage read after the wait (precise mode)', () => {
  let arena: Arena;
  before(async () => {
    arena = await openArena({ precise: true }, [358]);
  });
  after(() => arena.close());

  test('the object that filled the container deleted while the body is held: admitted', async () => {
    const tenant = await arena.tenant();
    await makeContainer(tenant, 'c');
    await putDirect(tenant, '/c/big', Buffer.alloc(9950, 'b'));
    const held = await holdManifest(arena, tenant);
    assert.equal((await call('DELETE', tenant.viaProxy('/c/big'), { 'x-auth-token': tenant.token })).status, 204);
    const answer = await held.finish();
    assert.equal(answer.status, 201, `the container is empty, the manifest fits: ${answer.status} ${answer.body}`);
    assert.ok((await arena.usage(tenant, 'c')).bytes <= 10_000);
  });
});
