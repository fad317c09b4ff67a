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

const TOKENS = /"(?:[^"\\]|\\[\s\S])*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|-?Infinity|NaN/g;

/**
 * Python's `json.loads` of text: JSON as JavaScript reads it, plus NaN, Infinity and -Infinity, with every
 * number kept as a PyNumber (so `-3` and `-3.0`, which Python tells apart, stay apart). Undefined where it
 * raises ValueError.
 */
export function pythonJson(text: string): unknown {
  // Numbers outside strings become objects under a key no document can guess, turned into PyNumbers below.
  const key = `\u0000py-number-${Math.random().toString(36).slice(2)}`;
  const marked = text.replace(TOKENS, (token) => (token.startsWith('"') ? token : `{${JSON.stringify(key)}:${JSON.stringify(token)}}`));
  try {
    return JSON.parse(marked, (_name, value: unknown) => {
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length === 1 && keys[0] === key) return new PyNumber((value as Record<string, string>)[key]!);
      }
      return value;
    });
  } catch {
    return undefined;
  }
}

/** Python's truth value of a JSON value (pythonJson's). */
export function pythonTruthy(value: unknown): boolean {
  if (value instanceof PyNumber) return value.truthy;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length > 0;
  return Boolean(value);
}
