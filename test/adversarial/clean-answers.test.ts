/**
 * Clean answers to odd input: the proxy's own endpoints never answer 500, and requests the proxy has no
 * quota business with get Swift's own answer, never a 5xx of the proxy's making.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, login } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { MODES, openArena, type Arena } from './arena.js';

const OWN_TRANS_ID = /^tx[0-9a-f]{21}-[0-9a-f]{10}-quota-proxy$/;

const ACCOUNTS = { 'cached mode': [79, 81], 'precise mode': [80, 82] } as const;

for (const mode of MODES) {
  describe(`clean answers, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    test('the proxy\'s own endpoints answer odd input with their own 4xx or ordinary answer, never 500, and never forward it', async () => {
      const tenant = await arena.tenant();
      const reseller = await login(arena.proxy.url, 'reseller:reseller', 'reseller');
      const base = arena.proxy.url;
      // Each with the answer it gets: a 4xx of the proxy's own, or the endpoint's ordinary answer (a parameter it
      // does not know is ignored; any account name asked about by a reseller is reported on as Swift answers for it).
      const attempts: Array<[string, string, Record<string, string>, number]> = [
        ['GET', '/quota/report?account=a&account=b', { 'x-auth-token': reseller.token }, 400],
        ['GET', '/quota/report?account=a&account=b', { 'x-auth-token': tenant.token }, 400],
        ['GET', '/quota/report?format=json&format=text', { 'x-auth-token': reseller.token }, 400],
        ['GET', '/quota/report?format[x]=1', { 'x-auth-token': reseller.token }, 200],
        ['GET', `/quota/report?account=${'x'.repeat(4000)}`, { 'x-auth-token': reseller.token }, 200],
        ['GET', '/quota/report?account=%zz%', { 'x-auth-token': reseller.token }, 200],
        ['GET', '/quota/report?account=a%2Fb', { 'x-auth-token': reseller.token }, 200],
        ['GET', '/quota/report', { 'x-auth-token': 'AUTH_tkbogus' }, 403],
        ['POST', '/quota/report', { 'x-auth-token': reseller.token }, 405],
        ['DELETE', '/metrics', {}, 405],
        ['PUT', '/healthz', {}, 405],
        ['POST', '/readyz', {}, 405],
        ['GET', '/metrics?%zz=%zz', {}, 200],
      ];
      const seen = [];
      for (const [method, path, headers] of attempts) {
        const answer = await call(method as 'GET', `${base}${path}`, headers);
        seen.push(answer.status);
        // The proxy's own answer carries the proxy's own transaction id (trans-id.ts), never one of Swift's.
        assert.match(answer.headers['x-trans-id'] ?? '', OWN_TRANS_ID, `${method} ${path.slice(0, 60)} went to Swift`);
      }
      assert.deepEqual(seen, attempts.map(([, , , status]) => status));
    });

    test('requests with no quota business get Swift\'s own answer: odd targets, methods, headers', async () => {
      const tenant = await arena.tenant();
      const host = new URL(arena.proxy.url).host;
      const targets: Array<[string, string, Array<[string, string]>]> = [
        ['OPTIONS', '*', []],
        ['GET', `/v1/${tenant.swiftAccount}/%FF`, [['X-Auth-Token', tenant.token]]],
        ['GET', `/v1/${tenant.swiftAccount}/c/%00`, [['X-Auth-Token', tenant.token]]],
        ['GET', `//v1/${tenant.swiftAccount}`, [['X-Auth-Token', tenant.token]]],
        ['HEAD', `/v1/${tenant.swiftAccount}/c/o`, [['X-Auth-Token', tenant.token], ['X_Auth_Token', 'other']]],
        ['DELETE', `/v1/${tenant.swiftAccount}/nothing/here`, [['X-Auth-Token', tenant.token]]],
        ['GET', `/v1/${tenant.swiftAccount}?format=%zz&limit=-1`, [['X-Auth-Token', tenant.token]]],
        ['POST', `/v1/${tenant.swiftAccount}/c/o`, [['X-Auth-Token', tenant.token], ['Content-Type', 'multipart/form-data']]],
        ['PUT', `/v1/${tenant.swiftAccount}/c/o`, [['X-Auth-Token', tenant.token], ['Content-Length', '0'], ['X-Copy-From', '%']]],
      ];
      const swiftHost = new URL(arena.swift).host;
      for (const [method, target, headers] of targets) {
        const answer = await rawRequest(arena.proxy.url, method, target, [['Host', host], ...headers]).response;
        assert.ok(answer.status < 500, `${method} ${target}: ${answer.status} ${answer.body.slice(0, 100)}`);
        // Swift's own answer: the one Swift gives the same request sent to it directly.
        const direct = await rawRequest(arena.swift, method, target, [['Host', swiftHost], ...headers]).response;
        assert.equal(answer.status, direct.status, `${method} ${target}: ${answer.body.slice(0, 100)} | Swift: ${direct.body.slice(0, 100)}`);
      }
    });
  });
}
