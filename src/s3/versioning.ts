/**
 * PUT Bucket versioning (s3api's VersioningController): the XML body's `Status` turns object_versioning on
 * (`Enabled`: X-Versions-Enabled true, which makes the account's hidden versions container) or off
 * (`Suspended`). The body is signed, so the proxy cannot re-serialise it: only the canonical forms SDKs send are
 * read as what they say, and anything else (s3api may still take it) is taken as turning versioning on, the
 * case that counts more. Pure.
 */

/** s3api's MAX_PUT_VERSIONING_BODY_SIZE: it refuses a longer body, and reads no further. */
export const VERSIONING_BODY_LIMIT = 10240;

/**
 * The canonical body: an optional XML declaration, `VersioningConfiguration` in S3's namespace or none, one
 * `Status`, optionally `MfaDelete` after it (as boto3, the aws CLI and rclone write it), whitespace between tags.
 */
const CANONICAL = new RegExp(
  '^(?:<\\?xml version="1\\.0" encoding="UTF-8"\\?>)?\\s*' +
    '<VersioningConfiguration(?: xmlns="http://s3\\.amazonaws\\.com/doc/2006-03-01/")?>\\s*' +
    '<Status>(Enabled|Suspended)</Status>\\s*(?:<MfaDelete>(?:Enabled|Disabled)</MfaDelete>\\s*)?' +
    '</VersioningConfiguration>\\s*$',
);

/** Whether the body turns versioning on: true unless it is, canonically, `Suspended`. */
export function turnsVersioningOn(body: Buffer, complete: boolean): boolean {
  if (!complete || body.length > VERSIONING_BODY_LIMIT) return true;
  const match = CANONICAL.exec(body.toString('latin1'));
  return match?.[1] !== 'Suspended';
}
