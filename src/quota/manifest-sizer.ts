/**
 * What Swift stores for an SLO manifest, found out before it is stored: the manifest is read as SLO reads
 * it, its segments are HEADed with the caller's own rights (as SLO HEADs them) and pinned (pins.ts) so that
 * they stay as read until Swift has validated them, and the stored manifest's size is computed
 * (slo-manifest.ts).
 */
import { countHeader } from '../swift/client.js';
import { swiftTrue } from '../swift/request.js';
import { ObjectPins, type PinBoard } from './pins.js';
import { largestStoredManifest, parseManifest, segmentRef, storedManifestSize, type SegmentHead } from './slo-manifest.js';

/**
 * HEADs an object with the caller's rights: of the manifest's account unless `account` is given, with `query`
 * (`symlink=get` reads a symlink itself rather than its target).
 */
export type HeadAsCaller = (container: string, object: string, query?: string, account?: string) => Promise<{ status: number; headers: Record<string, string> }>;

/**
 * The most symlinks followed from one segment to pin its target (Swift's symloop_max is 2 by default); a longer
 * chain Swift refuses to follow (409), so SLO refuses the segment.
 */
const MAX_LINKS = 8;

/**
 * What SLO stores; `unpin` lets writes to the segments go on (once Swift has answered). Where the proxy reads
 * the manifest as one SLO refuses (400, nothing stored), `stored` is the largest SLO could store all the same
 * (`refusedBySlo`): the write is counted at its largest effect, never passed on uncounted.
 */
export interface ManifestSize {
  readonly stored: number;
  readonly refusedBySlo: boolean;
  readonly unpin: () => void;
}

const HEAD_CONCURRENCY = 8;

/** `owner`: the request the manifest is sized for (it holds the segments' pins). */
export async function sizeManifest(body: Buffer, account: string, pins: PinBoard, head: HeadAsCaller, owner: object, maxSegments: number): Promise<ManifestSize> {
  const manifest = parseManifest(body);
  const largest = () => largestStoredManifest(body.length, maxSegments);
  if (!manifest.valid) return { stored: largest(), refusedBySlo: true, unpin: () => {} };
  const paths = [...new Set(manifest.entries.flatMap((entry) => (entry.kind === 'object' ? [entry.path] : [])))];
  const refs = new Map(paths.map((path) => [path, segmentRef(path)] as const));
  const keys = [...refs.values()].flatMap((ref) => (ref ? [ObjectPins.key(account, ref.container, ref.object)] : []));
  let unpin = await pins.pin(keys, [], owner);
  try {
    // Writes to the segments already on their way to Swift land before they are read (new ones now wait).
    const draining = pins.drained(keys);
    if (draining) await draining;
    const heads = new Map<string, SegmentHead>();
    let next = 0;
    const worker = async () => {
      while (next < paths.length) {
        const path = paths[next++]!;
        const ref = refs.get(path);
        if (!ref) {
          heads.set(path, { status: 404, contentLength: 0, etag: undefined, contentType: undefined, staticLargeObject: false });
          continue;
        }
        const { status, headers } = await head(ref.container, ref.object);
        if (headers['content-location'] !== undefined) linked.push(path);
        heads.set(path, segmentHead(status, headers));
      }
    };
    const linked: string[] = [];
    await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, paths.length) }, worker));
    if (linked.length > 0) {
      // Symlinks: SLO HEADs them as the proxy did, through to their targets, whose content type it stores. Each
      // link on the way and the target are pinned as well, then the segments HEADed again.
      const more = await pinLinks(linked.map((path) => refs.get(path)!), account, pins, head, owner);
      const before = unpin;
      unpin = () => {
        before();
        more();
      };
      for (const path of linked) {
        const ref = refs.get(path)!;
        const { status, headers } = await head(ref.container, ref.object);
        heads.set(path, segmentHead(status, headers));
      }
    }
    const stored = storedManifestSize(manifest.entries, heads);
    return stored === undefined ? { stored: largest(), refusedBySlo: true, unpin } : { stored, refusedBySlo: false, unpin };
  } catch (error) {
    unpin();
    throw error;
  }
}

function segmentHead(status: number, headers: Record<string, string>): SegmentHead {
  return {
    status,
    contentLength: countHeader(headers['content-length']),
    etag: headers.etag,
    contentType: headers['content-type'],
    staticLargeObject: swiftTrue(headers['x-static-large-object']),
  };
}

/**
 * Pins every object on the way from each symlink segment to its target (read with `symlink=get`, link by link),
 * once the writes to them already on their way have landed; returns the unpin.
 */
async function pinLinks(links: ReadonlyArray<{ container: string; object: string }>, account: string, pins: PinBoard, head: HeadAsCaller, owner: object): Promise<() => void> {
  const keys = new Set<string>();
  await Promise.all(
    links.map(async (link) => {
      let at = { account, ...link };
      for (let step = 0; step < MAX_LINKS; step++) {
        const { status, headers } = await head(at.container, at.object, 'symlink=get', at.account);
        const next = status >= 200 && status < 300 ? linkTarget(headers, at.account) : undefined;
        if (!next) return;
        at = next;
        keys.add(ObjectPins.key(at.account, at.container, at.object));
      }
    }),
  );
  const unpin = await pins.pin(keys, [], owner);
  const draining = pins.drained(keys);
  if (draining) await draining.catch((error: unknown) => {
    unpin();
    throw error;
  });
  return unpin;
}

/** Where a symlink (read with `symlink=get`) points: `X-Symlink-Target` (`container/object`, quoted), its account. */
function linkTarget(headers: Record<string, string>, account: string): { account: string; container: string; object: string } | undefined {
  const target = headers['x-symlink-target'];
  if (target === undefined) return undefined;
  try {
    const path = decodeURIComponent(target);
    const slash = path.indexOf('/');
    if (slash <= 0 || slash === path.length - 1) return undefined;
    const targetAccount = headers['x-symlink-target-account'];
    return { account: targetAccount === undefined ? account : decodeURIComponent(targetAccount), container: path.slice(0, slash), object: path.slice(slash + 1) };
  } catch {
    return undefined;
  }
}
