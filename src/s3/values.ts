/**
 * The values of an S3 request that decide what Swift stores (part numbers, upload ids, copy sources and
 * their ranges), read in one canonical spelling only. s3api reads them with Python (`int()`, swob's `Range`,
 * `unquote`), which accepts far more spellings than AWS SDKs send: `1_0`, `٢`, `+5`, ` 06`, `bytes=0-`,
 * `bytes=-9000`, `BYTES = 0_0-9`... A signed request cannot be rewritten into the spelling the proxy read, so
 * every other spelling is refused, with the error s3api gives for a malformed value of that parameter (the
 * request would have stored something the proxy did not count). What is accepted here s3api reads as the same
 * number, range or name: test/adversarial/s3-values.test.ts checks it against s3api's own code. Pure.
 */
import { strictUtf8, unquoteBytes } from '../swift/request.js';
import type { S3Error } from './signature.js';

/** AWS's largest part number; s3api's `max_upload_part_num` (default 1,000) refuses above its own. */
export const MAX_PART_NUMBER = 10_000;

/** s3api's InvalidArgument (s3response.py): 400, the argument's name and value go with the message. */
const invalidArgument = (message: string): S3Error => ({ status: 400, code: 'InvalidArgument', message });

/** PartController.PUT's answer to a part number that is not an integer in 1..max_upload_part_num. */
export const badPartNumber = (maxUploadPartNum: number): S3Error => invalidArgument(`Part number must be an integer between 1 and ${maxUploadPartNum}, inclusive`);

/** PartController.PUT's answer to `?partNumber` without `?uploadId`. */
export const PART_WITHOUT_UPLOAD = invalidArgument('Unexpected query string parameter');

/** s3api's NoSuchUpload: what it answers to an upload id whose marker object does not exist. */
export const NO_SUCH_UPLOAD: S3Error = {
  status: 404,
  code: 'NoSuchUpload',
  message: 'The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.',
};

/** S3Request._validate_headers' answer to an x-amz-copy-source that names no bucket and key. */
export const BAD_COPY_SOURCE = invalidArgument('Copy Source must mention the source bucket and key: sourcebucket/sourcekey');

/** check_copy_source's answer to a query on x-amz-copy-source other than one versionId. */
export const BAD_COPY_SOURCE_QUERY = invalidArgument('Unsupported copy source parameter.');

/** PartController.PUT's answer to an x-amz-copy-source-range swob's Range does not read as one range. */
export const BAD_COPY_RANGE = invalidArgument('The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy');

/** ObjectController.PUT's answer to x-amz-copy-source-range on an object (not a part) copy. */
export const COPY_RANGE_ON_OBJECT = invalidArgument('Illegal copy header');

/** A part number as AWS SDKs send it: plain decimal, no sign, no leading zero, no space, 1..10,000. */
export function canonicalPartNumber(value: string): number | undefined {
  if (!/^[1-9][0-9]{0,4}$/.test(value)) return undefined;
  const number = Number(value);
  return number <= MAX_PART_NUMBER ? number : undefined;
}

/**
 * An upload id as s3api makes them (utils.unique_id: URL-safe base64 of a UUID, 48 characters): anything
 * else names no upload s3api made. An empty one would name the marker `<key>/`, and a non-ASCII one is read
 * as UTF-8 by s3api but put into a WSGI (latin-1) object name.
 */
export function canonicalUploadId(value: string | undefined): value is string {
  return value !== undefined && /^[A-Za-z0-9_-]{1,128}={0,2}$/.test(value);
}

/** The largest offset accepted: 15 digits, exact as a JavaScript number. */
const OFFSET = '(0|[1-9][0-9]{0,14})';
const COPY_RANGE = new RegExp(`^bytes=${OFFSET}-${OFFSET}$`);

/** `bytes=<first>-<last>`, plain decimals, first ≤ last: the number of bytes it names; else undefined. */
export function canonicalCopyRange(value: string): number | undefined {
  const match = COPY_RANGE.exec(value);
  if (!match) return undefined;
  const [first, last] = [Number(match[1]), Number(match[2])];
  return last >= first ? last - first + 1 : undefined;
}

export interface CopySource {
  readonly container: string;
  readonly object: string;
  /** Swift's `version-id` of the source; absent for the current version (and for `null`, as s3api sends it). */
  readonly versionId?: string;
}

/**
 * Characters of a copy source's path sent as they are: RFC 3986's unreserved ones, `/`, and the sub-delimiters
 * no reader treats specially (`,` is left out: repeated headers are joined with it). Everything else is
 * percent-encoded, as AWS SDKs send it; a raw byte above 0x7F would be read by s3api's `unquote` as latin-1
 * text and stored under a different name than the one percent-decoded.
 */
const COPY_PATH = /^(?:[A-Za-z0-9\-._~/!$&'()*+;=:@]|%[0-9A-Fa-f]{2})+$/;
/** A Swift version id (Timestamp.normal) or `null`. */
const VERSION_ID = /^(?:[0-9]{10}\.[0-9]{5}|null)$/;

/**
 * x-amz-copy-source, `[/]<bucket>/<key>[?versionId=<id>]`, in the canonical spelling: the source, or the
 * error s3api gives for a malformed one.
 */
export function canonicalCopySource(value: string): CopySource | S3Error {
  const question = value.indexOf('?');
  const path = question < 0 ? value : value.slice(0, question);
  if (!COPY_PATH.test(path)) return BAD_COPY_SOURCE;
  const decoded = strictUtf8(unquoteBytes(path));
  if (decoded === undefined || decoded.includes('\0')) return BAD_COPY_SOURCE;
  const slash = decoded.startsWith('/') ? 1 : 0;
  const end = decoded.indexOf('/', slash);
  const container = end < 0 ? '' : decoded.slice(slash, end);
  const object = end < 0 ? '' : decoded.slice(end + 1);
  if (!container || !object) return BAD_COPY_SOURCE;
  if (question < 0) return { container, object };
  const query = value.slice(question + 1);
  const versionId = query.startsWith('versionId=') ? query.slice('versionId='.length) : undefined;
  if (versionId === undefined || !VERSION_ID.test(versionId)) return BAD_COPY_SOURCE_QUERY;
  return versionId === 'null' ? { container, object } : { container, object, versionId };
}
