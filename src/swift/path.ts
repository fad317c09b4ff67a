/**
 * Splits a Swift API request target into version, account, container and object, the way Swift's proxy
 * does (`split_path(path, 1, 4, True)`). Pure.
 */

export interface SwiftPath {
  readonly version: string;
  /** Names are percent-decoded: one container is one key, however a client chose to encode its name. */
  readonly account: string;
  readonly container?: string;
  readonly object?: string;
  readonly query: URLSearchParams;
}

// Swift's default `valid_api_versions`.
const API_VERSIONS = new Set(['v1', 'v1.0']);

export class BadPathError extends Error {
  readonly code = 'SQP_ERR_BAD_PATH';
  readonly statusCode = 400;
}

/**
 * Percent-decoding as Python's `urllib.parse.unquote`, which Swift applies to copy headers (`X-Copy-From`,
 * `Destination`, `*-Account`): a `%` that does not start a valid escape is kept as it is, so that the proxy
 * reads the same name Swift does.
 */
export function unquote(value: string): string {
  return value.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

/** Returns undefined for anything that is not an account, container or object request (auth, info, ...). */
export function parseSwiftPath(rawUrl: string): SwiftPath | undefined {
  const queryAt = rawUrl.indexOf('?');
  const path = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1));
  if (!path.startsWith('/')) return undefined;

  // Swift splits the decoded path (eventlet unquotes PATH_INFO first): an encoded "/" separates names too.
  let decoded: string;
  let badEncoding = false;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    decoded = unquote(path);
    badEncoding = true;
  }
  const first = decoded.indexOf('/', 1);
  if (first < 0) return undefined;
  const version = decoded.slice(1, first);
  if (!API_VERSIONS.has(version)) return undefined;
  if (badEncoding) throw new BadPathError('Invalid percent-encoding or UTF-8 in the request path');

  const rest = decoded.slice(first + 1);
  const [account, container, ...objectParts] = rest.split('/');
  if (!account) return undefined;
  const object = objectParts.length > 0 ? objectParts.join('/') : undefined;
  return {
    version,
    account,
    // `/v1/AUTH_x/` is an account request, as in Swift.
    ...(container ? { container } : {}),
    ...(object ? { object } : {}),
    query,
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
 * A copy source or destination header (`X-Copy-From: c/o`, `Destination: /c/o`), relative to an account:
 * Swift unquotes it and strips one leading slash.
 */
export function parseContainerObject(value: string): { container: string; object: string } | undefined {
  const decoded = unquote(value.trim());
  const path = decoded.startsWith('/') ? decoded.slice(1) : decoded;
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) return undefined;
  return { container: path.slice(0, slash), object: path.slice(slash + 1) };
}
