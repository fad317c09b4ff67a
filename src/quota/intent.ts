/**
 * What a request means for quotas, read from its method, path and headers as Swift reads them
 * (swift/request.ts). Pure: no I/O, no state.
 */
import { swiftTrue, type SwiftHeaders } from '../swift/request.js';
import type { Framing } from '../proxy/swift-view.js';
import { parseAccountName, parseContainerObject, type SwiftPath } from '../swift/path.js';
import { isProtectedMetadataHeader, isResellerOnlyHeader, LEVEL_HEADER, OWNER_LIMITS, REMOVE_LEVEL_HEADER } from '../swift/quota-metadata.js';
import { formBoundary } from './formpost.js';

export interface ObjectRef {
  readonly account: string;
  readonly container: string;
  readonly object: string;
}

/** A server-side copy's source, read by Swift with the request's own query string (`multipart-manifest=get`, `symlink=get`, ...). */
export interface CopySource {
  readonly ref: ObjectRef;
  readonly query: string | undefined;
}

export type Intent =
  | { readonly type: 'pass' }
  | { readonly type: 'refuse'; readonly status: number; readonly reason: string }
  | { readonly type: 'level-change'; readonly account: string; readonly level: string | undefined }
  /**
   * Sets or removes per-account or per-container limits (quota-metadata.ts ACCOUNT_OVERRIDES,
   * CONTAINER_OVERRIDES), or a header of their reserved names that is none of them: reseller admins only, each
   * value a whole number or empty (removed); then `then` applies as usual.
   */
  | { readonly type: 'override-change'; readonly account: string; readonly container?: string; readonly changes: ReadonlyArray<{ readonly header: string; readonly value: string | undefined }>; readonly then: Intent }
  /** A container's own limits (container_quotas' headers) change: its reading is forgotten; then `then`. */
  | { readonly type: 'owner-limits-change'; readonly account: string; readonly container: string; readonly then: Intent }
  /** Sets or removes the proxy's own quota metadata: reseller admins only; then `then` applies as usual. */
  | { readonly type: 'protected-metadata'; readonly account: string; readonly container?: string; readonly then: Intent }
  | { readonly type: 'describe'; readonly account: string; readonly container?: string }
  | { readonly type: 'container-create'; readonly account: string; readonly container: string }
  | { readonly type: 'container-delete'; readonly account: string; readonly container: string }
  /**
   * A container's versioning changes (versioning.ts): writes in flight that counted on the old way wait, and
   * turning object_versioning on makes one more container (the hidden one for versions); then `then` applies.
   */
  | { readonly type: 'versioning-change'; readonly account: string; readonly container: string; readonly enablesObjectVersioning: boolean; readonly then: Intent }
  | {
      readonly type: 'object-write';
      readonly target: ObjectRef;
      /** Bytes announced by Content-Length; undefined for chunked uploads and copies. */
      readonly size: number | undefined;
      /** Server-side copy: what Swift stores is the source object, read as Swift will read it. */
      readonly copy?: CopySource;
      /** An SLO manifest (`?multipart-manifest=put`): Swift stores its own, rewritten manifest, not the body. */
      readonly manifest?: boolean;
    }
  | { readonly type: 'object-delete'; readonly account: string; readonly container: string; readonly object: string }
  /** Bulk extraction: every file of the archive becomes an object under `base` (container[/prefix], or the account). */
  | { readonly type: 'extract-archive'; readonly account: string; readonly base: string; readonly gzip: boolean }
  /** Swift's bulk delete (`POST`/`DELETE` with `?bulk-delete`): the objects its body lists (bulk-delete.ts). */
  | { readonly type: 'bulk-delete'; readonly account: string }
  /** An object's metadata (content type, expiry) changes: nothing grows, but a manifest being checked may rest on it. */
  | { readonly type: 'object-update'; readonly account: string; readonly container: string; readonly object: string }
  /** A FormPost upload: every file of the form becomes an object in the container (formpost.ts). */
  | {
      readonly type: 'form-upload';
      readonly account: string;
      readonly container: string;
      /** What follows the container in the form's path: the prefix of every file's object name. */
      readonly object: string | undefined;
      /** The form's path as formpost signs it. */
      readonly path: string;
      readonly boundary: Buffer;
    };

export { LEVEL_HEADER, REMOVE_LEVEL_HEADER };

/** Container headers of legacy versioned_writes (set, or removed). */
const VERSIONING_HEADERS = ['x-versions-location', 'x-history-location', 'x-remove-versions-location', 'x-remove-history-location'];

/**
 * Swift's bulk middleware takes every `PUT` with `?extract-archive` (its last value, as swob's params read
 * it), at any level, before any other middleware: `tar`, `tar.gz` or `tar.bz2` (any case, dots around ignored).
 * The proxy reads tar and gzip; bzip2 has no well-kept streaming reader for Node, so such archives are refused.
 */
function extractIntent({ method, path, bulk }: RequestFacts): Intent | undefined {
  if (!bulk || method !== 'PUT') return undefined;
  const format = path.query.last('extract-archive');
  if (format === undefined) return undefined;
  const type = format.toLowerCase().replace(/^\.+|\.+$/g, '');
  if (type === 'tar.bz2') {
    return { type: 'refuse', status: 400, reason: 'Bulk extraction of tar.bz2 archives is not supported through the quota proxy: send the archive as tar or tar.gz.' };
  }
  // Anything else Swift answers itself (400 Unsupported archive format), storing nothing.
  if (type !== 'tar' && type !== 'tar.gz') return PASS;
  const base = path.container === undefined ? '' : path.object === undefined ? path.container : `${path.container}/${path.object}`;
  return { type: 'extract-archive', account: path.account, base, gzip: type === 'tar.gz' };
}

/**
 * Container sync makes Swift's container-sync daemon write every object into the container named by
 * X-Container-Sync-To, from inside the cluster: those writes never pass this proxy, so nothing could count them.
 */
const CONTAINER_SYNC_REFUSED: Intent = Object.freeze({
  type: 'refuse',
  status: 400,
  reason: 'Container sync (X-Container-Sync-To) is not supported through the quota proxy: the sync daemon writes from inside Swift, where no quota can be kept.',
});

const PASS: Intent = Object.freeze({ type: 'pass' });

/**
 * undici re-frames every upload it forwards, so Swift never sees how the client framed it. Swift's own
 * refusals of framing it does not take (swob's message_length) are therefore given here, as Swift gives them:
 * no length at all (undici would send Content-Length: 0 and Swift would store an empty object), or a
 * transfer-coding other than plain chunked (undici would send plain chunked). Node's parser has already
 * refused what it cannot frame (both headers, bad numbers), and reads only these exact names, as eventlet does.
 */
function framingRefusal(framing: Framing): Intent | undefined {
  const te = framing.transferEncoding;
  if (te !== undefined && te.split(',').length > 1) {
    return { type: 'refuse', status: 501, reason: 'Unsupported Transfer-Coding header value specified in Transfer-Encoding header' };
  }
  if (framing.contentLength === undefined && te === undefined) {
    return { type: 'refuse', status: 411, reason: 'Missing Content-Length header.' };
  }
  return undefined;
}

function bodySize(framing: Framing): number | undefined {
  if (framing.transferEncoding !== undefined) return undefined;
  if (framing.contentLength === undefined) return 0;
  const value = Number(framing.contentLength);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function touchesProtectedMetadata(headers: SwiftHeaders): boolean {
  for (const name of headers.names()) if (isProtectedMetadataHeader(name)) return true;
  return false;
}

export interface RequestFacts {
  readonly method: string;
  readonly path: SwiftPath;
  readonly headers: SwiftHeaders;
  readonly framing: Framing;
  /** Whether Swift runs formpost, which takes every multipart/form-data POST for a form upload. */
  readonly formpost?: boolean;
  /** Whether Swift runs bulk (`bulk_upload` in /info), which takes every PUT with `?extract-archive`. */
  readonly bulk?: boolean;
  /** Whether Swift runs bulk's delete (`bulk_delete` in /info). */
  readonly bulkDelete?: boolean;
}

/**
 * formpost answers every `POST` with Content-Type exactly `multipart/form-data; boundary=...`, whatever else the
 * request carries, before any auth filter: its files are stored under the path it was posted to. Without a
 * container in the path it finds no key and stores nothing.
 */
function formUpload(facts: RequestFacts): Intent | undefined {
  if (!facts.formpost || facts.method !== 'POST') return undefined;
  const boundary = formBoundary(facts.headers.get('content-type'));
  if (!boundary) return undefined;
  const { account, container, object } = facts.path;
  return container === undefined ? PASS : { type: 'form-upload', account, container, object, path: facts.path.decoded, boundary };
}

function accountIntent({ method, path, headers }: RequestFacts): Intent {
  if (method === 'GET' || method === 'HEAD') return { type: 'describe', account: path.account };
  if (method !== 'POST' && method !== 'PUT') return PASS;
  const level = levelIntent(path, headers);
  const then = touchesProtectedMetadata(headers) ? { type: 'protected-metadata' as const, account: path.account, then: level } : level;
  return overrideIntent(path.account, undefined, headers, then);
}

/**
 * The per-account or per-container limits a PUT or POST sets or removes (every header of the names reserved for
 * them but the level, which levelIntent reads): Swift's last-wins merge of spellings, `X-Remove-` and an empty
 * value both remove.
 */
function overrideIntent(account: string, container: string | undefined, headers: SwiftHeaders, then: Intent): Intent {
  const changes: Array<{ header: string; value: string | undefined }> = [];
  for (const name of new Set(headers.names())) {
    if (!isResellerOnlyHeader(name) || name === LEVEL_HEADER || name === REMOVE_LEVEL_HEADER) continue;
    const removed = name.startsWith('x-remove-');
    const header = removed ? name.replace(/^x-remove-/, 'x-') : name;
    if (changes.some((change) => change.header === header)) continue;
    const value = headers.has(`x-remove-${header.slice(2)}`) ? undefined : headers.get(header)?.trim();
    changes.push({ header, value: value === '' ? undefined : value });
  }
  if (changes.length === 0) return then;
  return { type: 'override-change', account, ...(container === undefined ? {} : { container }), changes, then };
}

function levelIntent(path: SwiftPath, headers: SwiftHeaders): Intent {
  const set = headers.get(LEVEL_HEADER);
  const removed = headers.has(REMOVE_LEVEL_HEADER);
  if (set === undefined && !removed) return PASS;
  // As in Swift, an empty value removes the metadata, and a removal wins over a value sent with it.
  return { type: 'level-change', account: path.account, level: removed || set === '' ? undefined : set };
}

function containerIntent(facts: RequestFacts & { path: { container: string } }): Intent {
  const { method, path, headers } = facts;
  const { account, container } = path;
  if (method === 'GET' || method === 'HEAD') return { type: 'describe', account, container };
  if (method === 'DELETE') return { type: 'container-delete', account, container };
  if (method !== 'PUT' && method !== 'POST') return PASS;
  if (headers.get('x-container-sync-to')) return CONTAINER_SYNC_REFUSED;
  const create: Intent = method === 'PUT' ? { type: 'container-create', account, container } : PASS;
  const then: Intent = touchesProtectedMetadata(headers) ? { type: 'protected-metadata', account, container, then: create } : create;
  const versioning = versioningChange(headers);
  const changed: Intent = versioning ? { type: 'versioning-change', account, container, enablesObjectVersioning: versioning === 'enables-object-versioning', then } : then;
  return overrideIntent(account, container, headers, ownerLimitsIntent(account, container, headers, changed));
}

/**
 * container_quotas' own limits, set by the container's owner: Swift's middleware refuses a value that is not
 * digits (`isdigit()`), and the proxy reads them before every write of the container, so a change is a change
 * of the container's limits (its usage is read again).
 */
function ownerLimitsIntent(account: string, container: string, headers: SwiftHeaders, then: Intent): Intent {
  const touched = Object.keys(OWNER_LIMITS).some((name) => headers.has(name) || headers.has(`x-remove-${name.slice(2)}`));
  return touched ? { type: 'owner-limits-change', account, container, then } : then;
}

/**
 * Whether a container PUT or POST changes how Swift versions the container's objects: sets or removes a
 * legacy location, or sets object_versioning's flag (turning it on creates the hidden versions container).
 */
function versioningChange(headers: SwiftHeaders): 'enables-object-versioning' | 'changes' | undefined {
  const enabled = headers.get('x-versions-enabled');
  if (enabled !== undefined && swiftTrue(enabled)) return 'enables-object-versioning';
  return enabled !== undefined || VERSIONING_HEADERS.some((name) => headers.has(name)) ? 'changes' : undefined;
}

/**
 * A server-side copy, as Swift's copy middleware reads it: `PUT` with a non-empty X-Copy-From (and optional
 * X-Copy-From-Account), or `COPY` with Destination (and optional Destination-Account, or X-Copy-From-Account
 * for the source's account). Undefined when it is no copy; 'refused' where Swift answers the copy with an
 * error before it reads the source or writes anything: 412 for a missing or malformed Destination or
 * X-Copy-From, an empty or slashed account name; 400 for a PUT with a body. A name that is not UTF-8 once
 * unquoted reaches Swift's proxy server as a path, which answers 412 before reading or writing.
 */
function copyOf({ method, path, headers, framing }: RequestFacts, here: ObjectRef): { target: ObjectRef; copy: CopySource } | 'refused' | undefined {
  if (method === 'PUT') {
    const from = headers.get('x-copy-from');
    if (!from) return undefined;
    const size = bodySize(framing);
    if (size !== undefined && size > 0) return 'refused'; // "Copy requests require a zero byte body"
    const ref = parseContainerObject(from);
    const accountHeader = headers.get('x-copy-from-account');
    const account = accountHeader ? parseAccountName(accountHeader) : here.account;
    if (!ref || account === undefined) return 'refused';
    return { target: here, copy: { ref: { account, ...ref }, query: path.rawQuery } };
  }
  if (method === 'COPY') {
    const destination = headers.get('destination');
    if (!destination) return 'refused';
    const ref = parseContainerObject(destination);
    const accountHeader = headers.get('destination-account');
    const account = accountHeader === undefined ? here.account : parseAccountName(accountHeader);
    if (!ref || account === undefined) return 'refused';
    // Swift turns the COPY into a PUT of the destination: with Destination-Account, its X-Copy-From-Account is
    // set to the path's account; without, the client's X-Copy-From-Account (if not empty) names the source's.
    const sourceHeader = accountHeader === undefined ? headers.get('x-copy-from-account') : undefined;
    const sourceAccount = sourceHeader ? parseAccountName(sourceHeader) : here.account;
    if (sourceAccount === undefined) return 'refused';
    return { target: { account, ...ref }, copy: { ref: { ...here, account: sourceAccount }, query: path.rawQuery } };
  }
  return undefined;
}

function objectIntent(facts: RequestFacts & { path: { container: string; object: string } }): Intent {
  const { method, path } = facts;
  const here: ObjectRef = { account: path.account, container: path.container, object: path.object };
  const copy = copyOf(facts, here);
  // Swift refuses these copies before writing anything (412 or 400).
  if (copy === 'refused') return PASS;
  if (copy) {
    // A copy with multipart-manifest=put makes an SLO manifest of what it copies.
    const manifest = path.query.last('multipart-manifest') === 'put';
    return { type: 'object-write', target: copy.target, size: undefined, copy: copy.copy, ...(manifest ? { manifest } : {}) };
  }
  switch (method) {
    case 'PUT': {
      const framing = framingRefusal(facts.framing);
      if (framing) return framing;
      const manifest = path.query.last('multipart-manifest') === 'put';
      return { type: 'object-write', target: here, size: bodySize(facts.framing), ...(manifest ? { manifest } : {}) };
    }
    case 'DELETE':
      return { type: 'object-delete', ...here };
    case 'POST':
      return { type: 'object-update', ...here };
    default:
      return PASS;
  }
}

export function requestIntent(facts: RequestFacts): Intent {
  const extract = extractIntent(facts);
  if (extract) return extract;
  // bulk takes `bulk-delete` (any value) on a POST or DELETE at any level, before any other middleware.
  if (facts.bulkDelete && (facts.method === 'POST' || facts.method === 'DELETE') && facts.path.query.has('bulk-delete')) return { type: 'bulk-delete', account: facts.path.account };
  const form = formUpload(facts);
  if (form) return form;
  const { path } = facts;
  if (path.container === undefined) return accountIntent(facts);
  if (path.object === undefined) return containerIntent({ ...facts, path: { ...path, container: path.container } });
  return objectIntent({ ...facts, path: { ...path, container: path.container, object: path.object } });
}
