/**
 * What Swift stores for an SLO manifest, found out before it is stored: the manifest is read as SLO reads
 * it, its segments are HEADed with the caller's own rights (as SLO HEADs them) and pinned (pins.ts) so that
 * they stay as read until Swift has validated them, and the stored manifest's size is computed
 * (slo-manifest.ts).
 */
import { countHeader } from '../swift/client.js';
import { swiftTrue } from '../swift/request.js';
import { ObjectPins } from './pins.js';
import { parseManifest, segmentRef, storedManifestSize, type SegmentHead } from './slo-manifest.js';

/** HEADs an object of the manifest's account with the caller's rights. */
export type HeadAsCaller = (container: string, object: string) => Promise<{ status: number; headers: Record<string, string> }>;

export type ManifestSize =
  /** What SLO stores; `unpin` lets writes to the segments go on (once Swift has answered). */
  | { readonly stored: number; readonly unpin: () => void }
  /** SLO refuses this manifest (400): nothing is stored. */
  | { readonly refused: true; readonly unpin: () => void };

const HEAD_CONCURRENCY = 8;

/** `owner`: the request the manifest is sized for (it holds the segments' pins). */
export async function sizeManifest(body: Buffer, account: string, pins: ObjectPins, head: HeadAsCaller, owner: object): Promise<ManifestSize> {
  const manifest = parseManifest(body);
  if (!manifest.valid) return { refused: true, unpin: () => {} };
  const paths = [...new Set(manifest.entries.flatMap((entry) => (entry.kind === 'object' ? [entry.path] : [])))];
  const refs = new Map(paths.map((path) => [path, segmentRef(path)] as const));
  const keys = [...refs.values()].flatMap((ref) => (ref ? [ObjectPins.key(account, ref.container, ref.object)] : []));
  const unpin = pins.pin(keys, [], owner);
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
    return stored === undefined ? { refused: true, unpin } : { stored, unpin };
  } catch (error) {
    unpin();
    throw error;
  }
}
