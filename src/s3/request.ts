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

/** s3api's `MULTIUPLOAD_SUFFIX`. */
export const SEGMENTS_SUFFIX = '+segments';

export interface S3Config {
  /** `[filter:s3api] storage_domain`: hosts under which the first label names the bucket. */
  readonly storageDomains: readonly string[];
  readonly location: string;
  readonly clockSkewSeconds: number;
}

export const DEFAULT_S3_CONFIG: S3Config = Object.freeze({ storageDomains: [], location: 'us-east-1', clockSkewSeconds: 900 });

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

/** A part number as Python's int() reads it, within 1..max (s3api answers 400 otherwise). */
function partNumber(value: string): number | undefined {
  if (!/^\s*\+?0*\d{1,6}\s*$/.test(value)) return undefined;
  const number = Number(value.trim());
  return number >= 1 ? number : undefined;
}

/** `bytes=first-last`: the copy's length; undefined where s3api refuses the range. */
function copyRangeLength(value: string | undefined): number | undefined {
  const match = /^bytes=(\d+)-(\d+)$/.exec(value ?? '');
  if (!match) return undefined;
  const [first, last] = [Number(match[1]), Number(match[2])];
  return last >= first ? last - first + 1 : undefined;
}

/**
 * The writes an S3 request makes, following s3api's controller dispatch (s3request.py `controller`): the first
 * sub-resource present (names case-sensitive, values irrelevant) decides, unknown ones fall through to the
 * plain bucket or object operation.
 */
export function s3Action(method: string, address: S3Address, query: string | undefined, headers: SwiftHeaders): S3Action {
  const params = latin1Params(query);
  const { bucket, key } = address;
  if (!bucket) return { kind: 'pass' };
  const has = (name: string) => params.has(name);
  if (has('acl')) return method === 'PUT' && !key ? { kind: 'bucket-update', bucket } : { kind: 'pass' };
  if (has('delete')) return { kind: 'pass', shrinks: { bucket } };
  if (has('location') || has('logging')) return { kind: 'pass' };
  if (has('partNumber')) {
    if (method !== 'PUT' || !key) return { kind: 'pass' };
    const uploadId = params.get('uploadId');
    const number = partNumber(params.get('partNumber')!);
    // s3api answers these itself (400, 404): no part is written.
    if (!uploadId || number === undefined) return { kind: 'pass' };
    const object = `${key}/${uploadId}/${number}`;
    const source = headers.get('x-amz-copy-source');
    if (source === undefined) return { kind: 'object-put', container: `${bucket}${SEGMENTS_SUFFIX}`, object };
    const copy = copySource(source);
    if (!copy) return { kind: 'pass' };
    const rangeHeader = headers.get('x-amz-copy-source-range');
    const copyRange = rangeHeader === undefined ? undefined : copyRangeLength(rangeHeader);
    if (rangeHeader !== undefined && copyRange === undefined) return { kind: 'pass' }; // 400 InvalidArgument
    return { kind: 'object-put', container: `${bucket}${SEGMENTS_SUFFIX}`, object, copy, ...(copyRange !== undefined ? { copyRange } : {}) };
  }
  if (has('uploadId')) {
    if (method === 'POST' && key) return { kind: 'complete', bucket, key, uploadId: params.get('uploadId')! };
    return method === 'DELETE' ? { kind: 'pass', shrinks: { bucket } } : { kind: 'pass' };
  }
  if (has('uploads')) return method === 'POST' && key ? { kind: 'initiate', bucket, key } : { kind: 'pass' };
  if (has('versioning')) {
    // Turning versioning on (object_versioning) makes a hidden container that counts against container_count;
    // whether the request turns it on is in its XML body, which is not read yet. Writes into a bucket that has
    // versioning (turned on through Swift) are counted as any (quota/versioning.ts).
    return method === 'PUT' ? { kind: 'refuse', error: NOT_IMPLEMENTED('Turning bucket versioning on through S3 is not supported by the quota proxy yet: set X-Versions-Enabled on the container through the Swift API.') } : { kind: 'pass' };
  }
  if (has('tagging') || ['notification', 'policy', 'requestPayment', 'torrent', 'website', 'cors', 'restore'].some(has)) return { kind: 'pass' };
  if (!key) {
    if (method === 'PUT') return { kind: 'bucket-create', bucket };
    return method === 'DELETE' ? { kind: 'pass', shrinks: { bucket } } : { kind: 'pass' };
  }
  if (method === 'DELETE') return { kind: 'pass', shrinks: { bucket } };
  if (method !== 'PUT') return { kind: 'pass' };
  const source = headers.get('x-amz-copy-source');
  if (source === undefined) return { kind: 'object-put', container: bucket, object: key };
  const copy = copySource(source);
  return copy ? { kind: 'object-put', container: bucket, object: key, copy } : { kind: 'pass' };
}

/** `[/]<bucket>/<key>[?versionId=<v>]`, as s3api's `check_copy_source` reads it; undefined where it answers 400. */
function copySource(value: string): { container: string; object: string; versionId?: string } | undefined {
  const question = value.indexOf('?');
  const path = question < 0 ? value : value.slice(0, question);
  const query = question < 0 ? '' : value.slice(question + 1);
  let versionId: string | undefined;
  if (query !== '') {
    const pairs = [...latin1Params(query).entries()];
    if (pairs.length !== 1 || pairs[0]![0] !== 'versionId') return undefined;
    versionId = pairs[0]![1];
  }
  const decoded = strictUtf8(unquoteBytes(path));
  if (decoded === undefined) return undefined;
  const [first, container, ...rest] = (decoded.startsWith('/') ? decoded : `/${decoded}`).split('/');
  const object = rest.join('/');
  if (first !== '' || !container || !object) return undefined;
  return { container, object, ...(versionId !== undefined && versionId !== 'null' ? { versionId } : {}) };
}
