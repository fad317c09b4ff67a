/**
 * A `Range` header as Swift 2.30.1 reads it (swob.Range) and the body Swift serves for it (swob.Response with
 * conditional_response, as the object server, SLO and DLO answer a GET). A server-side copy stores exactly that
 * body, so this is how a ranged copy is sized. Pure.
 *
 * - Reading (swob.Range): ASCII spaces removed anywhere; `bytes=` in any case; specs split at ",", each at its
 *   first "-". The first position is read with Python's `int()` (surrounding whitespace, a "+", single "_"
 *   between digits, at most 4,300 digits: CPython's default int_max_str_digits), the last must be ASCII digits
 *   and not before the first. Any malformed spec makes swob ignore the whole header: the whole object is served.
 * - Serving (ranges_for_length, _response_iter): suffix and open ranges resolved against the length, ranges
 *   starting at or past the end dropped; none left, more than 50, more than 2 overlapping pairs, or 8 or more
 *   out of order: 416. An empty object is served whole. One range: its bytes. Several: a multipart/byteranges
 *   body whose every part carries a boundary, the object's content type and a Content-Range line.
 */

/** One byte-range-spec: first and last byte positions as written; `undefined` where the spec leaves one out. */
export interface ByteRangeSpec {
  readonly first: bigint | undefined;
  readonly last: bigint | undefined;
}

/** Byte ranges as swob serves them: [start, end) pairs within the object. */
export type ServedRanges = ReadonlyArray<readonly [number, number]>;

const MAX_RANGES = 50;
const MAX_RANGE_OVERLAPS = 2;
const MAX_NONASCENDING_RANGES = 8;
/** CPython's default limit on the digits `int()` converts (sys.int_info.default_max_str_digits). */
const MAX_INT_DIGITS = 4300;
/** swob's boundary: `"%.32x" % random.randint(0, 256 ** 16)`, 32 hex digits (33 only for 2**128, 1 in 2**128). */
export const BOUNDARY_LENGTH = 32;

/** Characters Python's `int()` strips around a number (str.isspace of the Latin-1 range, bar \x1c-\x1f). */
const INT_SPACE = /^[\t\n\x0b\x0c\r \x85\xa0]+|[\t\n\x0b\x0c\r \x85\xa0]+$/g;

/** Python's `int(text)` of a header's Latin-1 string, or undefined where it raises ValueError. */
function pythonInt(text: string): bigint | undefined {
  const match = /^([+-]?)([0-9](?:_?[0-9])*)$/.exec(text.replace(INT_SPACE, ''));
  if (!match) return undefined;
  const digits = match[2]!.replaceAll('_', '');
  if (digits.length > MAX_INT_DIGITS) return undefined;
  const value = BigInt(digits);
  return match[1] === '-' ? -value : value;
}

/**
 * The specs of a Range header value (the value eventlet hands swob: repeated headers joined with ","), or
 * undefined when swob ignores it (absent, empty or malformed), so that the whole object is served. The value is
 * a Latin-1 string, one character per byte, as Node and eventlet hand it on (no character above U+00FF comes
 * off the wire; Python's int() would read some of those as digits or spaces).
 */
export function parseRange(value: string | undefined): ByteRangeSpec[] | undefined {
  if (!value) return undefined;
  const spaced = value.replaceAll(' ', '');
  if (spaced.slice(0, 6).toLowerCase() !== 'bytes=') return undefined;
  const specs: ByteRangeSpec[] = [];
  for (const spec of spaced.slice(6).split(',')) {
    const dash = spec.indexOf('-');
    if (dash < 0) return undefined;
    const firstText = spec.slice(0, dash);
    const lastText = spec.slice(dash + 1);
    const first = firstText === '' ? undefined : pythonInt(firstText);
    if (firstText !== '' && first === undefined) return undefined;
    let last: bigint | undefined;
    if (lastText !== '') {
      if (!/^[0-9]+$/.test(lastText) || lastText.length > MAX_INT_DIGITS) return undefined;
      last = BigInt(lastText);
      if (first !== undefined && last < first) return undefined;
    } else if (first === undefined) {
      return undefined;
    }
    specs.push({ first, last });
  }
  return specs;
}

/** The specs written as swob writes a Range (`str(Range)`): what the proxy forwards, so Swift reads the same. */
export function formatRange(specs: readonly ByteRangeSpec[]): string {
  return `bytes=${specs.map(({ first, last }) => `${first ?? ''}-${last ?? ''}`).join(',')}`;
}

/** What swob's ranges_for_length makes of the specs for an object of `length` bytes: [] means 416. */
export function rangesForLength(specs: readonly ByteRangeSpec[], length: number): ServedRanges {
  const size = BigInt(length);
  const ranges: Array<readonly [number, number]> = [];
  for (const { first, last } of specs) {
    if (first === undefined) {
      // A suffix: the last `last` bytes (bytes=-0 asks for none).
      if (last === 0n) continue;
      ranges.push(last! > size ? [0, length] : [Number(size - last!), length]);
    } else if (first < size) {
      ranges.push([Number(first), last === undefined || last + 1n > size ? length : Number(last + 1n)]);
    }
  }
  if (ranges.length > MAX_RANGES) return [];
  let overlaps = 0;
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      if (overlap(ranges[i]!, ranges[j]!) && ++overlaps > MAX_RANGE_OVERLAPS) return [];
    }
  }
  const ascending = ranges.every((range, i) => i === 0 || !after(ranges[i - 1]!, range));
  if (!ascending && ranges.length >= MAX_NONASCENDING_RANGES) return [];
  return ranges;
}

/** swob's test of two ranges overlapping (strictly: ranges that only touch, or are equal, do not). */
function overlap([start1, end1]: readonly [number, number], [start2, end2]: readonly [number, number]): boolean {
  return (start1 < start2 && start2 < end1) || (start1 < end2 && end2 < end1) || (start2 < start1 && start1 < end2) || (start2 < end1 && end1 < end2);
}

/** Python's `a > b` of two (start, end) tuples. */
function after(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

/** Bytes of a header value as swob writes it into a part: the WSGI (Latin-1) string encoded as UTF-8. */
function partHeaderBytes(value: string): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i++) bytes += value.charCodeAt(i) < 0x80 ? 1 : value.charCodeAt(i) < 0x800 ? 2 : 3;
  return bytes;
}

/** The size of swob's multipart/byteranges body for these ranges of an object (`_prepare_for_ranges`). */
export function multipartSize(ranges: ServedRanges, length: number, contentType: string, boundaryLength = BOUNDARY_LENGTH): number {
  // "--boundary\r\n" "Content-Type: <type>\r\n" "Content-Range: <value>\r\n" "\r\n" <bytes> "\r\n"
  const fixed = 2 + boundaryLength + 2 + 'Content-Type: '.length + partHeaderBytes(contentType) + 2 + 'Content-Range: '.length + 2 + 2 + 2;
  let size = 0;
  for (const [start, end] of ranges) size += fixed + `bytes ${start}-${end - 1}/${length}`.length + (end - start);
  // "--boundary--" ends the body.
  return size + boundaryLength + 4;
}

export interface Served {
  /** 200 (the whole object: no Range, one swob ignores, an empty object), 206 (ranges) or 416 (nothing). */
  readonly status: 200 | 206 | 416;
  /** The body's length (0 for 416). */
  readonly size: number;
  /** How many ranges are served: several make a multipart body, whose size depends on the content type. */
  readonly parts: number;
}

export interface ServedObject {
  /** The object's length, as its HEAD gives it (undefined: a DLO whose listing Swift did not read whole). */
  readonly length: number | undefined;
  /** Its Content-Type as Swift answers it (a Latin-1 string of the header's bytes). */
  readonly contentType: string;
  /** A DLO serves one range, but the whole object for a Range of several specs. */
  readonly dynamicLargeObject?: boolean;
}

const UNSATISFIABLE: Served = Object.freeze({ status: 416, size: 0, parts: 0 });

/** What Swift's GET of an object serves for a Range (`specs` undefined: none, or one swob ignores). */
export function servedBody(specs: readonly ByteRangeSpec[] | undefined, object: ServedObject): Served {
  const { length } = object;
  const whole: Served = { status: 200, size: length ?? 0, parts: 1 };
  if (specs === undefined || (object.dynamicLargeObject && specs.length > 1)) return whole;
  if (length === undefined) {
    // Only a DLO answers without a length, and serves one range of it at most as long as the range is: the
    // whole object it serves otherwise has no length, and copies of it are refused (413).
    const [only] = specs;
    if (specs.length !== 1 || only!.first === undefined || only!.last === undefined) return whole;
    return { status: 206, size: Number(only!.last - only!.first + 1n), parts: 1 };
  }
  const ranges = rangesForLength(specs, length);
  if (ranges.length === 0) return UNSATISFIABLE;
  if (length === 0) return whole;
  if (ranges.length === 1) return { status: 206, size: ranges[0]![1] - ranges[0]![0], parts: 1 };
  return { status: 206, size: multipartSize(ranges, length, object.contentType), parts: ranges.length };
}
