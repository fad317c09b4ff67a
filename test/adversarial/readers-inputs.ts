/**
 * Seeded generators of hostile inputs for readers-differential.test.ts: request targets, query strings,
 * request heads, numbers, SLO manifests and S3 completion bodies, each built from the spellings that make
 * Python's readers and the proxy's disagree. Every input is a pure function of its seed.
 */
import { random } from './differential.js';

export interface Picker {
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
  int(n: number): number;
}

export function picker(seed: number): Picker {
  const rnd = random(seed);
  return {
    pick: (items) => items[Math.floor(rnd() * items.length)]!,
    chance: (p) => rnd() < p,
    int: (n) => Math.floor(rnd() * n),
  };
}

const VERSIONS = ['v1', 'v1', 'v1', 'v1.0', 'V1', 'v1.1', 'v2', 'v1%2E0', '%76%31', 'v1%2e0', 'v%31', 'info', '', '.', 'v1%00', 'v1;', 'v1%20'];
const NAME_PIECES = [
  'AUTH_adv', 'c', 'o', 'seg', '', '.', '..', '%2F', '%2f', '%00', '%FF', '%C3%A9', '\u00e9', '\u00c3\u00a9', '%', '%2', '%zz', '%%32%46', '%252F',
  '+', '%20', ';', '%3F', '%23', '#', '~', '%E2%82', '%E2%82%AC', '\u00ff', '%ED%A0%80', '%F0%9F%92%A9', 'x'.repeat(300), 'y'.repeat(1100), '%5C', '\\',
];
const PLAIN_PIECES = ['AUTH_adv', 'c', 'o', 'seg', 'x.y', '-_~'];
const SEPARATORS = ['/', '/', '/', '/', '//', '%2F', '%2f', '/./', '/../'];

/** A request target as a client sends it (latin-1: one character per byte), maybe with a query. */
export function makeTarget(seed: number): string {
  const p = picker(seed);
  let target = p.pick(['/', '/', '/', '/', '/', '/', '//', '', '%2F']) + (p.chance(0.5) ? 'v1' : p.pick(VERSIONS));
  const segments = p.int(5);
  for (let i = 0; i < segments; i++) {
    target += p.pick(SEPARATORS);
    const pieces = 1 + p.int(3);
    for (let j = 0; j < pieces; j++) target += p.chance(0.6) ? p.pick(PLAIN_PIECES) : p.pick(NAME_PIECES);
  }
  if (p.chance(0.2)) target += p.pick(['/', '//', '%2F']);
  if (p.chance(0.2)) target += `?${p.pick(['', 'a=b', 'multipart-manifest=put', '?', '/x'])}`;
  return target;
}

export const QUERY_NAMES = ['multipart-manifest', 'extract-archive', 'heartbeat', 'symlink', 'version-id', 'temp_url_sig', 'temp_url_expires', 'format'];
const QUERY_NAME_SPELLINGS = [
  ...QUERY_NAMES, ...QUERY_NAMES, 'multipart%2Dmanifest', 'multipart%2dmanifest', 'multipart+manifest', 'Multipart-Manifest', 'multipart-manifest%00',
  'multipart-manifest ', '%6Dultipart-manifest', 'extract%2Darchive', 'heart%62eat', 'temp_url_sig%FF', 'temp%5Furl_expires', 'x', '',
];
const QUERY_VALUES = [
  'put', 'put', 'PUT', 'Put', 'p%75t', 'put%00', 'put ', '+put', 'put+', '%70ut', 'get', 'delete', 'tar', 'TAR', '.tar.', 'tar.gz', '..Tar.Gz..', 'tar.bz2',
  'tar%2Egz', 'true', 'True', 'on', '1', 'yes', 't', 'y', 'no', '0', '', '%FF', '%C4%B0', '%E2%84%AA', '=', 'a=b', '%', '%2', '+', '%2B', '1999999999',
  '+1999999999', ' 1999999999', '1_999_999_999', '%EF%BC%91', '%D9%A1%D9%A2', '\u00e9',
];
const QUERY_SEPARATORS = ['&', '&', '&', '&&', ';', '&;', '%26'];

/** A query string (after the `?`) as a client sends it. */
export function makeQuery(seed: number): string {
  const p = picker(seed);
  const fields: string[] = [];
  const count = p.int(6);
  for (let i = 0; i < count; i++) {
    const name = p.pick(QUERY_NAME_SPELLINGS);
    fields.push(p.chance(0.15) ? name : `${name}${p.pick(['=', '=', '=', '=='])}${p.pick(QUERY_VALUES)}`);
  }
  let query = '';
  for (const field of fields) query += (query === '' && p.chance(0.8) ? '' : p.pick(QUERY_SEPARATORS)) + field;
  return query;
}

/** Headers that decide what Swift writes, or where. */
export const DECISION_HEADERS = [
  'content-length', 'content-type', 'transfer-encoding', 'x-copy-from', 'x-copy-from-account', 'destination', 'destination-account', 'x-symlink-target',
  'x-symlink-target-account', 'x-versions-location', 'x-history-location', 'x-versions-enabled', 'x-object-manifest', 'x-account-meta-quota',
  'x-remove-account-meta-quota', 'x-container-sync-to', 'x-auth-token', 'x-storage-token', 'multipart-manifest', 'x-static-large-object',
];
const HEADER_VALUES = [
  'c/o', 'c/o', '/c/o', ' c/o ', 'c/o\t', 'a,b', '', ' ', 'AUTH_x', '%2Fc%2Fo', 'c/\u00e9', 'c/\u00ff\u00fe', 'true', 'True', 'put', '1', '0', '+1', '01',
  '1_0', ' 5', '-1', '0x10', '1e3', 'gold', 'text/plain', 'chunked', 'Chunked', 'gzip, chunked', 'tok', 'c/o;x', 'c/o"', '\u0080',
];

/** How a client might spell a header name: any case, `_` for `-`. */
function spell(p: Picker, name: string): string {
  let out = '';
  for (const char of name) {
    const shaped = p.chance(0.3) ? char.toUpperCase() : char;
    out += shaped === '-' && p.chance(0.25) ? '_' : shaped;
  }
  return p.chance(0.4) ? out.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()) : out;
}

export interface Head {
  bytes: Buffer;
  /** Content-Length of the body that follows the head (what Node waits for). */
  body: number;
}

/** A request head (request line, header lines, empty line) as a client might send it. */
export function makeHead(seed: number): Head {
  const p = picker(seed);
  const lines = [`${p.pick(['PUT', 'PUT', 'POST', 'COPY'])} /v1/AUTH_a/c/o HTTP/1.1`, 'Host: h'];
  const count = 1 + p.int(7);
  let body = 0;
  for (let i = 0; i < count; i++) {
    const name = p.pick(DECISION_HEADERS);
    let value = p.pick(HEADER_VALUES);
    if (name === 'content-length' && p.chance(0.7)) value = p.pick(['0', '3', '00', '3 ', ' 3', '+3', '3_0', '-0', '3,3', '0x3', '\u0663', '']);
    const shape = p.int(40);
    if (shape === 0) lines.push(`${spell(p, name)} : ${value}`);
    else if (shape === 1) lines.push(`${spell(p, name)}:${value}\r\n ${p.pick(['folded', 'c/x', ''])}`);
    else if (shape === 2) lines.push(`${spell(p, name)}\t: ${value}`);
    else if (shape === 3) lines.push(`${spell(p, name)}: ${value}\u0000x`);
    else if (shape === 4) lines.push(`${spell(p, name)}: ${value}\rx`);
    else lines.push(`${spell(p, name)}:${p.pick([' ', '', '  ', '\t'])}${value}${p.pick(['', '', ' ', '\t'])}`);
    if (name === 'content-length' && /^\d+$/.test(value)) body = Number(value);
  }
  return { bytes: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body };
}

/** A number as a header or parameter might spell it (latin-1 or, for parameters, any UTF-8). */
export function makeNumber(seed: number): string {
  const p = picker(seed);
  const digits = p.pick(['0', '1', '42', '007', '1999999999', '99999999999999999999', '1_000', '1__0', '_1', '1_', '\u0663', '\u0661\u0662', '\uff11', '\u00b2', '1\u00b2']);
  const sign = p.pick(['', '', '', '+', '-', '++', '+-']);
  const space = () => p.pick(['', '', '', ' ', '\t', '\n', '\u000b', '\u000c', '\u001c', '\u0085', '\u00a0', '\u2003', '\ufeff', '\u3000']);
  return `${space()}${sign}${digits}${p.pick(['', '', '', '.0', 'e3', 'x'])}${space()}`;
}

export interface SegmentHeadSpec {
  length: number;
  etag: string;
  type: string;
  slo?: boolean;
}

export const ETAG = 'd41d8cd98f00b204e9800998ecf8427e';
/** The segments every manifest may name, by `container/object` (SLO's HEAD of anything else is a 404). */
export const SEGMENTS: Readonly<Record<string, SegmentHeadSpec>> = {
  'c/s1': { length: 10, etag: ETAG, type: 'text/plain' },
  'c/s2': { length: 1, etag: '0cc175b9c0f1b6a831c399e269772661', type: 'application/octet-stream' },
  'c/s0': { length: 0, etag: ETAG, type: 'text/plain' },
  'c/sub': { length: 500, etag: ETAG, type: 'application/json;swift_bytes=5000', slo: true },
  'c/\u00e9t\u00e9': { length: 7, etag: ETAG, type: 'a/b; charset=utf-8' },
  'c/dir/x': { length: 3, etag: ETAG, type: 'text/plain' },
};

const SEGMENT_PATHS = ['c/s1', 'c/s1', '/c/s1', '//c/s1', 'c/s2', '/c/s2', 'c/s0', 'c/sub', 'c/\u00e9t\u00e9', '/c/\\u00e9t\\u00e9', 'c/dir/x', 'c/s1/', 'c//s1', 'c/missing', 'c', '/c/', 'c/s1?x', 'c/s%31'];
const RANGES = [
  '"1-3"', '"1-3"', '"0-"', '"-3"', '"3-"', '"5-2"', '"1-3,4-5"', '""', '" 1 - 3 "', '"\\t1-3"', '"\\n2-4"', '"\\u00a01-3"', '"\\u30001-3"', '"1_0-20"', '"+1-3"',
  '"-0"', '"0-0"', '"1-\\u0663"', '"\\u0661-3"', '"bytes=1-2"', '"20-30"', '"-20"', '"9-"', '"10-"', '"1 -3"', '"1-3 "', '"01-03"', '"\\u000b1-3"', '"\\u001c2-"',
  '-3', '-3', '3', '0', '-0', '-3.0', '1e3', 'true', 'null', '[]', '{}', '-99999999999999999999', '"-99999999999999999999"', '"1-99999999999999999999"',
];
const ETAGS = ['null', `"${ETAG}"`, '"0123"', '5', '""'];
const SIZES = ['null', '10', '"10"', '1', '10.0', '1e1', '"1_0"', '-1', 'true', '"abc"', '99999999999999999999', '" 10 "', '"+10"', '0'];
const DATA = ['"YWJj"', '"YWJj=="', '"=YWJj"', '"YW Jj"', '""', '"YQ"', '"YQ=="', '"Y"', '"YWJj\\n"', '"_-"', '12'];
const SPACES = ['', '', ' ', '\n', '\t', '\r\n  '];

function manifestEntry(p: Picker): string {
  const s = () => p.pick(SPACES);
  if (p.chance(0.4)) return `{"path": "${p.pick(['c/s1', '/c/s1', 'c/s2', 'c/dir/x', 'c/sub'])}"}`;
  if (p.chance(0.12)) return `{${s()}"data"${s()}:${s()}${p.pick(DATA)}${p.chance(0.1) ? ', "path": "c/s1"' : ''}}`;
  const fields = [`"path":${s()}"${p.pick(SEGMENT_PATHS)}"`];
  if (p.chance(0.5)) fields.push(`"range":${s()}${p.pick(RANGES)}`);
  if (p.chance(0.2)) fields.push(`"etag": ${p.pick(ETAGS)}`);
  if (p.chance(0.2)) fields.push(`"size_bytes": ${p.pick(SIZES)}`);
  if (p.chance(0.05)) fields.push(p.pick(['"extra": 1', '"path": "c/s2"', '"path": 5', '"Path": "c/s1"', '"range": "2-3"']));
  if (p.chance(0.08)) fields.unshift(p.pick(['"path": "c/missing"', '"path": NaN', '"path": -Infinity', '"path": "\\ud800"', '"range": "1-2,3-4"', '"__proto__": {}']));
  for (let i = fields.length - 1; i > 0; i--) if (p.chance(0.3)) [fields[i], fields[i - 1]] = [fields[i - 1]!, fields[i]!];
  return `{${s()}${fields.join(`,${s()}`)}${s()}}`;
}

/** An SLO manifest body as a client might send it, in some encoding Python's json.loads may take. */
export function makeManifest(seed: number): Buffer {
  const p = picker(seed);
  const entries = Array.from({ length: p.int(4) + (p.chance(0.95) ? 1 : 0) }, () => manifestEntry(p));
  let text = `${p.pick(SPACES)}[${entries.join(`,${p.pick(SPACES)}`)}]${p.pick(SPACES)}`;
  const shape = p.int(30);
  if (shape === 0) text = `${'['.repeat(p.pick([2, 50, 2000]))}${text}${']'.repeat(p.pick([2, 50, 2000]))}`;
  else if (shape === 1) text += p.pick([' x', ',', ' []', '\u0000']);
  else if (shape === 2) text = text.replace(']', ', NaN]');
  else if (shape === 3) text = text.replace('[', '{"a": Infinity, "b": [').replace(/\]\s*$/, ']}');
  else if (shape === 4) text = `\u00a0${text}`;
  const encoding = p.int(40);
  if (encoding === 0) return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
  if (encoding === 1) return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  if (encoding === 2) return Buffer.from(text, 'utf16le');
  if (encoding === 3) return Buffer.from(text, 'utf16le').swap16();
  if (encoding === 4) return utf32(text, p.chance(0.5));
  if (encoding === 6) {
    // Encoded surrogates (json.loads decodes with 'surrogatepass') in a value a later duplicate key replaces.
    const bytes = Buffer.from(text.replace('{', '{"path": "SURROGATE", '), 'utf8');
    const at = bytes.indexOf('SURROGATE');
    return at < 0 ? bytes : Buffer.concat([bytes.subarray(0, at), Buffer.from([0xed, 0xa0, 0x80]), bytes.subarray(at + 9)]);
  }
  if (encoding === 5) {
    const bytes = Buffer.from(text, 'utf8');
    const at = bytes.indexOf('"path"');
    return at < 0 ? bytes : Buffer.concat([bytes.subarray(0, at + 3), Buffer.from([p.pick([0xff, 0xc3, 0xed, 0x80])]), bytes.subarray(at + 3)]);
  }
  return Buffer.from(text, 'utf8');
}

function utf32(text: string, bom: boolean): Buffer {
  const codes = [...(bom ? '\ufeff' : ''), ...text].map((char) => char.codePointAt(0)!);
  const out = Buffer.alloc(codes.length * 4);
  codes.forEach((code, i) => out.writeUInt32LE(code, i * 4));
  return out;
}

/** The parts an upload has in its segments container, by the name after `<object>/<upload id>/`. */
export const UPLOADED_PARTS = ['1', '2', '3', '5', '10'];
const PART_NUMBERS = ['1', '2', '3', '5', '10', '01', ' 2 ', '+3', '-1', '0', '1_0', '\u0663', '3.0', '&#51;', '<![CDATA[5]]>', '1<!-- c -->0', '99', '\n5\n', '2e0', ''];
const PART_ETAGS = [`"${ETAG}"`, ETAG, `&quot;${ETAG}&quot;`, ETAG.toUpperCase(), ETAG.slice(1), `<![CDATA["${ETAG}"]]>`, ` ${ETAG} `, `"${ETAG}`];

/** A CompleteMultipartUpload body as a client might send it. */
export function makeCompletion(seed: number): Buffer {
  const p = picker(seed);
  const ns = p.pick(['', '', ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', ' xmlns="urn:other"', ' xmlns:s="http://s3.amazonaws.com/doc/2006-03-01/"']);
  const parts: string[] = [];
  const count = p.int(6) + (p.chance(0.9) ? 1 : 0);
  for (let i = 0; i < count; i++) {
    const number = `<PartNumber>${p.pick(PART_NUMBERS)}</PartNumber>`;
    const etag = `<ETag>${p.pick(PART_ETAGS)}</ETag>`;
    const inner = p.chance(0.5) ? number + etag : etag + number;
    parts.push(p.chance(0.05) ? `<Part>${inner}${number}</Part>` : p.chance(0.05) ? `<Part>${etag}</Part>` : `<Part>${p.pick(['', ' ', '\n  '])}${inner}</Part>`);
  }
  if (p.chance(0.3)) parts.sort(() => (p.chance(0.5) ? 1 : -1));
  const filler = () => p.pick(['', '', '\n', '<!-- part -->', ' ']);
  let xml = `<CompleteMultipartUpload${ns}>${parts.map((part) => filler() + part).join('')}${filler()}</CompleteMultipartUpload>`;
  if (p.chance(0.3)) xml = `<?xml version="1.0" encoding="UTF-8"?>\n${xml}`;
  if (p.chance(0.05)) xml = `<!DOCTYPE c [<!ENTITY n "4">]>${xml.replace('<PartNumber>', '<PartNumber>&n;')}`;
  if (p.chance(0.03)) xml += '<extra/>';
  return Buffer.from(xml, 'utf8');
}
