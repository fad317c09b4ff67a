/**
 * An object PUT (or COPY, or a PUT with X-Copy-From, or an SLO manifest): what it stores is worked out as
 * Swift will store it (its announced size, what a copy reads, what SLO makes of a manifest), and admitted in
 * the container with the account counting its refusals too. The container's usage is read once, with its
 * versioning, and held still until Swift has answered.
 */
import { callerCredentials } from '../../auth/authority.js';
import { tempUrlParams } from '../../auth/signatures.js';
import { swiftTrue } from '../../swift/request.js';
import type { Intent } from '../../quota/intent.js';
import { containerKey, type Reservation, type Snapshot } from '../../quota/ledger/ledger.js';
import type { Denied, LevelInfo, Write } from '../../quota/admission.js';
import type { Usage } from '../../quota/decide.js';
import type { Scope } from '../../quota/watch.js';
import type { WritePath, Admitted } from '../../quota/writes.js';
import { ObjectPins } from '../../quota/pins.js';
import { headFor, replacedObject, type Caller } from '../../quota/caller.js';
import { storedByManifest, NO_SUCH_ETAG, sizeCopy, type SourceHead } from '../../quota/copies.js';
import { answerSwift, PRECONDITION_FAILED, refuse, TOO_LARGE } from '../../quota/answers.js';
import { archivedByWrite, overwriteCredit } from '../../quota/versioning.js';
import { createUploadLimiter } from '../../quota/upload-limiter.js';
import type { DoorRequest } from '../door.js';

type ObjectWrite = Extract<Intent, { type: 'object-write' }>;

/**
 * A copy of several byte ranges of a symlink: every part carries the target's content type, and any link of the
 * chain can be re-pointed (at an object with the same ETag) between the proxy's check and Swift's copy.
 */
const SYMLINK_RANGES_REFUSED = 'A copy of several byte ranges of a symlink is not supported through the quota proxy: copy its target, or one range at a time.';

/** Releases to run in order, from the first to the last. */
class Releases {
  private readonly all: Array<() => void> = [];
  add(release: (() => void) | undefined): void {
    if (release) this.all.push(release);
  }
  get any(): boolean {
    return this.all.length > 0;
  }
  readonly run = (): void => {
    for (const release of this.all) release();
  };
}

export async function admitObjectWrite(writes: WritePath, request: DoorRequest, intent: ObjectWrite): Promise<void> {
  const { core, view } = writes;
  const { account, container, object } = intent.target;
  const pinned = writes.untilUnpinned(account, container, object);
  if (pinned) await pinned;
  const source = intent.copy && !view.s3 && !tempUrlParams(view.path!.query) ? await readableSource(writes, intent) : undefined;
  if (source === 'unreadable') return;
  const caller = await writes.authorised(account, container, object);
  if (!caller) return;
  if (await tooLarge(writes, intent)) return answerSwift(writes.exchange, TOO_LARGE);
  const levelInfo = await writes.level(account);
  const scope = writes.enforced(account, container, levelInfo);
  if (!scope) return;
  // The container's versioning, held still from before it is read until Swift has answered (see below).
  const steady = await writes.held(core.pins.versioningSteady(account, container));
  const notBefore = core.admissions.readNotBefore();
  // The container's usage, read once: its versioning decides what the write frees, and the admission decides on it.
  const reading = await core.ledger.read(scope.key, notBefore);
  const releases = new Releases();
  const stored = await storedSize(writes, request, intent, caller, source);
  if (stored === undefined) return; // answered, or nothing to count
  releases.add(stored.unpin);
  await admitStored(writes, request, { intent, caller, levelInfo, scope, reading, notBefore, size: stored.size, releases, steady });
}

/**
 * Swift's copy reads its source before it asks whether the caller may write the destination: a source the
 * caller cannot read ends the copy with that answer (404, 403), which Swift gives itself. Pinned to no version,
 * the copy stores nothing whatever the source becomes meanwhile.
 */
async function readableSource({ core, view }: WritePath, intent: ObjectWrite): Promise<SourceHead | 'unreadable'> {
  const copy = intent.copy!;
  const source = await headFor(core, { kind: 'credentials', credentials: callerCredentials(view.headers) }, copy.ref, copy.query ?? '');
  if (source.status >= 200 && source.status < 300 && source.headers.etag) return source;
  view.upstream.set('if-match', NO_SUCH_ETAG);
  return 'unreadable';
}

/**
 * What the write stores: its announced size (undefined: chunked), a copy's, or the manifest SLO makes.
 * Undefined when there is nothing to count (Swift stores nothing) or the request has been answered.
 */
async function storedSize(writes: WritePath, request: DoorRequest, intent: ObjectWrite, caller: Caller, source: SourceHead | undefined): Promise<{ size: number | undefined; unpin?: () => void } | undefined> {
  const { core, exchange, view } = writes;
  if (intent.copy) {
    const sized = await sizeCopy({ core, caller, view, copy: intent.copy, target: intent.target, owner: exchange }, intent.manifest === true, source);
    if (sized === 'precondition-failed') return void answerSwift(exchange, PRECONDITION_FAILED);
    if (sized === 'symlink-ranges') return void refuse(exchange, 400, SYMLINK_RANGES_REFUSED);
    // Nothing to count: pinned to no version, or a manifest SLO refuses, Swift stores nothing.
    if (sized === 'unsizable') return undefined;
    return sized;
  }
  if (!intent.manifest) return { size: intent.size };
  // SLO stores its own manifest, not the body: read the body (SLO reads at most max_manifest_size of it).
  const limit = core.capabilities().maxManifestSize;
  if (intent.size !== undefined && intent.size > limit) return undefined; // Swift: 413 "Manifest File > ..."
  const read = await request.readBody(intent.target.account, limit);
  if (read === undefined) return undefined; // answered: 503 past the buffer budget, 408 for a stalled body
  exchange.body = read.body;
  // Read as one SLO refuses, it is still counted at the most SLO could store (manifest-sizer.ts).
  const sized = await storedByManifest(core, read.head, intent.target.account, view.path!.version, caller, exchange);
  return { size: sized.stored, unpin: sized.unpin };
}

interface Stored {
  readonly intent: ObjectWrite;
  readonly caller: Caller;
  readonly levelInfo: LevelInfo;
  readonly scope: Scope;
  /** The container's usage, with its versioning. */
  readonly reading: Snapshot;
  readonly notBefore: number;
  readonly size: number | undefined;
  readonly releases: Releases;
  /** Gives back the hold on the container's versioning. */
  readonly steady: () => void;
}

/** Admits the write (and, with legacy versioning, the version Swift archives) and holds both. */
async function admitStored(writes: WritePath, request: DoorRequest, stored: Stored): Promise<void> {
  const { core, exchange } = writes;
  const { intent, caller, scope, reading, releases, steady } = stored;
  const { versioning } = reading;
  // Legacy versioning archives the object this write replaces: writes of the object take turns, so the
  // object read now is the one Swift archives (versioning.ts).
  let replaced = () => replacedObject(core, caller, intent.target);
  let archived: Usage | undefined;
  if (versioning?.kind === 'archive') {
    releases.add(await core.pins.exclusive(ObjectPins.key(intent.target.account, intent.target.container, intent.target.object), exchange));
    const current = await replaced().catch((error: unknown) => {
      releases.run();
      throw error;
    });
    replaced = () => Promise.resolve(current);
    archived = archivedByWrite(versioning, current);
  }
  if (releases.any) writes.endsWith(releases.run);
  const write: Write = {
    scope,
    add: { count: 1, bytes: stored.size ?? 0 },
    target: intent.target.object,
    replaced: async () => overwriteCredit(versioning, await replaced()),
    context: writes.context,
    alsoCounted: [{ scope: writes.scope(scope.account, undefined, stored.levelInfo), snapshot: stored.levelInfo.snapshot }],
    notBefore: stored.notBefore,
    versioningRead: reading,
  };
  const result = await admitted(writes, write, caller);
  if (!result.admitted) {
    releases.run();
    return writes.reject(result.decision);
  }
  writes.hold(result.reservation);
  if (caller.kind === 'credentials') writes.trackGrant(scope.key, caller.credentials, scope.account, intent.target.container, () => request.raw.complete);
  if (archived && versioning?.kind === 'archive') {
    const archive = await core.admissions.admit({ scope: writes.scope(scope.account, versioning.location, stored.levelInfo), add: archived, target: undefined, context: writes.context });
    if (!archive.admitted) {
      core.ledger.release(result.reservation);
      releases.run();
      return writes.reject(archive.decision);
    }
    writes.hold(archive.reservation);
    // Swift archives the replaced object before it reads the body: kept whatever becomes of the write.
    exchange.partial = true;
    exchange.invalidates.push(scope.key, containerKey(scope.account, versioning.location));
  }
  // Admitted as freeing bytes (the replaced object's, those of other writes of the object in flight), it rests
  // on versioning staying off: a change of the container's versioning waits for this write. Kept as a version,
  // it frees nothing: the change need not wait.
  if (result.reservation.keepsVersions) steady();
  else releases.add(steady);
  settledAs(writes, stored, result, releases);
  if (stored.size === undefined && !intent.copy && !intent.manifest) {
    // Its growth may count on what it replaces: it holds the container's versioning still already (above).
    limitChunkedUpload(writes, request, write, result.reservation);
  }
}

/** Admitted, or refused; room held by writes on a grant revoked since is given back first (Swift will refuse them). */
async function admitted(writes: WritePath, write: Write, caller: Caller): Promise<Admitted | { admitted: false; decision: Denied }> {
  const { core } = writes;
  const result = await core.admissions.admit(write);
  if (!result.admitted && caller.kind === 'credentials' && (await core.grants.revokeStale(write.scope.key, caller.credentials.key))) {
    return core.admissions.admit(write);
  }
  return result;
}

/** How the admitted write is settled once Swift has answered. */
function settledAs(writes: WritePath, stored: Stored, result: Admitted, releases: Releases): void {
  const { exchange, view } = writes;
  const { intent, scope } = stored;
  exchange.watched = { scope, persisted: result.snapshot.persisted };
  // What a copy or a manifest stores is read again from Swift once it is done.
  if (intent.copy || intent.manifest) exchange.invalidates.push(scope.key);
  if (releases.any) exchange.unpinOnSettle(releases.run);
  // SLO answers a manifest PUT with heartbeat=on at once (202) and reports in the body; so does a copy that stores
  // a manifest (multipart-manifest=get of an SLO is PUT on as one): done when Swift's answer ends.
  if ((intent.manifest === true || intent.copy !== undefined) && swiftTrue(view.path!.query.last('heartbeat'))) {
    exchange.settleAtEnd = true;
    exchange.partial = true;
  }
  exchange.decision = 'admitted';
}

/**
 * Swift refuses an upload announcing more than its max_file_size as soon as it has the request's head (after
 * authorising it, in a container that exists), and clients may wait for that answer before sending a body.
 * The proxy's request reaches Swift with the body, so the proxy gives that answer itself.
 */
async function tooLarge({ core, view }: WritePath, intent: ObjectWrite): Promise<boolean> {
  if (intent.copy || intent.manifest || view.s3 || intent.size === undefined || intent.size <= core.capabilities().maxFileSize) return false;
  return (await core.ledger.read(containerKey(intent.target.account, intent.target.container))).exists;
}

/** Chunked upload: every chunk must fit before it is passed on; the upload is cut at the first that does not. */
function limitChunkedUpload({ core, exchange }: WritePath, request: DoorRequest, write: Write, reservation: Reservation): void {
  const credit = { bytes: 0, looked: false };
  const limiter = createUploadLimiter<Denied>((bytes) => core.admissions.grow(write, reservation, bytes, credit));
  const source = request.raw;
  source.on('error', (error) => limiter.destroy(error));
  source.on('aborted', () => limiter.destroy(new Error('client aborted the upload')));
  source.pipe(limiter);
  exchange.body = limiter;
}
