/**
 * The adversarial suite's arena (test/adversarial/arena.ts) on the Keystone Swift: a proxy with [filter:s3token]
 * in front of it, and tenants that are Keystone projects, each with an operator (its S3 key an EC2 credential made
 * through Keystone's API) and a member without the operator role (a reader); limits as in the adversarial suite.
 * Outcomes are read on the Keystone Swift directly, as a reseller admin.
 */
import assert from 'node:assert/strict';
import { request } from 'undici';
import { call } from '../helpers/http.js';
import { projectToken, type KeystoneAdmin } from '../helpers/keystone-api.js';
import { startProxy, type ProxyOptions } from '../helpers/proxy.js';
import { ADVERSARIAL_QUOTA, swiftReads, type Arena, type Tenant } from '../adversarial/arena.js';
import { SWIFT_ROLES, type KeystoneSwift } from '../swift/keystone.js';

// Test credentials of the local Keystone only.
const PASSWORD = 'ec2-arena-test-pw';

export interface KeystoneArenaContext {
  readonly ks: KeystoneSwift;
  readonly admin: KeystoneAdmin;
  readonly serviceProject: string;
  readonly serviceLines: (who: { user: string; password: string }) => string[];
  /** A reseller admin's token on the Keystone Swift. */
  readonly resellerToken: string;
}

/** An arena for `mode` (`name` keeps its Keystone users and projects apart from other arenas'). */
export async function openKeystoneArena(ctx: KeystoneArenaContext, mode: { precise: boolean }, name: string): Promise<Arena> {
  const { ks, admin } = ctx;
  const service = await admin.user(`${name}-service`, PASSWORD);
  await admin.grant(service, ctx.serviceProject, SWIFT_ROLES.resellerAdmin);
  await admin.grant(service, ctx.serviceProject, 'admin');
  const operator = await admin.user(`${name}-operator`, PASSWORD);
  const member = await admin.user(`${name}-member`, PASSWORD);
  const settings: ProxyOptions = {
    upstream: ks.swiftUrl,
    quota: ADVERSARIAL_QUOTA,
    preciseMode: mode.precise,
    cacheTimeout: 30,
    serviceLines: ctx.serviceLines({ user: `${name}-service`, password: PASSWORD }),
    extraSections: ['[filter:s3token]', `auth_uri = ${ks.keystoneUrl}/v3`, ''],
  };
  const proxy = await startProxy(settings);
  const asReseller = { 'x-auth-token': ctx.resellerToken };
  let tenants = 0;

  const ec2Credential = async (userId: string, token: string, project: string) => {
    const made = await request(`${ks.keystoneUrl}/v3/users/${userId}/credentials/OS-EC2`, { method: 'POST', headers: { 'x-auth-token': token, 'content-type': 'application/json' }, body: JSON.stringify({ tenant_id: project }) });
    assert.equal(made.statusCode, 201);
    const { credential } = (await made.body.json()) as { credential: { access: string; secret: string } };
    return { access: credential.access, secret: credential.secret };
  };

  return {
    swift: ks.swiftUrl,
    proxy,
    resellerToken: ctx.resellerToken,
    async tenant(level?: string): Promise<Tenant> {
      const project = await admin.project(`${name}-${++tenants}`);
      await admin.grant(operator, project, SWIFT_ROLES.operator);
      await admin.grant(member, project, 'member');
      const swiftAccount = `AUTH_${project}`;
      if (level) assert.equal((await call('POST', `${ks.swiftUrl}/v1/${swiftAccount}`, { ...asReseller, 'x-account-meta-quota': level })).status, 204);
      const owner = await projectToken(ks.keystoneUrl, `${name}-operator`, PASSWORD, project);
      const reader = await projectToken(ks.keystoneUrl, `${name}-member`, PASSWORD, project);
      return {
        account: project,
        swiftAccount,
        token: owner.token,
        readerToken: reader.token,
        viaProxy: (path = '') => `${proxy.url}/v1/${swiftAccount}${path}`,
        direct: (path = '') => `${ks.swiftUrl}/v1/${swiftAccount}${path}`,
        s3: await ec2Credential(owner.userId, owner.token, project),
      };
    },
    ...swiftReads(asReseller),
    another: () => startProxy(settings),
    close: () => proxy.close(),
  };
}
