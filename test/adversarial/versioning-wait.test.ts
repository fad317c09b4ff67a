/**
 * A versioning change waits for the writes into its container that are on their way to Swift (they were decided
 * on the versioning as it is), but not for ever: a client holding an upload's body open would otherwise keep the
 * owner's change, and every write queued behind it, waiting for as long as it liked. Past upstream_timeout (3 s
 * here) the change is refused 503 with Retry-After, and the writes behind it go on; once the held upload has
 * ended, the change goes through. Outcomes are read on Swift directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { MODES, makeContainer, openArena, type Arena } from './arena.js';

const ACCOUNTS = { 'cached mode': [352, 353], 'precise mode': [354, 355] } as const;

for (const mode of MODES) {
  describe(`a versioning change waits for held writes for a bounded time, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraProxyLines: ['upstream_timeout = 3'] });
    });
    after(() => arena.close());

    test('a held upload body keeps the owner\'s versioning change waiting 3 s at most: then 503, Retry-After; once it ends, the change goes through', async () => {
      const owner = await arena.tenant();
      await makeContainer(owner, 'c', { 'x-container-write': `${owner.account}:reader` });
      await makeContainer(owner, 'v');
      const url = new URL(owner.viaProxy('/c/g'));
      const held = rawRequest(arena.proxy.url, 'PUT', url.pathname, [['Host', url.host], ['X-Auth-Token', owner.readerToken], ['Content-Length', '10'], ['Expect', '100-continue']]);
      assert.equal(await held.admitted, 'continue');
      held.send('x');
      const started = Date.now();
      const change = await call('POST', owner.viaProxy('/c'), { 'x-auth-token': owner.token, 'x-versions-location': 'v' });
      const waited = Date.now() - started;
      assert.deepEqual([change.status, change.headers['retry-after']], [503, '1'], change.body);
      assert.ok(waited >= 2_900 && waited < 10_000, `answered after ${waited} ms`);
      const head = await call('HEAD', owner.direct('/c'), { 'x-auth-token': arena.resellerToken });
      assert.equal(head.headers['x-versions-location'], undefined, 'the change did not reach Swift');
      assert.equal((await held.finish('123456789')).status, 201);
      const again = await call('POST', owner.viaProxy('/c'), { 'x-auth-token': owner.token, 'x-versions-location': 'v' });
      assert.equal(again.status, 204, again.body);
      assert.equal((await call('HEAD', owner.direct('/c'), { 'x-auth-token': arena.resellerToken })).headers['x-versions-location'], 'v');
    });
  });
}
