/**
 * What a server-side copy with a Range stores: Swift's copy middleware GETs its source with the request's
 * headers, Range included, and stores the body it gets (swift/range.ts says which). Pure.
 */
import { countHeader } from '../swift/client.js';
import { SwiftQuery } from '../swift/request.js';
import { formatRange, parseRange, rangesForLength, servedBody, type ByteRangeSpec, type Served } from '../swift/range.js';

export interface CopyRange {
  /** The specs swob reads (undefined: no Range, or one it ignores and serves the whole source for). */
  readonly specs: ByteRangeSpec[] | undefined;
  /**
   * The Range to forward, written as the proxy read it (undefined: none, where swob would ignore the client's):
   * Swift then reads exactly what was counted. Absent when the request has no Range.
   */
  readonly forward?: { readonly value: string | undefined };
}

export function copyRange(value: string | undefined): CopyRange {
  if (value === undefined) return { specs: undefined };
  const specs = parseRange(value);
  return { specs, forward: { value: specs && formatRange(specs) } };
}

/** The source's body as Swift's GET serves it for the copy, from the source's HEAD (same query) now. */
export function servedSource(specs: readonly ByteRangeSpec[] | undefined, head: Readonly<Record<string, string>>, query: string | undefined): Served {
  const length = head['content-length'];
  // DLO serves the concatenation of segments, unless the manifest itself is asked for.
  const dynamicLargeObject = head['x-object-manifest'] !== undefined && SwiftQuery.parse(query).last('multipart-manifest') !== 'get';
  return servedBody(specs, {
    length: length !== undefined && /^[0-9]+$/.test(length) ? countHeader(length) : undefined,
    contentType: head['content-type'] ?? 'application/octet-stream',
    dynamicLargeObject,
  });
}

/**
 * The Range that has Swift serve a copy no more than what was counted, whatever the source has become by the time
 * Swift copies it: the one range served now, closed at both ends. The copy is pinned to the source's ETag as
 * well, but an ETag does not pin a size (a DLO's or SLO's is the MD5 of its segments' ETags, which a small plain
 * object can reproduce), and an open range (`bytes=100-`, a suffix, none at all) grows with the source. Swift
 * copies a whole-object range exactly as the whole object. Undefined where no bound is needed (nothing served)
 * or none can be written (several ranges: those copies are pinned otherwise).
 */
export function boundingRange(specs: readonly ByteRangeSpec[] | undefined, head: Readonly<Record<string, string>>, query: string | undefined): string | undefined {
  const served = servedSource(specs, head, query);
  if (served.parts !== 1 || served.size === 0) return undefined;
  const length = head['content-length'];
  if (length === undefined || !/^[0-9]+$/.test(length)) {
    // A DLO whose length Swift did not give: counted only for one closed range, which bounds it as it is.
    return specs && formatRange(specs);
  }
  if (served.status === 200) return `bytes=0-${served.size - 1}`;
  const [[start, end]] = rangesForLength(specs!, countHeader(length)) as [readonly [number, number]];
  return `bytes=${start}-${end - 1}`;
}

/** Whether two ETag header values name the same version (quotes and weakness aside, as swob compares them). */
export function sameEtag(a: string | undefined, b: string | undefined): boolean {
  const bare = (tag: string) => tag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return a !== undefined && b !== undefined && bare(a) === bare(b);
}
