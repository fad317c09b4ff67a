/**
 * The proxy's reading of the S3 values that decide what Swift stores, against s3api's own (s3_values_reference.py
 * runs Swift 2.30.1's functions: swob's params and Range, get_param and int(), check_path_header, unquote,
 * parse_qsl, split_path, as PartController and check_copy_source apply them). Each value is run through the
 * proxy's dispatch (s3Action) as a whole request would be:
 * - part numbers and upload ids: 3,000 query strings (spellings int() and get_param accept: `_`, signs, zeros,
 *   Unicode digits and spaces, percent-encoded and repeated parameters, sub-resource names in other cases);
 * - x-amz-copy-source-range: 3,000 header values (open and suffix ranges, signs, `_`, spaces, case, commas,
 *   Latin-1 whitespace and digits), each compared on sources of several sizes;
 * - x-amz-copy-source: 3,000 header values (raw and percent-encoded UTF-8 and Latin-1, invalid escapes, NUL,
 *   dot and empty segments, `?` in every place, versionId spellings that inject into Swift's query).
 * Seed 21 (SEED in the environment replays another). Where the proxy takes a value, s3api reads the same part
 * number and upload id, copies at most the bytes counted (exactly as many where the range fits the source), and
 * copies from the same container, object and version; every other value the proxy refuses. max-parts and
 * part-number-marker only page listings (the proxy lists every part of a completion itself): not read here.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { DEFAULT_S3_CONFIG, s3Action, s3Address, type S3Action } from '../../src/s3/request.js';
import { turnsVersioningOn } from '../../src/s3/versioning.js';
import { SwiftHeaders } from '../../src/swift/request.js';
import { random, throughReference } from './differential.js';

const REFERENCE = fileURLToPath(new URL('./s3_values_reference.py', import.meta.url));
const SEED = Number(process.env.SEED ?? 21);
const CASES = 3000;
const SIZES = [0, 1, 5, 100, 9000, 1_000_000, 10 ** 15];


type Pick = <T>(items: readonly T[]) => T;
function picker(rnd: () => number): { pick: Pick; int: (n: number) => number } {
  return { pick: (items) => items[Math.floor(rnd() * items.length)]!, int: (n) => Math.floor(rnd() * n) };
}

/** Runs every case through the reference in one process; answers in order. */
const reference = <T>(cases: readonly object[]): Promise<T[]> => throughReference<T>(REFERENCE, cases);

/** A header value as both HTTP servers hand it on: spaces and tabs at either end dropped. */
const asReceived = (value: string): string => value.replace(/^[ \t]+|[ \t]+$/g, '');

const ADDRESS = s3Address('/b/k', '127.0.0.1', DEFAULT_S3_CONFIG)!;
const act = (query: string, headers: Record<string, string> = {}): S3Action => s3Action('PUT', ADDRESS, query, SwiftHeaders.from(headers));

// ---- part numbers and upload ids ----------------------------------------------------------------------

const NUMBER_PIECES = [
  '0', '1', '2', '9', '10', '_', '+', '-', '%2B', '%2D', '%5F', '%30', '%31', ' ', '+', '%20', '%09', '%0B', '%0C', '%1C', '%85', '%A0',
  '%C2%85', '%C2%A0', '%E3%80%80', '%E2%80%83', '%D9%A1', '%D9%A0', '%EF%BC%91', '%E0%A5%A7', '%C2%B2', '.', 'e', 'x', 'a', '%00', '%FF', '%', '%G1',
];
const ID_PIECES = ['QUJD', 'ZmYt', 'Tk', '_', '-', '=', '%3D', '+', '%2B', '/', '%2F', '.', '~', '%C3%A9', '\u00e9', '%FF', '%00', ' ', '%20', '%41', '&', ''];

function partQuery(seed: number): string {
  const { pick, int } = picker(random(seed));
  const number = (): string => {
    if (int(3) === 0) return String(pick([1, 2, 999, 1000, 1001, 9999, 10_000, 10_001, 99_999, 100_000, 123_456_789, int(10_000) + 1]));
    return Array.from({ length: int(5) + 1 }, () => pick(NUMBER_PIECES)).join('');
  };
  const uploadId = (): string => {
    if (int(2) === 0) return Array.from({ length: 12 }, () => pick(['QUJD', 'ZmYt', 'MTIz', 'a_-b', 'Zz09'])).join('');
    return Array.from({ length: int(4) }, () => pick(ID_PIECES)).join('');
  };
  if (int(4) === 0) return `partNumber=${int(10_001) + 1}&uploadId=${uploadId()}`;
  const fields: string[] = [];
  for (let i = int(3) + 1; i > 0; i--) {
    fields.push(pick([
      `partNumber=${number()}`, `partNumber=${number()}`, `uploadId=${uploadId()}`, `uploadId=${uploadId()}`,
      pick(['partNumber', 'uploadId', 'partnumber=1', 'PartNumber=1', 'part%4Eumber=' + number(), 'upload%49d=' + uploadId(), 'uploadid=x', '', 'x=1', 'partNumber', 'uploadId=']),
    ]));
  }
  return fields.join(pick(['&', '&', '&&', ';']));
}

interface PartReading { part: boolean; upload: boolean; number: number | null; upload_id: string | null }

describe('S3 values, read by the proxy and by s3api\'s own code', () => {
  test(`part numbers and upload ids: ${CASES} query strings (seed ${SEED})`, async (t) => {
    const queries = Array.from({ length: CASES }, (_, i) => partQuery(SEED * 1_000_003 + i));
    const readings = await reference<PartReading>(queries.map((query) => ({ kind: 'part', query })));
    let accepted = 0;
    queries.forEach((query, i) => {
      const swift = readings[i]!;
      const action = act(query);
      const context = `${query} → ${JSON.stringify(swift)} / ${JSON.stringify(action)}`;
      if (!swift.part) {
        // Not a part: an object PUT, or (uploadId alone) PUT on UploadController, which s3api answers 405.
        assert.ok(action.kind === 'object-put' ? action.container === 'b' : action.kind === 'pass' && swift.upload, context);
        return;
      }
      if (action.kind === 'refuse') return;
      assert.equal(action.kind, 'object-put', context);
      if (action.kind !== 'object-put') return;
      accepted++;
      assert.ok(swift.number !== null && swift.number >= 1 && swift.upload_id !== null, context);
      assert.equal(action.container, 'b+segments', context);
      assert.equal(action.object, `k/${swift.upload_id}/${swift.number}`, context);
      assert.match(swift.upload_id, /^[A-Za-z0-9_=-]+$/, context);
    });
    t.diagnostic(`${accepted} of ${CASES} taken, the rest refused`);
    assert.ok(accepted >= CASES / 10, `only ${accepted} canonical parts were generated and taken`);
  });

  // ---- x-amz-copy-source-range ----------------------------------------------------------------------

  test(`copy-source ranges: ${CASES} header values, each on sources of ${SIZES.length} sizes (seed ${SEED})`, async (t) => {
    const ranges = Array.from({ length: CASES }, (_, i) => asReceived(copyRange(SEED * 1_000_033 + i)));
    const readings = await reference<{ valid: boolean; copied: Array<number | null> }>(ranges.map((value) => ({ kind: 'range', value, sizes: SIZES })));
    let accepted = 0;
    ranges.forEach((value, i) => {
      const swift = readings[i]!;
      const action = act('partNumber=1&uploadId=U', { 'x-amz-copy-source': 'src/o', 'x-amz-copy-source-range': value });
      const context = `${JSON.stringify(value)} → ${JSON.stringify(swift)} / ${JSON.stringify(action)}`;
      if (action.kind === 'refuse') return;
      assert.ok(action.kind === 'object-put' && action.copyRange !== undefined, context);
      accepted++;
      assert.ok(swift.valid, context);
      const match = /^bytes=(\d+)-(\d+)$/.exec(value);
      assert.ok(match, context);
      const [first, last] = [Number(match[1]), Number(match[2])];
      SIZES.forEach((size, s) => {
        const copied = swift.copied[s];
        if (copied === null || copied === undefined) return; // s3api refuses: nothing copied
        assert.ok(copied <= action.copyRange!, `${context} size ${size}`);
        if (last < size) assert.equal(copied, action.copyRange, `${context} size ${size}`);
        assert.ok(first < size, `${context} size ${size}`);
      });
    });
    t.diagnostic(`${accepted} of ${CASES} taken, the rest refused`);
    assert.ok(accepted >= CASES / 10, `only ${accepted} canonical ranges were generated and taken`);
  });

  // ---- x-amz-copy-source -----------------------------------------------------------------------------

  test(`copy sources: ${CASES} header values (seed ${SEED})`, async (t) => {
    const sources = Array.from({ length: CASES }, (_, i) => asReceived(copySource(SEED * 1_000_037 + i)));
    type Reading = { error: string | null; container: string; object: string; swift_query: Record<string, string> };
    const readings = await reference<Reading>(sources.map((value) => ({ kind: 'source', value })));
    let accepted = 0;
    sources.forEach((value, i) => {
      const swift = readings[i]!;
      for (const query of ['', 'partNumber=1&uploadId=U']) {
        const action = act(query, { 'x-amz-copy-source': value });
        const context = `${JSON.stringify(value)} → ${JSON.stringify(swift)} / ${JSON.stringify(action)}`;
        if (action.kind === 'refuse') continue;
        assert.ok(action.kind === 'object-put' && action.copy, context);
        if (query === '') accepted++;
        assert.equal(swift.error, null, context);
        assert.equal(action.copy.container, swift.container, context);
        assert.equal(action.copy.object, swift.object, context);
        const version = swift.swift_query['version-id'];
        const expected = action.copy.versionId === undefined ? (version === undefined ? {} : { 'version-id': 'null' }) : { 'version-id': action.copy.versionId };
        assert.deepEqual(swift.swift_query, expected, context);
      }
    });
    t.diagnostic(`${accepted} of ${CASES} taken, the rest refused`);
    assert.ok(accepted >= CASES / 10, `only ${accepted} canonical sources were generated and taken`);
  });

  test(`PUT Bucket versioning bodies: ${CASES} (seed ${SEED}); the proxy reads Suspended only where s3api does`, async (t) => {
    const bodies = Array.from({ length: CASES }, (_, i) => versioningBody(SEED * 1_000_003 + i));
    const readings = await reference<{ status: string | null }>(bodies.map((body) => ({ kind: 'versioning', body })));
    let suspended = 0;
    bodies.forEach((body, i) => {
      if (turnsVersioningOn(Buffer.from(body, 'latin1'), true)) return; // taken as turning it on: counts more
      suspended++;
      assert.equal(readings[i]!.status, 'Suspended', `${JSON.stringify(body)} → ${JSON.stringify(readings[i])}`);
    });
    t.diagnostic(`${suspended} of ${CASES} read as Suspended, the rest as turning versioning on`);
    assert.ok(suspended >= CASES / 20, `only ${suspended} canonical Suspended bodies were generated`);
  });
});

const RANGE_PIECES = [
  'bytes=', 'bytes=', 'BYTES=', 'Bytes=', 'bytes =', 'byte=', ' ', '\t', '0', '1', '5', '9', '00', '42', '-', '-', '--', ',', '+', '_', '\u00a0', '\u0085', '\u001c',
  '\u00b2', '\u00b9', 'x', '=', '.', 'e3',
];

function copyRange(seed: number): string {
  const { pick, int } = picker(random(seed));
  if (int(3) === 0) {
    const digits = (): string => String(pick([0, 1, 4, 5, 99, 8999, 9000, 999_999, 10 ** 15 - 1, 10 ** 15, 2 ** 53, int(10_000)]));
    return `bytes=${digits()}-${digits()}`;
  }
  if (int(4) === 0) return `bytes=${pick(['', '0', '1', '+1', '01', '1_0', ' 1'])}-${pick(['', '0', '5', '05', '+5', '5_0', '5 '])}`;
  return Array.from({ length: int(7) + 1 }, () => pick(RANGE_PIECES)).join('');
}

const SOURCE_PIECES = [
  'src', 'b', 'o', 'a/b', '/', '/', '//', '.', '..', '%2E', '%2E%2E', '%2F', '%2f', '%3F', '?', '%C3%A9', '%c3%a9', '\u00c3\u00a9', '\u00e9', '%E9',
  '%EF%BB%BF', '%00', '%zz', '%', '%4', '+', '%2B', ' ', '%20', ',', ';', '#', '~', '!', "'", '*', '(', '=', '&', '@', ':', '%25', '%C0%AF',
];
const VERSION_PIECES = [
  '?versionId=1700000000.12345', '?versionId=null', '?versionId=', '?versionid=1700000000.12345', '?versionId=v1&x=1', '?versionId=1700000000.12345%26x%3D1',
  '?versionId=1700000000.1234', '?versionId=%31700000000.12345', '?versionId=+1700000000.12345', '?', '?versionId=1700000000.12345&versionId=null',
  '?VersionId=null', '?versionId=1700000000.12345_0000000000000001', '?x', '?versionId=1700000000.12345#',
];

function copySource(seed: number): string {
  const { pick, int } = picker(random(seed));
  const segment = (): string => (int(2) === 0 ? pick(['src', 'bkt', 'o', 'key.txt', 'a-b_c~d', 'x%20y', '%C3%A9t%C3%A9']) : Array.from({ length: int(4) + 1 }, () => pick(SOURCE_PIECES)).join(''));
  const path = `${pick(['', '', '/'])}${segment()}/${segment()}${int(3) === 0 ? `/${segment()}` : ''}`;
  return int(3) === 0 ? `${path}${pick(VERSION_PIECES)}` : path;
}

/** Pieces of versioning bodies: the canonical ones and what an XML reader may read differently. */
const DECLARATIONS = ['', '', '<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="UTF-8"?>\n', "<?xml version='1.0'?>", '\ufeff', '<!DOCTYPE x [<!ENTITY s "Suspended">]>', '<!-- c -->'];
const OPENS = ['<VersioningConfiguration>', '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">', '<VersioningConfiguration xmlns="urn:x">', '<versioningConfiguration>', '<VersioningConfiguration >', '<s3:VersioningConfiguration xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/">'];
const STATUSES = ['Suspended', 'Suspended', 'Enabled', 'suspended', ' Suspended', 'Suspended ', '&s;', 'Sus&#112;ended', '<![CDATA[Suspended]]>', 'Suspended<!-- c -->', ''];
const EXTRAS = ['', '', '<MfaDelete>Disabled</MfaDelete>', '<MfaDelete>Enabled</MfaDelete>', '<Status>Enabled</Status>', '<x/>', ' ', '\n  '];
const CLOSES = ['</VersioningConfiguration>', '</VersioningConfiguration>', '</VersioningConfiguration>\n', '</s3:VersioningConfiguration>', '</VersioningConfiguration><x/>', ''];

function versioningBody(seed: number): string {
  const { pick, int } = picker(random(seed));
  const space = () => pick(['', '', ' ', '\n', '\t', '\r\n']);
  // Half are the shapes SDKs send, spaced differently; the rest mix every piece.
  if (int(2) === 0) return `${pick(DECLARATIONS.slice(0, 4))}${pick(OPENS.slice(0, 2))}${space()}<Status>${pick(['Suspended', 'Enabled'])}</Status>${space()}${pick(EXTRAS.slice(0, 4))}</VersioningConfiguration>${space()}`;
  return `${pick(DECLARATIONS)}${space()}${pick(OPENS)}${space()}${pick(EXTRAS)}<Status>${pick(STATUSES)}</Status>${space()}${pick(EXTRAS)}${pick(CLOSES)}${space()}`;
}
