/**
 * What a request means for quotas, read from its method, path and headers alone. Pure: no I/O, no state.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { parseContainerObject, unquote, type SwiftPath } from '../swift/path.js';
import { isProtectedMetadataHeader } from '../swift/quota-metadata.js';

export interface ObjectRef {
  readonly account: string;
  readonly container: string;
  readonly object: string;
}

export type Intent =
  | { readonly type: 'pass' }
  | { readonly type: 'refuse'; readonly status: number; readonly reason: string }
  | { readonly type: 'level-change'; readonly account: string; readonly level: string | undefined }
  /** Sets or removes the proxy's own quota metadata: reseller admins only; then `then` applies as usual. */
  | { readonly type: 'protected-metadata'; readonly account: string; readonly container?: string; readonly then: Intent }
  | { readonly type: 'describe'; readonly account: string; readonly container?: string }
  | { readonly type: 'container-create'; readonly account: string; readonly container: string }
  | { readonly type: 'container-delete'; readonly account: string; readonly container: string }
  | {
      readonly type: 'object-write';
      readonly target: ObjectRef;
      /** Bytes announced by Content-Length; undefined for chunked uploads and copies. */
      readonly size: number | undefined;
      /** Server-side copy: the size comes from this source object. */
      readonly copyFrom?: ObjectRef;
      /** Query to read the source with (`multipart-manifest=get` copies a manifest, not the large object). */
      readonly copyQuery?: string;
    }
  | { readonly type: 'object-delete'; readonly account: string; readonly container: string };

export const LEVEL_HEADER = 'x-account-meta-quota';
export const REMOVE_LEVEL_HEADER = 'x-remove-account-meta-quota';

/** Container headers that turn on object versioning, which writes archive copies the proxy cannot size. */
const VERSIONING_HEADERS = ['x-versions-location', 'x-history-location', 'x-versions-enabled'];

/** Swift's config_true_value: the only values of X-Versions-Enabled that turn versioning on. */
const TRUE_VALUES = ['true', '1', 'yes', 'on', 't', 'y'];

/** A location header names a container (even one called "false"): any non-empty value turns versioning on. */
function turnsVersioningOn(name: string, value: string): boolean {
  const trimmed = value.trim();
  return name === 'x-versions-enabled' ? TRUE_VALUES.includes(trimmed.toLowerCase()) : trimmed !== '';
}

/** Swift's bulk middleware extracts an archive into an account (creating containers) or a container. */
const EXTRACT_ARCHIVE_REFUSED: Intent = Object.freeze({
  type: 'refuse',
  status: 400,
  reason: 'Bulk archive extraction (?extract-archive) is not supported through the quota proxy: upload the objects one by one.',
});

const PASS: Intent = Object.freeze({ type: 'pass' });

/**
 * Swift runs under eventlet's WSGI server, which files headers under `HTTP_<NAME>` with `-` turned into `_`
 * and upper-cased: `X-Account-Meta-Quota`, `x_account_meta_quota` and `X-Account_Meta-QUOTA` are all the same
 * header to Swift. Node lower-cases names but keeps `_`, so compare in Swift's terms.
 */
export function swiftHeaderName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

/** Every value sent under any spelling of `name`. */
export function headerValues(headers: IncomingHttpHeaders, name: string): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || swiftHeaderName(key) !== name) continue;
    if (Array.isArray(value)) out.push(...value);
    else out.push(value);
  }
  return out;
}

function hasHeader(headers: IncomingHttpHeaders, name: string): boolean {
  return headerValues(headers, name).length > 0;
}

function contentLength(headers: IncomingHttpHeaders): number | undefined {
  if (headers['transfer-encoding'] !== undefined) return undefined;
  const raw = headers['content-length'];
  if (raw === undefined) return 0;
  const value = Number(raw);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/**
 * undici re-frames every upload it forwards, so Swift never sees how the client framed it. Swift's own
 * refusals of framing it does not take (swob's message_length) are therefore given here, as Swift gives them:
 * no length at all (undici would send Content-Length: 0 and Swift would store an empty object), or a
 * transfer-coding other than plain chunked (undici would send plain chunked).
 */
function framingRefusal(headers: IncomingHttpHeaders): Intent | undefined {
  const te = headers['transfer-encoding'];
  if (te !== undefined && te.split(',').length > 1) {
    return { type: 'refuse', status: 501, reason: 'Unsupported Transfer-Coding header value specified in Transfer-Encoding header' };
  }
  if (headers['content-length'] === undefined && te === undefined) {
    return { type: 'refuse', status: 411, reason: 'Missing Content-Length header.' };
  }
  return undefined;
}

function touchesProtectedMetadata(headers: IncomingHttpHeaders): boolean {
  return Object.keys(headers).some((name) => isProtectedMetadataHeader(swiftHeaderName(name)));
}

function accountIntent(method: string, path: SwiftPath, headers: IncomingHttpHeaders): Intent {
  if (method === 'GET' || method === 'HEAD') return { type: 'describe', account: path.account };
  if (method !== 'POST' && method !== 'PUT') return PASS;
  if (path.query.has('extract-archive')) return EXTRACT_ARCHIVE_REFUSED;
  const then = levelIntent(path, headers);
  return touchesProtectedMetadata(headers) ? { type: 'protected-metadata', account: path.account, then } : then;
}

function levelIntent(path: SwiftPath, headers: IncomingHttpHeaders): Intent {
  const set = headerValues(headers, LEVEL_HEADER);
  const removed = hasHeader(headers, REMOVE_LEVEL_HEADER);
  if (set.length === 0 && !removed) return PASS;
  // As in Swift, an empty value removes the metadata; a removal wins over a value sent with it.
  const level = removed ? undefined : set.map((v) => v.trim()).find((v) => v !== '');
  return { type: 'level-change', account: path.account, level };
}

function containerIntent(method: string, path: SwiftPath & { container: string }, headers: IncomingHttpHeaders): Intent {
  const { account, container } = path;
  if (method === 'GET' || method === 'HEAD') return { type: 'describe', account, container };
  if (method === 'DELETE') return { type: 'container-delete', account, container };
  if (method !== 'PUT' && method !== 'POST') return PASS;
  if (path.query.has('extract-archive')) return EXTRACT_ARCHIVE_REFUSED;
  const versioning = VERSIONING_HEADERS.find((name) => headerValues(headers, name).some((v) => turnsVersioningOn(name, v)));
  if (versioning) {
    return {
      type: 'refuse',
      status: 400,
      reason: `Object versioning (${versioning}) is not supported through the quota proxy: archived versions would bypass the container quotas.`,
    };
  }
  const then: Intent = method === 'PUT' ? { type: 'container-create', account, container } : PASS;
  return touchesProtectedMetadata(headers) ? { type: 'protected-metadata', account, container, then } : then;
}

/** `X-Copy-From-Account` / `Destination-Account`, which Swift percent-decodes; undefined when absent or empty. */
function accountName(headers: IncomingHttpHeaders, name: string): string | undefined {
  return unquote(headerValues(headers, name)[0]?.trim() ?? '') || undefined;
}

function copySource(headers: IncomingHttpHeaders, account: string, fromHeader: string, accountHeader: string): ObjectRef | undefined {
  const from = headerValues(headers, fromHeader)[0];
  if (from === undefined) return undefined;
  const ref = parseContainerObject(from);
  if (!ref) return undefined;
  return { account: accountName(headers, accountHeader) ?? account, ...ref };
}

function objectIntent(method: string, path: SwiftPath & { container: string; object: string }, headers: IncomingHttpHeaders): Intent {
  const here: ObjectRef = { account: path.account, container: path.container, object: path.object };
  const copyQuery = path.query.get('multipart-manifest') === 'get' ? 'multipart-manifest=get' : undefined;
  if (path.query.has('extract-archive')) return containerIntent('PUT', path, headers);
  switch (method) {
    case 'PUT': {
      const copyFrom = copySource(headers, path.account, 'x-copy-from', 'x-copy-from-account');
      if (copyFrom) return { type: 'object-write', target: here, size: undefined, copyFrom, ...(copyQuery ? { copyQuery } : {}) };
      const framing = framingRefusal(headers);
      if (framing) return framing;
      return { type: 'object-write', target: here, size: contentLength(headers) };
    }
    case 'COPY': {
      const destination = headerValues(headers, 'destination')[0];
      const ref = destination === undefined ? undefined : parseContainerObject(destination);
      // Swift answers a COPY without a usable Destination with 412 itself.
      if (!ref) return PASS;
      const target = { account: accountName(headers, 'destination-account') ?? path.account, ...ref };
      return { type: 'object-write', target, size: undefined, copyFrom: here, ...(copyQuery ? { copyQuery } : {}) };
    }
    case 'DELETE':
      return { type: 'object-delete', account: path.account, container: path.container };
    default:
      return PASS;
  }
}

export function requestIntent(method: string, path: SwiftPath, headers: IncomingHttpHeaders): Intent {
  if (path.container === undefined) return accountIntent(method, path, headers);
  if (path.object === undefined) return containerIntent(method, { ...path, container: path.container }, headers);
  return objectIntent(method, { ...path, container: path.container, object: path.object }, headers);
}
