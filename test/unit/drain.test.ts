/**
 * lifecycle/drain.ts on a small Fastify app of its own (loopback): readiness off for a shutdown and not for a
 * retirement, "Connection: close" on every answer once draining, the listener open for drain_delay, and a
 * request still running after drain_timeout cut.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { DrainState, drain, type DrainKind } from '../../src/lifecycle/drain.js';

async function app(): Promise<{ app: FastifyInstance; origin: string }> {
  const server = Fastify({ forceCloseConnections: 'idle' });
  server.get('/fast', async () => 'ok');
  server.get('/slow', async () => {
    await sleep(1500);
    return 'slow';
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  return { app: server, origin: `http://127.0.0.1:${(server.server.address() as AddressInfo).port}` };
}

const quiet = { info: () => {}, warn: () => {} };

function settings(drainDelaySeconds: number, drainTimeoutSeconds: number) {
  return { drainDelaySeconds, drainTimeoutSeconds, reusePort: false };
}

describe('drain', () => {
  for (const kind of ['shutdown', 'retire'] as DrainKind[]) {
    test(`${kind}: ${kind === 'shutdown' ? 'not ready' : 'still ready'}, the port serves on for drain_delay with "Connection: close", then closes`, async () => {
      const { app: server, origin } = await app();
      const state = new DrainState();
      assert.equal((await request(`${origin}/fast`)).headers.connection, 'keep-alive');
      const done = drain(server, undefined, state, { kind, reason: 'test', settings: settings(0.5, 5) }, quiet);
      assert.equal(state.notReady, kind === 'shutdown');
      assert.equal(state.draining, true);
      const during = await request(`${origin}/fast`);
      assert.equal(during.statusCode, 200);
      assert.equal(during.headers.connection, 'close');
      await during.body.dump();
      assert.equal(await done, true, 'nothing had to be cut');
      await assert.rejects(request(`${origin}/fast`), /ECONNREFUSED/);
    });
  }

  test('a request still running after drain_timeout is cut, and the drain says so', async () => {
    const { app: server, origin } = await app();
    const slow = request(`${origin}/slow`).then((answer) => answer.body.text());
    await sleep(100);
    const warnings: string[] = [];
    const complete = await drain(server, undefined, new DrainState(), { kind: 'shutdown', reason: 'test', settings: settings(0, 0.3) }, { info: () => {}, warn: (m) => warnings.push(m) });
    assert.equal(complete, false);
    await assert.rejects(slow);
    assert.match(warnings.join('\n'), /requests still in flight after drain_timeout \(0\.3 s\)/);
  });

  test('a request in flight within drain_timeout finishes, its answer closing its connection (no 5 s keep-alive wait)', async () => {
    const { app: server, origin } = await app();
    const slow = request(`${origin}/slow`).then(async (answer) => ({ connection: answer.headers.connection, body: await answer.body.text() }));
    await sleep(100);
    const started = Date.now();
    assert.equal(await drain(server, undefined, new DrainState(), { kind: 'shutdown', reason: 'test', settings: settings(0, 5) }, quiet), true);
    assert.ok(Date.now() - started < 3000, `drained in ${Date.now() - started} ms`);
    assert.deepEqual(await slow, { connection: 'close', body: 'slow' });
  });
});
