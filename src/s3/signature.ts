/**
 * S3 request signatures, checked as Swift's s3api middleware checks them (s3api/s3request.py), so that an S3
 * write counts only once its signature is one Swift will accept. AWS Signature Version 2 and 4, in the
 * Authorization header or in the query (presigned URLs); the secret is the tempauth user's key. Pure: the
 * request's bytes, the secret and the clock are arguments.
 *
 * s3api builds what it signs from the raw request: the header list as received (names as sent, for the
 * x-amz-* and signed headers), the path before and after percent-decoding, and the query parameters decoded
 * to bytes with the last of repeated ones kept.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** swob's `req.params`: `parse_qsl(qs, keep_blank_values=True, encoding='latin-1')`, last value kept. Values are byte strings (latin-1). */
export function latin1Params(query: string | undefined): Map<string, string> {
  const params = new Map<string, string>();
  if (!query) return params;
  for (const field of query.split('&')) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    const decode = (part: string) => bytesOf(part.replaceAll('+', ' ')).toString('latin1');
    params.set(decode(eq < 0 ? field : field.slice(0, eq)), decode(eq < 0 ? '' : field.slice(eq + 1)));
  }
  return params;
}

/** Python's unquote to bytes, on a latin-1 string. */
function bytesOf(value: string): Buffer {
  return Buffer.from(value.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
}

/** swob's `wsgi_quote(value, safe)` of a latin-1 (byte) string: every byte outside the safe set as %XX. */
function quoteBytes(value: string, safe: RegExp): string {
  let out = '';
  for (const char of value) out += safe.test(char) ? char : `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

const UNRESERVED = /[A-Za-z0-9\-_.~]/;
const UNRESERVED_OR_SLASH = /[A-Za-z0-9\-_.~/]/;

/** s3api's `_header_strip`: control characters and spaces at either end; nothing left → undefined. */
function headerStrip(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const stripped = value.replace(/^[\x00-\x20]*|[\x00-\x20]*$/g, '');
  return value !== '' && stripped === '' ? undefined : stripped;
}

/** Python's `str.split()` (no argument) of a latin-1 string, joined with single spaces. */
function collapseWhitespace(value: string): string {
  return value.split(/[\t\n\v\f\r \x1c-\x1f\x85\xa0]+/).filter((part) => part !== '').join(' ');
}

/** The sub-resources that are part of a V2 signature (s3request.py ALLOWED_SUB_RESOURCES). */
const SUB_RESOURCES = new Set([
  'acl', 'cors', 'delete', 'lifecycle', 'location', 'logging', 'notification', 'partNumber', 'policy', 'requestPayment', 'response-cache-control',
  'response-content-disposition', 'response-content-encoding', 'response-content-language', 'response-content-type', 'response-expires',
  'restore', 'tagging', 'torrent', 'uploadId', 'uploads', 'versionId', 'versioning', 'versions', 'website',
]);

/** The request as s3api sees it when it signs. */
export interface SignedRequest {
  readonly method: string;
  /** The path as sent (RAW_PATH_INFO), without the query. */
  readonly rawPath: string;
  /** The path percent-decoded (PATH_INFO), as a latin-1 (byte) string. */
  readonly decodedPath: string;
  /** The query string as sent, without "?". */
  readonly query: string | undefined;
  /** Header names and values as received (Node's rawHeaders), values as latin-1 strings. */
  readonly rawHeaders: readonly string[];
  /** Virtual-hosted style: the bucket read from Host, which V2 signs in front of the path. */
  readonly bucketInHost: string | undefined;
}

export interface S3Settings {
  /** `[filter:s3api] location`: the region V4 signatures are scoped to. */
  readonly location: string;
  /** `[filter:s3api] allowable_clock_skew`, seconds. */
  readonly clockSkewSeconds: number;
}

/** Why a request is refused, as s3api says it. */
export interface S3Error {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

const ACCESS_DENIED = (message = 'Access Denied.'): S3Error => ({ status: 403, code: 'AccessDenied', message });
export const SIGNATURE_MISMATCH: S3Error = {
  status: 403,
  code: 'SignatureDoesNotMatch',
  message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
};
const SKEWED: S3Error = { status: 403, code: 'RequestTimeTooSkewed', message: 'The difference between the request time and the current time is too large.' };

/** A parsed S3 credential: who signs, and how. */
export interface S3Credential {
  readonly accessKey: string;
  readonly version: 2 | 4;
  readonly style: 'header' | 'query';
}

/** The request's headers, lower-cased names (any spelling merged as eventlet merges them): for Date and the like. */
type HeaderLookup = (name: string) => string | undefined;

/** Who the request says it comes from, or why s3api refuses it before asking anyone. */
export function s3Credential(request: SignedRequest, header: HeaderLookup): S3Credential | S3Error {
  const params = latin1Params(request.query);
  const authorization = header('authorization');
  const v4 = params.has('X-Amz-Credential') || (authorization !== undefined && authorization.startsWith('AWS4-HMAC-SHA256 '));
  const queryAuth = v4 ? params.has('X-Amz-Credential') : params.has('AWSAccessKeyId');
  if (!queryAuth && authorization === undefined) return ACCESS_DENIED();
  if (v4) {
    const credential = queryAuth ? params.get('X-Amz-Credential')! : authorization!.split('Credential=')[1]?.split(',')[0] ?? '';
    const parts = credential.split('/');
    if (!parts[0] || parts.length !== 5) return ACCESS_DENIED();
    return { accessKey: parts[0], version: 4, style: queryAuth ? 'query' : 'header' };
  }
  if (queryAuth) {
    const access = params.get('AWSAccessKeyId');
    return access ? { accessKey: access, version: 2, style: 'query' } : ACCESS_DENIED();
  }
  if (!authorization!.startsWith('AWS ') || !authorization!.includes(':')) return ACCESS_DENIED();
  const credential = authorization!.slice(4);
  return { accessKey: credential.slice(0, credential.lastIndexOf(':')), version: 2, style: 'header' };
}

/** s3api's `mktime`: RFC 2822 (email.utils.parsedate_tz), else the given strptime format, as UTC. */
function parseTime(value: string | undefined, basic: boolean): number | undefined {
  if (!value) return undefined;
  const compact = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (basic && compact) return Date.UTC(+compact[1]!, +compact[2]! - 1, +compact[3]!, +compact[4]!, +compact[5]!, +compact[6]!) / 1000;
  const iso = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(value);
  if (!basic && iso) return Date.UTC(+iso[1]!, +iso[2]! - 1, +iso[3]!, +iso[4]!, +iso[5]!, +iso[6]!) / 1000;
  if (/^[A-Za-z]{3},? \d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(:\d{2})? ([A-Z]{2,4}|[+-]\d{4})$|^\d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(:\d{2})? ([A-Z]{2,4}|[+-]\d{4})$/.test(value)) {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
  }
  return undefined;
}

function amzDate(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a, 'latin1');
  const y = Buffer.from(b, 'latin1');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Raw headers as (lower-cased, stripped name, value) in arrival order. */
function rawPairs(rawHeaders: readonly string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!.toLowerCase().trim(), rawHeaders[i + 1]!.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '')]);
  return pairs;
}

/**
 * Whether s3api (with tempauth, whose key is the S3 secret) accepts the request's signature: undefined when it
 * does, else the error it answers with.
 */
export function checkS3Signature(request: SignedRequest, header: HeaderLookup, credential: S3Credential, secret: string, settings: S3Settings, nowSeconds: number): S3Error | undefined {
  const signed = s3SignedString(request, header, credential, settings, nowSeconds);
  if ('code' in signed) return signed;
  return signed.matches(secret) ? undefined : SIGNATURE_MISMATCH;
}

/**
 * What the request's signature signs, as s3api reads it (its `string_to_sign`, bytes), the signature the client
 * gave, and whether a secret gives that signature: what s3token sends Keystone's `/v3/s3tokens`, and what a cached
 * secret is checked with. Or the error s3api answers before any secret is looked at.
 */
export interface S3SignedString {
  readonly stringToSign: Buffer;
  readonly signature: string;
  matches(secret: string): boolean;
}

export function s3SignedString(request: SignedRequest, header: HeaderLookup, credential: S3Credential, settings: S3Settings, nowSeconds: number): S3SignedString | S3Error {
  const params = latin1Params(request.query);
  return credential.version === 2 ? signedV2(request, header, params, credential, settings, nowSeconds) : signedV4(request, header, params, credential, settings, nowSeconds);
}

function signedV2(request: SignedRequest, header: HeaderLookup, params: Map<string, string>, credential: S3Credential, settings: S3Settings, now: number): S3SignedString | S3Error {
  let signature: string;
  let dateLine: string | undefined;
  const amz = new Map<string, string[]>();
  for (const [name, value] of rawPairs(request.rawHeaders)) {
    if (name.startsWith('x-amz-')) amz.set(name, [...(amz.get(name) ?? []), value.trim()]);
  }
  if (credential.style === 'query') {
    const expires = Number(params.get('Expires'));
    if (!params.get('Expires') || !Number.isFinite(expires) || now > expires || expires >= 2 ** 31) return ACCESS_DENIED('Request has expired');
    signature = params.get('Signature') ?? '';
    if (!signature) return ACCESS_DENIED();
    dateLine = params.get('Expires');
  } else {
    const date = header('date');
    const amzDateHeader = header('x-amz-date');
    if (!date && !amzDateHeader) return ACCESS_DENIED('AWS authentication requires a valid Date or x-amz-date header');
    const timestamp = parseTime(amzDateHeader ?? date, false);
    if (timestamp === undefined || timestamp < 0) return ACCESS_DENIED('AWS authentication requires a valid Date or x-amz-date header');
    if (Math.abs(Math.trunc(timestamp) - Math.trunc(now)) > settings.clockSkewSeconds) return SKEWED;
    signature = header('authorization')!.slice(4).slice(header('authorization')!.slice(4).lastIndexOf(':') + 1);
    dateLine = amz.has('x-amz-date') ? '' : date;
  }
  const lines = [request.method, headerStrip(header('content-md5')) ?? '', headerStrip(header('content-type')) ?? ''];
  if (dateLine !== undefined) lines.push(dateLine);
  for (const name of [...amz.keys()].sort()) lines.push(`${name}:${amz.get(name)!.join(',')}`);
  let resource = request.bucketInHost ? `/${request.bucketInHost}${request.rawPath}` : request.rawPath;
  if (request.query !== undefined) {
    const sub = [...params.entries()].filter(([key]) => SUB_RESOURCES.has(key)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (sub.length > 0) resource += `?${sub.map(([key, value]) => (value ? `${key}=${value}` : key)).join('&')}`;
  }
  lines.push(resource);
  const stringToSign = Buffer.from(lines.join('\n'), 'latin1');
  return { stringToSign, signature, matches: (secret) => sameString(signature, createHmac('sha1', Buffer.from(secret, 'utf8')).update(stringToSign).digest('base64').trim()) };
}

function signedV4(request: SignedRequest, header: HeaderLookup, params: Map<string, string>, credential: S3Credential, settings: S3Settings, now: number): S3SignedString | S3Error {
  const query = credential.style === 'query';
  let timestamp: number | undefined;
  if (query && params.has('X-Amz-Date')) timestamp = parseTime(params.get('X-Amz-Date'), true);
  else timestamp = header('x-amz-date') ? parseTime(header('x-amz-date'), true) : parseTime(header('date'), false);
  if (timestamp === undefined || timestamp < 0) return ACCESS_DENIED('AWS authentication requires a valid Date or x-amz-date header');
  timestamp = Math.trunc(timestamp);
  let signature: string;
  let credentialText: string;
  let signedHeaders: string;
  if (query) {
    const expires = params.get('X-Amz-Expires');
    if (expires === undefined) return ACCESS_DENIED();
    if (!/^\s*[-+]?\d+\s*$/.test(expires) || Number(expires) < 0 || Number(expires) > 604_800) return { status: 400, code: 'AuthorizationQueryParametersError', message: 'X-Amz-Expires is not valid' };
    if (timestamp + Number(expires) < now) return ACCESS_DENIED('Request has expired');
    if (params.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return { status: 400, code: 'InvalidArgument', message: 'Invalid Arguments' };
    credentialText = params.get('X-Amz-Credential') ?? '';
    signature = params.get('X-Amz-Signature') ?? '';
    signedHeaders = params.get('X-Amz-SignedHeaders') ?? '';
    if (!signature) return ACCESS_DENIED();
    if (!params.has('X-Amz-SignedHeaders')) return { status: 400, code: 'AuthorizationHeaderMalformed', message: 'The authorization header is malformed.' };
  } else {
    if (!header('date') && !header('x-amz-date')) return ACCESS_DENIED('AWS authentication requires a valid Date or x-amz-date header');
    if (Math.abs(timestamp - Math.trunc(now)) > settings.clockSkewSeconds) return SKEWED;
    const authorization = header('authorization')!;
    credentialText = authorization.split('Credential=')[1]?.split(',')[0] ?? '';
    signature = authorization.split('Signature=')[1]?.split(',')[0] ?? '';
    if (!signature) return ACCESS_DENIED();
    signedHeaders = authorization.split('SignedHeaders=')[1]?.split(',')[0] ?? '';
    if (!signedHeaders) return { status: 400, code: 'AuthorizationHeaderMalformed', message: 'The authorization header is malformed.' };
  }
  const [, date, region, service, terminal] = credentialText.split('/');
  const scopeDate = amzDate(timestamp).slice(0, 8);
  let location = settings.location;
  if (region !== location && !(location.toLowerCase() !== location && region === location.toLowerCase())) {
    return { status: 400, code: query ? 'AuthorizationQueryParametersError' : 'AuthorizationHeaderMalformed', message: `the region '${region}' is wrong; expecting '${location}'` };
  }
  if (region === location.toLowerCase()) location = location.toLowerCase();
  if (date !== scopeDate || service !== 's3' || terminal !== 'aws4_request') {
    return { status: 400, code: query ? 'AuthorizationQueryParametersError' : 'AuthorizationHeaderMalformed', message: 'The authorization header is malformed.' };
  }

  // Canonical headers: those signed, from the raw header list (same names joined with ","), values whitespace-folded.
  const wanted = new Set(signedHeaders.split(';'));
  const values = new Map<string, string[]>();
  for (const [name, value] of rawPairs(request.rawHeaders)) {
    const stripped = headerStrip(value || '');
    if (stripped === undefined) return { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' };
    values.set(name, [...(values.get(name) ?? []), collapseWhitespace(stripped)]);
  }
  if (values.has('host') && /^Boto\/2\.[0-9]\.[0-2]/.test(values.get('user-agent')?.join(',') ?? '')) {
    values.set('host', [values.get('host')!.join(',').split(':')[0]!]);
  }
  const signed = [...values.keys()].filter((name) => wanted.has(name)).sort();
  if (signed.length !== wanted.size) return SIGNATURE_MISMATCH;

  let payload: string;
  if (query) payload = 'UNSIGNED-PAYLOAD';
  else {
    const hash = header('x-amz-content-sha256');
    if (hash === undefined) return { status: 400, code: 'InvalidRequest', message: 'Missing required header for this request: x-amz-content-sha256' };
    payload = hash;
  }
  const canonicalQuery = [...params.entries()]
    .filter(([key]) => key !== 'Signature' && key !== 'X-Amz-Signature')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${quoteBytes(key, UNRESERVED)}=${quoteBytes(value, UNRESERVED)}`)
    .join('&');
  const canonical = [
    request.method.toUpperCase(),
    quoteBytes(request.decodedPath, UNRESERVED_OR_SLASH),
    canonicalQuery,
    signed.map((name) => `${name}:${values.get(name)!.join(',')}\n`).join(''),
    signed.join(';'),
    payload,
  ].join('\n');
  const stringToSign = Buffer.from(['AWS4-HMAC-SHA256', amzDate(timestamp), [scopeDate, location, 's3', 'aws4_request'].join('/'), createHash('sha256').update(Buffer.from(canonical, 'latin1')).digest('hex')].join('\n'), 'latin1');
  const matches = (secret: string) => {
    let key: Buffer = Buffer.from(`AWS4${secret}`, 'utf8');
    for (const piece of [scopeDate, location, 's3', 'aws4_request']) key = createHmac('sha256', key).update(piece, 'utf8').digest();
    return sameString(signature, createHmac('sha256', key).update(stringToSign).digest('hex'));
  };
  return { stringToSign, signature, matches };
}
