/**
 * Python's readers where Swift's middleware uses them on client bytes, reproduced exactly so that the proxy
 * reads those bytes as Swift does (test/adversarial/readers-differential.test.ts checks them against the real
 * thing): `int()` of a string, `json.loads()` of bytes (encoding detection, NaN and Infinity, numbers kept as
 * written). Pure.
 */

/** Characters Python's `int()` strips around a number (Unicode whitespace but U+001C-U+001F; not U+FEFF). */
const PY_SPACE = '[ \\t\\n\\u000b\\f\\r\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_INT = new RegExp(`^${PY_SPACE}*([+-]?)(\\p{Nd}+(?:_\\p{Nd}+)*)${PY_SPACE}*$`, 'u');
const DECIMAL = /^\p{Nd}$/u;

/** The value of a Unicode decimal digit: digits 0-9 of every script are 10 consecutive code points. */
function digitValue(code: number): number {
  let back = 0;
  while (DECIMAL.test(String.fromCodePoint(code - back - 1))) back++;
  return back % 10;
}

/** Python's `int(text)` (base 10), or undefined where it raises ValueError. */
export function pythonInt(text: string): bigint | undefined {
  const match = PY_INT.exec(text);
  if (!match) return undefined;
  let digits = '';
  for (const char of match[2]!) {
    const code = char.codePointAt(0)!;
    if (char === '_') continue;
    digits += code >= 0x30 && code <= 0x39 ? char : String(digitValue(code));
  }
  const value = BigInt(digits);
  return match[1] === '-' ? -value : value;
}

/** `bytes.decode('utf-8', 'surrogatepass')`: strict UTF-8 that also takes encoded surrogates (ED A0..BF xx). */
function utf8SurrogatePass(bytes: Buffer): string | undefined {
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let out = '';
  let from = 0;
  try {
    for (let at = bytes.indexOf(0xed); at >= 0 && at + 2 < bytes.length; at = bytes.indexOf(0xed, at + 1)) {
      const [second, third] = [bytes[at + 1]!, bytes[at + 2]!];
      if (second < 0xa0 || second > 0xbf || third < 0x80 || third > 0xbf) continue;
      out += strict.decode(bytes.subarray(from, at)) + String.fromCharCode(0xd000 | ((second & 0x3f) << 6) | (third & 0x3f));
      from = at + 3;
      at += 2;
    }
    return out + strict.decode(bytes.subarray(from));
  } catch {
    return undefined;
  }
}

function utf16(bytes: Buffer, bigEndian: boolean): string | undefined {
  if (bytes.length % 2 !== 0) return undefined;
  const copy = Buffer.from(bytes);
  return (bigEndian ? copy.swap16() : copy).toString('utf16le');
}

function utf32(bytes: Buffer, bigEndian: boolean): string | undefined {
  if (bytes.length % 4 !== 0) return undefined;
  let out = '';
  for (let at = 0; at < bytes.length; at += 4) {
    const code = bigEndian ? bytes.readUInt32BE(at) : bytes.readUInt32LE(at);
    if (code > 0x10ffff) return undefined;
    out += code >= 0xd800 && code <= 0xdfff ? String.fromCharCode(code) : String.fromCodePoint(code);
  }
  return out;
}

/**
 * The text `json.loads(bytes)` reads: the encoding found as `json.detect_encoding` finds it (a byte order
 * mark, else where the zero bytes are), decoded with 'surrogatepass'. Undefined where decoding fails.
 */
export function pythonJsonText(bytes: Buffer): string | undefined {
  const [b0, b1, b2, b3] = [bytes[0], bytes[1], bytes[2], bytes[3]];
  if (b0 === 0xff && b1 === 0xfe && b2 === 0 && b3 === 0) return utf32(bytes.subarray(4), false);
  if (b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff) return utf32(bytes.subarray(4), true);
  if (b0 === 0xff && b1 === 0xfe) return utf16(bytes.subarray(2), false);
  if (b0 === 0xfe && b1 === 0xff) return utf16(bytes.subarray(2), true);
  if (b0 === 0xef && b1 === 0xbb && b2 === 0xbf) return utf8SurrogatePass(bytes.subarray(3));
  if (bytes.length >= 4) {
    if (b0 === 0) return b1 ? utf16(bytes, true) : utf32(bytes, true);
    if (b1 === 0) return b2 || b3 ? utf16(bytes, false) : utf32(bytes, false);
  } else if (bytes.length === 2) {
    if (b0 === 0) return utf16(bytes, true);
    if (b1 === 0) return utf16(bytes, false);
  }
  return utf8SurrogatePass(bytes);
}

/** A number (or NaN, Infinity, -Infinity) of a JSON document, as written. */
export class PyNumber {
  constructor(readonly token: string) {}

  /** An integer token (Python reads it as an int); floats and the constants are Python floats. */
  get integer(): bigint | undefined {
    return /^-?[0-9]+$/.test(this.token) ? BigInt(this.token) : undefined;
  }

  /** Python's truth value: zero (0, -0, 0.0, 0e5) is false. */
  get truthy(): boolean {
    return !/^-?0+(?:\.0+)?(?:[eE][-+]?[0-9]+)?$/.test(this.token);
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|-?Infinity|NaN/y;

/**
 * The text with every number outside strings replaced by `marker(token)`; undefined at an unterminated string
 * (invalid JSON). One pass, so a hostile body costs linear time.
 */
function markNumbers(text: string, marker: (token: string) => string): string | undefined {
  let out = '';
  let from = 0;
  for (let at = 0; at < text.length; ) {
    const char = text[at]!;
    if (char === '"') {
      let end = at + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (end >= text.length) return undefined;
      at = end + 1;
    } else if (char === '-' || char === 'N' || char === 'I' || (char >= '0' && char <= '9')) {
      NUMBER.lastIndex = at;
      const token = NUMBER.exec(text)?.[0];
      if (token === undefined) return undefined; // "-" alone, "Nope": no JSON value starts so
      out += text.slice(from, at) + marker(token);
      at += token.length;
      from = at;
    } else {
      at++;
    }
  }
  return out + text.slice(from);
}

/**
 * Python's `json.loads` of text: JSON as JavaScript reads it, plus NaN, Infinity and -Infinity, with every
 * number kept as a PyNumber (so `-3` and `-3.0`, which Python tells apart, stay apart). Undefined where it
 * raises ValueError.
 */
export function pythonJson(text: string): unknown {
  // Numbers outside strings become strings with a prefix no document can guess, turned into PyNumbers below.
  const key = `\u0000${Math.random().toString(36).slice(2)}:`;
  const marked = markNumbers(text, (token) => `"\\u0000${key.slice(1)}${token}"`);
  if (marked === undefined) return undefined;
  try {
    return withNumbers(JSON.parse(marked), key);
  } catch {
    return undefined; // not JSON, or nested deeper than a stack goes (Python: RecursionError, a 500)
  }
}

/** The parsed value with the number markers turned into PyNumbers (a walk: cheaper than JSON.parse's reviver). */
function withNumbers(value: unknown, key: string): unknown {
  if (typeof value === 'string') return value.startsWith(key) ? new PyNumber(value.slice(key.length)) : value;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = withNumbers(value[i], key);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record)) record[name] = withNumbers(record[name], key);
  return record;
}

/** Python's truth value of a JSON value (pythonJson's). */
export function pythonTruthy(value: unknown): boolean {
  if (value instanceof PyNumber) return value.truthy;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}
