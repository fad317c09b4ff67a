/**
 * S3 with Keystone EC2 credentials through the proxy (issue 26), registered by keystone.test.ts inside its suite so
 * that one Keystone serves both: credentials made with Keystone's API, boto3 requests signed with them, checked by
 * Keystone as Swift's s3token has them checked (the Keystone Swift runs `authtoken s3api s3token keystoneauth`),
 * and counted in the credential's project's account, in both modes. Outcomes are read on Swift directly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { call } from '../helpers/http.js';
import { projectToken, type KeystoneAdmin } from '../helpers/keystone-api.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import type { KeystoneSwift } from '../swift/keystone.js';
import { SWIFT_ROLES } from '../swift/keystone.js';
import { s3, type S3Answer } from '../adversarial/attacks.js';

// Test credentials of the local Keystone only.
const EC2_SERVICE = { user: 'quota-ec2', password: 'quota-ec2-test-pw' };
const EC2_USER = { user: 'ec2-owner', password: 'ec2-owner-test-pw' };

const LEVELS = {
  container_count: { default: 3, roomy: 100 },
  object_count: { default: 1000, roomy: 1000 },
  container_usage: { default: 5_000, roomy: 10 ** 12 },
};

export interface Ec2Context {
  readonly ks: () => KeystoneSwift;
  readonly admin: () => KeystoneAdmin;
  /** The project of the proxy's service identities. */
  readonly serviceProject: () => string;
  /** Lines of [filter:quota] naming a Keystone user as the service identity. */
  readonly serviceLines: (who: { user: string; password: string }) => string[];
}

export interface Ec2Tenant {
  readonly account: string;
  readonly access: string;
  readonly secret: string;
  readonly token: string;
  readonly userId: string;
}

export function ec2Tests(ctx: Ec2Context): void {
  for (const precise of [false, true]) ec2Suite(ctx, precise);
  secretCacheSuite(ctx);
}

function ec2Suite(ctx: Ec2Context, precise: boolean): void {
  {
    describe(`S3 with EC2 credentials checked by Keystone, ${precise ? 'precise' : 'cached'} mode`, () => {
      let proxy: RunningProxy;
      let owner: string;
      let projects = 0;
      before(async () => {
        const admin = ctx.admin();
        // Keystone answers s3tokens, and lets users' credentials be read, to its admins.
        const service = await admin.user(`${EC2_SERVICE.user}-${precise}`, EC2_SERVICE.password);
        await admin.grant(service, ctx.serviceProject(), SWIFT_ROLES.resellerAdmin);
        await admin.grant(service, ctx.serviceProject(), 'admin');
        owner = await admin.user(`${EC2_USER.user}-${precise}`, EC2_USER.password);
        proxy = await startProxy({
          upstream: ctx.ks().swiftUrl,
          quota: LEVELS,
          preciseMode: precise,
          serviceLines: ctx.serviceLines({ user: `${EC2_SERVICE.user}-${precise}`, password: EC2_SERVICE.password }),
          extraSections: ['[filter:s3token]', 'use = egg:swift#s3token', `auth_uri = ${ctx.ks().keystoneUrl}/v3`, 'reseller_prefix = AUTH_', ''],
        });
      });
      after(() => proxy?.close());

      /** A project whose owner operates its account (swiftoperator), with an EC2 credential made through Keystone's API. */
      const ec2Tenant = () => makeEc2Tenant(ctx, owner, `${EC2_USER.user}-${precise}`, `ec2-${precise}-${++projects}`);

      const as = (t: Ec2Tenant, extra: Record<string, unknown> = {}) => ({ endpoint: proxy.url, access: t.access, secret: t.secret, ...extra });
      const stored = async (t: Ec2Tenant, bucket: string) => {
        const head = await call('HEAD', `${ctx.ks().swiftUrl}/v1/${t.account}/${bucket}`, { 'x-auth-token': t.token });
        return { objects: Number(head.headers['x-container-object-count'] ?? 0), bytes: Number(head.headers['x-container-bytes-used'] ?? 0) };
      };
      const outcome = (answers: S3Answer[]) => answers.map((a) => (a.ok ? 'ok' : a.code));
      /** The proxy's requests to Keystone so far that Keystone answered yes, by API. */
      const keystoneRequests = async (): Promise<Record<string, number>> => {
        const text = await proxy.metrics.registry.metrics();
        const count = (api: string) => Number(new RegExp(`^swift_quota_proxy_keystone_requests_total\\{api="${api}",result="ok"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
        return { s3tokens: count('s3tokens'), credential: count('credential'), ec2tokens: count('ec2tokens') };
      };

      test('buckets count against container_count (3); 20 uploads at once into a bucket with room for 5 store exactly 5', async () => {
        const t = await ec2Tenant();
        const buckets = await s3(['bk1', 'bk2', 'bk3', 'bk4'].map((bucket) => ({ ...as(t), op: 'create_bucket', bucket })));
        assert.deepEqual(outcome(buckets), ['ok', 'ok', 'ok', 'TooManyBuckets']);
        const before = await keystoneRequests();
        const [parallel] = await s3([{ op: 'parallel', commands: Array.from({ length: 20 }, (_, i) => ({ ...as(t), op: 'put_object', bucket: 'bk1', key: `k${i}`, size: 1_000 })) }]);
        const answers = parallel!.answers!;
        const after = await keystoneRequests();
        const spent = Object.fromEntries(Object.entries(after).map(([api, n]) => [api, n - (before[api] ?? 0)]));
        process.stdout.write(`# Keystone requests of the proxy for 20 S3 writes: ${JSON.stringify(spent)}\n`);
        // One s3tokens per write (secret_cache_duration 0); the user's token was made with the buckets, and kept.
        assert.deepEqual(spent, { s3tokens: 20, credential: 0, ec2tokens: 0 });
        assert.equal(answers.filter((a) => a.ok).length, 5, JSON.stringify(answers));
        assert.ok(answers.filter((a) => !a.ok).every((a) => a.code === 'EntityTooLarge'), JSON.stringify(answers));
        assert.deepEqual(await stored(t, 'bk1'), { objects: 5, bytes: 5_000 });
      });

      test('multipart uploads and copies are counted; a wrong secret is refused as s3api refuses it, and stores nothing', async () => {
        const t = await ec2Tenant();
        const answers = await s3([
          { ...as(t), op: 'create_bucket', bucket: 'mpu' },
          { ...as(t), op: 'multipart', bucket: 'mpu', key: 'big', parts: [3_000] },
          { ...as(t), op: 'put_object', bucket: 'mpu', key: 'two', size: 2_500 },
          // 2,500 more bytes, beside the parts' manifest (its own size in the bucket, as Swift counts it) and 'two':
          // past the bucket's 5,000.
          { ...as(t), op: 'copy_object', bucket: 'mpu', key: 'copy', src_bucket: 'mpu', src_key: 'two' },
          { ...as(t, { secret: 'not-the-secret' }), op: 'put_object', bucket: 'mpu', key: 'forged', size: 10 },
        ]);
        const bucket = await stored(t, 'mpu');
        assert.deepEqual(outcome(answers), ['ok', 'ok', 'ok', 'EntityTooLarge', 'SignatureDoesNotMatch']);
        assert.equal(bucket.objects, 2, 'the completed upload and one object');
        assert.ok(bucket.bytes > 2_500 && bucket.bytes + 2_500 > 5_000, `${bucket.bytes} bytes`);
        assert.deepEqual(await stored(t, 'mpu+segments'), { objects: 1, bytes: 3_000 }, 'the part');
      });

      test('a deleted credential is refused at once (secret_cache_duration 0): nothing more is stored', async () => {
        const t = await ec2Tenant();
        assert.deepEqual(outcome(await s3([{ ...as(t), op: 'create_bucket', bucket: 'gone' }, { ...as(t), op: 'put_object', bucket: 'gone', key: 'a', size: 10 }])), ['ok', 'ok']);
        const deleted = await request(`${ctx.ks().keystoneUrl}/v3/users/${t.userId}/credentials/OS-EC2/${t.access}`, { method: 'DELETE', headers: { 'x-auth-token': t.token } });
        assert.equal(deleted.statusCode, 204);
        await deleted.body.dump();
        assert.deepEqual(outcome(await s3([{ ...as(t), op: 'put_object', bucket: 'gone', key: 'b', size: 10 }])), ['SignatureDoesNotMatch']);
        assert.deepEqual(await stored(t, 'gone'), { objects: 1, bytes: 10 });
      });
    });
  }
}

/** A user of a fresh project (its account's operator) and an EC2 credential of it, made through Keystone's API. */
export async function makeEc2Tenant(ctx: Ec2Context, ownerId: string, ownerName: string, projectName: string): Promise<Ec2Tenant> {
  const ks = ctx.ks();
  const project = await ctx.admin().project(projectName);
  await ctx.admin().grant(ownerId, project, SWIFT_ROLES.operator);
  const scoped = await projectToken(ks.keystoneUrl, ownerName, EC2_USER.password, project);
  const made = await request(`${ks.keystoneUrl}/v3/users/${scoped.userId}/credentials/OS-EC2`, {
    method: 'POST',
    headers: { 'x-auth-token': scoped.token, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant_id: project }),
  });
  assert.equal(made.statusCode, 201);
  const { credential } = (await made.body.json()) as { credential: { access: string; secret: string } };
  return { account: `AUTH_${project}`, access: credential.access, secret: credential.secret, token: scoped.token, userId: scoped.userId };
}

/**
 * With s3token's secret_cache_duration set (Swift's), the proxy still asks Keystone about every write: it keeps
 * no secret (a credential made again in another project would be counted in its old one while a kept secret
 * lasted: keystone-ec2-attacks.ts).
 */
function secretCacheSuite(ctx: Ec2Context): void {
  describe('S3 with EC2 credentials: secret_cache_duration is Swift\'s', () => {
    let proxy: RunningProxy;
    let owner: string;
    before(async () => {
      const admin = ctx.admin();
      const service = await admin.user(`${EC2_SERVICE.user}-cache`, EC2_SERVICE.password);
      await admin.grant(service, ctx.serviceProject(), SWIFT_ROLES.resellerAdmin);
      await admin.grant(service, ctx.serviceProject(), 'admin');
      owner = await admin.user(`${EC2_USER.user}-cache`, EC2_USER.password);
      proxy = await startProxy({
        upstream: ctx.ks().swiftUrl,
        quota: LEVELS,
        serviceLines: ctx.serviceLines({ user: `${EC2_SERVICE.user}-cache`, password: EC2_SERVICE.password }),
        extraSections: ['[filter:s3token]', `auth_uri = ${ctx.ks().keystoneUrl}/v3`, 'secret_cache_duration = 600', ''],
      });
    });
    after(() => proxy?.close());

    test('in front of a Swift that runs s3api with s3token, a config without [filter:s3token] does not start, and says why', async () => {
      await assert.rejects(
        startProxy({ upstream: ctx.ks().swiftUrl, quota: LEVELS, serviceLines: ctx.serviceLines({ user: `${EC2_SERVICE.user}-cache`, password: EC2_SERVICE.password }) }),
        /\[filter:s3token\].*copy Swift's \[filter:s3token\] section/s,
      );
    });

    test('every write is checked by Keystone whatever secret_cache_duration says; a deleted credential is refused by the proxy at once', async () => {
      const t = await makeEc2Tenant(ctx, owner, `${EC2_USER.user}-cache`, 'ec2-cache-1');
      const as = { endpoint: proxy.url, access: t.access, secret: t.secret };
      const checks = async (result: 'ok' | 'refused') => Number(new RegExp(`^swift_quota_proxy_keystone_requests_total\\{api="s3tokens",result="${result}"\\} (\\d+)`, 'm').exec(await proxy.metrics.registry.metrics())?.[1] ?? 0);
      assert.deepEqual((await s3([{ ...as, op: 'create_bucket', bucket: 'cached' }])).map((a) => a.ok), [true]);
      const first = await checks('ok');
      const writes = await s3(Array.from({ length: 5 }, (_, i) => ({ ...as, op: 'put_object', bucket: 'cached', key: `k${i}`, size: 10 })));
      assert.ok(writes.every((a) => a.ok), JSON.stringify(writes));
      assert.equal(await checks('ok'), first + 5, 'five writes, five s3tokens');
      const deleted = await request(`${ctx.ks().keystoneUrl}/v3/users/${t.userId}/credentials/OS-EC2/${t.access}`, { method: 'DELETE', headers: { 'x-auth-token': t.token } });
      assert.equal(deleted.statusCode, 204);
      await deleted.body.dump();
      const refusedBefore = await checks('refused');
      assert.deepEqual((await s3([{ ...as, op: 'put_object', bucket: 'cached', key: 'late', size: 10 }])).map((a) => a.code), ['SignatureDoesNotMatch']);
      assert.equal(await checks('refused'), refusedBefore + 1, 'the proxy asked Keystone and was told no');
      const head = await call('HEAD', `${ctx.ks().swiftUrl}/v1/${t.account}/cached`, { 'x-auth-token': t.token });
      assert.equal(head.headers['x-container-object-count'], '5');
    });
  });
}
