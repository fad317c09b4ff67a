import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PyNumber, pythonInt, pythonJson, pythonJsonText } from '../../src/swift/python-readers.js';

describe('pythonInt: Python int() of a string', () => {
  test('ASCII and other scripts\' digits, a sign, "_" between digits, the whitespace Python strips', () => {
    assert.equal(pythonInt('42'), 42n);
    assert.equal(pythonInt(' -007\n'), -7n);
    assert.equal(pythonInt('+1_000'), 1000n);
    assert.equal(pythonInt('\u0661\u0662'), 12n);
    assert.equal(pythonInt('\uff19'), 9n);
    assert.equal(pythonInt('\u00a05\u3000'), 5n);
    assert.equal(pythonInt('99999999999999999999'), 99999999999999999999n);
  });

  test('undefined where int() raises ValueError', () => {
    for (const bad of ['', ' ', '1__0', '_1', '1_', '\ufeff1', '\u001c1', '1.0', '1e3', '0x10', '\u00b2', '- 1', '++1']) assert.equal(pythonInt(bad), undefined, JSON.stringify(bad));
  });
});

describe('pythonJsonText: the text json.loads reads of bytes', () => {
  test('byte order marks and zero-byte patterns pick UTF-8, -16 or -32; encoded surrogates pass', () => {
    assert.equal(pythonJsonText(Buffer.from('[1]')), '[1]');
    assert.equal(pythonJsonText(Buffer.from([0xef, 0xbb, 0xbf, 0x5b, 0x5d])), '[]');
    assert.equal(pythonJsonText(Buffer.from('[1]', 'utf16le')), '[1]');
    assert.equal(pythonJsonText(Buffer.from([0, 0, 0, 0x5b, 0, 0, 0, 0x5d])), '[]');
    assert.equal(pythonJsonText(Buffer.from([0xff, 0xfe, 0, 0, 0x5b, 0, 0, 0])), '[');
    assert.equal(pythonJsonText(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])), '"\ud800"');
    assert.equal(pythonJsonText(Buffer.from([0x22, 0xff, 0x22])), undefined);
    assert.equal(pythonJsonText(Buffer.from([0x5b, 0, 0x5d])), '[\u0000]');
  });
});

describe('pythonJson: json.loads of text', () => {
  test('numbers as written, NaN and Infinity, strings left alone', () => {
    const value = pythonJson('[-3, -3.0, NaN, "NaN 5", -Infinity]') as unknown[];
    assert.deepEqual(value.map((v) => (v instanceof PyNumber ? v.token : v)), ['-3', '-3.0', 'NaN', 'NaN 5', '-Infinity']);
    assert.equal((value[0] as PyNumber).integer, -3n);
    assert.equal((value[1] as PyNumber).integer, undefined);
    assert.equal(pythonJson('[01]'), undefined);
    assert.equal(pythonJson('nan'), undefined);
  });
});
