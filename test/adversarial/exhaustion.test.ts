/**
 * Nothing a client sends, with or without credentials, may exhaust the proxy's connections to Swift or its
 * heap (issue 22, "bounded resources"). Each attack is driven over raw sockets; what Swift stored is read on
 * Swift directly. Bounds are set low here so that each is reached in a moment (docs/operations.md, "Bounds on
 * what a client can hold", gives the defaults and why).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { call, type Answer } from '../helpers/http.js';
import { rawRequest, until, type HeaderList, type RawRequest, type RawResponse } from '../helpers/raw-http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { ADVERSARIAL_QUOTA, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';
import { archive } from './attacks.js';

const ACCOUNTS = { 'cached mode': [251, 252, 253, 254, 255, 256, 257, 258, 259, 260], 'precise mode': [261, 262, 263, 264, 265, 266, 267, 268, 269, 270] } as const;

/** The bounds of the arena's proxy: short timeouts, room for the 300 idle connections of one test address. */
const ARENA_BOUNDS = [
  'client_header_timeout = 2',
  'client_body_timeout = 2',
  'max_connections_per_client = 1000',
  'max_bodies_per_client = 400',
  'max_bodies_per_account = 400',
];

/** A second proxy's bounds, each low enough to be reached by a few requests. */
const LOW_BOUNDS = [
  'client_header_timeout = 2',
  'client_body_timeout = 2',
  'max_connections_per_client = 20',
  'max_bodies_per_client = 6',
  'max_bodies_per_account = 4',
  'pending_header_bytes = 256K',
  'body_buffer_bytes = 1M',
  'body_buffer_account_bytes = 64K',
];

/** The same path on another proxy. */
function on(proxy: RunningProxy, url: string): string {
  const parsed = new URL(url);
  return `${proxy.url}${parsed.pathname}${parsed.search}`;
}

/** A request over a raw socket (to `origin`), as a tenant or to an account without credentials, whose body the test sends, or not. */
function open(origin: string, tenant: Tenant | string, method: string, path: string, headers: HeaderList, body?: string): RawRequest {
  const target = typeof tenant === 'string' ? `/v1/${tenant}${path}` : new URL(tenant.viaProxy(path)).pathname + new URL(tenant.viaProxy(path)).search;
  const auth: HeaderList = typeof tenant === 'string' ? [] : [['X-Auth-Token', tenant.token]];
  return rawRequest(origin, method, target, [['Host', new URL(origin).host], ...auth, ...headers], body);
}

/** Resolves with the answer, or with 'timeout' after `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A connection that sends `head` (unfinished or not) and nothing more; resolves with what the proxy answers. */
function sendHead(origin: string, head: string | Buffer): { answer: Promise<string>; socket: net.Socket } {
  const url = new URL(origin);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  socket.write(head);
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  const answer = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  return { answer, socket };
}

const statusOf = (text: string) => text.split('\r\n', 1)[0] ?? '';

for (const mode of MODES) {
  describe(`exhaustion, ${mode.name}`, () => {
    let arena: Arena;
    let low: RunningProxy;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraProxyLines: ARENA_BOUNDS });
      low = await startProxy({ upstream: arena.swift, quota: ADVERSARIAL_QUOTA, preciseMode: mode.precise, cacheTimeout: 30, extraProxyLines: LOW_BOUNDS });
    });
    after(async () => {
      await low.close();
      await arena.close();
    });

    const auth = (tenant: Tenant) => ({ 'x-auth-token': tenant.token });

    test('300 anonymous POSTs with a Content-Length and no body hold no connection to Swift: a tenant\'s PUT, GET and HEAD answer within 2 s; each POST gets 408', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      const idle = Array.from({ length: 300 }, (_, i) => open(arena.proxy.url, 'AUTH_x', 'POST', `/c/o${i}`, [['Content-Length', '10']]));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = Date.now();
      const put = await within(call('PUT', tenant.viaProxy('/c/victim'), auth(tenant), 'payload'), 2000);
      const get = await within(call('GET', tenant.viaProxy('/c/victim'), auth(tenant)), 2000);
      const head = await within(call('HEAD', tenant.viaProxy('/c'), auth(tenant)), 2000);
      const took = Date.now() - started;
      const summary = [put, get, head].map((a) => (a === 'timeout' ? 'timeout' : (a as Answer).status)).join(' ');
      assert.deepEqual(summary, '201 200 204', `tenant's PUT GET HEAD while 300 bodies idle (${took} ms)`);
      // The client body timeout ends each idle request, before anything reached Swift.
      const answers = await Promise.all(idle.map((request) => within(request.response, 6000)));
      const counts: Record<string, number> = {};
      for (const answer of answers) {
        const key = answer === 'timeout' ? 'timeout' : String((answer as RawResponse).status);
        counts[key] = (counts[key] ?? 0) + 1;
      }
      assert.deepEqual(counts, { 408: 300 });
      assert.deepEqual(await arena.listing(tenant, 'c'), ['victim']);
    });

    test('the same through two proxies: 300 idle POSTs held on each, the tenant\'s PUT through one and GET through the other answer within 2 s', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'two');
      const second = await arena.another();
      try {
        const idle = [arena.proxy, second].flatMap((proxy) => Array.from({ length: 300 }, (_, i) => open(proxy.url, 'AUTH_y', 'POST', `/two/o${i}`, [['Content-Length', '10']])));
        await new Promise((resolve) => setTimeout(resolve, 300));
        const put = await within(call('PUT', tenant.viaProxy('/two/victim'), auth(tenant), 'payload'), 2000);
        const get = await within(call('GET', on(second, tenant.viaProxy('/two/victim')), auth(tenant)), 2000);
        assert.deepEqual([put, get].map((a) => (a === 'timeout' ? 'timeout' : (a as Answer).status)), [201, 200]);
        for (const request of idle) request.destroy();
        assert.deepEqual(await arena.listing(tenant, 'two'), ['victim']);
      } finally {
        await second.close();
      }
    });

    test('a body that stalls is cut with 408 after client_body_timeout and nothing is stored; its quota is free again', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'stall');
      for (let i = 0; i < 4; i++) await putDirect(tenant, `/stall/o${i}`, 'x');
      // The fifth object fits: admitted, half its body sent, then nothing.
      const stalled = open(arena.proxy.url, tenant, 'PUT', '/stall/late', [['Content-Length', '10'], ['Expect', '100-continue']]);
      assert.equal(await stalled.admitted, 'continue', 'the fifth object is admitted (100 Continue sent)');
      stalled.send('01234');
      const started = Date.now();
      const answer = await within(stalled.response, 8000);
      const took = Date.now() - started;
      assert.equal(answer === 'timeout' ? 'timeout' : answer.status, 408, `stalled body answered in ${took} ms`);
      assert.ok(took >= 1500 && took < 6000, `cut after ${took} ms (client_body_timeout = 2 s)`);
      assert.deepEqual(await arena.listing(tenant, 'stall'), ['o0', 'o1', 'o2', 'o3']);
      // Nothing was stored, and the reservation is gone: the fifth object fits again.
      await until(async () => (await call('PUT', tenant.viaProxy('/stall/next'), auth(tenant), 'y')).status === 201, 'the fifth object admitted again', 5000);
      assert.deepEqual(await arena.usage(tenant, 'stall'), { objects: 5, bytes: 5 });
    });

    test('a client told 100 Continue that never sends its body gets 408; Swift stores nothing', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'wait');
      const silent = open(arena.proxy.url, tenant, 'PUT', '/wait/o', [['Content-Length', '5'], ['Expect', '100-continue']]);
      assert.equal(await silent.admitted, 'continue');
      const answer = await within(silent.response, 8000);
      assert.equal(answer === 'timeout' ? 'timeout' : answer.status, 408);
      assert.deepEqual(await arena.listing(tenant, 'wait'), []);
    });

    test('request heads: within Swift\'s limits (150 headers of 45 KB, 60 KB in 12) stored; past them (205 headers, 84 KB) 431; an unfinished head 408', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'heads');
      // Swift 2.30.1's proxy reads up to 200 header lines (http.client's limit as its bufferedhttp raises it) of
      // at most 64 KiB together (eventlet), each line under 8 KiB.
      const lines = (count: number, size: number): HeaderList => Array.from({ length: count }, (_, i) => [`X-Pad-${i}`, 'p'.repeat(size)] as const);
      const fits = open(arena.proxy.url, tenant, 'PUT', '/heads/fits', [['Content-Length', '1'], ...lines(150, 300)], 'x');
      const wide = open(arena.proxy.url, tenant, 'PUT', '/heads/wide', [['Content-Length', '1'], ...lines(12, 5000)], 'x');
      const many = open(arena.proxy.url, tenant, 'PUT', '/heads/many', [['Content-Length', '1'], ...lines(205, 10)], 'x');
      const large = open(arena.proxy.url, tenant, 'PUT', '/heads/large', [['Content-Length', '1'], ...lines(12, 7000)], 'x');
      const answers = await Promise.all([fits.response, wide.response, many.response, large.response]);
      assert.deepEqual(answers.map((a) => a.status), [201, 201, 431, 431]);
      const slow = sendHead(arena.proxy.url, `GET /v1/${tenant.swiftAccount}/heads HTTP/1.1\r\nHost: x\r\nX-Auth-Token: ${tenant.token}\r\n`);
      const started = Date.now();
      const text = await within(slow.answer, 8000);
      const took = Date.now() - started;
      assert.match(text === 'timeout' ? 'timeout' : statusOf(text), /^HTTP\/1\.1 408/, `unfinished head answered after ${took} ms`);
      assert.ok(took < 5000, `an unfinished head is cut after ${took} ms (client_header_timeout = 2 s)`);
      assert.deepEqual(await arena.listing(tenant, 'heads'), ['fits', 'wide']);
    });

    test('connections per client address: 25 idle connections with a limit of 20 → 5 refused 503 with Retry-After; a request after them still answered', async () => {
      const tenant = await arena.tenant();
      const idle = Array.from({ length: 25 }, () => sendHead(low.url, ''));
      const refused = await Promise.all(idle.map((connection) => within(connection.answer, 1500)));
      const statuses = refused.filter((text) => text !== 'timeout').map((text) => statusOf(text as string));
      assert.equal(statuses.length, 5, `refused: ${statuses.join(' | ')}`);
      for (const text of refused.filter((t) => t !== 'timeout')) assert.match(text as string, /^HTTP\/1\.1 503[^]*\r\nRetry-After: \d+\r\n/i);
      for (const connection of idle) connection.socket.destroy();
      await until(async () => (await call('HEAD', on(low, tenant.viaProxy()), auth(tenant))).status === 200, 'the account answered once the idle ones left', 3000);
    });

    test('held bodies per client address (6) and per account (4): past them 503 with Retry-After, before any byte reaches Swift', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'held');
      const holding = Array.from({ length: 8 }, (_, i) => open(low.url, `AUTH_anonymous${i}`, 'POST', `/held/o${i}`, [['Content-Length', '10']]));
      const verdicts = await Promise.all(holding.map((request) => within(request.response, 1000)));
      // Without credentials, each to an account of its own: the per-address bound, not the per-account one.
      const refusals = verdicts.filter((v) => v !== 'timeout') as RawResponse[];
      assert.deepEqual(refusals.map((r) => [r.status, r.headers['retry-after'] !== undefined]), [[503, true], [503, true]]);
      for (const request of holding) request.destroy();
      // The proxy lets a request whose body broke off answer for a second (server.ts) before it sees it gone.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // One account's bodies: 4 held, the fifth refused.
      const account = Array.from({ length: 5 }, (_, i) => open(low.url, tenant, 'PUT', `/held/a${i}`, [['Content-Length', '1'], ['Expect', '100-continue']]));
      const admitted = await Promise.all(account.map((request) => within(request.admitted, 1500)));
      assert.deepEqual(admitted.filter((a) => a === 'continue').length, 4, admitted.join(' '));
      assert.deepEqual(admitted.filter((a) => a === 503).length, 1, admitted.join(' '));
      const finished = await Promise.all(account.map((request, i) => (admitted[i] === 'continue' ? request.finish('z') : request.response)));
      assert.deepEqual(finished.map((a) => a.status).sort(), [201, 201, 201, 201, 503]);
      assert.equal((await arena.listing(tenant, 'held')).length, 4);
    });

    test('unfinished heads past pending_header_bytes (256 KiB): the oldest refused 503, the proxy keeps answering', async () => {
      const tenant = await arena.tenant();
      const partial = `GET /v1/x HTTP/1.1\r\nHost: x\r\n${`X-Pad: ${'p'.repeat(7000)}\r\n`.repeat(8)}`; // ~56 KiB, unfinished
      const heads = Array.from({ length: 10 }, () => sendHead(low.url, partial));
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const answered = await Promise.all(heads.map((h) => within(h.answer, 50)));
      const refused = answered.filter((a) => a !== 'timeout') as string[];
      assert.ok(refused.length >= 6 && refused.length <= 10, `${refused.length} refused of 10 x 56 KiB with a 256 KiB budget`);
      for (const text of refused) assert.match(text, /^HTTP\/1\.1 503[^]*Retry-After/i);
      assert.equal((await call('HEAD', on(low, tenant.viaProxy()), auth(tenant))).status, 200);
      for (const h of heads) h.socket.destroy();
    });

    test('buffered manifests under an account budget (64 KiB): a second 40 KB manifest while one is held is refused 503 before its body; after it, admitted', async () => {
      const tenant = await arena.tenant('roomy');
      await makeContainer(tenant, 'm');
      // 40 KB of JSON that lists no segment: Swift 2.30.1's SLO stores it as an empty manifest.
      const manifest = Buffer.from(`${' '.repeat(39_998)}[]`);
      const first = rawRequest(low.url, 'PUT', new URL(tenant.viaProxy('/m/one?multipart-manifest=put')).pathname + '?multipart-manifest=put',
        [['Host', new URL(low.url).host], ['X-Auth-Token', tenant.token], ['Content-Length', String(manifest.length)], ['Expect', '100-continue']]);
      assert.equal(await first.admitted, 'continue');
      first.send(manifest.subarray(0, 1000));
      const second = rawRequest(low.url, 'PUT', new URL(tenant.viaProxy('/m/two')).pathname + '?multipart-manifest=put',
        [['Host', new URL(low.url).host], ['X-Auth-Token', tenant.token], ['Content-Length', String(manifest.length)], ['Expect', '100-continue']]);
      const refused = await second.response;
      assert.deepEqual([refused.status, refused.headers['retry-after'] !== undefined], [503, true]);
      const done = await first.finish(manifest.subarray(1000));
      assert.equal(done.status, 201, done.body);
      const third = await call('PUT', on(low, tenant.viaProxy('/m/three?multipart-manifest=put')), auth(tenant), manifest);
      assert.equal(third.status, 201, 'the budget is free again');
      assert.deepEqual(await arena.listing(tenant, 'm'), ['one', 'three']);
    });

    test('a bulk extraction holds 2 MiB of the buffer budget (the archive reader\'s extended headers): past the account budget 503 before 100 Continue, nothing stored; within it, extracted', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'bulk');
      const tar = await archive([['a', 10], ['b', 10]]);
      const refused = open(low.url, tenant, 'PUT', '/bulk?extract-archive=tar', [['Content-Length', String(tar.length)], ['Expect', '100-continue'], ['Accept', 'application/json']]);
      assert.equal(await refused.admitted, 503, 'refused before the body');
      const answer = await refused.response;
      assert.ok(answer.headers['retry-after'] !== undefined, 'with Retry-After');
      assert.deepEqual(await arena.listing(tenant, 'bulk'), []);
      const extracted = await call('PUT', tenant.viaProxy('/bulk?extract-archive=tar'), { ...auth(tenant), accept: 'application/json' }, tar);
      assert.equal(extracted.status, 200, extracted.body);
      assert.deepEqual(await arena.listing(tenant, 'bulk'), ['a', 'b']);
    });
  });
}
