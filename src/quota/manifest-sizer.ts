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

/** HEADs an object of the manifest's account with the caller's rights. */
export type HeadAsCaller = (container: string, object: string) => Promise<{ status: number; headers: Record<string, string> }>;

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
  const unpin = await pins.pin(keys, [], owner);
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
        heads.set(path, {
          status,
          contentLength: countHeader(headers['content-length']),
          etag: headers.etag,
          contentType: headers['content-type'],
          staticLargeObject: swiftTrue(headers['x-static-large-object']),
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(HEAD_CONCURRENCY, paths.length) }, worker));
    const stored = storedManifestSize(manifest.entries, heads);
    return stored === undefined ? { stored: largest(), refusedBySlo: true, unpin } : { stored, refusedBySlo: false, unpin };
  } catch (error) {
    unpin();
    throw error;
  }
}
