/**
 * Swift's `[filter:tempauth]` users and the identity the proxy acts as (`service_auth`, `service_user`).
 */
import { KEYSTONE_KEYS, parseKeystoneIdentity, type KeystoneIdentity } from './keystone.js';
import type { SectionReader } from './section-reader.js';

export const TEMPAUTH_SECTION = 'filter:tempauth';
export const DEFAULT_RESELLER_PREFIX = 'AUTH_';

export interface TempauthUser {
  readonly account: string;
  readonly user: string;
  readonly key: string;
  readonly groups: readonly string[];
  /** The storage URL tempauth hands this user, when the config names one (its last segment is the account). */
  readonly storageUrl?: string;
}

/**
 * A reseller admin the proxy acts as: a `.reseller_admin` tempauth user (`service_user`), or a Keystone v3
 * identity whose token carries keystoneauth's reseller admin role (`service_auth = keystone`).
 */
export type ServiceIdentity =
  | { readonly kind: 'tempauth'; readonly user: TempauthUser; /** The user's own account. */ readonly account: string }
  | { readonly kind: 'keystone'; readonly keystone: KeystoneIdentity };

export interface Tempauth {
  readonly resellerPrefix: string;
  readonly users: TempauthUser[];
}

/** `user_<account>_<user> = <key> [group ...] [storage_url]`, as Swift's tempauth reads it. */
export function parseTempauth(reader: SectionReader | undefined): Tempauth {
  if (!reader) return { resellerPrefix: DEFAULT_RESELLER_PREFIX, users: [] };
  const prefix = reader.string('reseller_prefix', DEFAULT_RESELLER_PREFIX).trim();
  const resellerPrefix = prefix === '' || prefix.endsWith('_') ? prefix : `${prefix}_`;
  const users: TempauthUser[] = [];
  for (const key of reader.keys()) {
    let account: string | undefined;
    let user: string | undefined;
    if (key.startsWith('user64_')) {
      const parts = key.slice('user64_'.length).split('_');
      if (parts.length !== 2) reader.fail(key, 'must be user64_<base64 account>_<base64 user>');
      [account, user] = parts.map((p) => Buffer.from(p, 'base64').toString('utf8')) as [string, string];
    } else if (key.startsWith('user_')) {
      const parts = key.slice('user_'.length).split('_');
      if (parts.length !== 2) reader.fail(key, 'must be user_<account>_<user> (no "_" in either name; use user64_ for that)');
      [account, user] = parts as [string, string];
    } else continue;
    const words = reader.string(key, '').trim().split(/\s+/).filter(Boolean);
    const userKey = words.shift() ?? reader.fail(key, 'needs a key (password) as its first word');
    const groups = words.filter((w) => !/^https?:\/\//.test(w));
    const storageUrl = words.find((w) => /^https?:\/\//.test(w));
    users.push(Object.freeze({ account: account!, user: user!, key: userKey, groups: Object.freeze(groups), ...(storageUrl ? { storageUrl } : {}) }));
  }
  return { resellerPrefix, users };
}

/** The account tempauth acts on for a user: its storage URL's last segment, or the reseller prefix and its account. */
export function accountOfUser(user: TempauthUser, resellerPrefix: string): string {
  if (user.storageUrl) return decodeURIComponent(user.storageUrl.replace(/\/+$/, '').split('/').pop() ?? '');
  return `${resellerPrefix}${user.account}`;
}

/** `service_auth = tempauth` (default: `service_user`, a tempauth reseller admin) or `keystone` (its own keys). */
export function parseServiceIdentity(reader: SectionReader, tempauth: Tempauth, keystoneauth: SectionReader | undefined): ServiceIdentity {
  const kind = reader.oneOf('service_auth', 'tempauth', ['tempauth', 'keystone'] as const);
  if (kind === 'keystone') {
    if (reader.has('service_user')) reader.fail('service_user', 'names a tempauth user: with service_auth = keystone the service identity is auth_url, username, password, ... (or an application credential)');
    return Object.freeze({ kind, keystone: parseKeystoneIdentity(reader, keystoneauth) });
  }
  const stray = KEYSTONE_KEYS.find((key) => reader.has(key));
  if (stray) reader.fail(stray, 'is a Keystone setting of the service identity: it is read with service_auth = keystone only');
  const user = pickServiceUser(reader, tempauth.users);
  return Object.freeze({ kind, user, account: accountOfUser(user, tempauth.resellerPrefix) });
}

function pickServiceUser(reader: SectionReader, users: TempauthUser[]): TempauthUser {
  if (!reader.has('service_user')) {
    const reseller = users.find((u) => u.groups.includes('.reseller_admin'));
    if (reseller) return reseller;
    return reader.fail(undefined, `needs a service identity: add a .reseller_admin user to [${TEMPAUTH_SECTION}] (or name one with service_user = account:user), or set service_auth = keystone and a Keystone identity`);
  }
  const wanted = reader.string('service_user', '').trim();
  const user = users.find((u) => `${u.account}:${u.user}` === wanted);
  if (!user) return reader.fail('service_user', `"${wanted}" is not a user in [${TEMPAUTH_SECTION}]`);
  if (!user.groups.includes('.reseller_admin')) {
    reader.fail('service_user', `"${wanted}" must be in the .reseller_admin group to read every account's usage`);
  }
  return user;
}
