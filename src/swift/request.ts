/**
 * A client request as Swift reads it. Everything the proxy decides about a request reads it through here,
 * and the headers Swift gets are the ones built here, so the proxy and Swift never read two different
 * requests. Pure.
 *
 * - Headers. Swift runs under eventlet's WSGI server, which files every header under
 *   `HTTP_<NAME upper-cased, "-" as "_">` and joins repeated ones with ",": `X-Auth-Token`, `x_auth_token`
 *   and `X-AUTH_token` are one header to Swift, for tokens, copy, symlink and metadata headers alike. Only
 *   `Content-Type` and `Content-Length` are read by their exact names (first occurrence); their underscore
 *   spellings are dropped.
 * - Bytes. Node hands header values and the request target over as latin-1 strings, one character per
 *   byte; Swift percent-decodes names to bytes with Python's `unquote` (a `%` that starts no valid escape
 *   stays as it is) and then reads them as UTF-8.
 * - Query strings as Python's `parse_qsl(keep_blank_values=True)` splits them; swob's `req.params` keeps
 *   the last of repeated keys, tempurl the first.
 */

/** A header name as Swift compares it: lower case, `_` as `-`. */
export function swiftHeaderName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

/** Swift's `config_true_value` of a header or parameter: one of its true spellings, any case. */
export function swiftTrue(value: string | undefined): boolean {
  return value !== undefined && TRUE_VALUES.has(value.toLowerCase());
}

const TRUE_VALUES = new Set(['true', '1', 'yes', 'on', 't', 'y']);

/** Headers eventlet reads by their exact names, never from an `HTTP_*` key. */
const EXACT_ONLY = new Set(['content-type', 'content-length']);

/** The request's headers as Swift's environ holds them. */
export class SwiftHeaders {
  private constructor(private readonly values: ReadonlyMap<string, string>) {}

  /** From Node's `rawHeaders` (name, value, name, value, ... in arrival order). */
  static fromRaw(raw: readonly string[]): SwiftHeaders {
    const values = new Map<string, string>();
    for (let i = 0; i + 1 < raw.length; i += 2) add(values, raw[i]!, raw[i + 1]!);
    return new SwiftHeaders(values);
  }

  /** From a headers object (tests, and requests the proxy makes itself). */
  static from(headers: Readonly<Record<string, string | readonly string[] | undefined>>): SwiftHeaders {
    const values = new Map<string, string>();
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      for (const one of typeof value === 'string' ? [value] : value) add(values, name, one);
    }
    return new SwiftHeaders(values);
  }

  /** The value Swift sees under this name (any spelling), or undefined when absent. */
  get(name: string): string | undefined {
    return this.values.get(name);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** Every header, by Swift name. */
  entries(): IterableIterator<[string, string]> {
    return this.values.entries();
  }

  names(): IterableIterator<string> {
    return this.values.keys();
  }

  /** The same headers with some set (a value) or removed (undefined), by Swift name. */
  with(changes: Readonly<Record<string, string | undefined>>): SwiftHeaders {
    const values = new Map(this.values);
    for (const [name, value] of Object.entries(changes)) {
      if (value === undefined) values.delete(name);
      else values.set(name, value);
    }
    return new SwiftHeaders(values);
  }
}

const isSpace = (code: number) => code === 0x20 || code === 0x09 || code === 0x0d || code === 0x0a;

/** Whether the value starts or ends with whitespace (Node's parser already trims most values). */
function hasOuterSpace(value: string): boolean {
  return value.length > 0 && (isSpace(value.charCodeAt(0)) || isSpace(value.charCodeAt(value.length - 1)));
}

function add(values: Map<string, string>, name: string, value: string): void {
  const lower = name.toLowerCase();
  let key: string;
  if (EXACT_ONLY.has(lower)) {
    // eventlet takes the first of these, by exact name.
    if (values.has(lower)) return;
    key = lower;
  } else {
    key = swiftHeaderName(lower);
    if (EXACT_ONLY.has(key)) return; // Content_Type, content_length: eventlet drops them
  }
  const trimmed = hasOuterSpace(value) ? value.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '') : value;
  const prior = values.get(key);
  values.set(key, prior === undefined || EXACT_ONLY.has(key) ? trimmed : `${prior},${trimmed}`);
}

/**
 * A string from Node (latin-1, one character per byte) as the bytes it stands for. A string holding
 * characters above U+00FF did not come off the wire (tests, names the proxy built) and is taken as UTF-8.
 */
export function wireBytes(value: string): Buffer {
  // eslint-disable-next-line no-control-regex
  return /[^\u0000-\u00ff]/.test(value) ? Buffer.from(value, 'utf8') : Buffer.from(value, 'latin1');
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/** Python's `urllib.parse.unquote` to bytes: `%XX` becomes a byte, anything else stays as it is. */
export function unquoteBytes(value: string): Buffer {
  if (!value.includes('%')) return wireBytes(value);
  const bytes = wireBytes(value);
  const out = Buffer.allocUnsafe(bytes.length);
  let length = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === 0x25 && i + 2 < bytes.length + 0 && HEX.test(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!))) {
      out[length++] = parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16);
      i += 2;
    } else {
      out[length++] = byte;
    }
  }
  return out.subarray(0, length);
}

// ignoreBOM: a leading U+FEFF is part of the name to Python, not a byte-order mark to drop.
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LENIENT_UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Bytes as a UTF-8 string, or undefined where Swift would find them invalid. */
export function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * A percent-encoded name (a path, `X-Copy-From`, `Destination`, `*-Account`) as Swift reads it: Python's
 * unquote, then UTF-8. Undefined when the result is not valid UTF-8, which Swift refuses (412) wherever it
 * becomes a path.
 */
export function unquoteName(value: string): string | undefined {
  // Plain ASCII without escapes (most names) reads as itself.
  // eslint-disable-next-line no-control-regex
  if (!value.includes('%') && /^[\u0000-\u007f]*$/.test(value)) return value;
  return strictUtf8(unquoteBytes(value));
}

/** Query parameters as Python's `parse_qsl(qs, keep_blank_values=True)` yields them, in order. */
export class SwiftQuery {
  static readonly EMPTY = new SwiftQuery([]);

  private constructor(private readonly pairs: ReadonlyArray<readonly [string, string]>) {}

  static parse(query: string | undefined): SwiftQuery {
    if (!query) return SwiftQuery.EMPTY;
    const pairs: Array<[string, string]> = [];
    for (const field of query.split('&')) {
      if (field === '') continue;
      const eq = field.indexOf('=');
      const name = eq < 0 ? field : field.slice(0, eq);
      const value = eq < 0 ? '' : field.slice(eq + 1);
      pairs.push([decodeQueryPart(name), decodeQueryPart(value)]);
    }
    return new SwiftQuery(pairs);
  }

  has(name: string): boolean {
    return this.pairs.some(([key]) => key === name);
  }

  /** swob's `req.params[name]`: the last value given. */
  last(name: string): string | undefined {
    for (let i = this.pairs.length - 1; i >= 0; i--) if (this.pairs[i]![0] === name) return this.pairs[i]![1];
    return undefined;
  }

  /** `parse_qs(...)[name][0]`, as tempurl reads its parameters: the first value given. */
  first(name: string): string | undefined {
    return this.pairs.find(([key]) => key === name)?.[1];
  }

  get size(): number {
    return this.pairs.length;
  }
}

function decodeQueryPart(part: string): string {
  const spaced = part.includes('+') ? part.replaceAll('+', ' ') : part;
  return spaced.includes('%') ? LENIENT_UTF8.decode(unquoteBytes(spaced)) : spaced;
}
