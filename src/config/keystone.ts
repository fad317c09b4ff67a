/**
 * The proxy's service identity as a Keystone v3 identity (`service_auth = keystone` in [filter:quota]): the
 * keys keystonemiddleware and keystoneauth1 use (auth_url, auth_type, username, user_domain_name, ...), read
 * into a typed, frozen value. The reseller prefix and reseller admin role come from `[filter:keystoneauth]`, as
 * Swift reads them, so that section can be copied from Swift's proxy-server.conf as it is.
 */

export const KEYSTONEAUTH_SECTION = 'filter:keystoneauth';

/** keystoneauth's defaults (Swift's swift/common/middleware/keystoneauth.py). */
export const DEFAULT_KEYSTONE_RESELLER_PREFIX = 'AUTH_';
export const DEFAULT_RESELLER_ADMIN_ROLE = 'ResellerAdmin';

/** The keys of [filter:quota] that describe a Keystone identity. */
export const KEYSTONE_KEYS = [
  'auth_url', 'auth_type', 'username', 'user_id', 'password', 'user_domain_name', 'user_domain_id',
  'project_name', 'project_id', 'project_domain_name', 'project_domain_id',
  'application_credential_id', 'application_credential_name', 'application_credential_secret',
] as const;

const AUTH_TYPES = ['password', 'v3password', 'v3applicationcredential'] as const;
const PASSWORD_KEYS = ['username', 'user_id', 'password', 'user_domain_name', 'user_domain_id', 'project_name', 'project_id', 'project_domain_name', 'project_domain_id'];
const CREDENTIAL_KEYS = ['application_credential_id', 'application_credential_name', 'application_credential_secret'];

/** A Keystone user or project: by id, or by name within a domain (names are unique per domain only). */
export type KeystoneRef =
  | { readonly id: string }
  | { readonly name: string; readonly domain: { readonly id: string } | { readonly name: string } };

export type KeystoneAuth =
  | { readonly type: 'password'; readonly user: KeystoneRef; readonly password: string; readonly project: KeystoneRef }
  | {
      readonly type: 'v3applicationcredential';
      /** By id, or by name with the user who owns it. Its project is the one it was created in. */
      readonly credential: { readonly id: string } | { readonly name: string; readonly user: KeystoneRef };
      readonly secret: string;
    };

export interface KeystoneIdentity {
  /** `POST` here for a token: auth_url's `/v3/auth/tokens`. */
  readonly tokensUrl: URL;
  readonly auth: KeystoneAuth;
  /** keystoneauth's first reseller prefix: the proxy's own account is this plus its token's project id. */
  readonly resellerPrefix: string;
  /** The role keystoneauth lets act on every account; the service identity's token must carry it. */
  readonly resellerAdminRole: string;
}

/** What this module needs of a config section (load.ts's SectionReader has it). */
export interface KeyReader {
  raw(key: string): string | undefined;
  fail(key: string | undefined, reason: string): never;
}

/** Reads the Keystone identity of [filter:quota]; `keystoneauth` is Swift's [filter:keystoneauth], if the file has it. */
export function parseKeystoneIdentity(reader: KeyReader, keystoneauth: KeyReader | undefined): KeystoneIdentity {
  const keys = new IdentityKeys(reader);
  const authType = keys.value('auth_type') ?? 'password';
  if (!(AUTH_TYPES as readonly string[]).includes(authType)) {
    reader.fail('auth_type', `must be one of ${AUTH_TYPES.join(', ')}, got "${authType}"`);
  }
  const tokensUrl = parseAuthUrl(keys.value('auth_url') ?? reader.fail(undefined, 'service_auth = keystone needs auth_url = http(s)://<keystone>/v3'), (reason) => reader.fail('auth_url', reason));
  const auth = authType === 'v3applicationcredential' ? applicationCredentialAuth(keys) : passwordAuth(keys, authType);
  return Object.freeze({
    tokensUrl,
    auth,
    resellerPrefix: keystoneResellerPrefix(keystoneauth),
    resellerAdminRole: keystoneauth?.raw('reseller_admin_role')?.trim() || DEFAULT_RESELLER_ADMIN_ROLE,
  });
}

/** `auth_type = v3applicationcredential`: the credential by id, or by name with the user who owns it; its secret. */
function applicationCredentialAuth(keys: IdentityKeys): KeystoneAuth {
  const { reader } = keys;
  const stray = keys.given(PASSWORD_KEYS.filter((key) => !['username', 'user_id', 'user_domain_name', 'user_domain_id'].includes(key)));
  if (stray.length > 0) {
    reader.fail(stray[0], 'is not read with auth_type = v3applicationcredential: an application credential is scoped to the project it was made in, and has its own secret');
  }
  const secret = keys.value('application_credential_secret') ?? reader.fail(undefined, 'auth_type = v3applicationcredential needs application_credential_secret');
  const named = keys.oneOf('application_credential_id', 'application_credential_name') ??
    reader.fail(undefined, 'auth_type = v3applicationcredential needs application_credential_id (or application_credential_name with username/user_id)');
  if ('id' in named) {
    const user = keys.given(['username', 'user_id', 'user_domain_name', 'user_domain_id']);
    if (user.length > 0) reader.fail(user[0], 'is not read with application_credential_id: the id names the credential on its own');
    return Object.freeze({ type: 'v3applicationcredential', credential: Object.freeze({ id: named.id }), secret });
  }
  const user = keys.ref('user', 'v3applicationcredential', false) ?? reader.fail('application_credential_name', 'needs the user who owns it: username (with user_domain_name or user_domain_id) or user_id');
  return Object.freeze({ type: 'v3applicationcredential', credential: Object.freeze({ name: named.name, user }), secret });
}

/** `auth_type = password` (or `v3password`): a user, its password and the project its token is scoped to. */
function passwordAuth(keys: IdentityKeys, authType: string): KeystoneAuth {
  const { reader } = keys;
  const stray = keys.given(CREDENTIAL_KEYS);
  if (stray.length > 0) reader.fail(stray[0], `is read only with auth_type = v3applicationcredential (auth_type is ${authType})`);
  const user = keys.ref('user', authType, true)!;
  const password = keys.value('password') ?? reader.fail(undefined, `auth_type = ${authType} needs password`);
  // Swift's keystoneauth maps a project to an account: a token without a project scope has no account.
  const project = keys.ref('project', authType, false) ?? reader.fail(undefined, 'needs project_name (with project_domain_name or project_domain_id) or project_id: Swift maps a token\'s project to an account');
  return Object.freeze({ type: 'password', user, password, project });
}

/** The identity's keys of [filter:quota] as values (an empty one is not given), and the user or project they name. */
class IdentityKeys {
  constructor(readonly reader: KeyReader) {}

  value(key: string): string | undefined {
    const raw = this.reader.raw(key)?.trim();
    return raw === '' ? undefined : raw;
  }

  given(keys: readonly string[]): string[] {
    return keys.filter((key) => this.value(key) !== undefined);
  }

  /** One of two spellings of a thing, never both: a file that says both leaves the reader guessing which counts. */
  oneOf(idKey: string, nameKey: string): { id: string } | { name: string } | undefined {
    const id = this.value(idKey);
    const name = this.value(nameKey);
    if (id !== undefined && name !== undefined) this.reader.fail(nameKey, `and ${idKey} both name it: keep one`);
    return id !== undefined ? { id } : name !== undefined ? { name } : undefined;
  }

  /** The user or project: by id, or by name with its domain; undefined when none is given and none is `required`. */
  ref(what: 'user' | 'project', authType: string, required: boolean): KeystoneRef | undefined {
    const idKey = what === 'user' ? 'user_id' : 'project_id';
    const nameKey = what === 'user' ? 'username' : 'project_name';
    const found = this.oneOf(idKey, nameKey);
    const domain = this.oneOf(`${what}_domain_id`, `${what}_domain_name`);
    if (found === undefined) {
      if (required) this.reader.fail(undefined, `auth_type = ${authType} needs ${nameKey} (with ${what}_domain_name or ${what}_domain_id) or ${idKey}`);
      if (domain !== undefined) this.reader.fail(this.given([`${what}_domain_id`, `${what}_domain_name`])[0], `is read only with ${nameKey}`);
      return undefined;
    }
    if ('id' in found) {
      if (domain !== undefined) this.reader.fail(this.given([`${what}_domain_id`, `${what}_domain_name`])[0], `is read only with ${nameKey}: ${idKey} names the ${what} on its own`);
      return Object.freeze(found);
    }
    if (domain === undefined) this.reader.fail(nameKey, `needs ${what}_domain_name or ${what}_domain_id: Keystone v3 names are unique within a domain only`);
    return Object.freeze({ name: found.name, domain: Object.freeze(domain) });
  }
}

/**
 * `auth_url` as keystonemiddleware's users write it, with or without the `/v3` (`http://keystone:5000`,
 * `http://keystone:5000/v3`, `https://cloud/identity/v3`); the token endpoint under it. Only v3 issues the
 * tokens Swift's keystoneauth reads domains from, and v2.0 is gone from Keystone.
 */
export function parseAuthUrl(text: string, fail: (reason: string) => never): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(`must be Keystone's URL such as http://keystone:5000/v3, got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`must be an http:// or https:// URL, got "${text}"`);
  if (url.search || url.hash) fail(`must be a URL without query or fragment, got "${text}"`);
  if (url.username || url.password) fail('must not carry credentials: they go in username/password or the application credential keys');
  const path = url.pathname.replace(/\/+$/, '');
  if (/\/v2(\.0)?$/.test(path)) fail(`names Keystone's v2.0 API; the proxy speaks v3 (e.g. ${url.origin}${path.replace(/\/v2(\.0)?$/, '/v3')})`);
  url.pathname = `${path.endsWith('/v3') ? path : `${path}/v3`}/auth/tokens`;
  return url;
}

/** keystoneauth's reseller_prefix: the first of its comma-separated list, with "_" appended, `''` meaning none. */
export function keystoneResellerPrefix(keystoneauth: KeyReader | undefined): string {
  const listed = (keystoneauth?.raw('reseller_prefix') ?? 'AUTH').split(',').map((p) => p.trim()).filter(Boolean);
  const first = listed[0];
  if (first === undefined || first === "''") return '';
  return first.endsWith('_') ? first : `${first}_`;
}

/** Who the identity is, for log lines and errors; never a secret. */
export function describeKeystoneIdentity(identity: KeystoneIdentity): string {
  const ref = (r: KeystoneRef) => ('id' in r ? `id ${r.id}` : `${r.name} (domain ${'id' in r.domain ? `id ${r.domain.id}` : r.domain.name})`);
  const where = `at ${identity.tokensUrl.origin}${identity.tokensUrl.pathname.replace(/\/auth\/tokens$/, '')}`;
  const { auth } = identity;
  if (auth.type === 'password') return `Keystone user ${ref(auth.user)} in project ${ref(auth.project)} ${where}`;
  const credential = 'id' in auth.credential ? `id ${auth.credential.id}` : `${auth.credential.name} of user ${ref(auth.credential.user)}`;
  return `Keystone application credential ${credential} ${where}`;
}
