import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/config/errors.js';
import {
  configFromText,
  loadConfig,
  DEFAULT_CACHE_TIMEOUT,
  DEFAULT_NEAR_LIMIT_RATIO,
  DEFAULT_CLIENT_BOUNDS,
  type Config,
  type ConfigOverrides,
  type TempauthUser,
} from '../../src/config/load.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const SHIPPED = fileURLToPath(new URL('../../conf/proxy-server.conf', import.meta.url));
const FILE = 'test.conf';

const PROXY = ['[quota-proxy]', 'upstream = http://127.0.0.1:8080'];
const QUOTA = ['[filter:quota]', 'use = egg:swift#quota', 'quota = {"container_count": {"default": 5, "L1": 10}, "object_count": {"default": 100}, "container_usage": {"default": 1000}}'];
const TEMPAUTH = ['[filter:tempauth]', 'use = egg:swift#tempauth', 'user_system_root = testpass .admin', 'user_reseller_reseller = reseller .reseller_admin'];

function text(...blocks: string[][]): string {
  return blocks.map((b) => b.join('\n')).join('\n\n') + '\n';
}

/** 1-based line of the only line containing `needle`. */
function lineOf(source: string, needle: string): number {
  const lines = source.split('\n');
  const found = lines.flatMap((line, i) => (line.includes(needle) ? [i + 1] : []));
  assert.equal(found.length, 1, `"${needle}" should be on exactly one line`);
  return found[0]!;
}

function load(source: string, overrides?: ConfigOverrides) {
  return configFromText(source, FILE, overrides);
}

/** The tempauth user a config's service identity is (it must be one). */
function serviceUser(config: Config): TempauthUser {
  const { service } = config.quota;
  if (service.kind !== 'tempauth') throw new assert.AssertionError({ message: `service identity is ${service.kind}, not tempauth` });
  return service.user;
}

function configError(
  fn: () => unknown,
  expected: { file?: string; line?: number | undefined; section?: string | undefined; key?: string | undefined; reason: RegExp },
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    const file = expected.file ?? FILE;
    assert.equal(error.file, file);
    if ('line' in expected) assert.equal(error.line, expected.line);
    if ('section' in expected) assert.equal(error.section, expected.section);
    if ('key' in expected) assert.equal(error.key, expected.key);
    const where = error.line === undefined ? file : `${file}:${error.line}`;
    assert.ok(error.message.startsWith(`${where}: `), error.message);
    if (expected.section !== undefined) assert.ok(error.message.includes(`[${expected.section}]`), error.message);
    if (expected.key !== undefined) assert.ok(error.message.includes(` ${expected.key}: `), error.message);
    assert.match(error.message, expected.reason);
    return true;
  });
}

describe('loadConfig: the StackLab article as printed', () => {
  const file = fixture('seed-article.conf');
  const source = readFileSync(file, 'utf8');

  test('the fixture holds the article\'s quota block verbatim', () => {
    assert.ok(source.includes('quota = {\n“container_count”: {\n“default”: 5,\n“L1″: 10,'));
    assert.ok(source.includes('set log_name = quota'));
    assert.ok(source.includes('# If set precise_mode = true, the quota middleware will disable the cache.'));
  });

  test('loads with the article\'s numbers', () => {
    const config = loadConfig(file);
    assert.deepEqual(config.quota.levels.names, ['default', 'L1', 'L2']);
    assert.deepEqual(config.quota.levels.byLevel.get('default'), { container_count: 5, object_count: 200000, container_usage: 2147483648 });
    assert.deepEqual(config.quota.levels.byLevel.get('L1'), { container_count: 10, object_count: 500000, container_usage: 10737418240 });
    assert.deepEqual(config.quota.levels.byLevel.get('L2'), { container_count: 25, object_count: 1000000, container_usage: 53687091200 });
    assert.equal(config.quota.cacheTimeoutSeconds, 30);
    assert.equal(config.quota.preciseMode, true);
    assert.equal(config.upstream.href, 'http://127.0.0.1:8080/');
  });

  test('reads the article\'s tempauth users and picks the reseller as service user', () => {
    const config = loadConfig(file);
    assert.deepEqual(config.users.map((u) => `${u.account}:${u.user}:${u.key}`), ['system:root:testpass', 'reseller:reseller:reseller']);
    assert.deepEqual(config.users[0]!.groups, ['.admin']);
    assert.ok(config.users[1]!.groups.includes('.reseller_admin'));
    assert.equal(serviceUser(config).account, 'reseller');
    assert.equal(config.resellerPrefix, 'AUTH_');
  });

  test('warns once about the typographic quotes, naming the file and the first line that has them', () => {
    const config = loadConfig(file);
    const firstCurly = lineOf(source, '“container_count”');
    assert.equal(firstCurly, lineOf(source, 'quota = {') + 1);
    assert.equal(config.warnings.length, 1);
    assert.ok(config.warnings[0]!.startsWith(`${file}:${firstCurly}: [filter:quota] quota: `), config.warnings[0]);
    assert.match(config.warnings[0]!, /typographic quotes/);
    assert.match(config.warnings[0]!, /on 12 line\(s\)/);
  });
});

describe('loadConfig: files', () => {
  test('the shipped conf/proxy-server.conf loads without warnings', () => {
    const config = loadConfig(SHIPPED);
    assert.deepEqual(config.warnings, []);
    assert.equal(serviceUser(config).user, 'reseller');
    assert.deepEqual(config.quota.levels.byLevel.get('L2'), { container_count: 25, object_count: 1000000, container_usage: 53687091200 });
  });

  test('every option is read from a file that sets them all', () => {
    const config = loadConfig(fixture('full.conf'));
    assert.equal(config.bindIp, '0.0.0.0');
    assert.equal(config.bindPort, 9090);
    assert.equal(config.upstream.origin, 'https://swift.example.com:8443');
    assert.equal(config.upstreamTimeoutSeconds, 120);
    assert.equal(config.metricsPath, '/_quota/metrics');
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.resellerPrefix, 'SWIFT_');
    assert.deepEqual(config.quota.levels.byLevel.get('gold'), { container_count: 20, object_count: 100, container_usage: 1048576 });
    assert.equal(config.quota.cacheTimeoutSeconds, 0);
    assert.equal(config.quota.preciseMode, true);
    assert.equal(config.quota.nearLimitRatio, 0.8);
    assert.equal(config.quota.failMode, 'open');
    assert.equal(config.quota.retryAfterSeconds, 30);
    assert.equal(config.quota.cacheMaxEntries, 500);
    assert.equal(config.quota.resellerProbeAccount, 'nobody-owns-this');
    assert.deepEqual({ ...serviceUser(config), groups: [...serviceUser(config).groups] }, {
      account: 'ops',
      user: 'reader',
      key: 'readerpass',
      groups: ['.reseller_admin'],
      storageUrl: 'http://127.0.0.1:8080/v1/SWIFT_ops',
    });
    assert.deepEqual(config.warnings, []);
  });

  test('a file that cannot be read is a ConfigError naming it', () => {
    const missing = fixture('does-not-exist.conf');
    configError(() => loadConfig(missing), { file: missing, line: undefined, reason: /cannot read the config file/ });
  });

  test('the config and its parts are frozen', () => {
    const config = loadConfig(fixture('full.conf'));
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.quota));
    assert.ok(Object.isFrozen(config.users));
    assert.ok(Object.isFrozen(config.users[0]));
    assert.ok(Object.isFrozen(config.warnings));
  });
});

describe('configFromText: defaults', () => {
  test('options left out take their defaults', () => {
    const config = load(text(PROXY, QUOTA, TEMPAUTH));
    assert.equal(config.quota.cacheTimeoutSeconds, 30);
    assert.equal(DEFAULT_CACHE_TIMEOUT, 30);
    assert.equal(config.quota.preciseMode, false);
    assert.equal(config.quota.nearLimitRatio, 0.95);
    assert.equal(DEFAULT_NEAR_LIMIT_RATIO, 0.95);
    assert.equal(config.quota.failMode, 'closed');
    assert.equal(config.quota.retryAfterSeconds, 5);
    assert.equal(config.quota.cacheMaxEntries, 100_000);
    assert.equal(config.quota.resellerProbeAccount, 'quota-proxy-reseller-probe');
    assert.equal(config.bindIp, '127.0.0.1');
    assert.equal(config.bindPort, 8081);
    assert.equal(config.metricsPath, '/metrics');
    assert.equal(config.upstreamTimeoutSeconds, 60);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.resellerPrefix, 'AUTH_');
    assert.equal(config.file, FILE);
  });

  test('the service user defaults to the first .reseller_admin user', () => {
    const config = load(text(PROXY, QUOTA, [...TEMPAUTH, 'user_second_admin = x .reseller_admin']));
    assert.equal(`${serviceUser(config).account}:${serviceUser(config).user}`, 'reseller:reseller');
  });

  test('Swift\'s spellings of true and false are accepted for precise_mode', () => {
    for (const value of ['true', 'True', '1', 'yes', 'on', 't', 'y']) {
      assert.equal(load(text(PROXY, [...QUOTA, `precise_mode = ${value}`], TEMPAUTH)).quota.preciseMode, true, value);
    }
    for (const value of ['false', 'FALSE', '0', 'no', 'off', 'f', 'n']) {
      assert.equal(load(text(PROXY, [...QUOTA, `precise_mode = ${value}`], TEMPAUTH)).quota.preciseMode, false, value);
    }
  });
});

describe('configFromText: [filter:quota] errors name file, line and key', () => {
  function quotaError(json: string[], needle: string, reason: RegExp): void {
    const source = text(PROXY, ['[filter:quota]', 'quota = {', ...json, '}'], TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, needle), section: 'filter:quota', key: 'quota', reason });
  }

  test('a kind without a default level', () => {
    quotaError(['"container_count": {"default": 5},', '"object_count": {"L1": 5}'], '"object_count"', /object_count has no "default" level/);
  });

  test('a negative limit (and 0 is fine)', () => {
    quotaError(['"container_count": {"default": 5},', '"object_count": {"default": -1}'], '"object_count"', /must be a whole number >= 0, got -1/);
    const ok = text(PROXY, ['[filter:quota]', 'quota = {"object_count": {"default": 0}}'], TEMPAUTH);
    assert.equal(load(ok).quota.levels.byLevel.get('default')!.object_count, 0);
  });

  test('a non-integer limit', () => {
    quotaError(['"container_usage": {"default": 10.5}'], '"container_usage"', /must be a whole number >= 0, got 10.5/);
  });

  test('a string limit', () => {
    quotaError(['"container_count": {"default": 1},', '"container_usage": {"default": "1000"}'], '"container_usage"', /got "1000"/);
  });

  test('an unknown kind', () => {
    quotaError(['"container_count": {"default": 1},', '"objects": {"default": 1}'], '"objects"', /unknown quota kind "objects"/);
  });

  test('invalid JSON names the line where parsing failed', () => {
    // The trailing comma is only an error once the closing brace on the next line is read.
    const source = text(PROXY, ['[filter:quota]', 'quota = {', '"container_count": {"default": 1},', '}'], TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, '"container_count"') + 1, section: 'filter:quota', key: 'quota', reason: /is not valid JSON/ });
  });

  test('an unclosed JSON block names the quota line', () => {
    const source = text(PROXY, ['[filter:quota]', 'quota = {', '"container_count": {"default": 1}'], TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, 'quota = {'), section: 'filter:quota', key: 'quota', reason: /never closed/ });
  });

  test('a missing [filter:quota] section', () => {
    configError(() => load(text(PROXY, TEMPAUTH)), { line: undefined, section: 'filter:quota', key: undefined, reason: /section is missing/ });
  });

  test('a [filter:quota] section without quota', () => {
    const source = text(PROXY, ['[filter:quota]', 'use = egg:swift#quota'], TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, '[filter:quota]'), section: 'filter:quota', key: undefined, reason: /needs a "quota = \{\.\.\.\}"/ });
  });

  test('no .reseller_admin user to read usage with', () => {
    const source = text(PROXY, QUOTA, ['[filter:tempauth]', 'user_system_root = testpass .admin']);
    configError(() => load(source), { line: lineOf(source, '[filter:quota]'), section: 'filter:quota', key: undefined, reason: /needs a service identity/ });
    configError(() => load(text(PROXY, QUOTA)), { section: 'filter:quota', reason: /needs a service identity/ });
  });

  test('a service_user that is not a reseller admin', () => {
    const source = text(PROXY, [...QUOTA, 'service_user = system:root'], TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, 'service_user'), section: 'filter:quota', key: 'service_user', reason: /must be in the \.reseller_admin group/ });
  });

  test('a service_user that is not a tempauth user', () => {
    const source = text(PROXY, [...QUOTA, 'service_user = nobody:here'], TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, 'service_user'), key: 'service_user', reason: /"nobody:here" is not a user/ });
  });

  test('a service_user that is a reseller admin is used', () => {
    const config = load(text(PROXY, [...QUOTA, 'service_user = reseller:reseller'], TEMPAUTH));
    assert.equal(serviceUser(config).key, 'reseller');
  });

  for (const [key, bad, good, reason] of [
    ['cache_timeout', '-1', '0', /whole number from 0 to 86400 \(seconds\), got "-1"/],
    ['cache_timeout', '1.5', '86400', /got "1.5"/],
    ['cache_timeout', '86401', '86400', /got "86401"/],
    ['retry_after', 'soon', '3600', /whole number from 0 to 3600/],
    ['cache_max_entries', '0', '1', /whole number from 1/],
    ['near_limit_ratio', '1.01', '1', /number from 0 to 1, got "1.01"/],
    ['near_limit_ratio', '-0.1', '0', /number from 0 to 1/],
    ['near_limit_ratio', '', '0.5', /number from 0 to 1, got ""/],
    ['precise_mode', 'maybe', 'no', /must be true or false, got "maybe"/],
    ['fail_mode', 'sometimes', 'open', /must be one of closed, open, got "sometimes"/],
  ] as const) {
    test(`${key} = ${JSON.stringify(bad)} is refused (and ${good} is accepted)`, () => {
      const source = text(PROXY, [...QUOTA, `${key} = ${bad}`], TEMPAUTH);
      configError(() => load(source), { line: lineOf(source, `${key} =`), section: 'filter:quota', key, reason });
      assert.doesNotThrow(() => load(text(PROXY, [...QUOTA, `${key} = ${good}`], TEMPAUTH)));
    });
  }
});

describe('configFromText: [quota-proxy] errors', () => {
  for (const [bad, reason] of [
    ['abc', /whole number from 0 to 65535, got "abc"/],
    ['65536', /got "65536"/],
    ['-1', /got "-1"/],
    ['80.5', /got "80.5"/],
  ] as const) {
    test(`bind_port = ${bad} is refused`, () => {
      const source = text([...PROXY, `bind_port = ${bad}`], QUOTA, TEMPAUTH);
      configError(() => load(source), { line: lineOf(source, 'bind_port'), section: 'quota-proxy', key: 'bind_port', reason });
    });
  }

  test('bind_port 0 and 65535 are accepted', () => {
    assert.equal(load(text([...PROXY, 'bind_port = 0'], QUOTA, TEMPAUTH)).bindPort, 0);
    assert.equal(load(text([...PROXY, 'bind_port = 65535'], QUOTA, TEMPAUTH)).bindPort, 65535);
  });

  for (const [bad, reason] of [
    ['not a url', /must be the Swift proxy's base URL/],
    ['ftp://127.0.0.1:8080', /must be an http:\/\/ or https:\/\/ URL/],
    ['http://127.0.0.1:8080/v1', /without path or query/],
    ['http://127.0.0.1:8080/v1/AUTH_a', /without path or query/],
    ['http://127.0.0.1:8080/?x=1', /without path or query/],
    ['http://127.0.0.1:8080/#frag', /without path or query/],
  ] as const) {
    test(`upstream = ${bad} is refused`, () => {
      const source = text(['[quota-proxy]', `upstream = ${bad}`], QUOTA, TEMPAUTH);
      configError(() => load(source), { line: lineOf(source, 'upstream'), section: 'quota-proxy', key: 'upstream', reason });
    });
  }

  test('upstream with or without a trailing slash, http or https, is accepted', () => {
    for (const good of ['http://127.0.0.1:8080', 'http://127.0.0.1:8080/', 'https://swift.example.com']) {
      assert.equal(load(text(['[quota-proxy]', `upstream = ${good}`], QUOTA, TEMPAUTH)).upstream.pathname, '/', good);
    }
  });

  test('a missing upstream is an error naming the key', () => {
    configError(() => load(text(['[quota-proxy]', 'bind_port = 8081'], QUOTA, TEMPAUTH)), { section: 'quota-proxy', key: 'upstream', reason: /is required/ });
    configError(() => load(text(QUOTA, TEMPAUTH)), { line: undefined, section: 'quota-proxy', key: 'upstream', reason: /is required/ });
  });

  test('metrics_path must start with "/" and not shadow /v1/ or /auth', () => {
    for (const bad of ['metrics', '/v1/metrics', '/auth/metrics']) {
      const source = text([...PROXY, `metrics_path = ${bad}`], QUOTA, TEMPAUTH);
      configError(() => load(source), { line: lineOf(source, 'metrics_path'), key: 'metrics_path', reason: /must start with "\/"/ });
    }
    assert.equal(load(text([...PROXY, 'metrics_path = /v1metrics'], QUOTA, TEMPAUTH)).metricsPath, '/v1metrics');
  });

  test('upstream_timeout and log_level are checked', () => {
    const timeout = text([...PROXY, 'upstream_timeout = 0'], QUOTA, TEMPAUTH);
    configError(() => load(timeout), { line: lineOf(timeout, 'upstream_timeout'), key: 'upstream_timeout', reason: /from 1 to 86400/ });
    const level = text([...PROXY, 'log_level = chatty'], QUOTA, TEMPAUTH);
    configError(() => load(level), { line: lineOf(level, 'log_level'), key: 'log_level', reason: /must be DEBUG, INFO, WARNING \(WARN\), ERROR or CRITICAL as in Swift, or trace, debug, info, warn, error, fatal/ });
  });

  test('the bounds on clients: defaults, sizes in binary units, 0 for no limit, and bad values named', () => {
    assert.deepEqual(load(text(PROXY, QUOTA, TEMPAUTH)).bounds, DEFAULT_CLIENT_BOUNDS);
    const set = load(text([...PROXY, 'client_header_timeout = 10', 'client_body_timeout = 30', 'max_connections = 0', 'max_connections_per_client = 50',
      'pending_header_bytes = 16M', 'max_bodies_per_client = 8', 'max_bodies_per_account = 0', 'body_buffer_bytes = 1G', 'body_buffer_account_bytes = 256K'], QUOTA, TEMPAUTH)).bounds;
    assert.deepEqual(set, { headerTimeoutSeconds: 10, bodyTimeoutSeconds: 30, maxConnections: 0, maxConnectionsPerClient: 50, pendingHeaderBytes: 16 * 1024 ** 2,
      maxBodiesPerClient: 8, maxBodiesPerAccount: 0, bodyBufferBytes: 1024 ** 3, bodyBufferAccountBytes: 256 * 1024 });
    const header = text([...PROXY, 'client_header_timeout = 301'], QUOTA, TEMPAUTH);
    configError(() => load(header), { line: lineOf(header, 'client_header_timeout'), key: 'client_header_timeout', reason: /from 1 to 300/ });
    const body = text([...PROXY, 'client_body_timeout = 0'], QUOTA, TEMPAUTH);
    configError(() => load(body), { line: lineOf(body, 'client_body_timeout'), key: 'client_body_timeout', reason: /from 1 to 3600/ });
    const buffer = text([...PROXY, 'body_buffer_bytes = 4M', 'body_buffer_account_bytes = 8M'], QUOTA, TEMPAUTH);
    configError(() => load(buffer), { line: lineOf(buffer, 'body_buffer_account_bytes'), key: 'body_buffer_account_bytes', reason: /not be more than body_buffer_bytes/ });
    const small = text([...PROXY, 'body_buffer_bytes = 1000'], QUOTA, TEMPAUTH);
    configError(() => load(small), { line: lineOf(small, 'body_buffer_bytes'), key: 'body_buffer_bytes', reason: /at least 1048576 bytes/ });
  });
});

describe('configFromText: command-line overrides', () => {
  const source = text([...PROXY, 'bind_ip = 10.0.0.1', 'bind_port = 7000'], QUOTA, TEMPAUTH);

  test('--listen wins over bind_ip and bind_port', () => {
    const config = load(source, { listen: '0.0.0.0:9999' });
    assert.equal(config.bindIp, '0.0.0.0');
    assert.equal(config.bindPort, 9999);
    const v6 = load(source, { listen: '[::1]:8082' });
    assert.equal(v6.bindIp, '::1');
    assert.equal(v6.bindPort, 8082);
    const none = load(source);
    assert.equal(none.bindIp, '10.0.0.1');
    assert.equal(none.bindPort, 7000);
  });

  test('a bad --listen is a ConfigError naming --listen', () => {
    for (const bad of ['8081', 'localhost', ':8081', 'host:99999', 'host:port']) {
      configError(() => load(source, { listen: bad }), { file: '--listen', line: undefined, reason: /must be HOST:PORT/ });
    }
  });

  test('--upstream wins over upstream, and stands in for a missing one', () => {
    assert.equal(load(source, { upstream: 'http://10.1.1.1:6000' }).upstream.origin, 'http://10.1.1.1:6000');
    assert.equal(load(source).upstream.origin, 'http://127.0.0.1:8080');
    assert.equal(load(text(QUOTA, TEMPAUTH), { upstream: 'https://s.example' }).upstream.origin, 'https://s.example');
  });

  test('a bad --upstream is a ConfigError naming --upstream', () => {
    configError(() => load(source, { upstream: 'http://h/v1' }), { file: '--upstream', reason: /without path or query/ });
    configError(() => load(source, { upstream: 'nope' }), { file: '--upstream', reason: /base URL/ });
  });
});

describe('configFromText: tempauth', () => {
  test('user_<account>_<user> = key groups [storage url]: the URL is kept apart from the groups', () => {
    const config = load(text(PROXY, QUOTA, [
      '[filter:tempauth]',
      'user_admin_admin = adminpass .admin .reseller_admin http://127.0.0.1:8080/v1/AUTH_admin',
      'user_test_tester = testing .admin https://swift.example/v1/AUTH_test',
      'user_test_guest = guestpass',
      'user_team_dev = devpass group-a group-b',
    ]));
    assert.deepEqual(config.users.map((u) => ({ ...u, groups: [...u.groups] })), [
      { account: 'admin', user: 'admin', key: 'adminpass', groups: ['.admin', '.reseller_admin'], storageUrl: 'http://127.0.0.1:8080/v1/AUTH_admin' },
      { account: 'test', user: 'tester', key: 'testing', groups: ['.admin'], storageUrl: 'https://swift.example/v1/AUTH_test' },
      { account: 'test', user: 'guest', key: 'guestpass', groups: [] },
      { account: 'team', user: 'dev', key: 'devpass', groups: ['group-a', 'group-b'] },
    ]);
  });

  test('user64_ names are base64 without padding and may hold "_"', () => {
    const config = loadConfig(fixture('full.conf'));
    const user = config.users.find((u) => u.key === 'b64pass');
    assert.ok(user);
    assert.equal(user.account, 'my_acct');
    assert.equal(user.user, 'the_user');
    assert.deepEqual(user.groups, ['.admin']);
    // Base64 without "_" in it: "ab" and "cd" in base64 are YWI and Y2Q.
    const plain = load(text(PROXY, QUOTA, [...TEMPAUTH, 'user64_YWI_Y2Q = k']));
    assert.deepEqual([plain.users.at(-1)!.account, plain.users.at(-1)!.user], ['ab', 'cd']);
  });

  test('other keys of the section are not users', () => {
    const config = load(text(PROXY, QUOTA, [...TEMPAUTH, 'token_life = 86400', 'users_note = x']));
    assert.equal(config.users.length, 2);
  });

  test('a user name with a third "_" part, or a user without a key, is an error on its line', () => {
    const three = text(PROXY, QUOTA, [...TEMPAUTH, 'user_a_b_c = key']);
    configError(() => load(three), { line: lineOf(three, 'user_a_b_c'), section: 'filter:tempauth', key: 'user_a_b_c', reason: /use user64_/ });
    const nokey = text(PROXY, QUOTA, [...TEMPAUTH, 'user_a_b =']);
    configError(() => load(nokey), { line: lineOf(nokey, 'user_a_b ='), key: 'user_a_b', reason: /needs a key/ });
  });

  test('reseller_prefix gets its "_" as in Swift; empty stays empty', () => {
    const prefix = (value: string) => load(text(PROXY, QUOTA, [...TEMPAUTH, `reseller_prefix = ${value}`])).resellerPrefix;
    assert.equal(prefix('AUTH'), 'AUTH_');
    assert.equal(prefix('AUTH_'), 'AUTH_');
    assert.equal(prefix('SWIFT'), 'SWIFT_');
    assert.equal(prefix(''), '');
  });

  test('tempauth users may come from [DEFAULT]', () => {
    const config = load(text(['[DEFAULT]', 'user_reseller_reseller = r .reseller_admin'], PROXY, QUOTA, ['[filter:tempauth]', 'use = egg:swift#tempauth']));
    assert.equal(serviceUser(config).key, 'r');
  });
});

describe('configFromText: Swift\'s host-addressing sections', () => {
  test('absent: no host-based addressing is read', () => {
    const config = load(text(PROXY, QUOTA, TEMPAUTH));
    assert.equal(config.domainRemap, undefined);
    assert.equal(config.cnameLookup, undefined);
  });

  test('[filter:domain_remap] and [filter:cname_lookup] as the middleware read them, defaults included', () => {
    const config = load(
      text(PROXY, QUOTA, TEMPAUTH, ['[filter:domain_remap]', 'use = egg:swift#domain_remap', 'storage_domain = a.test, .b.test', 'path_root = /v1.0/', 'reseller_prefixes = AUTH, SERVICE'], [
        '[filter:cname_lookup]',
        'use = egg:swift#cname_lookup',
        'nameservers = 127.0.0.1:5353, ::1, [::1]:53',
      ]),
    );
    assert.deepEqual(config.domainRemap, { storageDomains: ['.a.test', '.b.test'], pathRoot: 'v1.0/', resellerPrefixes: ['AUTH', 'SERVICE'], defaultResellerPrefix: undefined, mangleClientPaths: false });
    assert.deepEqual(config.cnameLookup, { storageDomains: ['.example.com'], lookupDepth: 1, nameservers: ['127.0.0.1:5353', '::1', '[::1]:53'] });
  });

  test('[filter:s3api] as s3api reads it, max_upload_part_num included (named in the refusal of a malformed part number)', () => {
    assert.deepEqual(load(text(PROXY, QUOTA, TEMPAUTH, ['[filter:s3api]', 'use = egg:swift#s3api'])).s3, { storageDomains: [], location: 'us-east-1', clockSkewSeconds: 900, maxUploadPartNum: 1000 });
    assert.equal(load(text(PROXY, QUOTA, TEMPAUTH, ['[filter:s3api]', 'use = egg:swift#s3api', 'max_upload_part_num = 10000'])).s3?.maxUploadPartNum, 10_000);
  });

  test('a nameserver that is not an IP address stops start-up, naming the key', () => {
    const source = text(PROXY, QUOTA, TEMPAUTH, ['[filter:cname_lookup]', 'nameservers = dns.example:53']);
    configError(() => load(source), { line: lineOf(source, 'nameservers'), section: 'filter:cname_lookup', key: 'nameservers', reason: /IPv4 or IPv6/ });
  });
});

describe('[quota-proxy] ledger', () => {
  test('memory by default; a redis:// or rediss:// URL with its lease and prefix', () => {
    assert.deepEqual(load(text(PROXY, QUOTA, TEMPAUTH)).ledger, { kind: 'memory' });
    const redis = load(text([...PROXY, 'ledger = redis://user:secret@10.0.0.5:6380/2', 'ledger_lease = 12', 'ledger_prefix = fleet-a:'], QUOTA, TEMPAUTH)).ledger;
    assert.deepEqual(redis, { kind: 'redis', url: 'redis://user:secret@10.0.0.5:6380/2', leaseSeconds: 12, prefix: 'fleet-a:' });
    const tls = load(text([...PROXY, 'ledger = rediss://cache.example:6379'], QUOTA, TEMPAUTH)).ledger;
    assert.deepEqual(tls, { kind: 'redis', url: 'rediss://cache.example:6379', leaseSeconds: 30, prefix: 'swift-quota-proxy:' });
  });

  for (const [value, reason] of [
    ['redis', /must be "memory" or a redis/],
    ['http://127.0.0.1:6379', /must be "memory" or a redis/],
    ['redis://127.0.0.1:6379/db', /database number/],
  ] as const) {
    test(`ledger = ${value} stops start-up naming the line`, () => {
      const source = text([...PROXY, `ledger = ${value}`], QUOTA, TEMPAUTH);
      configError(() => load(source), { line: lineOf(source, 'ledger ='), section: 'quota-proxy', key: 'ledger', reason });
    });
  }

  test('ledger_lease must be a whole number of seconds from 1', () => {
    const source = text([...PROXY, 'ledger = redis://127.0.0.1:6379', 'ledger_lease = 0'], QUOTA, TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, 'ledger_lease'), section: 'quota-proxy', key: 'ledger_lease', reason: /whole number/ });
  });
});

describe('[quota-proxy] workers', () => {
  test('1 by default; N with a shared ledger; auto is one per core with a shared ledger and 1 without', () => {
    assert.equal(load(text(PROXY, QUOTA, TEMPAUTH)).workers, 1);
    assert.equal(load(text([...PROXY, 'ledger = redis://127.0.0.1:6379', 'workers = 4'], QUOTA, TEMPAUTH)).workers, 4);
    assert.ok(load(text([...PROXY, 'ledger = redis://127.0.0.1:6379', 'workers = auto'], QUOTA, TEMPAUTH)).workers >= 1);
    assert.equal(load(text([...PROXY, 'workers = auto'], QUOTA, TEMPAUTH)).workers, 1);
  });

  test('more than one worker with the memory ledger stops start-up: each worker would be exact only for itself', () => {
    const source = text([...PROXY, 'workers = 2'], QUOTA, TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, 'workers'), section: 'quota-proxy', key: 'workers', reason: /need a shared ledger/ });
  });
});

describe('keys the proxy does not know in its own sections', () => {
  test('stop start-up: the error names file, line and the nearest known key, and every other unknown key', () => {
    const source = text([...PROXY, 'bind_prot = 9999'], [...QUOTA, 'cache_timout = 5'], TEMPAUTH);
    configError(() => load(source), {
      line: lineOf(source, 'bind_prot'),
      section: 'quota-proxy',
      key: 'bind_prot',
      reason: new RegExp(
        `: not a key of this section \\(did you mean "bind_port"\\?\\)\n  ${FILE}:${lineOf(source, 'cache_timout')}: \\[filter:quota\\] cache_timout: not a key of this section \\(did you mean "cache_timeout"\\?\\)$`,
      ),
    });
  });

  test('a key with no near spelling is refused too, without a guess', () => {
    const source = text(PROXY, [...QUOTA, 'completely_different_thing = 1'], TEMPAUTH);
    configError(() => load(source), { line: lineOf(source, 'completely_different'), section: 'filter:quota', key: 'completely_different_thing', reason: /completely_different_thing: not a key of this section$/ });
  });

  test('Swift\'s own keys are accepted: use, its logging options, and what [DEFAULT] gives every section', () => {
    const source = text(['[DEFAULT]', 'swift_dir = /etc/swift', 'user = swift'], PROXY, [...QUOTA, 'set log_name = quota', 'log_facility = LOG_LOCAL1'], TEMPAUTH);
    assert.doesNotThrow(() => load(source));
  });

  test('the shipped example config has no unknown key', () => {
    assert.doesNotThrow(() => loadConfig(SHIPPED));
  });
});
