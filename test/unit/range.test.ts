/**
 * Range headers as swob reads them and the bodies Swift serves for them (src/swift/range.ts); compared with
 * Swift's own code over thousands of values in test/adversarial/range-reader.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRange, multipartSize, parseRange, rangesForLength, servedBody } from '../../src/swift/range.js';
import { copyRange, sameEtag, servedSource } from '../../src/quota/copy-range.js';

const object = (length: number, contentType = 'text/plain') => ({ length, contentType });

describe('swob.Range', () => {
  test('spaces anywhere, any case of "bytes", int() spellings of the first position', () => {
    assert.deepEqual(parseRange(' BYTES = 1 - 5 , -3'), [{ first: 1n, last: 5n }, { first: undefined, last: 3n }]);
    assert.deepEqual(parseRange('bytes=+5-,1_0-20,\xa07-8'), [{ first: 5n, last: undefined }, { first: 10n, last: 20n }, { first: 7n, last: 8n }]);
    assert.equal(formatRange(parseRange('bytes= 007-8,-0')!), 'bytes=7-8,-0');
  });

  test('one malformed spec and swob ignores the header (the whole object is served)', () => {
    for (const value of ['', 'bytes=', 'bytes=5-3', 'bytes=-', 'bytes=5', 'bytes=0-1,', 'bites=0-1', 'bytes=\x1c5-6', 'bytes=5-\xb2', `bytes=${'9'.repeat(4301)}-`, 'bytes=0-9,bytes=10-19']) {
      assert.equal(parseRange(value), undefined, JSON.stringify(value));
    }
    assert.deepEqual(servedBody(undefined, object(50)), { status: 200, size: 50, parts: 1 });
  });

  test('ranges_for_length: suffixes, past the end, and the limits on many, overlapping and unsorted ranges', () => {
    assert.deepEqual(rangesForLength(parseRange('bytes=-10,40-100,60-')!, 50), [[40, 50], [40, 50]]);
    assert.deepEqual(rangesForLength(parseRange('bytes=-0')!, 50), []);
    assert.deepEqual(rangesForLength(parseRange('bytes=0-30,10-40,20-49')!, 50), []);
    assert.equal(rangesForLength(parseRange(`bytes=${Array(50).fill('0-0').join(',')}`)!, 50).length, 50);
    assert.deepEqual(rangesForLength(parseRange(`bytes=${Array(51).fill('0-0').join(',')}`)!, 50), []);
    assert.deepEqual(rangesForLength(parseRange('bytes=7-7,6-6,5-5,4-4,3-3,2-2,1-1,0-0')!, 50), []);
    assert.equal(rangesForLength(parseRange('bytes=6-6,5-5,4-4,3-3,2-2,1-1,0-0')!, 50).length, 7);
  });

  test('the body served: one range, a multipart body (the issue\'s 50 ranges of 50 bytes: 106,836 bytes), 416, an empty object', () => {
    assert.deepEqual(servedBody(parseRange('bytes=10-19'), object(50)), { status: 206, size: 10, parts: 1 });
    const longType = `application/x-${'t'.repeat(1986)}`;
    assert.deepEqual(servedBody(parseRange(`bytes=${Array(50).fill('0-49').join(',')}`), object(50, longType)), { status: 206, size: 106_836, parts: 50 });
    assert.equal(multipartSize([[0, 50], [0, 50]], 50, 'text/plain'), 328);
    // swob encodes the WSGI (Latin-1) content type as UTF-8: each byte above 0x7f takes two.
    assert.equal(multipartSize([[0, 50], [0, 50]], 50, 'text/pl\xe9n') - multipartSize([[0, 50], [0, 50]], 50, 'text/plen'), 2);
    assert.deepEqual(servedBody(parseRange('bytes=60-'), object(50)), { status: 416, size: 0, parts: 0 });
    assert.deepEqual(servedBody(parseRange('bytes=-5'), object(0)), { status: 200, size: 0, parts: 1 });
  });

  test('a DLO serves the whole object for several specs; without a length, at most one explicit range', () => {
    assert.deepEqual(servedBody(parseRange('bytes=0-1,3-4'), { ...object(50), dynamicLargeObject: true }), { status: 200, size: 50, parts: 1 });
    assert.deepEqual(servedBody(parseRange('bytes=5-9'), { length: undefined, contentType: 'x' }), { status: 206, size: 5, parts: 1 });
    assert.deepEqual(servedBody(parseRange('bytes=5-'), { length: undefined, contentType: 'x' }), { status: 200, size: 0, parts: 1 });
  });
});

describe('a copy\'s Range (copy-range.ts)', () => {
  test('forwarded as read: rewritten as swob writes it, removed where swob ignores it, untouched when absent', () => {
    assert.deepEqual(copyRange(' Bytes = +1-2 ,-3'), { specs: [{ first: 1n, last: 2n }, { first: undefined, last: 3n }], forward: { value: 'bytes=1-2,-3' } });
    assert.deepEqual(copyRange('bytes=2-1'), { specs: undefined, forward: { value: undefined } });
    assert.deepEqual(copyRange(undefined), { specs: undefined });
  });

  test('the source as its HEAD shows it: length, content type, a DLO unless its manifest is asked for', () => {
    const head = { 'content-length': '50', 'content-type': 'text/plain', 'x-object-manifest': 'seg/s' };
    assert.deepEqual(servedSource(parseRange('bytes=0-1,3-4'), head, undefined), { status: 200, size: 50, parts: 1 });
    assert.equal(servedSource(parseRange('bytes=0-1,3-4'), head, 'multipart-manifest=get').parts, 2);
    assert.deepEqual(servedSource(parseRange('bytes=0-9'), { 'x-object-manifest': 'seg/s' }, undefined), { status: 206, size: 10, parts: 1 });
  });

  test('ETags compared as swob compares them', () => {
    assert.ok(sameEtag('"abc"', 'abc') && sameEtag('W/"abc"', '"abc"'));
    assert.ok(!sameEtag('abc', 'abd') && !sameEtag(undefined, 'abc'));
  });
});
