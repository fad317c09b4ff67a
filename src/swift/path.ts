/**
 * Splits a Swift API request target into version, account, container and object the way Swift's proxy
 * server does: eventlet unquotes the path to bytes (Python's `unquote`, which keeps `%`, `%z`, `%2` as
 * literal text), the proxy refuses bytes that are not UTF-8 or hold NUL (412), and `split_path(path, 1, 4,
 * True)` picks the controller. Pure.
 */
import { SwiftQuery, strictUtf8, unquoteName } from './request.js';

export interface SwiftPath {
  readonly version: string;
  /** Names are as Swift reads them: one container is one key, however a client chose to encode its name. */
  readonly account: string;
  readonly container?: string;
  readonly object?: string;
  readonly query: SwiftQuery;
  /** The whole path as Swift reads it (PATH_INFO, decoded), for what middleware sign or build from it. */
  readonly decoded: string;
  /** The query string as sent (after the first `?`), for requests the proxy makes on the client's behalf. */
  readonly rawQuery: string | undefined;
}

// Swift's default `valid_api_versions`.
const API_VERSIONS = new Set(['v1', 'v1.0']);

/** Python's `str.split(sep, maxsplit)`. */
function splitN(value: string, separator: string, maxSplit: number): string[] {
  const out: string[] = [];
  let rest = value;
  while (out.length < maxSplit) {
    const at = rest.indexOf(separator);
    if (at < 0) break;
    out.push(rest.slice(0, at));
    rest = rest.slice(at + separator.length);
  }
  out.push(rest);
  return out;
}

/**
 * The account, container or object a request target reaches in Swift's proxy server; undefined for
 * anything no storage controller handles: auth, /info, /healthcheck, other versions, and paths Swift
 * refuses itself (invalid UTF-8 or NUL: 412; an empty account or container: 412 Bad URL). What middleware
 * in front of the proxy server makes of other paths (S3, host-based addressing) is read elsewhere.
 */
export function parseSwiftPath(rawUrl: string): SwiftPath | undefined {
  const queryAt = rawUrl.indexOf('?');
  const rawPath = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
  const rawQuery = queryAt < 0 ? undefined : rawUrl.slice(queryAt + 1);
  return pathFromDecoded(unquoteName(rawPath), rawQuery);
}

/**
 * The same, for a path middleware made (domain_remap): PATH_INFO as bytes, and the query as sent.
 */
export function parsePathInfo(pathInfo: Uint8Array, rawQuery: string | undefined): SwiftPath | undefined {
  return pathFromDecoded(strictUtf8(pathInfo), rawQuery);
}

function pathFromDecoded(decoded: string | undefined, rawQuery: string | undefined): SwiftPath | undefined {
  if (decoded === undefined || decoded === '' || decoded.includes('\0')) return undefined;
  // An encoded "/" separates names too: Swift splits the decoded path.
  const segments = splitN(decoded, '/', 4);
  if (segments[0] !== '' || segments.length < 2 || segments[1] === '') return undefined;
  const [, version, account, container, object] = segments as [string, string, string?, string?, string?];
  if (!account || !API_VERSIONS.has(version)) return undefined;
  if (!container && object) return undefined; // /v1/a//o: Swift answers 412 Bad URL
  return {
    version,
    account,
    // `/v1/AUTH_x/` is an account request and `/v1/AUTH_x/c/` a container request, as in Swift.
    ...(container ? { container } : {}),
    ...(container && object ? { object } : {}),
    query: SwiftQuery.parse(rawQuery),
    decoded,
    rawQuery,
  };
}

/** The canonical, encoded path of a name, for the proxy's own requests to Swift. */
export function encodePath(version: string, account: string, container?: string, object?: string): string {
  let out = `/${version}/${encodeURIComponent(account)}`;
  if (container !== undefined) out += `/${encodeURIComponent(container)}`;
  if (object !== undefined) out += `/${object.split('/').map(encodeURIComponent).join('/')}`;
  return out;
}

/**
 * A copy source or destination header (`X-Copy-From: c/o`, `Destination: /c/o`), relative to an account,
 * as Swift's `check_path_header` reads it: unquoted, one leading "/" added if missing, then container and
 * object, both non-empty. Undefined where Swift answers 412 (or the name is not UTF-8, which Swift cannot
 * store either).
 */
export function parseContainerObject(value: string): { container: string; object: string } | undefined {
  const decoded = unquoteName(value.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, ''));
  if (decoded === undefined) return undefined;
  const path = decoded.startsWith('/') ? decoded : `/${decoded}`;
  const [first, container, object] = splitN(path, '/', 2);
  if (first !== '' || !container || !object) return undefined;
  return { container, object };
}

/** An account header (`X-Copy-From-Account`, `Destination-Account`) as Swift's `check_account_format` reads it. */
export function parseAccountName(value: string): string | undefined {
  const decoded = unquoteName(value);
  if (!decoded || decoded.includes('/')) return undefined;
  return decoded;
}
