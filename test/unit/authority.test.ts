/**
 * What the proxy keeps of Swift's answers to "may this caller write here?" (src/auth/authority.ts): a grant for
 * 10 s per credentials and container, a refusal not at all, a read check (either answer) for 10 s. Time is
 * node:test's mocked Date and setTimeout, handed to the Authority as its clock: ages are exact, nothing sleeps.
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Authority, type Credentials } from '../../src/auth/authority.js';
import type { SwiftClient } from '../../src/swift/client.js';

/** How long a grant (or a read check) is kept: VERDICT_TTL_MS. */
const KEPT_MS = 10_000;

function credentials(token: string): Credentials {
  const headers = { 'x-auth-token': token };
  return { headers, key: JSON.stringify(headers) };
}

interface Asked {
  readonly method: string;
  readonly path: string;
  readonly token: string | undefined;
}

/**
 * Swift answering the Authority's questions as the caller: a POST to a probe name (404 when authorised), a HEAD of
 * the account. `refuse` holds the tokens Swift refuses now (403 with its own headers and body).
 */
function fakeSwift(refuse: Set<string>): { swift: SwiftClient; asked: Asked[] } {
  const asked: Asked[] = [];
  const swift = {
    asCaller: async (method: string, path: string, headers: Readonly<Record<string, string>>) => {
      const token = headers['x-auth-token'];
      asked.push({ method, path, token });
      if (token !== undefined && refuse.has(token)) {
        return { status: 403, headers: { 'content-type': 'text/html; charset=UTF-8', 'x-trans-id': 'tx1', 'x-other': 'dropped' }, body: Buffer.from('<html><h1>Forbidden</h1></html>') };
      }
      return method === 'HEAD' ? { status: 204, headers: {} } : { status: 404, headers: {}, body: Buffer.alloc(0) };
    },
  };
  return { swift: swift as unknown as SwiftClient, asked };
}

let refuse: Set<string>;
let asked: Asked[];
let authority: Authority;

beforeEach(() => {
  mock.timers.enable({ apis: ['Date', 'setTimeout', 'setInterval'], now: 1_800_000_000_000 });
  refuse = new Set();
  const fake = fakeSwift(refuse);
  asked = fake.asked;
  authority = new Authority(fake.swift, () => Date.now());
});
afterEach(() => mock.timers.reset());

const posts = () => asked.filter((a) => a.method === 'POST').length;

describe('write grants', () => {
  test('asked with the caller\'s credentials as a POST to a name that does not exist in the container', async () => {
    assert.deepEqual(await authority.mayWrite(credentials('t1'), 'AUTH_a', 'c'), { allowed: true });
    assert.equal(asked.length, 1);
    assert.equal(asked[0]!.method, 'POST');
    assert.equal(asked[0]!.token, 't1');
    assert.match(asked[0]!.path, /^\/v1\/AUTH_a\/c\/quota-proxy-probe-[0-9a-f]{24}$/);
    await authority.mayWrite(credentials('t1'), 'AUTH_a');
    assert.match(asked[1]!.path, /^\/v1\/AUTH_a\/quota-proxy-probe-[0-9a-f]{24}$/, 'container creation: a POST in the account');
  });

  test('a grant is kept for 10 s: not asked again at 10 s, asked again 1 ms later', async () => {
    const caller = credentials('t1');
    await authority.mayWrite(caller, 'AUTH_a', 'c');
    mock.timers.tick(KEPT_MS);
    assert.deepEqual(await authority.mayWrite(caller, 'AUTH_a', 'c'), { allowed: true });
    assert.equal(posts(), 1, 'kept for 10 s');
    mock.timers.tick(1);
    await authority.mayWrite(caller, 'AUTH_a', 'c');
    assert.equal(posts(), 2, 'asked again after 10 s');
  });

  test('a grant is kept per credentials and per container', async () => {
    await authority.mayWrite(credentials('t1'), 'AUTH_a', 'c');
    await authority.mayWrite(credentials('t2'), 'AUTH_a', 'c');
    await authority.mayWrite(credentials('t1'), 'AUTH_a', 'd');
    await authority.mayWrite(credentials('t1'), 'AUTH_a');
    assert.equal(posts(), 4);
    await authority.mayWrite(credentials('t1'), 'AUTH_a', 'c');
    assert.equal(posts(), 4);
  });

  test('a revoked grant is still kept until its 10 s are up (the bound on how long a revoked caller counts)', async () => {
    const caller = credentials('t1');
    await authority.mayWrite(caller, 'AUTH_a', 'c');
    refuse.add('t1');
    mock.timers.tick(KEPT_MS - 1);
    assert.equal((await authority.mayWrite(caller, 'AUTH_a', 'c')).allowed, true);
    mock.timers.tick(2);
    assert.equal((await authority.mayWrite(caller, 'AUTH_a', 'c')).allowed, false);
  });

  test('a refusal is Swift\'s own answer, and is not kept: a moment later Swift is asked again', async () => {
    const caller = credentials('t1');
    refuse.add('t1');
    const refused = await authority.mayWrite(caller, 'AUTH_a', 'c');
    assert.ok(!refused.allowed, 'refused');
    assert.equal(refused.answer.status, 403);
    assert.deepEqual(refused.answer.headers, { 'content-type': 'text/html; charset=UTF-8', 'x-trans-id': 'tx1' });
    assert.equal(refused.answer.body.toString(), '<html><h1>Forbidden</h1></html>');
    refuse.delete('t1'); // an ACL set meanwhile
    mock.timers.tick(2);
    assert.deepEqual(await authority.mayWrite(caller, 'AUTH_a', 'c'), { allowed: true });
    assert.equal(posts(), 2);
  });

  test('concurrent asks for one grant share one question', async () => {
    const caller = credentials('t1');
    const verdicts = await Promise.all(Array.from({ length: 5 }, () => authority.mayWrite(caller, 'AUTH_a', 'c')));
    assert.ok(verdicts.every((v) => v.allowed));
    assert.equal(posts(), 1);
  });

  test('mayWriteNow asks whatever was kept, and what it hears is kept from then', async () => {
    const caller = credentials('t1');
    await authority.mayWrite(caller, 'AUTH_a', 'c');
    refuse.add('t1');
    mock.timers.tick(1000);
    assert.equal((await authority.mayWriteNow(caller, 'AUTH_a', 'c')).allowed, false);
    refuse.delete('t1');
    mock.timers.tick(2);
    assert.equal((await authority.mayWriteNow(caller, 'AUTH_a', 'c')).allowed, true);
    mock.timers.tick(KEPT_MS);
    assert.equal((await authority.mayWrite(caller, 'AUTH_a', 'c')).allowed, true);
    assert.equal(posts(), 3, 'the grant mayWriteNow heard is kept its 10 s');
  });

  test('forget drops a kept grant: the next write asks again', async () => {
    const caller = credentials('t1');
    await authority.mayWrite(caller, 'AUTH_a', 'c');
    authority.forget(caller, 'AUTH_a', 'c');
    await authority.mayWrite(caller, 'AUTH_a', 'c');
    assert.equal(posts(), 2);
  });
});

describe('read checks (quota headers for callers who may read the account)', () => {
  test('either answer is kept for 10 s, then asked again', async () => {
    refuse.add('reader-refused');
    assert.equal(await authority.mayReadAccount(credentials('reader'), 'AUTH_a'), true);
    assert.equal(await authority.mayReadAccount(credentials('reader-refused'), 'AUTH_a'), false);
    refuse.add('reader');
    refuse.delete('reader-refused');
    mock.timers.tick(KEPT_MS);
    assert.equal(await authority.mayReadAccount(credentials('reader'), 'AUTH_a'), true);
    assert.equal(await authority.mayReadAccount(credentials('reader-refused'), 'AUTH_a'), false);
    assert.equal(asked.length, 2);
    assert.deepEqual(asked.map((a) => `${a.method} ${a.path}`), ['HEAD /v1/AUTH_a', 'HEAD /v1/AUTH_a']);
    mock.timers.tick(1);
    assert.equal(await authority.mayReadAccount(credentials('reader'), 'AUTH_a'), false);
    assert.equal(await authority.mayReadAccount(credentials('reader-refused'), 'AUTH_a'), true);
    assert.equal(asked.length, 4);
  });

  test('a caller without credentials may not read, and Swift is not asked', async () => {
    assert.equal(await authority.mayReadAccount({ headers: {}, key: '{}' }, 'AUTH_a'), false);
    assert.equal(asked.length, 0);
  });
});
