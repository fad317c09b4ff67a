/**
 * What Swift's object versioning stores besides the write itself, by what Swift stores (checked on Swift
 * 2.30.1, test/adversarial/versioning.test.ts). Pure: the gate reads the facts, this says what they cost.
 *
 * Legacy versioned_writes (`X-Versions-Location` / `X-History-Location`: another container of the account):
 * - an overwrite (PUT, copy) first copies the object it replaces, as stored (a manifest or symlink itself), into
 *   the location: one object and its bytes there, against that container's limits;
 * - a delete in history mode copies the object there and adds a 0-byte delete marker (a marker alone when
 *   there is no object);
 * - a delete in stack mode copies the newest version back over the object (the container may grow by it) and
 *   removes that version.
 *
 * object_versioning (`X-Versions-Enabled`): every version is kept in a hidden container of the account, and
 * Swift reports the bytes of all of them as the container's `X-Container-Bytes-Used`, its current objects as
 * `X-Container-Object-Count`. So the container's limits cover its versions: an overwrite adds all its bytes
 * (nothing is freed) and a delete frees nothing. The hidden container is one more in the account's
 * `X-Account-Container-Count`, made when versioning is first turned on. Writes of one name in flight together,
 * or in one archive, are each a version too: they replace each other's count (one current object), never bytes.
 * Whatever was admitted as freeing bytes (an overwrite, writes of one name replacing each other) rests on
 * versioning staying off until Swift has acted on it: a change of versioning waits for those writes, and object
 * writes that come during a change wait for it (pins.ts).
 */
import type { Usage } from './decide.js';
import type { Versioning } from './ledger/ledger.js';

/** The hidden container object_versioning keeps a container's versions in (a reserved name). */
export function versionsContainer(container: string): string {
  return `\u0000versions\u0000${container}`;
}

/** Whether Swift keeps every write of an object of the container as a version (object_versioning on). */
export function keepsVersions(versioning: Versioning | undefined): boolean {
  return versioning?.kind === 'object' && versioning.enabled;
}

/**
 * What an overwrite frees in its own container, given the object it replaces as stored: with
 * object_versioning on, the replaced object becomes a version and keeps its bytes.
 */
export function overwriteCredit(versioning: Versioning | undefined, replaced: Usage | undefined): Usage | undefined {
  if (replaced === undefined) return undefined;
  return keepsVersions(versioning) ? { count: replaced.count, bytes: 0 } : replaced;
}

/** What an overwrite stores in a legacy location: the replaced object, if there is one. */
export function archivedByWrite(versioning: Versioning | undefined, replaced: Usage | undefined): Usage | undefined {
  if (versioning?.kind !== 'archive' || replaced === undefined) return undefined;
  return { count: 1, bytes: replaced.bytes };
}

/** What a delete stores in a legacy location in history mode: a copy of the object and a delete marker. */
export function archivedByDelete(versioning: Versioning | undefined, current: Usage | undefined): Usage | undefined {
  if (versioning?.kind !== 'archive' || versioning.mode !== 'history') return undefined;
  return current === undefined ? { count: 1, bytes: 0 } : { count: 2, bytes: current.bytes };
}

/** versioned_writes' names of an object's versions in its location: `<length in hex, 3 digits><name>/`. */
export function archivePrefix(object: string): string {
  // Swift counts the characters of the WSGI string: one per byte of the UTF-8 name.
  return `${Buffer.byteLength(object, 'utf8').toString(16).padStart(3, '0')}${object}/`;
}

/** versioned_writes' delete marker content type (history mode). */
export const DELETE_MARKER = 'application/x-deleted;swift_versions_deleted=1';

/**
 * What a stack-mode delete may copy back over the object: any version that is not a delete marker (Swift takes
 * the newest it can read), so the largest of them. Undefined when there is none (a plain delete).
 */
export function restorable(versions: ReadonlyArray<{ bytes: number; content_type?: string }>): Usage | undefined {
  let largest: number | undefined;
  for (const version of versions) {
    if (version.content_type === DELETE_MARKER) continue;
    largest = Math.max(largest ?? 0, version.bytes);
  }
  return largest === undefined ? undefined : { count: 1, bytes: largest };
}
