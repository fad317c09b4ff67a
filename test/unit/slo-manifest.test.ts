import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { largestStoredManifest, parseManifest, pyJsonString, segmentRange, segmentRef, storedManifestSize, type SegmentHead } from '../../src/quota/slo-manifest.js';

const head = (contentLength: number, extra: Partial<SegmentHead> = {}): SegmentHead => ({
  status: 200,
  contentLength,
  etag: 'd41d8cd98f00b204e9800998ecf8427e',
  contentType: 'application/octet-stream',
  staticLargeObject: false,
  ...extra,
});

describe('pyJsonString: Python json.dumps of a string', () => {
  test('escapes as Python does (ensure_ascii): quotes, backslash, controls, non-ASCII, astral pairs', () => {
    assert.equal(pyJsonString('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(pyJsonString('\n\r\t\b\f\u0001\u007f'), '"\\n\\r\\t\\b\\f\\u0001\u007f"');
    assert.equal(pyJsonString('café'), '"caf\\u00e9"');
    assert.equal(pyJsonString('😀'), '"\\ud83d\\ude00"');
  });
});

describe('parseManifest: as SLO validates what it is sent', () => {
  test('object and data segments; anything SLO refuses is invalid', () => {
    assert.deepEqual(parseManifest(Buffer.from('[{"path": "/c/o", "etag": null, "size_bytes": "5"}, {"data": "YWJj"}]')), {
      valid: true,
      entries: [{ kind: 'object', path: '/c/o', range: undefined }, { kind: 'data', data: 'YWJj' }],
    });
    for (const bad of ['{}', 'not json', '[1]', '[{"path": "/c"}]', '[{"path": "/c/o", "x": 1}]', '[{"data": "YWJj"}]', '[{"data": "!!"}]', '[{"data": ""}]']) {
      assert.equal(parseManifest(Buffer.from(bad)).valid, false, bad);
    }
  });

  test('read as json.loads reads bytes: any UTF it detects, NaN, a range given as a JSON number', () => {
    const entries = [{ kind: 'object', path: 'c/o', range: undefined }];
    const text = '[{"path": "c/o"}]';
    assert.deepEqual(parseManifest(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])), { valid: true, entries });
    assert.deepEqual(parseManifest(Buffer.from(text, 'utf16le')), { valid: true, entries });
    assert.deepEqual(parseManifest(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()])), { valid: true, entries });
    assert.deepEqual(parseManifest(Buffer.from('[{"path": NaN, "path": "c/o"}]')), { valid: true, entries });
    assert.deepEqual(parseManifest(Buffer.from('[{"path": "c/o", "range": -3}]')), { valid: true, entries: [{ kind: 'object', path: 'c/o', range: '-3' }] });
    // Python's false values are no range at all; other numbers and values are ranges swob refuses.
    for (const none of ['0', '-0', '0.0', 'false', '[]', '{}', '""', 'null']) {
      assert.deepEqual(parseManifest(Buffer.from(`[{"path": "c/o", "range": ${none}}]`)), { valid: true, entries }, none);
    }
    for (const bad of ['3', '-3.0', '1e3', 'true', '[1]', 'NaN', '-Infinity', '"3"']) {
      assert.equal(parseManifest(Buffer.from(`[{"path": "c/o", "range": ${bad}}]`)).valid, false, bad);
    }
    assert.equal(parseManifest(Buffer.from('[{"path": "c/o"}] x')).valid, false);
    assert.equal(parseManifest(Buffer.from([0x5b, 0xff, 0x5d])).valid, false);
  });

  test('segment paths are read relative to the manifest\'s account, leading slashes dropped', () => {
    assert.deepEqual(segmentRef('/c/o/p'), { container: 'c', object: 'o/p' });
    assert.deepEqual(segmentRef('c//o'), { container: 'c', object: '/o' });
    assert.equal(segmentRef('/c/'), undefined);
  });
});

describe('segmentRange: swob Range and ranges_for_length', () => {
  test('normalised, the whole segment as null, unsatisfiable and multiple refused, any spelling Python reads', () => {
    assert.equal(segmentRange('0-4', 10), '0-4');
    assert.equal(segmentRange('2-', 10), '2-9');
    assert.equal(segmentRange('-3', 10), '7-9');
    assert.equal(segmentRange('0-100', 10), null);
    assert.equal(segmentRange(' 1 - 2 ', 10), '1-2');
    assert.equal(segmentRange('10-', 10), 'refused');
    assert.equal(segmentRange('5-3', 10), 'refused');
    assert.equal(segmentRange('-0', 10), 'refused');
    assert.equal(segmentRange('1-2,3-4', 10), 'refused');
    assert.equal(segmentRange('x-1', 10), 'refused');
    // The start is Python's int(): other scripts' digits, "_" between digits, Unicode spaces around it.
    assert.equal(segmentRange('\u0661-2', 10), '1-2');
    assert.equal(segmentRange('\u00a01_0-', 20), '10-19');
    assert.equal(segmentRange('+2-3', 10), '2-3');
    assert.equal(segmentRange('\ufeff2-3', 10), 'refused');
    // The end is decimal digits only (isdigit() and int()): superscripts are refused.
    assert.equal(segmentRange('2-\u00b3', 10), 'refused');
    // A suffix of an empty segment is all of it (ranges_for_length gives (0, 0)).
    assert.equal(segmentRange('-5', 0), null);
    assert.equal(segmentRange('0-', 0), 'refused');
  });
});

describe('storedManifestSize: the bytes SLO stores', () => {
  test('json.dumps of SLO\'s entries: name, bytes, hash, content type (no parameters), date, range, sub_slo', () => {
    const entries = parseManifest(Buffer.from('[{"path": "c/a"}, {"path": "/c/b", "range": "0-1"}, {"data": "YWJj"}]'));
    assert.ok(entries.valid);
    const heads = new Map([
      ['c/a', head(5, { contentType: 'text/plain; charset=utf-8' })],
      ['/c/b', head(7, { etag: '"abc"', staticLargeObject: true })],
    ]);
    const expected =
      '[{"name": "/c/a", "bytes": 5, "hash": "d41d8cd98f00b204e9800998ecf8427e", "content_type": "text/plain", "last_modified": "2000-01-01T00:00:00.000000"}, ' +
      '{"name": "/c/b", "bytes": 7, "hash": "abc", "content_type": "application/octet-stream", "last_modified": "2000-01-01T00:00:00.000000", "range": "0-1", "sub_slo": true}, ' +
      '{"data": "YWJj"}]';
    assert.equal(storedManifestSize(entries.entries, heads), Buffer.byteLength(expected));
  });

  test('undefined where SLO refuses: a missing segment, an empty one before the last, an unsatisfiable range', () => {
    const parsed = (text: string) => {
      const result = parseManifest(Buffer.from(text));
      assert.ok(result.valid);
      return result.entries;
    };
    assert.equal(storedManifestSize(parsed('[{"path": "c/a"}]'), new Map([['c/a', head(1, { status: 404 })]])), undefined);
    assert.equal(storedManifestSize(parsed('[{"path": "c/a"}, {"path": "c/b"}]'), new Map([['c/a', head(0)], ['c/b', head(1)]])), undefined);
    assert.notEqual(storedManifestSize(parsed('[{"path": "c/b"}, {"path": "c/a"}]'), new Map([['c/a', head(0)], ['c/b', head(1)]])), undefined);
    assert.equal(storedManifestSize(parsed('[{"path": "c/a", "range": "9-"}]'), new Map([['c/a', head(5)]])), undefined);
  });
});

describe('largestStoredManifest: what a manifest read as refused is counted at', () => {
  test('bounds the worst a body can store: escaped names, 8 KB content types escaped byte by byte, every entry a segment', () => {
    const worst = (names: string[]) => {
      const body = Buffer.from(JSON.stringify(names.map((name) => ({ path: `/c/${name}`, range: '0-0' }))));
      const parsed = parseManifest(body);
      assert.ok(parsed.valid);
      const heads = new Map(parsed.entries.map((entry) => [entry.kind === 'object' ? entry.path : '', head(10 ** 15, { contentType: '\u00ff'.repeat(8190), etag: 'f'.repeat(64), staticLargeObject: true })]));
      const stored = storedManifestSize(parsed.entries, heads)!;
      assert.ok(stored <= largestStoredManifest(body.length, 1000), `${stored} for ${body.length} bytes`);
    };
    worst(['\u00e9'.repeat(500)]);
    worst(Array.from({ length: 300 }, () => '\u{1F600}'));
    worst(Array.from({ length: 1000 }, (_, i) => String(i)));
  });
  test('grows with the body and stops growing in entries at max_manifest_segments', () => {
    assert.ok(largestStoredManifest(100, 1000) < largestStoredManifest(1000, 1000));
    assert.equal(largestStoredManifest(1_000_000, 10) - largestStoredManifest(999_998, 10), 6);
  });
});
