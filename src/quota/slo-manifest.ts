/**
 * Static large object manifests (`PUT ?multipart-manifest=put`): Swift does not store the manifest it is
 * sent. Its SLO middleware HEADs every segment and stores its own manifest, one JSON object per segment with
 * the segment's name, size, ETag, content type and modification time (slo.py `handle_multipart_put`,
 * `validate_seg_dict`), which is far larger than what was sent. This module reads a manifest as SLO reads it
 * (`parse_and_validate_input`) and computes, byte for byte, the size of what SLO will store, given the
 * segments' HEADs. Pure.
 */
import { PyNumber, pythonInt, pythonJson, pythonJsonText, pythonTruthy } from '../swift/python-readers.js';

/** A segment entry as the client sent it (`range` as SLO formats it: `'%s' % range`). */
export type ManifestEntry =
  | { readonly kind: 'object'; readonly path: string; readonly range: string | undefined }
  | { readonly kind: 'data'; readonly data: string };

export type ParsedManifest = { readonly valid: true; readonly entries: readonly ManifestEntry[] } | { readonly valid: false };

/** A segment as Swift's HEAD of it (with the caller's rights, as SLO makes it) answers. */
export interface SegmentHead {
  readonly status: number;
  readonly contentLength: number;
  readonly etag: string | undefined;
  readonly contentType: string | undefined;
  readonly staticLargeObject: boolean;
}

const STANDARD_BASE64 = /^[A-Za-z0-9+/]*$/;

/**
 * The manifest's segments, or `valid: false` where Swift answers 400 (not JSON, not a list, a bad entry).
 * The body is read as `json.loads` reads bytes (python-readers.ts: UTF-8, -16 or -32, NaN, numbers as
 * written), so that no manifest SLO stores is taken for one it refuses. Only what decides the stored size is
 * kept: the client's etag and size_bytes are checked by Swift, which refuses the manifest when a segment does
 * not match them.
 */
export function parseManifest(body: Buffer): ParsedManifest {
  const text = pythonJsonText(body);
  const parsed = text === undefined ? undefined : pythonJson(text);
  if (!Array.isArray(parsed)) return { valid: false };
  const entries: ManifestEntry[] = [];
  for (const item of parsed) {
    if (typeof item !== 'object' || item === null || Array.isArray(item) || item instanceof PyNumber) return { valid: false };
    const record = item as Record<string, unknown>;
    // SLO_KEYS order: a "data" entry is one, whatever else it holds (then its other keys are extraneous).
    if ('data' in record) {
      if (Object.keys(record).length !== 1 || typeof record.data !== 'string') return { valid: false };
      const stripped = record.data.replace(/^=+|=+$/g, '');
      if (!STANDARD_BASE64.test(stripped) || stripped.length % 4 === 1) return { valid: false };
      const data = Buffer.from(stripped, 'base64');
      if (data.length < 1) return { valid: false };
      entries.push({ kind: 'data', data: data.toString('base64') });
      continue;
    }
    if (!('path' in record) || typeof record.path !== 'string') return { valid: false };
    if (Object.keys(record).some((key) => !['path', 'range', 'etag', 'size_bytes'].includes(key))) return { valid: false };
    if (!record.path.replace(/^\/+|\/+$/g, '').includes('/')) return { valid: false };
    // `if seg_dict.get('range')`: any false value is no range; anything else is read as `'bytes=%s' % range`.
    if (!pythonTruthy(record.range)) {
      entries.push({ kind: 'object', path: record.path, range: undefined });
      continue;
    }
    const range = typeof record.range === 'string' ? record.range : record.range instanceof PyNumber ? record.range.integer?.toString() : undefined;
    if (range === undefined || parseRange(range) === undefined) return { valid: false };
    entries.push({ kind: 'object', path: record.path, range });
  }
  if (entries.length > 0 && entries.every((entry) => entry.kind === 'data')) return { valid: false };
  return { valid: true, entries };
}

/** Where SLO looks for a segment: `/<version>/<manifest's account>/<path without leading slashes>`. */
export function segmentRef(path: string): { container: string; object: string } | undefined {
  const trimmed = path.replace(/^\/+/, '');
  const slash = trimmed.indexOf('/');
  if (slash <= 0 || slash === trimmed.length - 1) return undefined;
  return { container: trimmed.slice(0, slash), object: trimmed.slice(slash + 1) };
}

/** Python's `json.dumps` of a string (ensure_ascii): the stored manifest is written that way. */
export function pyJsonString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const char = value[i]!;
    if (char === '"') out += '\\"';
    else if (char === '\\') out += '\\\\';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else if (char === '\b') out += '\\b';
    else if (char === '\f') out += '\\f';
    else if (code < 0x20 || code > 0x7e) out += code === 0x7f ? char : `\\u${code.toString(16).padStart(4, '0')}`;
    else out += char;
  }
  return `${out}"`;
}

/**
 * swob's `Range('bytes=%s' % range)` with one byte range: [start, end] (either may be absent), or undefined
 * where swob raises ValueError or finds several ranges (SLO refuses both). The start is read by `int()`, the
 * end must be decimal digits (`isdigit()` and `int()`), spaces are dropped first.
 */
function parseRange(range: string): [bigint | undefined, bigint | undefined] | undefined {
  const value = range.replaceAll(' ', '');
  if (value.includes(',')) return undefined;
  const dash = value.indexOf('-');
  if (dash < 0) return undefined;
  const [first, last] = [value.slice(0, dash), value.slice(dash + 1)];
  const start = first === '' ? undefined : pythonInt(first);
  if (first !== '' && start === undefined) return undefined;
  if (last !== '' && !/^\p{Nd}+$/u.test(last)) return undefined;
  const end = last === '' ? undefined : pythonInt(last);
  if (end === undefined && start === undefined) return undefined;
  if (end !== undefined && start !== undefined && end < start) return undefined;
  return [start, end];
}

/**
 * SLO's normalised range of a segment of `length` bytes (swob's `ranges_for_length`, then validate_seg_dict):
 * `"a-b"`, `null` for the whole segment, 'refused' where SLO refuses the manifest.
 */
export function segmentRange(range: string, length: number): string | null | 'refused' {
  const parsed = parseRange(range);
  if (!parsed) return 'refused';
  const [start, end] = parsed;
  const size = BigInt(length);
  let from: bigint;
  let to: bigint;
  if (start === undefined) {
    if (end === 0n) return 'refused';
    [from, to] = end! > size ? [0n, size] : [size - end!, size];
  } else {
    if (start >= size) return 'refused';
    [from, to] = [start, end === undefined ? size : end + 1n < size ? end + 1n : size];
  }
  return from === 0n && to === size ? null : `${from}-${to - 1n}`;
}

/** `last_modified` is always `%Y-%m-%dT%H:%M:%S.%f`: 26 characters. */
const LAST_MODIFIED = '2000-01-01T00:00:00.000000';

/**
 * The size of the manifest SLO stores (`json.dumps` of its list), or undefined when SLO would refuse it (a
 * segment missing, unreadable, empty where it may not be, or an unsatisfiable range).
 */
export function storedManifestSize(entries: readonly ManifestEntry[], heads: ReadonlyMap<string, SegmentHead>): number | undefined {
  const items: string[] = [];
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    if (entry.kind === 'data') {
      items.push(`{"data": ${pyJsonString(entry.data)}}`);
      continue;
    }
    const head = heads.get(entry.path);
    if (!head || head.status < 200 || head.status >= 300) return undefined;
    let range: string | null | undefined;
    let length = head.contentLength;
    if (entry.range !== undefined) {
      range = segmentRange(entry.range, head.contentLength);
      if (range === 'refused') return undefined;
      if (range !== null) {
        const [a, b] = range.split('-').map(Number) as [number, number];
        length = b - a + 1;
      }
    }
    if (length < 1 && index !== entries.length - 1) return undefined;
    const fields = [
      `"name": ${pyJsonString(`/${entry.path.replace(/^\/+/, '')}`)}`,
      `"bytes": ${head.contentLength}`,
      `"hash": ${head.etag === undefined ? 'null' : pyJsonString(head.etag.replaceAll('"', ''))}`,
      `"content_type": ${head.contentType === undefined ? 'null' : pyJsonString(head.contentType.split(';')[0]!)}`,
      `"last_modified": ${pyJsonString(LAST_MODIFIED)}`,
    ];
    if (range) fields.push(`"range": ${pyJsonString(range)}`);
    if (head.staticLargeObject) fields.push('"sub_slo": true');
    items.push(`{${fields.join(', ')}}`);
  }
  return Buffer.byteLength(`[${items.join(', ')}]`, 'utf8');
}

/** eventlet's longest header line: a segment's Content-Type, which SLO copies into each entry, is shorter. */
const MAX_HEADER_LINE = 8192;
/**
 * The most one entry of a stored manifest adds besides what the body gives it: the segment's content type
 * escaped by `json.dumps` (up to 6 bytes a byte), its hash, size, `last_modified`, keys and punctuation.
 */
const MAX_ENTRY_FROM_SEGMENT = 6 * MAX_HEADER_LINE + 1024;

/**
 * The largest manifest SLO could store for a body of `bodyBytes`, for a manifest the proxy reads as one SLO
 * refuses: a write is never passed uncounted on the proxy's reading alone. What the body gives an entry (its
 * name, range, data) is stored at most 3 bytes a byte (`\uXXXX` for a 2-byte character, a surrogate pair for a
 * 4-byte one); every entry takes at least 2 bytes of the body, and SLO takes at most `maxSegments`.
 */
export function largestStoredManifest(bodyBytes: number, maxSegments: number): number {
  const entries = Math.min(maxSegments, Math.floor(bodyBytes / 2) + 1);
  return 3 * bodyBytes + entries * MAX_ENTRY_FROM_SEGMENT;
}
