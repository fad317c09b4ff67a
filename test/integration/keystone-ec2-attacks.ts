/**
 * A hostile S3 tenant with Keystone EC2 credentials (review 26), registered by keystone.test.ts beside
 * keystone-ec2.ts so that one Keystone serves both: ways to store more than the quota allows, or to be counted in
 * an account or container other than the one Swift writes in. Outcomes are read on Swift directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { SWIFT_ROLES } from '../swift/keystone.js';
import { s3, type S3Answer } from '../adversarial/attacks.js';
import { makeEc2Tenant, type Ec2Context, type Ec2Tenant } from './keystone-ec2.js';

const SERVICE = { user: 'quota-ec2-attacks', password: 'quota-ec2-attacks-test-pw' };
const OWNER = { user: 'ec2-owner-attacks', password: 'ec2-owner-test-pw' };

const LEVELS = {
  container_count: { default: 3 },
  object_count: { default: 1000 },
  container_usage: { default: 5_000 },
};

export function ec2AttackTests(ctx: Ec2Context): void {
  describe('S3 with EC2 credentials: a hostile tenant', () => {
    let proxy: RunningProxy;
    let owner: string;
    let projects = 0;
    before(async () => {
      const admin = ctx.admin();
      const service = await admin.user(SERVICE.user, SERVICE.password);
      await admin.grant(service, ctx.serviceProject(), SWIFT_ROLES.resellerAdmin);
      await admin.grant(service, ctx.serviceProject(), 'admin');
      owner = await admin.user(OWNER.user, OWNER.password);
      proxy = await startProxy({
        upstream: ctx.ks().swiftUrl,
        quota: LEVELS,
        serviceLines: ctx.serviceLines(SERVICE),
        extraSections: ['[filter:s3token]', `auth_uri = ${ctx.ks().keystoneUrl}/v3`, 'reseller_prefix = AUTH_', ''],
      });
    });
    after(() => proxy?.close());

    const tenant = () => makeEc2Tenant(ctx, owner, OWNER.user, `ec2-attack-${++projects}`);
    const as = (t: Ec2Tenant, extra: Record<string, unknown> = {}) => ({ endpoint: proxy.url, access: t.access, secret: t.secret, ...extra });
    const outcome = (answers: S3Answer[]) => answers.map((a) => (a.ok ? 'ok' : a.code));
    const stored = async (t: Ec2Tenant, container: string) => {
      const head = await call('HEAD', `${ctx.ks().swiftUrl}/v1/${t.account}/${container}`, { 'x-auth-token': t.token });
      return { status: head.status, objects: Number(head.headers['x-container-object-count'] ?? 0), bytes: Number(head.headers['x-container-bytes-used'] ?? 0) };
    };
    const project = (t: Ec2Tenant) => t.account.slice('AUTH_'.length);

    test('an access key KEY:project/container (V2) writes where s3token puts it, and counts there', async () => {
      const t = await tenant();
      assert.deepEqual(outcome(await s3([{ ...as(t), op: 'create_bucket', bucket: 'full' }, { ...as(t), op: 'put_object', bucket: 'full', key: 'a', size: 5_000 }])), ['ok', 'ok']);
      // s3token: account "KEY:project" in /v1/KEY:project/container/bucket/key becomes AUTH_project/container.
      const sneaky = await s3([{ ...as(t, { access: `${t.access}:${project(t)}/full`, signature: 's3' }), op: 'put_object', bucket: 'elsewhere', key: 'b', size: 3_000 }]);
      const full = await stored(t, 'full');
      assert.ok(full.bytes <= 5_000, `container "full" holds ${full.bytes} bytes (${JSON.stringify(sneaky)})`);
      assert.deepEqual(outcome(sneaky), ['AccessDenied']);
    });

    test('an access key KEY: (no tenant) is s3token\'s own project (V4 and V2): counted there', async () => {
      const t = await tenant();
      assert.deepEqual(outcome(await s3([{ ...as(t), op: 'create_bucket', bucket: 'full' }, { ...as(t), op: 'put_object', bucket: 'full', key: 'a', size: 5_000 }])), ['ok', 'ok']);
      const answers = await s3([
        { ...as(t, { access: `${t.access}:` }), op: 'put_object', bucket: 'full', key: 'b', size: 3_000 },
        { ...as(t, { access: `${t.access}:`, signature: 's3' }), op: 'put_object', bucket: 'full', key: 'c', size: 3_000 },
      ]);
      assert.deepEqual(await stored(t, 'full'), { status: 204, objects: 1, bytes: 5_000 }, JSON.stringify(answers));
      assert.deepEqual(outcome(answers), ['EntityTooLarge', 'EntityTooLarge']);
    });

    test('a bucket named after the access key is the container s3token renames it to (every occurrence): refused', async () => {
      const t = await tenant();
      // The tenant's own container AUTH_<project>, full, made through the proxy's Swift door.
      const swift = (method: string, path: string, body?: string) => call(method, `${proxy.url}/v1/${t.account}${path}`, { 'x-auth-token': t.token }, body);
      assert.equal((await swift('PUT', `/${t.account}`)).status, 201);
      assert.equal((await swift('PUT', `/${t.account}/a`, 'x'.repeat(5_000))).status, 201);
      const answers = await s3([
        { ...as(t), op: 'put_object', bucket: t.access, key: 'b', size: 3_000 },
        { ...as(t), op: 'put_object', bucket: `x${t.access}`, key: 'b', size: 3_000 },
      ]);
      assert.deepEqual(await stored(t, t.account), { status: 204, objects: 1, bytes: 5_000 }, JSON.stringify(answers));
      assert.deepEqual(outcome(answers), ['AccessDenied', 'AccessDenied']);
    });
  });
}
