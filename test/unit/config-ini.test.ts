import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import { parseSwiftIni } from '../../src/config/ini.js';

const FILE = '/etc/swift/proxy-server.conf';

/** Joins lines so that line N of the array is line N+1 of the text. */
const ini = (...lines: string[]) => lines.join('\n');

function configError(fn: () => unknown, expected: { line?: number; section?: string; key?: string; reason?: RegExp }): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'SQP_ERR_CONFIG');
    assert.equal(error.file, FILE);
    if ('line' in expected) {
      assert.equal(error.line, expected.line);
      assert.ok(error.message.startsWith(`${FILE}:${expected.line}: `), error.message);
    }
    if ('section' in expected) assert.equal(error.section, expected.section);
    if ('key' in expected) assert.equal(error.key, expected.key);
    if (expected.reason) assert.match(error.message, expected.reason);
    return true;
  });
}

describe('parseSwiftIni: continuation lines', () => {
  test('indented lines continue the value above, joined with newlines', () => {
    const doc = parseSwiftIni(ini('[s]', 'key = first', '  second', '\tthird', 'other = x'), FILE);
    assert.equal(doc.sections.s!.key, 'first\nsecond\nthird');
    assert.equal(doc.sections.s!.other, 'x');
    assert.equal(doc.lineOf('s', 'key'), 2);
    assert.equal(doc.lineOf('s', 'other'), 5);
  });

  test('a flush-left line that is not inside brackets starts a new key', () => {
    const doc = parseSwiftIni(ini('[s]', 'key = first', 'second = 2'), FILE);
    assert.equal(doc.sections.s!.key, 'first');
    assert.equal(doc.sections.s!.second, '2');
  });

  test('flush-left JSON is joined until its brackets balance', () => {
    const text = ini('[s]', 'quota = {', '"a": {', '"b": [1,', '2]', '}', '}', 'after = 1');
    const doc = parseSwiftIni(text, FILE);
    assert.equal(doc.sections.s!.quota, '{\n"a": {\n"b": [1,\n2]\n}\n}');
    assert.deepEqual(JSON.parse(doc.sections.s!.quota!), { a: { b: [1, 2] } });
    assert.equal(doc.sections.s!.after, '1');
    assert.equal(doc.lineOf('s', 'after'), 8);
  });

  test('indented JSON (configparser style) is joined too, and a key after it is its own', () => {
    const text = ini('[s]', 'quota = {', '  "a": { "default": 1 }', '  }', 'next = 2');
    const doc = parseSwiftIni(text, FILE);
    assert.deepEqual(JSON.parse(doc.sections.s!.quota!), { a: { default: 1 } });
    assert.equal(doc.sections.s!.next, '2');
  });

  test('inside unbalanced brackets, blank lines, "#" lines and "[section]"-like lines belong to the value', () => {
    const text = ini('[s]', 'list = [', '', '"#x",', '[1]', ']', 'k = v');
    const doc = parseSwiftIni(text, FILE);
    assert.equal(doc.sections.s!.list, '[\n\n"#x",\n[1]\n]');
    assert.deepEqual(JSON.parse(doc.sections.s!.list!), ['#x', [1]]);
    assert.equal(doc.sections.s!.k, 'v');
    assert.deepEqual(Object.keys(doc.sections), ['s']);
  });

  test('brackets inside double-quoted strings do not count', () => {
    const doc = parseSwiftIni(ini('[s]', 'x = {"s": "}{\\"]"', '}', 'y = 2'), FILE);
    assert.equal(doc.sections.s!.x, '{"s": "}{\\"]"\n}');
    assert.equal(doc.sections.s!.y, '2');
  });

  test('a value whose brackets balance on its own line does not swallow the next line', () => {
    const doc = parseSwiftIni(ini('[s]', 'x = {"a": [1]}', 'y = 2'), FILE);
    assert.equal(doc.sections.s!.x, '{"a": [1]}');
    assert.equal(doc.sections.s!.y, '2');
  });

  test('an unclosed bracket is an error naming the line and key where the value started', () => {
    const text = ini('[filter:quota]', 'use = egg:swift#quota', 'quota = {', '"a": {"default": 1}', '', '[filter:tempauth]', 'user_a_b = c');
    configError(() => parseSwiftIni(text, FILE), { line: 3, section: 'filter:quota', key: 'quota', reason: /never closed/ });
  });

  test('a closed bracket at the very end of the file is not an error', () => {
    const doc = parseSwiftIni(ini('[filter:quota]', 'quota = {', '"a": 1', '}'), FILE);
    assert.deepEqual(JSON.parse(doc.sections['filter:quota']!.quota!), { a: 1 });
  });

  test('CRLF line endings and trailing blanks are read like LF', () => {
    const doc = parseSwiftIni('[s]\r\nkey = a  \r\n  b\r\nquota = {\r\n"a": 1\r\n}\r\n', FILE);
    assert.equal(doc.sections.s!.key, 'a\nb');
    assert.deepEqual(JSON.parse(doc.sections.s!.quota!), { a: 1 });
  });
});

describe('parseSwiftIni: comments and values', () => {
  test('"#" and ";" inside a value are kept', () => {
    const doc = parseSwiftIni(ini('[s]', 'use = egg:swift#quota', 'pipeline = a ; b', 'x = y # not a comment', 'key = pa;ss#word'), FILE);
    assert.equal(doc.sections.s!.use, 'egg:swift#quota');
    assert.equal(doc.sections.s!.pipeline, 'a ; b');
    assert.equal(doc.sections.s!.x, 'y # not a comment');
    assert.equal(doc.sections.s!.key, 'pa;ss#word');
  });

  test('comment lines ("#", ";", indented) are skipped', () => {
    const text = ini('# top', '; top too', '[s]', '# precise_mode = true', '; cache_timeout = 1', 'a = 1', '   # indented comment', 'b = 2');
    const doc = parseSwiftIni(text, FILE);
    assert.deepEqual({ ...doc.sections.s }, { a: '1', b: '2' });
  });

  test('an indented comment line does not continue the value above', () => {
    const doc = parseSwiftIni(ini('[s]', 'a = 1', '  # note', '  more'), FILE);
    assert.equal(doc.sections.s!.a, '1\nmore');
  });

  test('values stay strings: true, numbers and empty values are not converted', () => {
    const doc = parseSwiftIni(ini('[s]', 'precise_mode = true', 'off = false', 'n = 5', 'empty =', 'quoted = "x"'), FILE);
    const s = doc.sections.s!;
    assert.equal(s.precise_mode, 'true');
    assert.equal(typeof s.precise_mode, 'string');
    assert.equal(s.off, 'false');
    assert.equal(s.n, '5');
    assert.equal(s.empty, '');
    assert.equal(s.quoted, '"x"');
  });

  test('":" separates a key from its value like "=", and the first separator wins', () => {
    const doc = parseSwiftIni(ini('[s]', 'a: 1', 'upstream = http://h:8080', 'b=c=d'), FILE);
    assert.equal(doc.sections.s!.a, '1');
    assert.equal(doc.sections.s!.upstream, 'http://h:8080');
    assert.equal(doc.sections.s!.b, 'c=d');
  });

  test('`set key = value` defines key, and overrides [DEFAULT]', () => {
    const doc = parseSwiftIni(ini('[DEFAULT]', 'log_name = swift', '[filter:quota]', 'set log_name = quota', '[other]', 'x = 1'), FILE);
    assert.equal(doc.sections['filter:quota']!.log_name, 'quota');
    assert.equal(doc.sections['filter:quota']!['set log_name'], undefined);
    assert.equal(doc.lineOf('filter:quota', 'log_name'), 4);
    assert.equal(doc.sections.other!.log_name, 'swift');
  });

  test('a key whose name merely starts with "set" is not a set directive', () => {
    const doc = parseSwiftIni(ini('[s]', 'settings = 1'), FILE);
    assert.equal(doc.sections.s!.settings, '1');
  });

  test('a line that is neither a key nor a section is an error naming it', () => {
    configError(() => parseSwiftIni(ini('[s]', 'a = 1', 'just words'), FILE), { line: 3, section: 's', reason: /just words/ });
  });

  test('a key before any section is an error naming the line and key', () => {
    configError(() => parseSwiftIni(ini('# comment', 'orphan = 1', '[s]'), FILE), { line: 2, key: 'orphan', reason: /outside of any \[section\]/ });
  });
});

describe('parseSwiftIni: sections', () => {
  test('dotted section names are flat, not nested', () => {
    const doc = parseSwiftIni(ini('[app:proxy.server]', 'a = 1', '[filter:a.b.c]', 'b = 2', '[filter:a]', 'c = 3'), FILE);
    assert.deepEqual({ ...doc.sections['app:proxy.server'] }, { a: '1' });
    assert.deepEqual({ ...doc.sections['filter:a.b.c'] }, { b: '2' });
    assert.deepEqual({ ...doc.sections['filter:a'] }, { c: '3' });
    assert.equal(doc.sections['app:proxy'], undefined);
    assert.deepEqual(Object.keys(doc.sections).sort(), ['app:proxy.server', 'filter:a', 'filter:a.b.c']);
  });

  test('sectionLine gives the header line; a section named twice is refused at its second header, as Swift refuses it', () => {
    const doc = parseSwiftIni(ini('[a]', 'x = 1', '[b]', 'y = 2', '', 'z = 3'), FILE);
    assert.equal(doc.sectionLine('a'), 1);
    assert.equal(doc.sectionLine('b'), 3);
    assert.equal(doc.sectionLine('missing'), undefined);
    assert.equal(doc.lineOf('b', 'z'), 6);
    configError(() => parseSwiftIni(ini('[a]', 'x = 1', '[b]', 'y = 2', '[a]', 'z = 3'), FILE), { line: 5, section: 'a', reason: /section named twice: on line 1 and on line 5/ });
  });

  test('[DEFAULT] values are inherited by every section and win over a section\'s own (paste.deploy), but for `set`', () => {
    const text = ini('[DEFAULT]', 'user = swift', 'bind_port = 1', '[quota-proxy]', 'bind_port = 8081', '[filter:quota]', 'use = egg:swift#quota');
    const doc = parseSwiftIni(text, FILE);
    assert.equal(doc.sections['quota-proxy']!.user, 'swift');
    // As paste.deploy hands it to Swift's filters: [DEFAULT]'s (config-paste.test.ts checks this against paste).
    assert.equal(doc.sections['quota-proxy']!.bind_port, '1');
    assert.equal(parseSwiftIni(text.replace('bind_port = 8081', 'set bind_port = 8081'), FILE).sections['quota-proxy']!.bind_port, '8081');
    assert.equal(doc.sections['filter:quota']!.bind_port, '1');
    assert.equal(doc.sections['filter:quota']!.user, 'swift');
    assert.deepEqual({ ...doc.sections.DEFAULT }, { user: 'swift', bind_port: '1' });
    // Where an inherited key came from (for a shadowed one too: the line whose value counts).
    assert.equal(doc.lineOf('filter:quota', 'bind_port'), 3);
    assert.equal(doc.lineOf('quota-proxy', 'bind_port'), 3);
    assert.equal(doc.lineOf('quota-proxy', 'missing'), undefined);
  });

  test('a section header runs to the line\'s last "]", as in ConfigParser: a comment after it is ignored', () => {
    const doc = parseSwiftIni(ini('[filter:domain_remap]   ; a note', 'storage_domain = example.com', '[a] # x', 'k = 1'), FILE);
    assert.equal(doc.sections['filter:domain_remap']!.storage_domain, 'example.com');
    assert.equal(doc.sections.a!.k, '1');
  });

  test('sections are frozen', () => {
    const doc = parseSwiftIni(ini('[s]', 'a = 1'), FILE);
    assert.ok(Object.isFrozen(doc.sections));
    assert.ok(Object.isFrozen(doc.sections.s));
  });
});

describe('parseSwiftIni: interpolation', () => {
  test('%(here)s is the directory of the file, %(__file__)s the file', () => {
    const doc = parseSwiftIni(ini('[s]', 'path = %(here)s/rings', 'self = %(__file__)s'), FILE);
    assert.equal(doc.sections.s!.path, '/etc/swift/rings');
    assert.equal(doc.sections.s!.self, FILE);
  });

  test('%(here)s of a relative file name is absolute', () => {
    const doc = parseSwiftIni(ini('[s]', 'path = %(here)s'), 'conf/x.conf');
    assert.equal(doc.sections.s!.path, dirname(resolve('conf/x.conf')));
  });

  test('values of [DEFAULT] and of the same section can be interpolated; %% is a literal %', () => {
    const text = ini('[DEFAULT]', 'swift_dir = /srv/swift', '[s]', 'name = quota', 'a = %(swift_dir)s/%(name)s', 'pct = 100%%', 'lone = 50%');
    const s = parseSwiftIni(text, FILE).sections.s!;
    assert.equal(s.a, '/srv/swift/quota');
    assert.equal(s.pct, '100%');
    assert.equal(s.lone, '50%');
  });

  test('interpolation in [DEFAULT] itself works and is inherited', () => {
    const doc = parseSwiftIni(ini('[DEFAULT]', 'log_dir = %(here)s/log', '[s]', 'x = 1'), FILE);
    assert.equal(doc.sections.DEFAULT!.log_dir, '/etc/swift/log');
    assert.equal(doc.sections.s!.log_dir, '/etc/swift/log');
  });

  test('a value may refer to one that refers to another, as in configparser', () => {
    const text = ini('[DEFAULT]', 'swift_dir = %(here)s', 'rings = %(swift_dir)s/rings', 'pct = 5%%', '[s]', 'ring = %(rings)s/object.ring.gz', 'p = %(pct)s');
    const s = parseSwiftIni(text, FILE).sections.s!;
    assert.equal(s.ring, '/etc/swift/rings/object.ring.gz');
    assert.equal(s.rings, '/etc/swift/rings');
    assert.equal(s.p, '5%');
  });

  test('a value that refers to itself is an error naming its line, not a hang', () => {
    configError(() => parseSwiftIni(ini('[s]', 'a = %(b)s', 'b = %(a)s'), FILE), { line: 2, key: 'a', reason: /nested more than 10 deep/ });
  });

  test('an unknown name is an error naming the line and key', () => {
    configError(() => parseSwiftIni(ini('[s]', 'ok = 1', 'bad = %(nope)s'), FILE), {
      line: 3,
      section: 's',
      key: 'bad',
      reason: /unknown interpolation %\(nope\)s/,
    });
  });

  test('a name is not looked up in another (non-DEFAULT) section', () => {
    configError(() => parseSwiftIni(ini('[a]', 'x = 1', '[b]', 'y = %(x)s'), FILE), { line: 4, key: 'y' });
  });
});
