/**
 * Swift's own proxy-server.conf with the proxy's sections added, read as it is (issue 23, item 2): [DEFAULT]
 * belongs to Swift's proxy-server, not to [quota-proxy] or [notify:<name>]; log levels in Swift's spellings;
 * duplicate keys and sections refused as Swift's ConfigParser refuses them; errors naming the section a line is in.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { ConfigError } from '../../src/config/errors.js';
import { parseSwiftIni } from '../../src/config/ini.js';
import { configFromText, type ConfigOverrides } from '../../src/config/load.js';

const FILE = 'proxy-server.conf';
const REDIS = 'redis://127.0.0.1:6379';

/** Debian's sample [DEFAULT] and [app:proxy-server] (/usr/share/doc/swift-proxy/examples/proxy-server.conf). */
const SWIFT = ['[DEFAULT]', 'bind_port = 8080', 'workers = 20', 'log_name = swift-proxy', '', '[app:proxy-server]', 'use = egg:swift#proxy', 'set log_name = swift-proxy-server'];
const PROXY = ['[quota-proxy]', 'upstream = http://127.0.0.1:8080'];
const QUOTA = ['[filter:quota]', 'quota = {"container_count": {"default": 5}, "object_count": {"default": 100}, "container_usage": {"default": 1000}}'];
const TEMPAUTH = ['[filter:tempauth]', 'use = egg:swift#tempauth', 'user_reseller_reseller = reseller .reseller_admin'];

const text = (...blocks: string[][]) => `${blocks.map((b) => b.join('\n')).join('\n\n')}\n`;
const load = (source: string, overrides?: ConfigOverrides) => configFromText(source, FILE, overrides);

function lineOf(source: string, needle: string, nth = 0): number {
  const found = source.split('\n').flatMap((line, i) => (line.includes(needle) ? [i + 1] : []));
  assert.ok(found[nth] !== undefined, `"${needle}" #${nth} is in the text`);
  return found[nth]!;
}

function refused(fn: () => unknown, expected: { line: number; section: string; key?: string; reason: RegExp }): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.line, expected.line, error.message);
    assert.equal(error.section, expected.section, error.message);
    if (expected.key !== undefined) assert.equal(error.key, expected.key, error.message);
    assert.match(error.message, expected.reason);
    return true;
  });
}

describe('[DEFAULT] is Swift\'s proxy-server\'s, not the proxy\'s own sections\'', () => {
  test('Debian\'s [DEFAULT] (bind_port = 8080, workers = 20) leaves [quota-proxy] at its own defaults', () => {
    const config = load(text(SWIFT, PROXY, QUOTA, TEMPAUTH));
    assert.equal(config.bindPort, 8081, 'not Swift\'s own port');
    assert.equal(config.bindIp, '127.0.0.1');
    assert.equal(config.workers, 1, 'not Swift\'s worker count');
  });

  test('with a Redis ledger, Swift\'s workers = 8 is not the proxy\'s worker count', () => {
    const swift = SWIFT.map((line) => (line === 'workers = 20' ? 'workers = 8' : line));
    assert.equal(load(text(swift, [...PROXY, `ledger = ${REDIS}`], QUOTA, TEMPAUTH)).workers, 1);
  });

  test('Swift\'s [DEFAULT] log_level, bind_ip, user and swift_dir are not read by [quota-proxy]', () => {
    const config = load(text(['[DEFAULT]', 'log_level = DEBUG', 'bind_ip = 0.0.0.0', 'user = swift', 'swift_dir = /etc/swift'], PROXY, QUOTA, TEMPAUTH));
    assert.equal(config.logLevel, 'info');
    assert.equal(config.bindIp, '127.0.0.1');
  });

  test('[quota-proxy] may still refer to [DEFAULT] values by %(name)s, as ConfigParser allows', () => {
    const config = load(text(['[DEFAULT]', 'swift_host = 127.0.0.1', 'swift_port = 8080'], ['[quota-proxy]', 'upstream = http://%(swift_host)s:%(swift_port)s'], QUOTA, TEMPAUTH));
    assert.equal(config.upstream.href, 'http://127.0.0.1:8080/');
  });

  test('a webhook [notify:<name>] is not handed [DEFAULT]\'s keys (it refuses keys it does not know)', () => {
    const notify = ['[notify:ops]', 'type = webhook', 'url = http://127.0.0.1:9/hook', 'queue_dir = /tmp/q'];
    const config = load(text(SWIFT, PROXY, QUOTA, TEMPAUTH, notify));
    assert.equal(config.notifiers[0]?.type, 'webhook');
    const module = ['[notify:mine]', 'type = module', 'module = ./mine.js', 'colour = blue'];
    const loaded = load(text(SWIFT, PROXY, QUOTA, TEMPAUTH, module)).notifiers[0];
    assert.ok(loaded?.type === 'module');
    assert.deepEqual(loaded.options, { colour: 'blue' }, 'a module provider gets its section\'s keys only');
  });

  test('Swift\'s filter sections still get [DEFAULT], as Swift gives it them: tempauth users from [DEFAULT]', () => {
    const config = load(text(['[DEFAULT]', 'user_reseller_reseller = r .reseller_admin'], PROXY, QUOTA, ['[filter:tempauth]', 'use = egg:swift#tempauth']));
    assert.equal(config.users.length, 1);
  });

  test('a bad value inherited from [DEFAULT] is reported at its line, in [DEFAULT], naming the section that read it', () => {
    const source = text(['[DEFAULT]', 'allowable_clock_skew = soon'], PROXY, QUOTA, TEMPAUTH, ['[filter:s3api]', 'use = egg:swift#s3api']);
    refused(() => load(source), { line: lineOf(source, 'allowable_clock_skew'), section: 'DEFAULT', key: 'allowable_clock_skew', reason: /\[DEFAULT\] allowable_clock_skew: .*whole number.*inherited by \[filter:s3api\]/ });
  });
});

describe('the proxy\'s port is not Swift\'s', () => {
  test('bind_port on the upstream\'s own loopback port is refused (the proxy would forward to itself)', () => {
    const source = text(['[quota-proxy]', 'upstream = http://127.0.0.1:8080', 'bind_port = 8080'], QUOTA, TEMPAUTH);
    refused(() => load(source), { line: lineOf(source, 'bind_port'), section: 'quota-proxy', key: 'bind_port', reason: /upstream/ });
  });

  test('bind_port on the port the file gives Swift\'s proxy-server on this host, on an address both listen on, is refused', () => {
    // Swift listens on every address (Debian's sample sets no bind_ip), the proxy on one of them.
    const source = text(SWIFT, [...PROXY, 'bind_ip = 10.1.2.3', 'bind_port = 8080'], QUOTA, TEMPAUTH);
    refused(() => load(source), { line: lineOf(source, 'bind_port = 8080', 1), section: 'quota-proxy', key: 'bind_port', reason: /Swift's proxy-server, 0\.0\.0\.0:8080 \(line 2, \[DEFAULT\] bind_port\)/ });
  });

  test('with Swift on another host, or after --listen (a container), the same port is a warning, not an error', () => {
    const remote = PROXY.map((l) => l.replace('127.0.0.1:8080', 'swift.example:8080'));
    const inFile = load(text(SWIFT, [...remote, 'bind_ip = 0.0.0.0', 'bind_port = 8080'], QUOTA, TEMPAUTH));
    assert.ok(inFile.warnings.some((w) => /bind_port: 0\.0\.0\.0:8080 is the port this file gives Swift's proxy-server/.test(w)), inFile.warnings.join('\n'));
    const listened = load(text(SWIFT, remote, QUOTA, TEMPAUTH), { listen: '0.0.0.0:8080' });
    assert.ok(listened.warnings.some((w) => /--listen 0\.0\.0\.0:8080 is the port this file gives Swift's proxy-server/.test(w)), listened.warnings.join('\n'));
  });
});

describe('log_level in Swift\'s spellings', () => {
  const levelOf = (value: string) => load(text([...PROXY, `log_level = ${value}`], QUOTA, TEMPAUTH)).logLevel;

  test('Python logging\'s names, in any case, map to pino\'s levels', () => {
    const expected: Record<string, string> = {
      DEBUG: 'debug', INFO: 'info', WARNING: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal', FATAL: 'fatal',
      info: 'info', Warning: 'warn', debug: 'debug', trace: 'trace', fatal: 'fatal', error: 'error', warn: 'warn',
    };
    for (const [spelling, level] of Object.entries(expected)) assert.equal(levelOf(spelling), level, spelling);
  });

  test('NOTSET and unknown names are refused with the accepted spellings', () => {
    for (const value of ['NOTSET', 'verbose', '10']) {
      const source = text([...PROXY, `log_level = ${value}`], QUOTA, TEMPAUTH);
      refused(() => load(source), { line: lineOf(source, 'log_level'), section: 'quota-proxy', key: 'log_level', reason: /DEBUG, INFO, WARNING/ });
    }
  });
});

describe('duplicates, refused as Swift\'s ConfigParser (strict) refuses them', () => {
  test('a key set twice in one section names both lines', () => {
    const source = text([...PROXY, 'bind_port = 8082', 'log_level = info', 'bind_port = 8083'], QUOTA, TEMPAUTH);
    refused(() => load(source), { line: lineOf(source, 'bind_port = 8083'), section: 'quota-proxy', key: 'bind_port', reason: new RegExp(`line ${lineOf(source, 'bind_port = 8082')}`) });
  });

  test('in [DEFAULT] and in Swift\'s sections too; a key in [DEFAULT] and in a section is an override, not a duplicate', () => {
    const inDefault = ini('[DEFAULT]', 'workers = 1', 'workers = 2');
    assert.throws(() => parseSwiftIni(inDefault, FILE), /:3: \[DEFAULT\] workers: .*line 2/);
    assert.throws(() => parseSwiftIni(ini('[filter:s3api]', 'location = a', 'location = b'), FILE), /:3: \[filter:s3api\] location: .*line 2/);
    // Not a duplicate; and the value a Swift section gets is [DEFAULT]'s, as paste.deploy gives it (its loader
    // skips a section's key that [DEFAULT] sets), unless the section writes `set a = ...`.
    const both = parseSwiftIni(ini('[DEFAULT]', 'a = 1', '[s]', 'a = 2'), FILE);
    assert.equal(both.sections.s!.a, '1');
    assert.deepEqual(both.shadowedByDefault, [{ section: 's', key: 'a', line: 4, defaultLine: 2 }]);
    assert.equal(parseSwiftIni(ini('[DEFAULT]', 'a = 1', '[s]', 'set a = 2'), FILE).sections.s!.a, '2');
    // Kept out of [DEFAULT] (the proxy's own sections), the section's value is the only one.
    assert.equal(parseSwiftIni(ini('[DEFAULT]', 'a = 1', '[s]', 'a = 2'), FILE, { inheritsDefault: () => false }).sections.s!.a, '2');
  });

  test('`set key` and `key` are different names to ConfigParser: not duplicates', () => {
    assert.doesNotThrow(() => parseSwiftIni(ini('[filter:s3api]', 'log_name = a', 'set log_name = b'), FILE));
  });

  test('a section named twice names both header lines; [DEFAULT] twice is allowed, as in ConfigParser', () => {
    assert.throws(() => parseSwiftIni(ini('[a]', 'x = 1', '[b]', 'y = 2', '[a]', 'z = 3'), FILE), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.line, 5);
      assert.equal(error.section, 'a');
      assert.match(error.message, /line 1/);
      return true;
    });
    assert.deepEqual({ ...parseSwiftIni(ini('[DEFAULT]', 'a = 1', '[s]', '[DEFAULT]', 'b = 2'), FILE).sections.DEFAULT }, { a: '1', b: '2' });
  });

  test('a duplicate in the proxy\'s own JSON quota block is not a key duplicate (lines inside a value)', () => {
    assert.doesNotThrow(() => load(text(PROXY, ['[filter:quota]', 'quota = {', '"object_count": {"default": 1},', '"container_count": {"default": 1}', '}'], TEMPAUTH)));
  });
});

describe('workers', () => {
  test('more workers than cores loads with a warning naming the core count', () => {
    const many = availableParallelism() + 2;
    const config = load(text([...PROXY, `ledger = ${REDIS}`, `workers = ${many}`], QUOTA, TEMPAUTH));
    assert.equal(config.workers, many, 'an explicit number is honoured');
    assert.ok(config.warnings.some((w) => w.includes(`workers = ${many}`) && w.includes(`${availableParallelism()} core`)), config.warnings.join('\n'));
  });
});

function ini(...lines: string[]): string {
  return lines.join('\n');
}
