/**
 * The signatures of Swift's tempurl and formpost middleware, checked as Swift checks them (swift/common/
 * digest.py, tempurl.py, formpost.py), so that the proxy counts a signed write only once its signature is
 * one Swift will accept. Pure: the keys and the clock are arguments.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SwiftQuery } from '../swift/request.js';
import { pythonInt } from '../swift/python-readers.js';

const HEX_DIGESTS: Readonly<Record<number, string>> = { 40: 'sha1', 64: 'sha256', 128: 'sha512' };

/**
 * `extract_digest_and_algorithm`: a hex digest (its length names sha1, sha256 or sha512), or
 * `<algorithm>:<base64 digest>` (standard or URL-safe base64). Undefined where Swift raises ValueError.
 */
export function digestAndAlgorithm(value: string): { algorithm: string; hex: string } | undefined {
  const colon = value.indexOf(':');
  if (colon >= 0) {
    const algorithm = value.slice(0, colon);
    let encoded = value.slice(colon + 1);
    if (/[-_]/.test(encoded) && !/[+/]/.test(encoded)) encoded = encoded.replaceAll('-', '+').replaceAll('_', '/');
    const stripped = encoded.replace(/^=+|=+$/g, '');
    if (!/^[A-Za-z0-9+/]*$/.test(stripped) || stripped.length % 4 === 1) return undefined;
    return { algorithm, hex: Buffer.from(stripped, 'base64').toString('hex') };
  }
  if (!/^[0-9A-Fa-f]*$/.test(value) || value.length % 2 !== 0) return undefined;
  const algorithm = HEX_DIGESTS[value.length];
  return algorithm ? { algorithm, hex: value } : undefined;
}

function hmacHex(algorithm: string, key: string, message: string): string {
  return createHmac(algorithm, Buffer.from(key, 'utf8')).update(Buffer.from(message, 'utf8')).digest('hex');
}

/** Swift's `streq_const_time`. */
function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The tempurl parameters of a query (the first of repeated ones, as tempurl reads them). */
export interface TempUrlParams {
  readonly sig: string | undefined;
  readonly expires: string | undefined;
  readonly prefix: string | undefined;
  readonly ipRange: string | undefined;
}

/** Undefined when the request is no tempurl request (neither `temp_url_sig` nor `temp_url_expires`). */
export function tempUrlParams(query: SwiftQuery): TempUrlParams | undefined {
  const sig = query.first('temp_url_sig');
  const expires = query.first('temp_url_expires');
  if (sig === undefined && expires === undefined) return undefined;
  return { sig, expires, prefix: query.first('temp_url_prefix'), ipRange: query.first('temp_url_ip_range') };
}

/** `temp_url_expires` as Swift reads it: unix seconds or `YYYY-MM-DDTHH:MM:SSZ`; 0 when unreadable or past. */
export function tempUrlExpiry(value: string | undefined, nowSeconds: number): bigint {
  if (value === undefined) return 0n;
  // Python's int() (any Unicode digits and spaces, "_" between digits), exactly: tempurl signs `%i` of it.
  let seconds = pythonInt(value);
  if (seconds === undefined) {
    const iso = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/.exec(value);
    const utc = iso ? Date.UTC(+iso[1]!, +iso[2]! - 1, +iso[3]!, +iso[4]!, +iso[5]!, +iso[6]!) / 1000 : 0;
    seconds = Number.isFinite(utc) ? BigInt(Math.trunc(utc)) : 0n;
  }
  return seconds < nowSeconds ? 0n : seconds;
}

export interface TempUrlKeys {
  readonly account: readonly string[];
  readonly container: readonly string[];
}

export interface TempUrlCheck {
  readonly method: string;
  /** The path as tempurl splits it: `/v1/<account>/<container>/<object>` (only `v1`). */
  readonly version: string;
  readonly account: string;
  readonly container: string;
  readonly object: string;
  readonly params: TempUrlParams;
  readonly keys: TempUrlKeys;
  readonly methods: readonly string[];
  readonly digests: readonly string[];
  readonly nowSeconds: number;
}

/**
 * Whether Swift's tempurl middleware accepts the signature, and with which key's scope: an account key
 * authorises the whole account, a container key that container. The client address of an IP-restricted
 * signature is checked by Swift itself (it sees the proxy's address, not the client's); the range is part of
 * the signed message, so only its owner can have signed it.
 */
export function checkTempUrl(check: TempUrlCheck): { valid: true; scope: 'account' | 'container' } | { valid: false } {
  const { params } = check;
  const expires = tempUrlExpiry(params.expires, check.nowSeconds);
  if (!params.sig || !expires) return { valid: false };
  const digest = digestAndAlgorithm(params.sig);
  if (!digest || !check.digests.includes(digest.algorithm)) return { valid: false };
  if (!check.methods.includes(check.method) || check.version !== 'v1' || check.object.replace(/^\/+|\/+$/g, '') === '') return { valid: false };
  let path: string;
  if (params.prefix === undefined) path = `/v1/${check.account}/${check.container}/${check.object}`;
  else {
    if (!check.object.startsWith(params.prefix)) return { valid: false };
    path = `prefix:/v1/${check.account}/${check.container}/${params.prefix}`;
  }
  const message = `${params.ipRange ? `ip=${params.ipRange}\n` : ''}${check.method}\n${expires}\n${path}`;
  const scoped: Array<[string, 'account' | 'container']> = [
    ...check.keys.account.map((key) => [key, 'account'] as [string, 'account']),
    ...check.keys.container.map((key) => [key, 'container'] as [string, 'container']),
  ];
  for (const [key, scope] of scoped) {
    if (sameString(digest.hex, hmacHex(digest.algorithm, key, message))) return { valid: true, scope };
  }
  return { valid: false };
}

export interface FormPostCheck {
  /** The form's path, as Swift's PATH_INFO holds it (decoded). */
  readonly path: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly keys: readonly string[];
  readonly digests: readonly string[];
  readonly nowSeconds: number;
}

/** Why formpost refuses a file, as its answer says it; undefined when the file is authorised. */
export function checkFormPost(check: FormPostCheck): 'invalid signature' | 'form expired' | 'expired not an integer' | undefined {
  if (check.keys.length === 0) return 'invalid signature';
  const attr = (name: string) => check.attributes.get(name);
  const expires = attr('expires') || '0';
  const seconds = pythonInt(expires);
  if (seconds === undefined) return 'expired not an integer';
  if (seconds < check.nowSeconds) return 'form expired';
  const digest = digestAndAlgorithm(attr('signature') ?? '');
  if (!digest || !check.digests.includes(digest.algorithm)) return 'invalid signature';
  const message = [check.path, attr('redirect') || '', attr('max_file_size') || '0', attr('max_file_count') || '0', expires].join('\n');
  return check.keys.some((key) => sameString(hmacHex(digest.algorithm, key, message), digest.hex)) ? undefined : 'invalid signature';
}
