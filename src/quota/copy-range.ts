/**
 * What a server-side copy with a Range stores: Swift's copy middleware GETs its source with the request's
 * headers, Range included, and stores the body it gets (swift/range.ts says which). Pure.
 */
import { countHeader } from '../swift/client.js';
import { SwiftQuery } from '../swift/request.js';
import { formatRange, parseRange, servedBody, type ByteRangeSpec, type Served } from '../swift/range.js';

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

/** Whether two ETag header values name the same version (quotes and weakness aside, as swob compares them). */
export function sameEtag(a: string | undefined, b: string | undefined): boolean {
  const bare = (tag: string) => tag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return a !== undefined && b !== undefined && bare(a) === bare(b);
}
