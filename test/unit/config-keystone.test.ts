/**
 * The Keystone service identity (`service_auth = keystone`): the keys it is read from, every mistake named by
 * file, line and key, the token request it makes and how Keystone's answer is read. The real Keystone login is
 * in test/integration/keystone.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/config/errors.js';
import { configFromText, serviceResellerPrefix, type Config } from '../../src/config/load.js';
import { describeKeystoneIdentity, KEYSTONE_KEYS, type KeystoneIdentity } from '../../src/config/keystone.js';
import { planReload } from '../../src/config/reload.js';
import { KeystoneLoginError, readTokenAnswer, tokenRequestBody } from '../../src/auth/keystone.js';

const FILE = 'test.conf';
const PROXY = ['[quota-proxy]', 'upstream = http://127.0.0.1:8080'];
const LEVELS = 'quota = {"container_count": {"default": 5}, "object_count": {"default": 100}, "container_usage": {"default": 1000}}';
const PASSWORD = [
  'service_auth = keystone',
  'auth_url = http://127.0.0.1:5000/v3',
  'auth_type = password',
  'username = quota-proxy',
  'user_domain_name = Default',
  'password = s3cret-pw',
  'project_name = service',
  'project_domain_id = default',
];
const APP_CREDENTIAL = [
  'service_auth = keystone',
  'auth_url = http://127.0.0.1:5000',
  'auth_type = v3applicationcredential',
  'application_credential_id = 4ab1c2',
  'application_credential_secret = app-s3cret',
];

function text(quota: string[], ...more: string[][]): string {
  return [PROXY, ['[filter:quota]', 'use = egg:swift#quota', ...quota, LEVELS], ...more].map((b) => b.join('\n')).join('\n\n') + '\n';
}

function load(source: string): Config {
  return configFromText(source, FILE);
}

function keystone(config: Config): KeystoneIdentity {
  const { service } = config.quota;
  if (service.kind !== 'keystone') throw new assert.AssertionError({ message: `service identity is ${service.kind}, not keystone` });
  return service.keystone;
}

function lineOf(source: string, needle: string): number {
  const found = source.split('\n').flatMap((line, i) => (line.startsWith(needle) ? [i + 1] : []));
  assert.equal(found.length, 1, `"${needle}" should start exactly one line`);
  return found[0]!;
}

/** Loading fails with a ConfigError at `file:line`, naming [filter:quota] and `key`, for `reason`. */
function fails(source: string, key: string | undefined, reason: RegExp, line = key === undefined ? lineOf(source, '[filter:quota]') : lineOf(source, `${key} =`)): void {
  assert.throws(() => load(source), (error: unknown) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.file, FILE);
    assert.equal(error.line, line);
    assert.equal(error.section, 'filter:quota');
    assert.equal(error.key, key);
    assert.ok(error.message.startsWith(`${FILE}:${line}: [filter:quota]${key === undefined ? '' : ` ${key}`}: `), error.message);
    assert.match(error.message, reason);
    return true;
  });
}

describe('service_auth = keystone: the identity', () => {
  test('a password identity by names, with keystoneauth\'s defaults for prefix and role', () => {
    const identity = keystone(load(text(PASSWORD)));
    assert.equal(identity.tokensUrl.href, 'http://127.0.0.1:5000/v3/auth/tokens');
    assert.deepEqual(identity.auth, {
      type: 'password',
      user: { name: 'quota-proxy', domain: { name: 'Default' } },
      password: 's3cret-pw',
      project: { name: 'service', domain: { id: 'default' } },
    });
    assert.equal(identity.resellerPrefix, 'AUTH_');
    assert.equal(identity.resellerAdminRole, 'ResellerAdmin');
  });

  test('without a [filter:tempauth] section: Keystone alone is enough', () => {
    const config = load(text(PASSWORD));
    assert.deepEqual(config.users, []);
    assert.equal(serviceResellerPrefix(config), 'AUTH_');
  });

  test('a password identity by ids (auth_type v3password is keystoneauth1\'s other name for it)', () => {
    const quota = ['service_auth = keystone', 'auth_url = https://cloud.example/identity/', 'auth_type = v3password', 'user_id = u123', 'password = pw', 'project_id = p456'];
    const identity = keystone(load(text(quota)));
    assert.equal(identity.tokensUrl.href, 'https://cloud.example/identity/v3/auth/tokens');
    assert.deepEqual(identity.auth, { type: 'password', user: { id: 'u123' }, password: 'pw', project: { id: 'p456' } });
  });

  test('auth_type defaults to password', () => {
    const identity = keystone(load(text(PASSWORD.filter((line) => !line.startsWith('auth_type')))));
    assert.equal(identity.auth.type, 'password');
  });

  test('an application credential by id; auth_url without /v3 gets it', () => {
    const identity = keystone(load(text(APP_CREDENTIAL)));
    assert.equal(identity.tokensUrl.href, 'http://127.0.0.1:5000/v3/auth/tokens');
    assert.deepEqual(identity.auth, { type: 'v3applicationcredential', credential: { id: '4ab1c2' }, secret: 'app-s3cret' });
  });

  test('an application credential by name, with the user who owns it', () => {
    const quota = ['service_auth = keystone', 'auth_url = http://k:5000/v3/', 'auth_type = v3applicationcredential', 'application_credential_name = quota', 'username = ops', 'user_domain_id = default', 'application_credential_secret = x'];
    const identity = keystone(load(text(quota)));
    assert.deepEqual(identity.auth, { type: 'v3applicationcredential', credential: { name: 'quota', user: { name: 'ops', domain: { id: 'default' } } }, secret: 'x' });
  });

  test('reseller_prefix and reseller_admin_role are read from Swift\'s own [filter:keystoneauth], as keystoneauth reads them', () => {
    const section = (...lines: string[]) => ['[filter:keystoneauth]', 'use = egg:swift#keystoneauth', 'operator_roles = admin, swiftoperator', ...lines];
    const prefix = (value: string) => keystone(load(text(PASSWORD, section(`reseller_prefix = ${value}`)))).resellerPrefix;
    assert.equal(prefix('KEY'), 'KEY_');
    assert.equal(prefix('KEY_'), 'KEY_');
    assert.equal(prefix('AUTH, SERVICE'), 'AUTH_'); // the project's own account; SERVICE_ is for service tokens
    assert.equal(prefix("''"), '');
    const config = load(text(PASSWORD, section('reseller_prefix = KEY', 'reseller_admin_role = CloudAdmin')));
    assert.equal(keystone(config).resellerAdminRole, 'CloudAdmin');
    assert.equal(serviceResellerPrefix(config), 'KEY_');
    // tempauth's prefix stays tempauth's (its users' accounts, e.g. for S3).
    assert.equal(config.resellerPrefix, 'AUTH_');
  });

  test('the tempauth identity is unchanged: the user and its account', () => {
    const tempauth = ['[filter:tempauth]', 'reseller_prefix = TA', 'user_ops_svc = pw .reseller_admin'];
    const config = load(text([], tempauth));
    assert.deepEqual(config.quota.service.kind === 'tempauth' && [config.quota.service.user.user, config.quota.service.account], ['svc', 'TA_ops']);
    assert.equal(serviceResellerPrefix(config), 'TA_');
  });

  test('who the identity is, for logs: never its password or secret', () => {
    const described = describeKeystoneIdentity(keystone(load(text(PASSWORD))));
    assert.equal(described, 'Keystone user quota-proxy (domain Default) in project service (domain id default) at http://127.0.0.1:5000/v3');
    const credential = describeKeystoneIdentity(keystone(load(text(APP_CREDENTIAL))));
    assert.equal(credential, 'Keystone application credential id 4ab1c2 at http://127.0.0.1:5000/v3');
  });

  test('a changed identity waits for a restart (SIGHUP does not swap the token under running checks)', () => {
    const plan = planReload(load(text(PASSWORD)), load(text(PASSWORD.map((line) => line.replace('s3cret-pw', 'new-pw')))));
    assert.deepEqual(plan.applied, []);
    assert.deepEqual(plan.needRestart, ['service_auth / service_user / the Keystone identity']);
  });
});

describe('service_auth = keystone: mistakes, by file, line and key', () => {
  const without = (lines: string[], ...keys: string[]) => lines.filter((line) => !keys.some((key) => line.startsWith(`${key} =`)));

  test('service_auth other than tempauth or keystone', () => {
    fails(text(['service_auth = ldap']), 'service_auth', /must be one of tempauth, keystone, got "ldap"/);
  });

  test('no auth_url', () => {
    fails(text(without(PASSWORD, 'auth_url')), undefined, /service_auth = keystone needs auth_url/);
  });

  test('an auth_url that is no URL, has a query, or names Keystone v2.0', () => {
    fails(text([...without(PASSWORD, 'auth_url'), 'auth_url = keystone:5000']), 'auth_url', /must be an http:\/\/ or https:\/\/ URL/);
    fails(text([...without(PASSWORD, 'auth_url'), 'auth_url = not a url']), 'auth_url', /must be Keystone's URL/);
    fails(text([...without(PASSWORD, 'auth_url'), 'auth_url = http://k:5000/v3?x=1']), 'auth_url', /without query/);
    fails(text([...without(PASSWORD, 'auth_url'), 'auth_url = http://k:5000/v2.0']), 'auth_url', /v2\.0 API; the proxy speaks v3 \(e\.g\. http:\/\/k:5000\/v3\)/);
  });

  test('an auth_type keystoneauth1 has but the proxy does not use', () => {
    fails(text([...without(PASSWORD, 'auth_type'), 'auth_type = token']), 'auth_type', /must be one of password, v3password, v3applicationcredential, got "token"/);
  });

  test('a user name without its domain, or named twice', () => {
    fails(text(without(PASSWORD, 'user_domain_name')), 'username', /needs user_domain_name or user_domain_id: Keystone v3 names are unique within a domain only/);
    fails(text([...PASSWORD, 'user_id = u1']), 'username', /and user_id both name it: keep one/);
    fails(text([...PASSWORD, 'user_domain_id = default']), 'user_domain_name', /and user_domain_id both name it/);
    fails(text([...without(PASSWORD, 'username'), 'user_id = u1']), 'user_domain_name', /is read only with username: user_id names the user on its own/);
  });

  test('a password identity without user, password or project', () => {
    fails(text(without(PASSWORD, 'username', 'user_domain_name')), undefined, /auth_type = password needs username \(with user_domain_name or user_domain_id\) or user_id/);
    fails(text(without(PASSWORD, 'password')), undefined, /auth_type = password needs password/);
    fails(text(without(PASSWORD, 'project_name', 'project_domain_id')), undefined, /needs project_name .* or project_id: Swift maps a token's project to an account/);
    fails(text(without(PASSWORD, 'project_name')), 'project_domain_id', /is read only with project_name/);
  });

  test('application credential keys with a password identity', () => {
    fails(text([...PASSWORD, 'application_credential_secret = x']), 'application_credential_secret', /is read only with auth_type = v3applicationcredential \(auth_type is password\)/);
  });

  test('an application credential without secret or name, or with keys it does not read', () => {
    fails(text(without(APP_CREDENTIAL, 'application_credential_secret')), undefined, /needs application_credential_secret/);
    fails(text(without(APP_CREDENTIAL, 'application_credential_id')), undefined, /needs application_credential_id \(or application_credential_name with username\/user_id\)/);
    fails(text([...APP_CREDENTIAL, 'project_name = other']), 'project_name', /not read with auth_type = v3applicationcredential: an application credential is scoped to the project it was made in/);
    fails(text([...APP_CREDENTIAL, 'password = pw']), 'password', /not read with auth_type = v3applicationcredential/);
    fails(text([...APP_CREDENTIAL, 'username = ops', 'user_domain_id = default']), 'username', /not read with application_credential_id: the id names the credential on its own/);
    const byName = [...without(APP_CREDENTIAL, 'application_credential_id'), 'application_credential_name = quota'];
    fails(text(byName), 'application_credential_name', /needs the user who owns it/);
  });

  test('a tempauth service_user with service_auth = keystone', () => {
    fails(text([...PASSWORD, 'service_user = reseller:reseller']), 'service_user', /names a tempauth user: with service_auth = keystone the service identity is auth_url/);
  });

  test('Keystone keys without service_auth = keystone', () => {
    const tempauth = ['[filter:tempauth]', 'user_reseller_reseller = r .reseller_admin'];
    fails(text(without(PASSWORD, 'service_auth'), tempauth), 'auth_url', /is a Keystone setting of the service identity: it is read with service_auth = keystone only/);
  });

  test('every Keystone key is one the loader knows (its list of known keys spells them out)', () => {
    for (const key of KEYSTONE_KEYS) {
      assert.throws(() => load(text([...PASSWORD.filter((line) => !line.startsWith(`${key} =`)), `${key} = x`, `${key}x = x`])), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        // The first complaint is about the made-up key, not the real one.
        assert.equal(error.key, `${key}x`, `${key}: ${error.message}`);
        assert.match(error.reason, /not a key of this section/);
        return true;
      });
    }
  });

  test('a misspelt Keystone key is an unknown key, with the one meant', () => {
    const source = text([...without(PASSWORD, 'user_domain_name'), 'user_domian_name = Default']);
    fails(source, 'user_domian_name', /not a key of this section \(did you mean "user_domain_name"\?\)/);
  });
});

describe('the token request and Keystone\'s answer', () => {
  const identity = keystone(load(text(PASSWORD)));
  const NOW = Date.parse('2030-01-01T12:00:00Z');
  const answer = (token: Record<string, unknown>) => ({
    token: { issued_at: '2030-01-01T10:00:00.000000Z', expires_at: '2030-01-01T11:00:00.000000Z', project: { id: 'p42' }, roles: [{ name: 'member' }, { name: 'ResellerAdmin' }], ...token },
  });

  test('the password method, scoped to the project', () => {
    assert.deepEqual(tokenRequestBody(identity), {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'quota-proxy', domain: { name: 'Default' }, password: 's3cret-pw' } } },
        scope: { project: { name: 'service', domain: { id: 'default' } } },
      },
    });
  });

  test('the application_credential method, without a scope (Keystone refuses one)', () => {
    assert.deepEqual(tokenRequestBody(keystone(load(text(APP_CREDENTIAL)))), {
      auth: { identity: { methods: ['application_credential'], application_credential: { id: '4ab1c2', secret: 'app-s3cret' } } },
    });
  });

  test('a token: its lifetime by Keystone\'s clock (an hour, though this clock is past expires_at), its project', () => {
    assert.deepEqual(readTokenAnswer(identity, 201, 'gAAA', answer({}), NOW), { value: 'gAAA', lifetimeMs: 3_600_000, projectId: 'p42' });
    // Without issued_at, this clock.
    const { lifetimeMs } = readTokenAnswer(identity, 201, 'gAAA', answer({ issued_at: undefined, expires_at: '2030-01-01T12:30:00Z' }), NOW);
    assert.equal(lifetimeMs, 1_800_000);
  });

  test('roles compare without case, as keystoneauth compares them', () => {
    assert.equal(readTokenAnswer(identity, 201, 't', answer({ roles: [{ name: 'reselleradmin' }] }), NOW).projectId, 'p42');
  });

  test('refusals and unusable tokens name the identity and why, never the password', () => {
    const refused = (status: number, subject: string | undefined, body: unknown, reason: RegExp) => {
      assert.throws(() => readTokenAnswer(identity, status, subject, body as never, NOW), (error: unknown) => {
        assert.ok(error instanceof KeystoneLoginError);
        assert.match(error.message, reason);
        assert.match(error.message, /Keystone user quota-proxy \(domain Default\) in project service/);
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      });
    };
    refused(401, undefined, { error: { message: 'The request you have made requires authentication.' } }, /refused the service identity, .* \(status 401: The request you have made requires authentication\.\)/);
    refused(201, undefined, answer({}), /without a token/);
    refused(201, 't', answer({ project: undefined }), /not scoped to a project/);
    refused(201, 't', answer({ roles: [{ name: 'member' }] }), /lacks the role ResellerAdmin: Swift's keystoneauth lets only that role read and write every account/);
    refused(201, 't', answer({ expires_at: 'soon' }), /no valid expires_at/);
    refused(201, 't', answer({ expires_at: '2030-01-01T09:00:00Z' }), /already expired/);
  });
});
