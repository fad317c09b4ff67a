/**
 * What an S3 request does in Swift, read as Swift's s3api middleware reads it (s3api.py, s3request.py,
 * controllers/): which requests are S3 requests at all (any Authorization header, or AWSAccessKeyId or
 * X-Amz-Credential in the query: the path does not matter, `/v1/...` included), which bucket and key they
 * address (path style, or virtual-hosted style under `storage_domain`), and which Swift writes they turn
 * into: a bucket is a container of the caller's account, a multipart upload's parts are objects of
 * `<bucket>+segments`, and its completion is an SLO manifest. Pure.
 */
import type { SwiftHeaders } from '../swift/request.js';
import { strictUtf8, unquoteBytes } from '../swift/request.js';
import { latin1Params, type S3Error } from './signature.js';
import {
  BAD_COPY_RANGE, BAD_COPY_SOURCE, BAD_COPY_SOURCE_QUERY, COPY_RANGE_ON_OBJECT, NO_SUCH_UPLOAD, PART_WITHOUT_UPLOAD,
  badPartNumber, canonicalCopyRange, canonicalCopySource, canonicalPartNumber, canonicalUploadId,
} from './values.js';

/** s3api's `MULTIUPLOAD_SUFFIX`. */
export const SEGMENTS_SUFFIX = '+segments';

export interface S3Config {
  /** `[filter:s3api] storage_domain`: hosts under which the first label names the bucket. */
  readonly storageDomains: readonly string[];
  readonly location: string;
  readonly clockSkewSeconds: number;
  /** `max_upload_part_num`: the largest part number s3api takes (named in its refusal of a malformed one). */
  readonly maxUploadPartNum: number;
}

export const DEFAULT_S3_CONFIG: S3Config = Object.freeze({ storageDomains: [], location: 'us-east-1', clockSkewSeconds: 900, maxUploadPartNum: 1000 });

/** Whether s3api takes the request for an S3 request (it never looks at the path for that). */
export function isS3Request(headers: SwiftHeaders, query: string | undefined): boolean {
  if (headers.has('authorization')) return true;
  const params = latin1Params(query);
  return params.has('AWSAccessKeyId') || params.has('X-Amz-Credential');
}

export interface S3Address {
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  /** Virtual-hosted style: the bucket came from Host (V2 signs it in front of the path). */
  readonly bucketInHost: string | undefined;
  /** PATH_INFO, decoded, as a latin-1 (byte) string. */
  readonly decodedPath: string;
}

/** The bucket and key as s3api reads them; undefined where s3api refuses the path (not UTF-8, NUL: 400). */
export function s3Address(rawPath: string, host: string | undefined, config: S3Config): S3Address | undefined {
  const bytes = unquoteBytes(rawPath);
  const text = strictUtf8(bytes);
  if (text === undefined || text.includes('\0')) return undefined;
  const decodedPath = bytes.toString('latin1');
  let hostname = host ?? '';
  const colon = hostname.lastIndexOf(':');
  if (colon >= 0) hostname = hostname.slice(0, colon);
  for (const configured of config.storageDomains) {
    const domain = configured.startsWith('.') ? configured : `.${configured}`;
    if (hostname.endsWith(domain)) {
      const bucket = hostname.slice(0, -domain.length);
      const key = text.slice(1) || undefined;
      return { bucket, key, bucketInHost: bucket, decodedPath };
    }
  }
  // Path style: split_path(path, 0, 2, True).
  const [, bucket, ...rest] = text.split('/');
  const key = rest.length > 0 ? rest.join('/') : undefined;
  return { bucket: bucket || undefined, key: bucket ? key || undefined : undefined, bucketInHost: undefined, decodedPath };
}

/** What an S3 request writes in Swift. */
export type S3Action =
  /** Reads, deletes, requests s3api refuses itself: Swift's answer, nothing to count. */
  | { readonly kind: 'pass'; readonly shrinks?: { readonly bucket: string } }
  | { readonly kind: 'refuse'; readonly error: S3Error }
  /** PUT Bucket: a container of the caller's account, with the request's (passed-through) headers. */
  | { readonly kind: 'bucket-create'; readonly bucket: string }
  /** PUT ?acl on a bucket: a POST of the container's ACLs, and of whatever else the request's headers set. */
  | { readonly kind: 'bucket-update'; readonly bucket: string }
  /** PUT ?versioning: a POST of the bucket with X-Versions-Enabled as the body says, and the request's headers. */
  | { readonly kind: 'bucket-versioning'; readonly bucket: string }
  /** An object PUT: the object, or a part of a multipart upload (in `<bucket>+segments`). */
  | {
      readonly kind: 'object-put';
      readonly container: string;
      readonly object: string;
      /** x-amz-copy-source, as s3api turns it into X-Copy-From (same account) and `version-id`. */
      readonly copy?: { readonly container: string; readonly object: string; readonly versionId?: string };
      /** An upload part copied from a range of its source (x-amz-copy-source-range): at most this many bytes. */
      readonly copyRange?: number;
    }
  /** POST ?uploads: `<bucket>+segments` if missing, and a 0-byte marker object in it. */
  | { readonly kind: 'initiate'; readonly bucket: string; readonly key: string }
  /** POST ?uploadId: an SLO manifest of the upload's parts, as object `key` of the bucket. */
  | { readonly kind: 'complete'; readonly bucket: string; readonly key: string; readonly uploadId: string };

const NOT_IMPLEMENTED = (message: string): S3Error => ({ status: 501, code: 'NotImplemented', message });

/**
 * The writes an S3 request makes, following s3api's controller dispatch (s3request.py `controller`): the first
 * sub-resource present (names case-sensitive, values irrelevant, the last of repeated ones) decides, unknown ones
 * fall through to the plain bucket or object operation. Every `pass` says why nothing s3api writes goes
 * uncounted; values that decide what is written are read in their canonical spelling only (values.ts).
 */
export function s3Action(method: string, address: S3Address, query: string | undefined, headers: SwiftHeaders, config: S3Config = DEFAULT_S3_CONFIG): S3Action {
  const params = latin1Params(query);
  const { bucket, key } = address;
  // The service (GET Service only: 405 to anything else).
  if (!bucket) return { kind: 'pass' };
  const has = (name: string) => params.has(name);
  // Object ACLs: 501; bucket ACL reads: nothing written.
  if (has('acl')) return method === 'PUT' && !key ? { kind: 'bucket-update', bucket } : { kind: 'pass' };
  // Multi-object delete (POST only): removes objects.
  if (has('delete')) return { kind: 'pass', shrinks: { bucket } };
  // GET location; PUT logging is 501.
  if (has('location') || has('logging')) return { kind: 'pass' };
  if (has('partNumber')) return partAction(method, bucket, key, params, headers, config);
  if (has('uploadId')) {
    if (method === 'POST' && key) {
      const uploadId = params.get('uploadId');
      return canonicalUploadId(uploadId) ? { kind: 'complete', bucket, key, uploadId } : { kind: 'refuse', error: NO_SUCH_UPLOAD };
    }
    // DELETE aborts (removes parts); GET lists parts; PUT and the rest are 405, POST on a bucket 400.
    return method === 'DELETE' ? { kind: 'pass', shrinks: { bucket } } : { kind: 'pass' };
  }
  // GET lists uploads; POST on a bucket is 400, other methods 405.
  if (has('uploads')) return method === 'POST' && key ? { kind: 'initiate', bucket, key } : { kind: 'pass' };
  // PUT Bucket versioning (on a key too: s3api takes it for its bucket): a POST of X-Versions-Enabled, as its
  // XML body says (s3/versioning.ts).
  if (has('versioning')) return method === 'PUT' ? { kind: 'bucket-versioning', bucket } : { kind: 'pass' };
  // Tagging: GET answers an empty set, PUT and DELETE are 501; the rest (UnsupportedController) are all 501.
  if (has('tagging') || ['notification', 'policy', 'requestPayment', 'torrent', 'website', 'cors', 'restore'].some(has)) return { kind: 'pass' };
  if (!key) {
    if (method === 'PUT') return { kind: 'bucket-create', bucket };
    // DELETE removes an empty bucket; GET and HEAD read; POST is 501.
    return method === 'DELETE' ? { kind: 'pass', shrinks: { bucket } } : { kind: 'pass' };
  }
  if (method === 'DELETE') return { kind: 'pass', shrinks: { bucket } };
  // GET and HEAD read; POST is 501.
  if (method !== 'PUT') return { kind: 'pass' };
  const sourceHeader = headers.get('x-amz-copy-source');
  if (sourceHeader === undefined) return { kind: 'object-put', container: bucket, object: key };
  const copy = canonicalCopySource(sourceHeader);
  if ('code' in copy) return { kind: 'refuse', error: copy };
  if (headers.has('x-amz-copy-source-range')) return { kind: 'refuse', error: COPY_RANGE_ON_OBJECT };
  return { kind: 'object-put', container: bucket, object: key, copy };
}

/** PUT ?partNumber (PartController): a part `<key>/<uploadId>/<n>` of `<bucket>+segments`, checked in s3api's order. */
function partAction(method: string, bucket: string, key: string | undefined, params: Map<string, string>, headers: SwiftHeaders, config: S3Config): S3Action {
  // PartController has PUT only (405), and only on objects (400).
  if (method !== 'PUT' || !key) return { kind: 'pass' };
  const sourceHeader = headers.get('x-amz-copy-source');
  // S3Request's own check of the copy source comes before the controller's.
  const copy = sourceHeader === undefined ? undefined : canonicalCopySource(sourceHeader);
  if (copy && 'code' in copy && copy !== BAD_COPY_SOURCE_QUERY) return { kind: 'refuse', error: copy };
  if (!params.has('uploadId')) return { kind: 'refuse', error: PART_WITHOUT_UPLOAD };
  const number = canonicalPartNumber(params.get('partNumber')!);
  if (number === undefined) return { kind: 'refuse', error: badPartNumber(config.maxUploadPartNum) };
  const uploadId = params.get('uploadId');
  if (!canonicalUploadId(uploadId)) return { kind: 'refuse', error: NO_SUCH_UPLOAD };
  const part = { kind: 'object-put', container: `${bucket}${SEGMENTS_SUFFIX}`, object: `${key}/${uploadId}/${number}` } as const;
  if (copy === undefined) return part;
  if ('code' in copy) return { kind: 'refuse', error: copy };
  const rangeHeader = headers.get('x-amz-copy-source-range');
  if (rangeHeader === undefined) return { ...part, copy };
  const copyRange = canonicalCopyRange(rangeHeader);
  return copyRange === undefined ? { kind: 'refuse', error: BAD_COPY_RANGE } : { ...part, copy, copyRange };
}
