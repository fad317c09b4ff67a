/**
 * A grant the proxy kept (X-Container-Write, asked of Swift a few seconds ago) does not outlive its revocation
 * where it matters: uploads a grantee holds open, whose bodies Swift has not seen yet (so Swift has not
 * authorised them, and will refuse them), do not keep the container's owner out once the owner has revoked the
 * grant. Outcomes are read on Swift directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { randomBytes } from 'node:crypto';
import type { RunningProxy } from '../helpers/proxy.js';
import { redisUrl } from '../helpers/swift-env.js';
import { LIMITS, MODES, makeContainer, openArena, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [338, 339, 350], 'precise mode': [340, 345, 351] } as const;

for (const mode of MODES) {
  describe(`revoked grants, ${mode.name}`, () => {
    let arena: Arena;
    /** A second proxy on the same Redis ledger. */
    let other: RunningProxy;
    before(async () => {
      const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = grants-${randomBytes(4).toString('hex')}:`];
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraProxyLines: lines });
      other = await arena.another();
    });
    after(async () => {
      await other.close();
      await arena.close();
    });

    function heldUpload(tenant: Tenant, token: string, name: string, length: number, origin = arena.proxy.url) {
      const url = new URL(tenant.viaProxy(`/c/${name}`));
      return rawRequest(origin, 'PUT', url.pathname, [['Host', url.host], ['X-Auth-Token', token], ['Content-Length', String(length)], ['Expect', '100-continue']]);
    }

    test('uploads held on a revoked grant do not keep the owner out: the owner\'s write is admitted, the held ones get Swift\'s refusal', async () => {
      const owner = await arena.tenant();
      await makeContainer(owner, 'c', { 'x-container-write': `${owner.account}:reader` });
      // The grantee (a user of the account without admin rights, granted the container) holds two uploads
      // that take the container's whole room.
      const held = [heldUpload(owner, owner.readerToken, 'g1', 5_000), heldUpload(owner, owner.readerToken, 'g2', 5_000)];
      for (const upload of held) assert.equal(await upload.admitted, 'continue');
      // The owner revokes the grant, then writes.
      assert.equal((await call('POST', owner.viaProxy('/c'), { 'x-auth-token': owner.token, 'x-container-write': '' })).status, 204);
      const write = await call('PUT', owner.viaProxy('/c/mine'), { 'x-auth-token': owner.token }, Buffer.alloc(LIMITS.bytes, 'o'));
      assert.equal(write.status, 201, write.body);
      const answers = await Promise.all(held.map((upload) => upload.finish(Buffer.alloc(5_000, 'g')).catch(() => ({ status: 0 }))));
      for (const answer of answers) assert.ok(answer.status === 403 || answer.status === 0, `a held upload was answered ${answer.status}`);
      assert.deepEqual(await arena.listing(owner, 'c'), ['mine']);
      assert.deepEqual(await arena.usage(owner, 'c'), { objects: 1, bytes: LIMITS.bytes });
    });

    test('while the grant stands, the held uploads keep their room: the owner is refused, and they are stored', async () => {
      const owner = await arena.tenant();
      await makeContainer(owner, 'c', { 'x-container-write': `${owner.account}:reader` });
      const held = [heldUpload(owner, owner.readerToken, 'g1', 5_000), heldUpload(owner, owner.readerToken, 'g2', 5_000)];
      for (const upload of held) assert.equal(await upload.admitted, 'continue');
      const write = await call('PUT', owner.viaProxy('/c/mine'), { 'x-auth-token': owner.token }, Buffer.alloc(LIMITS.bytes, 'o'));
      assert.equal(write.status, 413, write.body);
      const answers = await Promise.all(held.map((upload) => upload.finish(Buffer.alloc(5_000, 'g'))));
      assert.deepEqual(answers.map((answer) => answer.status), [201, 201]);
      assert.deepEqual(await arena.usage(owner, 'c'), { objects: 2, bytes: LIMITS.bytes });
    });

    test('uploads held through another proxy on a revoked grant give way within the recheck period (10 s, asked every 5 s)', async () => {
      const owner = await arena.tenant();
      await makeContainer(owner, 'c', { 'x-container-write': `${owner.account}:reader` });
      const held = [heldUpload(owner, owner.readerToken, 'g1', 5_000, other.url), heldUpload(owner, owner.readerToken, 'g2', 5_000, other.url)];
      for (const upload of held) assert.equal(await upload.admitted, 'continue');
      const since = Date.now();
      assert.equal((await call('POST', owner.viaProxy('/c'), { 'x-auth-token': owner.token, 'x-container-write': '' })).status, 204);
      // This proxy cannot reach the other's held writes: the owner is refused until that proxy has asked again.
      const first = await call('PUT', owner.viaProxy('/c/mine'), { 'x-auth-token': owner.token }, Buffer.alloc(LIMITS.bytes, 'o'));
      assert.equal(first.status, 413, first.body);
      let status = 413;
      while (status === 413 && Date.now() - since < 25_000) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        status = (await call('PUT', owner.viaProxy('/c/mine'), { 'x-auth-token': owner.token }, Buffer.alloc(LIMITS.bytes, 'o'))).status;
      }
      assert.equal(status, 201, `the owner's write after ${Date.now() - since} ms`);
      assert.ok(Date.now() - since <= 20_000, `admitted after ${Date.now() - since} ms`);
      const answers = await Promise.all(held.map((upload) => upload.finish(Buffer.alloc(5_000, 'g')).catch(() => ({ status: 0 }))));
      for (const answer of answers) assert.ok(answer.status === 403 || answer.status === 0, `a held upload was answered ${answer.status}`);
      assert.deepEqual(await arena.listing(owner, 'c'), ['mine']);
      assert.deepEqual(await arena.usage(owner, 'c'), { objects: 1, bytes: LIMITS.bytes });
    });
  });
}
