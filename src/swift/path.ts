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

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadPathError('Invalid percent-encoding or UTF-8 in the request path');
  }
}

/** Returns undefined for anything that is not an account, container or object request (auth, info, ...). */
export function parseSwiftPath(rawUrl: string): SwiftPath | undefined {
  const queryAt = rawUrl.indexOf('?');
  const path = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1));
  if (!path.startsWith('/')) return undefined;

  const first = path.indexOf('/', 1);
  if (first < 0) return undefined;
  const version = path.slice(1, first);
  if (!API_VERSIONS.has(version)) return undefined;

  const rest = path.slice(first + 1);
  const [account, container, ...objectParts] = rest.split('/');
  if (!account) return undefined;
  const object = objectParts.length > 0 ? objectParts.join('/') : undefined;
  return {
    version,
    account: decodeSegment(account),
    // `/v1/AUTH_x/` is an account request, as in Swift.
    ...(container ? { container: decodeSegment(container) } : {}),
    ...(object ? { object: decodeSegment(object) } : {}),
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
  let decoded: string;
  try {
    decoded = decodeURIComponent(value.trim());
  } catch {
    return undefined;
  }
  const path = decoded.startsWith('/') ? decoded.slice(1) : decoded;
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) return undefined;
  return { container: path.slice(0, slash), object: path.slice(slash + 1) };
}
