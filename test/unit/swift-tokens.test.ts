/**
 * How long the proxy keeps the tokens it logs in for (src/swift/client.ts): its service identity's, and the
 * tempauth users' it asks Swift as for S3 callers. A token is renewed a minute before Swift says it expires,
 * or half-way through a shorter life. node:test's mocked Date makes the ages exact; Swift is a fake dispatcher
 * that answers tempauth's GET /auth/v1.0 with a new token each time (no network).
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import type { TempauthUser } from '../../src/config/identity.js';
import { createMetrics } from '../../src/metrics.js';
import { SwiftClient } from '../../src/swift/client.js';

const SERVICE: TempauthUser = { account: 'service', user: 'quota', key: 'secret', groups: ['.admin'] };
const ALICE: TempauthUser = { account: 'alice', user: 'alice', key: 'alicekey', groups: ['.admin'] };

/** A tempauth that issues token `tk<n>` valid for `lifetimeSeconds`, and records who logged in. */
function fakeTempauth(lifetimeSeconds: () => number | undefined): { dispatcher: Dispatcher; logins: string[] } {
  const logins: string[] = [];
  const dispatcher = {
    request: async (options: { path: string; headers: Record<string, string> }) => {
      assert.equal(options.path, '/auth/v1.0');
      logins.push(options.headers['x-auth-user']!);
      const lifetime = lifetimeSeconds();
      const headers: Record<string, string> = { 'x-auth-token': `tk${logins.length}`, 'x-storage-url': 'http://swift/v1/AUTH_service' };
      if (lifetime !== undefined) headers['x-auth-token-expires'] = String(lifetime);
      return { statusCode: 200, headers, body: { dump: async () => undefined } };
    },
  };
  return { dispatcher: dispatcher as unknown as Dispatcher, logins };
}

function client(dispatcher: Dispatcher): SwiftClient {
  return new SwiftClient({
    upstream: new URL('http://127.0.0.1:8080'),
    dispatcher,
    service: { kind: 'tempauth', user: SERVICE, account: 'AUTH_service' },
    metrics: createMetrics(),
  });
}

// Only Date: the client's requests carry an AbortSignal.timeout, which mocked timers would never end.
beforeEach(() => mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_000 }));
afterEach(() => mock.timers.reset());

describe('the service identity\'s token', () => {
  test('an hour\'s token is used for 59 minutes, then renewed', async () => {
    const { dispatcher, logins } = fakeTempauth(() => 3600);
    const swift = client(dispatcher);
    assert.equal(await swift.serviceAccount(), 'AUTH_service');
    mock.timers.tick(3_540_000 - 1);
    await swift.serviceAccount();
    assert.deepEqual(logins, ['service:quota'], 'kept until a minute before it expires');
    mock.timers.tick(1);
    await swift.serviceAccount();
    assert.deepEqual(logins, ['service:quota', 'service:quota'], 'renewed a minute before it expires');
  });

  test('a token Swift gives without an expiry counts as an hour\'s', async () => {
    const { dispatcher, logins } = fakeTempauth(() => undefined);
    const swift = client(dispatcher);
    await swift.serviceAccount();
    mock.timers.tick(3_540_000 - 1);
    await swift.serviceAccount();
    assert.equal(logins.length, 1);
    mock.timers.tick(1);
    await swift.serviceAccount();
    assert.equal(logins.length, 2);
  });

  test('a token with less than two minutes to live is renewed half-way through', async () => {
    const { dispatcher, logins } = fakeTempauth(() => 100);
    const swift = client(dispatcher);
    await swift.serviceAccount();
    mock.timers.tick(50_000 - 1);
    await swift.serviceAccount();
    assert.equal(logins.length, 1);
    mock.timers.tick(1);
    await swift.serviceAccount();
    assert.equal(logins.length, 2);
  });

  test('requests that find the token due at once share one login', async () => {
    const { dispatcher, logins } = fakeTempauth(() => 3600);
    const swift = client(dispatcher);
    await Promise.all(Array.from({ length: 5 }, () => swift.serviceAccount()));
    assert.equal(logins.length, 1);
  });
});

describe('tempauth users\' tokens (S3 callers asked about as themselves)', () => {
  test('kept per user until a minute before they expire', async () => {
    const { dispatcher, logins } = fakeTempauth(() => 600);
    const swift = client(dispatcher);
    assert.equal(await swift.userToken(ALICE), 'tk1');
    mock.timers.tick(540_000 - 1);
    assert.equal(await swift.userToken(ALICE), 'tk1');
    assert.equal(await swift.userToken(SERVICE), 'tk2', 'another user logs in on its own');
    mock.timers.tick(1);
    assert.equal(await swift.userToken(ALICE), 'tk3');
    assert.deepEqual(logins, ['alice:alice', 'service:quota', 'alice:alice']);
  });
});
