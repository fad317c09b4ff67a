/**
 * S3 multipart uploads: initiating one makes `<bucket>+segments` and a marker in it; completing one stores an
 * SLO manifest of the parts the request lists. Both are admitted as the Swift writes s3api makes.
 */
import { SEGMENTS_SUFFIX } from '../../s3/request.js';
import { encodePath } from '../../swift/path.js';
import { accountKey, containerKey, type Reservation } from '../../quota/ledger/ledger.js';
import type { WritePath } from '../../quota/writes.js';
import { ObjectPins } from '../../quota/pins.js';
import { listAll, replacedObject, type Caller } from '../../quota/caller.js';
import type { LevelInfo } from '../../quota/admission.js';
import type { Usage } from '../../quota/decide.js';
import { archivedByWrite } from '../../quota/versioning.js';
import { storedByManifest } from '../../quota/copies.js';
import type { DoorRequest } from '../door.js';

/** How much of a completion's XML s3api reads (multi_upload.py MAX_COMPLETE_UPLOAD_BODY_SIZE); more, it refuses. */
const S3_COMPLETE_BODY_LIMIT = 2048 * 1024;

/**
 * POST ?uploads: s3api makes `<bucket>+segments` if it is missing (one more container) and stores a 0-byte
 * marker object in it (one more object). Both are admitted.
 */
export async function admitS3Initiate(writes: WritePath, key: string): Promise<void> {
  const { exchange } = writes;
  const { account, container } = writes.view.path as { account: string; container: string };
  const caller = await writes.authorised(account);
  if (!caller) return;
  const levelInfo = await writes.level(account);
  const accountScope = writes.scope(account, undefined, levelInfo);
  const containerScope = writes.scope(account, container, levelInfo);
  if (await writes.refusedForLegacyVersioning(account, container)) return;
  const reservations: Reservation[] = [];
  if (writes.core.admissions.enforces(accountScope)) {
    const made = await writes.admit(writes.containerWrite(accountScope, container, caller));
    if (!made) return;
    reservations.push(made.reservation);
  }
  if (writes.core.admissions.enforces(containerScope)) {
    // The marker is an object of its own (`<key>/<upload id>` in the segments container), not a write of `key`:
    // markers of one key at once, or a write of the key beside one, do not replace each other (no target).
    const marker = await writes.admit({ scope: containerScope, add: { count: 1, bytes: 0 }, target: undefined, context: writes.context }, reservations);
    if (!marker) return;
  }
  exchange.invalidates.push(accountKey(account), containerScope.key);
  // s3api may make the segments container, in the bucket's storage policy: a reading of it as missing (by any
  // proxy) would count its parts in another policy's total.
  exchange.rereadEverywhere.push(containerScope.key);
  exchange.partial = true;
  exchange.decision = 'admitted';
}

/**
 * POST ?uploadId: s3api stores an SLO manifest of the parts the request lists, as the bucket's object.
 * Which parts it lists is in the body; a manifest lists each part at most once (part numbers strictly
 * increase), so the manifest of every part the upload has is the largest it can be: that is what is held.
 * The upload's parts are pinned (no part is added or changed meanwhile through this proxy).
 */
export async function admitS3Complete(writes: WritePath, request: DoorRequest, uploadId: string): Promise<void> {
  const { core, exchange } = writes;
  const { account, container, object } = writes.view.path as { account: string; container: string; object: string };
  await writes.untilUnpinned(account, container, object);
  const caller = await writes.authorised(account, container, object);
  if (!caller) return;
  const levelInfo = await writes.level(account);
  const scope = writes.scope(account, container, levelInfo);
  // s3api deletes the upload's marker in the segments container: legacy versioning there would archive (or
  // restore) objects inside Swift, uncounted. The bucket's own is counted below.
  if (await writes.refusedForLegacyVersioning(account, `${container}${SEGMENTS_SUFFIX}`)) return;
  if (!core.admissions.enforces(scope)) return;
  // s3api lists the parts to complete only once it has read the request's XML: a client holding the body after
  // the decision could change a part meanwhile, through another proxy whose writes this one cannot see. So
  // the body is read first (as far as s3api reads it: past that it refuses the request), and the parts after.
  const completion = await request.readBody(account, S3_COMPLETE_BODY_LIMIT);
  if (completion === undefined) return; // answered: 503 past the buffer budget, 408 for a stalled body
  exchange.body = completion.body;
  const segments = `${container}${SEGMENTS_SUFFIX}`;
  const prefix = `${object}/${uploadId}/`;
  const releases = [await core.pins.pin([], [ObjectPins.key(account, segments, prefix)], exchange)];
  const unpin = () => releases.forEach((release) => release());
  try {
    const archive = await legacyArchive(writes, caller, { account, container, object }, releases);
    const parts = await uploadParts(writes, caller, account, segments, prefix);
    const manifest = Buffer.from(JSON.stringify(parts.map((part) => ({ path: `/${segments}/${part}` }))));
    const sized = await storedByManifest(core, manifest, account, 'v1', caller, exchange);
    releases.unshift(sized.unpin);
    const steady = await writes.held(core.pins.versioningSteady(account, container)); // as for object writes
    const admitted = await writes.admit({
      scope,
      add: { count: 1, bytes: sized.stored },
      target: object,
      replaced: () => replacedObject(core, caller, { account, container, object }),
      context: writes.context,
      alsoCounted: [{ scope: writes.scope(account, undefined, levelInfo), snapshot: levelInfo.snapshot }],
      // What it replaces is archived in another container of the account: the account's total frees nothing.
      ...(archive ? { totalAdd: { count: 1, bytes: sized.stored } } : {}),
    });
    if (!admitted) return unpin();
    if (archive && !(await admitArchive(writes, archive, levelInfo, admitted.reservation))) return unpin();
    if (admitted.reservation.keepsVersions) steady();
    else releases.push(steady);
    exchange.watched = { scope, persisted: admitted.snapshot.persisted };
    exchange.invalidates.push(scope.key, containerKey(account, segments));
    exchange.unpinOnSettle(unpin);
    // s3api answers 200 at once and reports the outcome in the streamed body.
    exchange.settleAtEnd = true;
    exchange.partial = true;
    writes.endsWith(unpin);
    exchange.decision = 'admitted';
  } catch (error) {
    unpin();
    throw error;
  }
}

/** The part objects of a multipart upload (`<key>/<uploadId>/<n>`), as the caller may list them. */
async function uploadParts(writes: WritePath, caller: Caller, account: string, segments: string, prefix: string): Promise<string[]> {
  if (caller.kind !== 'credentials') return [];
  const entries = await listAll<{ name: string }>(prefix, `the parts of ${prefix}`, (query) =>
    writes.core.swift.asCaller('GET', `${encodePath('v1', account, segments)}?${query}`, { ...caller.credentials.headers, accept: 'application/json' }, 'listing', 16 * 1024 * 1024),
  );
  return entries.map((entry) => entry.name).filter((name) => /^\d+$/.test(name.slice(prefix.length)));
}

/** What Swift archives when the completion replaces the bucket's object (legacy versioning), and where. */
interface Archive {
  readonly account: string;
  /** The bucket the replaced object leaves. */
  readonly container: string;
  readonly location: string;
  readonly archived: Usage | undefined;
}

/**
 * Legacy versioning of the bucket: the manifest replaces `target`, which Swift archives into the location
 * container. The object's turn is taken (released with `releases`) and the object read now is the one archived;
 * undefined without legacy versioning.
 */
async function legacyArchive(writes: WritePath, caller: Caller, target: { account: string; container: string; object: string }, releases: Array<() => void>): Promise<Archive | undefined> {
  const { core, exchange } = writes;
  const versioning = await core.containerVersioning(containerKey(target.account, target.container));
  if (versioning?.kind !== 'archive') return undefined;
  releases.push(await core.pins.exclusive(ObjectPins.key(target.account, target.container, target.object), exchange));
  const current = await replacedObject(core, caller, target);
  return { account: target.account, container: target.container, location: versioning.location, archived: archivedByWrite(versioning, current) };
}

/** The archive admitted in its location, held beside the manifest; false: refused (answered, the manifest given back). */
async function admitArchive(writes: WritePath, archive: Archive, levelInfo: LevelInfo, manifest: Reservation): Promise<boolean> {
  if (!archive.archived) return true;
  const scope = writes.scope(archive.account, archive.location, levelInfo);
  // An archive moves an object between containers of the account: its total does not change (its policy's may).
  const admitted = await writes.admit({ scope, add: archive.archived, target: undefined, context: writes.context, totalAdd: { count: 0, bytes: 0 }, movedFrom: archive.container }, [manifest]);
  if (!admitted) return false;
  writes.exchange.invalidates.push(scope.key);
  return true;
}
