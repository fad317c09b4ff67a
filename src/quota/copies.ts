/**
 * What an object write stores: its announced size, what a copy reads, or the manifest SLO makes of a body. A
 * copy's source is read as Swift's copy middleware will read it (same query, same Range), with the caller's own
 * rights, and the copy goes to Swift with `If-Match` on that ETag, so Swift copies that very version or nothing
 * (copy-range.ts, manifest-twin.ts).
 */
import type { SwiftView } from '../proxy/swift-view.js';
import { SwiftQuery, swiftTrue } from '../swift/request.js';
import { countHeader } from '../swift/client.js';
import type { ByteRangeSpec } from '../swift/range.js';
import type { CopySource, Intent, ObjectRef } from './intent.js';
import type { BodyHead, Exchange } from './exchange.js';
import type { QuotaCore } from './core.js';
import { headFor, readFor, type Caller } from './caller.js';
import { boundingRange, copyRange, sameEtag, servedSource } from './copy-range.js';
import { manifestOfTwin } from './manifest-twin.js';
import { sizeManifest, type ManifestSize } from './manifest-sizer.js';
import { ObjectPins } from './pins.js';

/** A copy source as the caller's own HEAD found it. */
export type SourceHead = { readonly status: number; readonly headers: Record<string, string> };

/** An ETag no object has: Swift refuses a copy pinned to it (412), whatever the source has become. */
export const NO_SUCH_ETAG = '"quota-proxy-unknown-source"';

export type CopySize = { size: number; unpin?: () => void } | 'unsizable' | 'precondition-failed' | 'symlink-ranges';

/** What one copy reads, and where the pins it takes belong. */
interface CopyRead {
  readonly core: QuotaCore;
  readonly caller: Caller;
  readonly view: SwiftView;
  readonly copy: CopySource;
  readonly target: ObjectRef;
  /** Who holds the pins (the request's exchange). */
  readonly owner: object;
}

/** What an object write stores; `unpin` gives back the pins its size rests on. */
export type Stored = { size: number | undefined; unpin?: () => void } | 'precondition-failed' | 'symlink-ranges' | undefined;

/**
 * What the write stores: its announced size (undefined: chunked), a copy's, or the manifest SLO makes.
 * Undefined when there is nothing to count (Swift stores nothing) or the request has been answered (the body
 * could not be read); the manifest read becomes the body Swift is sent.
 */
export async function storedSize(
  core: QuotaCore,
  { caller, view, exchange }: { caller: Caller; view: SwiftView; exchange: Exchange },
  intent: Extract<Intent, { type: 'object-write' }>,
  source: SourceHead | undefined,
  body: { readBody(account: string, limit: number): Promise<BodyHead | undefined> },
): Promise<Stored> {
  if (intent.copy) {
    const sized = await sizeCopy({ core, caller, view, copy: intent.copy, target: intent.target, owner: exchange }, intent.manifest === true, source);
    // Nothing to count: pinned to no version, or a manifest SLO refuses, Swift stores nothing.
    return sized === 'unsizable' ? undefined : sized;
  }
  if (!intent.manifest) return { size: intent.size };
  // SLO stores its own manifest, not the body: read the body (SLO reads at most max_manifest_size of it).
  const limit = core.capabilities().maxManifestSize;
  if (intent.size !== undefined && intent.size > limit) return undefined; // Swift: 413 "Manifest File > ..."
  const read = await body.readBody(intent.target.account, limit);
  if (read === undefined) return undefined; // answered: 503 past the buffer budget, 408 for a stalled body
  exchange.body = read.body;
  // Read as one SLO refuses, it is still counted at the most SLO could store (manifest-sizer.ts).
  const sized = await storedByManifest(core, read.head, intent.target.account, view.path!.version, caller, exchange);
  return { size: sized.stored, unpin: sized.unpin };
}

/** What SLO will store for the manifest `body`, segments HEADed with the caller's rights and pinned. */
export function storedByManifest(core: QuotaCore, body: Buffer, account: string, version: string, caller: Caller, owner: object): Promise<ManifestSize> {
  return sizeManifest(body, account, core.pins, (container, object, query = '', inAccount = account) => headFor(core, caller, { account: inAccount, container, object }, query, version), owner, core.capabilities().maxManifestSegments);
}

/**
 * The size of what Swift will store for a copy, and the ETag that pins it. 'unsizable' when the caller cannot
 * read the source now: Swift will refuse the copy as well (the pin makes sure of it).
 */
export async function sizeCopy(read: CopyRead, manifestPut: boolean, source?: SourceHead): Promise<CopySize> {
  const { core, caller, view, copy } = read;
  const { status, headers } = source ?? (await headFor(core, caller, copy.ref, copy.query ?? ''));
  if (view.s3) return boundS3Copy(view, status, countHeader(headers['content-length']));
  const etag = headers.etag;
  if (status < 200 || status >= 300 || !etag) {
    view.upstream.set('if-match', NO_SUCH_ETAG);
    return 'unsizable';
  }
  const quoted = etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
  if (!meetsIfMatch(view.headers.get('if-match'), quoted)) return 'precondition-failed';
  view.upstream.set('if-match', quoted);
  // Swift copies what its GET of the source serves for the request's Range (copy-range.ts), sent as read.
  const range = copyRange(view.headers.get('range'));
  if (range.forward) view.upstream.set('range', range.forward.value);
  const served = servedSource(range.specs, headers, copy.query);
  if (served.status === 416) return 'unsizable'; // Swift's answer; nothing is stored
  // A manifest copied as a manifest (multipart-manifest=get of an SLO), or a copy made into one
  // (multipart-manifest=put): SLO stores a manifest of its own, built from what the copy reads.
  const query = SwiftQuery.parse(copy.query);
  const manifestGet = query.last('multipart-manifest') === 'get' && swiftTrue(headers['x-static-large-object']);
  if (!manifestPut && !manifestGet) {
    if (served.parts === 1) {
      const bound = boundingRange(range.specs, headers, copy.query);
      if (bound !== undefined) view.upstream.set('range', bound);
      if (query.last('multipart-manifest') === 'get') return sizeManifestTwin(read, served.size, quoted, bound);
      return { size: served.size };
    }
    return headers['content-location'] === undefined ? sizeMultipartCopy(read, range.specs, quoted) : 'symlink-ranges';
  }
  // Read with the same Range: what SLO is given is what Swift serves the copy (a multipart body is no manifest);
  // and at the ETag the copy is pinned to, or the source read could be another manifest than the one copied.
  const ranged: Record<string, string> = { 'if-match': quoted, ...(range.forward?.value === undefined ? {} : { range: range.forward.value }) };
  return sizeCopiedManifest(read, manifestGet ? `${copy.query}&format=raw` : copy.query ?? '', ranged);
}

/** The client's own If-Match: Swift would copy only a version it names. */
function meetsIfMatch(asked: string | undefined, quoted: string): boolean {
  if (asked === undefined) return true;
  const tags = asked.split(',').map((tag) => tag.trim().replace(/^W\//, '').replace(/^"|"$/g, ''));
  return tags.includes('*') || tags.includes(quoted.replace(/^W\//, '').replace(/^"|"$/g, ''));
}

/** A manifest SLO builds from what the copy reads, read as the copy reads it. */
async function sizeCopiedManifest({ core, caller, view, copy, target, owner }: CopyRead, query: string, headers: Record<string, string>): Promise<CopySize> {
  const read = await readFor(core, caller, 'GET', copy.ref, query, view.path!.version, core.capabilities().maxManifestSize, headers);
  if (read.status < 200 || read.status >= 300 || read.body === undefined) {
    // Not read (gone since the HEAD, or past max_manifest_size): never passed uncounted on that reading alone.
    view.upstream.set('if-match', NO_SUCH_ETAG);
    return 'unsizable';
  }
  // The manifest is the copy's: its segments are looked up in the account copied into.
  const sized = await storedByManifest(core, read.body, target.account, view.path!.version, caller, owner);
  return { size: sized.stored, unpin: sized.unpin };
}

/**
 * A copy with `multipart-manifest=get` of what is no SLO manifest now: Swift copies it as a manifest if it has
 * become one with the same ETag (manifest-twin.ts). Counted at the larger of its bytes and what SLO would store
 * from them, read at the ETag and Range the copy is pinned to; the segments are pinned as a manifest's are.
 */
async function sizeManifestTwin({ core, caller, view, copy, target, owner }: CopyRead, size: number, etag: string, range: string | undefined): Promise<CopySize> {
  const limit = core.capabilities().maxManifestSize;
  // Past max_manifest_size SLO refuses it as a manifest (413); an empty body is no manifest.
  if (size === 0 || size > limit) return { size };
  const pinned: Record<string, string> = { 'if-match': etag, ...(range === undefined ? {} : { range }) };
  const read = await readFor(core, caller, 'GET', copy.ref, copy.query ?? '', view.path!.version, limit, pinned);
  if (read.status < 200 || read.status >= 300 || read.body === undefined) {
    view.upstream.set('if-match', NO_SUCH_ETAG);
    return 'unsizable';
  }
  const manifest = manifestOfTwin(read.body);
  if (manifest === undefined) return { size };
  const sized = await storedByManifest(core, manifest, target.account, view.path!.version, caller, owner);
  return { size: Math.max(size, sized.stored), unpin: sized.unpin };
}

/**
 * A copy of several ranges stores every part with the source's content type, which a POST changes without
 * changing the ETag the copy is pinned to: the source is pinned (pins.ts) and read again once the writes to
 * it already on their way have landed, so the content type counted is the one Swift copies.
 */
async function sizeMultipartCopy({ core, caller, copy, owner }: CopyRead, specs: ByteRangeSpec[] | undefined, etag: string): Promise<CopySize> {
  const key = ObjectPins.key(copy.ref.account, copy.ref.container, copy.ref.object);
  const unpin = await core.pins.pin([key], [], owner);
  try {
    const draining = core.pins.drained([key]);
    if (draining) await draining;
    const { status, headers } = await headFor(core, caller, copy.ref, copy.query ?? '');
    if (status >= 200 && status < 300 && sameEtag(headers.etag, etag)) return { size: servedSource(specs, headers, copy.query).size, unpin };
    // Another version now: Swift's copy, pinned to the one read first, stores nothing.
    unpin();
    return 'unsizable';
  } catch (error) {
    unpin();
    throw error;
  }
}

/**
 * An S3 copy cannot be pinned with If-Match (s3api refuses conditional PUTs), but a Range bounds what Swift
 * copies whatever the source has become: at most the size read now (or the part's copy range, which s3api
 * puts in a Range itself), and at most one byte of a source the caller cannot read now.
 */
function boundS3Copy(view: SwiftView, status: number, sourceSize: number): { size: number } {
  const copyRange = view.s3!.copyRange;
  if (copyRange !== undefined) return { size: copyRange };
  const asked = /^bytes=(\d+)-(\d+)$/.exec(view.headers.get('range') ?? '');
  if (asked && Number(asked[2]) >= Number(asked[1])) return { size: Number(asked[2]) - Number(asked[1]) + 1 };
  const size = status >= 200 && status < 300 ? Math.max(sourceSize, 1) : 1;
  view.upstream.set('range', `bytes=0-${size - 1}`);
  return { size };
}
