import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestOfTwin } from '../../src/quota/manifest-twin.js';
import { parseManifest } from '../../src/quota/slo-manifest.js';

const STORED = '[{"name": "/seg/s0", "bytes": 3000, "hash": "0123456789abcdef0123456789abcdef", "content_type": "application/octet-stream", "last_modified": "2026-12-06T10:54:50.000000"}, {"data": "eHl6"}, {"name": "/seg/s1", "bytes": 5, "hash": "ab", "range": "0-1", "sub_slo": true}]';

test('a stored manifest read format=raw becomes the manifest SLO is given (as convert_segment_listing writes it)', () => {
  const converted = manifestOfTwin(Buffer.from(STORED));
  assert.ok(converted);
  assert.deepEqual(JSON.parse(converted.toString()), [
    { etag: '0123456789abcdef0123456789abcdef', path: '/seg/s0', size_bytes: 3000 },
    { data: 'eHl6' },
    { etag: 'ab', path: '/seg/s1', range: '0-1', size_bytes: 5 },
  ]);
  const parsed = parseManifest(converted);
  assert.ok(parsed.valid);
  assert.equal(parsed.entries.length, 3);
});

test('what cannot be a stored manifest is none: not JSON, not a list, an empty list, a list of other things', () => {
  for (const body of ['hello', '{"name": "/a/b"}', '[]', '[1, 2]', '["data"]', '[[]]']) assert.equal(manifestOfTwin(Buffer.from(body)), undefined, body);
});

test('numbers are kept as written, and a missing name becomes null (SLO refuses it)', () => {
  const converted = manifestOfTwin(Buffer.from('[{"bytes": 1e3, "hash": "x"}]'))!;
  assert.equal(converted.toString(), '[{"etag": "x", "path": null, "size_bytes": 1e3}]');
  assert.equal(parseManifest(converted).valid, false);
});
