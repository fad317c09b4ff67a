/**
 * Host-based addressing (domain_remap, cname_lookup): with them in Swift's pipeline, the Host header names the
 * account and container and the path is only the object, so `/v1/AUTH_other/c/o` or `/o` on
 * `c.auth-x.swift.test` stores in AUTH_x/c. The quota holds whatever the Host, in every spelling domain_remap
 * reads, through CNAMEs, and when DNS answers differently from one question to the next. Outcomes are read
 * straight from Swift.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawRequest, type HeaderList, type RawResponse } from '../helpers/raw-http.js';
import { startProxy } from '../helpers/proxy.js';
import { swiftDns } from '../helpers/swift-env.js';
import { hostAddressingSections } from '../swift/cluster.js';
import { ADVERSARIAL_QUOTA, LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';
import { tempUrl } from './signing.js';

const ACCOUNTS = { 'cached mode': [97, 98, 99, 100, 101, 102], 'precise mode': [103, 104, 105, 106, 107, 108] } as const;

/** An answer as the test expects it: the status, and for a quota refusal which quota. */
function outcome(answer: RawResponse): number | string {
  return answer.status === 413 || answer.status === 403 ? `${answer.status} ${answer.headers['x-quota-exceeded']}` : answer.status;
}

for (const mode of MODES) {
  describe(`host-based addressing, ${mode.name}`, () => {
    let arena: Arena;
    let dns: string;
    before(async () => {
      dns = (await swiftDns())!;
      assert.ok(dns, 'the test Swift runs cname_lookup with a loopback DNS server');
      arena = await openArena(mode, [...ACCOUNTS[mode.name]], { extraSections: [hostAddressingSections(dns)] });
    });
    after(() => arena.close());

    /** A request through `origin` (the proxy) with `host` as Host, the tenant's token and a body. */
    const send = (origin: string, tenant: Tenant, method: string, host: string, target: string, body = '', headers: HeaderList = []): Promise<RawResponse> =>
      rawRequest(origin, method, target, [['Host', host], ['X-Auth-Token', tenant.token], ['Content-Length', String(Buffer.byteLength(body))], ...headers], body).response;
    const via = (tenant: Tenant, method: string, host: string, target: string, body = '', headers: HeaderList = []) =>
      send(arena.proxy.url, tenant, method, host, target, body, headers);

    test('a storage-domain host addresses its container whatever the path says, a Swift path included', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'hc');
      const host = `hc.auth-${tenant.account}.swift.test`;
      const targets = ['/o1', `/v1/AUTH_other/c/o2`, `/v1/${tenant.swiftAccount}/hc/o3`, '/v1/o4', '/a/b/c/o5', '/o6', '/o7', `http://${host}/o8`];
      const answers = [];
      for (const target of targets) answers.push(await via(tenant, 'PUT', host, target, 'x'));
      assert.deepEqual(answers.map(outcome), [201, 201, 201, 201, 201, '413 object_count', '413 object_count', '413 object_count'], answers.map((a) => a.body).join(' | '));
      assert.deepEqual(await arena.usage(tenant, 'hc'), { objects: LIMITS.objects, bytes: LIMITS.objects });
      // Bytes too: one object past the byte limit, sent on the host, is refused before Swift stores it; one
      // of exactly the limit is stored.
      await makeContainer(tenant, 'hb');
      const onHost = (body: string) => via(tenant, 'PUT', `hb.auth-${tenant.account}.swift.test`, `/v1/${tenant.swiftAccount}/elsewhere/big`, body);
      const big = await onHost('b'.repeat(LIMITS.bytes + 1));
      assert.equal(outcome(big), '413 container_usage', big.body);
      assert.deepEqual(await arena.usage(tenant, 'hb'), { objects: 0, bytes: 0 });
      const fits = await onHost('b'.repeat(LIMITS.bytes));
      assert.equal(fits.status, 201, fits.body);
      assert.deepEqual(await arena.usage(tenant, 'hb'), { objects: 1, bytes: LIMITS.bytes });
    });

    test('every spelling of the account in the host is one account: containers made on host names count', async () => {
      const tenant = await arena.tenant();
      const spellings = [`auth-${tenant.account}`, `AUTH-${tenant.account}`, `auth_${tenant.account}`, `AUTH_${tenant.account}`, `Auth-${tenant.account}`];
      const answers = [];
      for (const [i, spelling] of spellings.entries()) answers.push(await via(tenant, 'PUT', `${spelling}.swift.test:8080`, `/made${i}`));
      assert.deepEqual(answers.map(outcome), [201, 201, 201, '403 container_count', '403 container_count'], answers.map((a) => a.body).join(' | '));
      assert.equal(await arena.containers(tenant), LIMITS.containers);
    });

    test('a temp URL on a host name is counted: signed for the remapped path, as tempurl reads it after domain_remap', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'tu');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/tu/o${i}`, 'x');
      const key = await rawRequest(arena.swift, 'POST', `/v1/${tenant.swiftAccount}`, [['Host', '127.0.0.1'], ['X-Auth-Token', tenant.token], ['X-Account-Meta-Temp-URL-Key', 'host-secret'], ['Content-Length', '0']]).response;
      assert.equal(key.status, 204);
      const answers = [];
      for (const name of ['t1', 't2', 't3']) {
        const signed = await tempUrl('PUT', `/v1/${tenant.swiftAccount}/tu/${name}`, 'host-secret');
        const query = signed.slice(signed.indexOf('?'));
        answers.push(await rawRequest(arena.proxy.url, 'PUT', `/${name}${query}`, [['Host', `tu.auth-${tenant.account}.swift.test`], ['Content-Length', '1']], 'x').response);
      }
      assert.deepEqual(answers.map(outcome), [201, '413 object_count', '413 object_count'], answers.map((a) => `${a.status} ${a.body}`).join(' | '));
      assert.deepEqual(await arena.listing(tenant, 'tu'), ['o0', 'o1', 'o2', 'o3', 't1']);
    });

    test('a CNAME of a storage-domain host counts there, and Swift stores where the proxy looked, even when DNS changes its answer', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'open');
      await makeContainer(tenant, 'full');
      for (let i = 0; i < LIMITS.objects; i++) await putDirect(tenant, `/full/o${i}`, 'x');
      const acct = `auth-${tenant.account}`;
      // Straight CNAMEs, one hop and two: the full container refuses.
      const refused = [await via(tenant, 'PUT', `full.${acct}.cname.test`, '/n1', 'x'), await via(tenant, 'PUT', `chain.full.${acct}.cname.test:80`, '/n2', 'x')];
      assert.deepEqual(refused.map(outcome), ['413 object_count', '413 object_count'], refused.map((a) => a.body).join(' | '));
      // A record that answers "open" to one question and "full" to the next: what the proxy checked is what
      // Swift stores into, never the other.
      const flipping = `flip.open.full.${acct}.cname.test`;
      const answers = [];
      for (let i = 0; i < 6; i++) answers.push(await via(tenant, 'PUT', flipping, `/f${i}`, 'x'));
      const outcomes = answers.map(outcome);
      assert.deepEqual(await arena.listing(tenant, 'full'), ['o0', 'o1', 'o2', 'o3', 'o4'], outcomes.join(' '));
      // Each write went to the container it was checked against: those answered 201 are in "open", those
      // refused were refused for "full" (which way DNS answers each time varies, and both ways came up).
      const stored = answers.map((a, i) => (a.status === 201 ? `f${i}` : undefined)).filter((name) => name !== undefined);
      assert.deepEqual(await arena.listing(tenant, 'open'), stored, outcomes.join(' '));
      assert.ok(outcomes.every((o) => o === 201 || o === '413 object_count'), outcomes.join(' '));
      assert.ok(outcomes.includes(201) && outcomes.includes('413 object_count'), outcomes.join(' '));
    });

    test('host names that resolve nowhere get cname_lookup\'s 400 and store nothing', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'nx');
      for (const host of ['none.cname.test', 'away.cname.test', `chain.chain.nx.auth-${tenant.account}.cname.test`]) {
        const answer = await via(tenant, 'PUT', host, `/v1/${tenant.swiftAccount}/nx/o`, 'x');
        assert.equal(answer.status, 400, `${host}: ${answer.body}`);
        assert.match(answer.body, /CNAME lookup failed/);
      }
      assert.deepEqual(await arena.usage(tenant, 'nx'), { objects: 0, bytes: 0 });
    });

    test('a proxy whose config lacks Swift\'s domain_remap/cname_lookup sections refuses writes on host names; S3 writes on mapped hosts are refused', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'mc');
      const bare = await startProxy({ upstream: arena.swift, quota: ADVERSARIAL_QUOTA, preciseMode: mode.precise });
      try {
        for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/mc/o${i}`, 'x');
        const named = await send(bare.url, tenant, 'PUT', `mc.auth-${tenant.account}.swift.test`, '/extra', 'x');
        assert.equal(named.status, 501, named.body);
        assert.match(named.body, /domain_remap|cname_lookup/);
        // Requests on an IP address are read as ever: stored while there is room, then refused.
        const plain = (name: string) => send(bare.url, tenant, 'PUT', '127.0.0.1', `/v1/${tenant.swiftAccount}/mc/${name}`, 'x');
        const answers = [await plain('extra'), await plain('extra2')];
        assert.deepEqual(answers.map(outcome), [201, '413 object_count'], answers.map((a) => a.body).join(' | '));
      } finally {
        await bare.close();
      }
      const s3 = await via(tenant, 'PUT', `mc.auth-${tenant.account}.swift.test`, '/s3-extra', 'x', [['Authorization', `AWS ${tenant.account}:admin:c2lnbmF0dXJl`], ['Date', new Date().toUTCString()]]);
      assert.equal(s3.status, 501, s3.body);
      assert.match(s3.body, /NotImplemented/);
      assert.deepEqual(await arena.listing(tenant, 'mc'), ['extra', 'o0', 'o1', 'o2', 'o3']);
    });
  });
}
