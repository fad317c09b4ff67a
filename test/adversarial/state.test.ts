/**
 * The proxy's own quota state (when usage went over a soft limit, refusal counts) cannot be undone by the
 * tenant it concerns: filling the metadata space Swift gives an account or container, so that Swift refuses the
 * proxy's keys, does not restart a grace period nor switch soft limits off, across proxy restarts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { call } from '../helpers/http.js';
import { MODES, makeContainer, openArena, type Arena } from './arena.js';

const ACCOUNTS = { 'cached mode': [77], 'precise mode': [78] } as const;
const GRACE_SECONDS = 2;

for (const mode of MODES) {
  describe(`the proxy's state, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraQuotaLines: ['soft_ratio = 0.6', `grace_period = ${GRACE_SECONDS}s`] });
    });
    after(() => arena.close());

    test('an owner who fills its metadata does not reset a grace period: it ends, and is enforced, after a restart', async () => {
      const tenant = await arena.tenant();
      const owner = { 'x-auth-token': tenant.token };
      await makeContainer(tenant, 'c');
      const full: Record<string, string> = { ...owner };
      for (let i = 0; i < 90; i++) full[`x-container-meta-k${i}`] = 'v';
      assert.equal((await call('POST', tenant.direct('/c'), full)).status, 204, 'Swift takes 90 metadata items, no more');

      // Soft limit 3 of 5 objects: the 4th starts the grace period.
      for (let i = 0; i < 4; i++) assert.equal((await call('PUT', tenant.viaProxy(`/c/o${i}`), owner, 'x')).status, 201);
      await arena.proxy.gate.watch.flush();
      assert.deepEqual(await arena.proxyMetadata(tenant, 'c'), {}, 'Swift refused the proxy\'s metadata');
      await sleep((GRACE_SECONDS + 1) * 1000);

      const restarted = await arena.another();
      try {
        const refused = await call('PUT', `${restarted.url}/v1/${tenant.swiftAccount}/c/o4`, owner, 'x');
        assert.equal(refused.status, 413, `after the grace period, growth over the soft limit is refused: ${refused.status}`);
        assert.equal(refused.headers['x-quota-enforced'], 'soft-grace-expired');
      } finally {
        await restarted.close();
      }
      assert.deepEqual(await arena.listing(tenant, 'c'), ['o0', 'o1', 'o2', 'o3']);
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: 4, bytes: 4 });
    });
  });
}
