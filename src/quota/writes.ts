/**
 * The write path every front door admits through: Swift authorises the caller, the account's level gives the
 * scope's limits, the write is admitted (admission.ts) and what it reserves is held on the request's exchange
 * until Swift has answered. The steps are written once (WritePath); an object write, whichever door it comes
 * through (a Swift PUT, COPY or manifest, an S3 PUT or copy), is admitted by `admitObject`, top to bottom.
 */
import type { IncomingMessage } from 'node:http';
import type { Credentials } from '../auth/authority.js';
import type { SwiftView } from '../proxy/swift-view.js';
import { swiftTrue } from '../swift/request.js';
import { containerKey, type Reservation, type Snapshot } from './ledger/ledger.js';
import type { Admission, Denied, LevelInfo, Write } from './admission.js';
import type { Usage } from './decide.js';
import type { BodyHead, Exchange } from './exchange.js';
import type { QuotaCore } from './core.js';
import type { Intent } from './intent.js';
import type { ContextSource, Scope } from './watch.js';
import { ObjectPins } from './pins.js';
import { answerSwift, PRECONDITION_FAILED, refuse, reject, TOO_LARGE } from './answers.js';
import { authorise, creditOf, headFor, replacedObject, type Caller } from './caller.js';
import { storedSize, type SourceHead } from './copies.js';
import { archivedByWrite } from './versioning.js';
import { createUploadLimiter } from './upload-limiter.js';
import { track } from './settle.js';

export type Admitted = Extract<Admission, { admitted: true }>;

/** Why form, S3 multipart and bulk uploads into a legacy-versioned container are refused. */
export const LEGACY_VERSIONING_REFUSED = 'Legacy object versioning (X-Versions-Location / X-History-Location) is on for this container: bulk uploads into it, and S3 multipart uploads whose segments container it is, are not counted by the quota proxy yet; upload the objects one by one.';

/** What one request's admission works with: the core, the request's exchange, and its view. */
export class WritePath {
  /** Who asked, for quota events (built only when an event fires). */
  readonly context: ContextSource;

  constructor(
    readonly core: QuotaCore,
    readonly exchange: Exchange,
    readonly view: SwiftView,
  ) {
    this.context = core.contextOf(exchange, view);
  }

  /** The caller Swift takes the write from; undefined when Swift would refuse it (then answered with Swift's refusal). */
  async authorised(account: string, container?: string, object?: string): Promise<Caller | undefined> {
    const { verdict, caller } = await authorise(this.core, this.view, account, container, object);
    if (verdict.allowed) return caller;
    answerSwift(this.exchange, verdict.answer);
    return undefined;
  }

  level(account: string): Promise<LevelInfo> {
    return this.core.admissions.levelOf(account);
  }

  scope(account: string, container: string | undefined, level: LevelInfo): Scope {
    return this.core.admissions.scope(account, container, level);
  }

  /** The scope `container` (or the account) counts in, if any of its kinds has a limit. */
  enforced(account: string, container: string | undefined, level: LevelInfo): Scope | undefined {
    const scope = this.scope(account, container, level);
    return this.core.admissions.enforces(scope) ? scope : undefined;
  }

  /**
   * Admits `write` and holds what it reserves. Refused, the request is answered the refusal and `alsoHeld`
   * (what it reserved before) is given back at once.
   */
  async admit(write: Write, alsoHeld: readonly Reservation[] = []): Promise<Admitted | undefined> {
    const result = await this.core.admissions.admit(write);
    if (!result.admitted) {
      for (const reservation of alsoHeld) this.core.ledger.release(reservation);
      this.reject(result.decision);
      return undefined;
    }
    this.hold(result.reservation);
    return result;
  }

  reject(decision: Denied): void {
    reject(this.exchange, this.core.metrics, decision);
  }

  /**
   * Reserves quota for an admitted write until the request's exchange with Swift ends: whatever the client does
   * meanwhile, the reservation lasts until Swift has answered or the request to Swift has failed.
   */
  hold(reservation: Reservation): Reservation {
    const exchange = track(this.core, this.exchange);
    // The client went before anything was sent: nothing will be (the request is not sent to Swift any more).
    if (exchange.over) this.core.ledger.release(reservation);
    else exchange.held.push(reservation);
    return reservation;
  }

  /** The request follows its exchange with Swift from now on: what it holds is settled when that ends. */
  follow(): void {
    track(this.core, this.exchange);
  }

  /** Calls `release` when the request's exchange with Swift ends (at once if it has ended already). */
  endsWith(release: () => void): void {
    track(this.core, this.exchange).finally(release);
  }

  /**
   * What a held pin (`holding`) gives back, once it is held; released when the exchange ends. Without a promise
   * when it is held at once (nearly always: object writes take one each).
   */
  held(holding: (() => void) | Promise<() => void>): (() => void) | Promise<() => void> {
    if (typeof holding !== 'function') return holding.then((release) => this.held(release));
    this.endsWith(holding);
    return holding;
  }

  /**
   * One more container in an account (`scope`). A PUT of an existing container is an update (Swift answers
   * 202), not a new container: it may pass on that credit, but holds its place until Swift has answered.
   */
  containerWrite(scope: Scope, container: string, caller: Caller): Write {
    return {
      scope,
      add: { count: 1, bytes: 0 },
      target: container,
      replaced: async () => {
        const { status } = await headFor(this.core, caller, { account: scope.account, container }, '');
        return status >= 200 && status < 300 ? { count: 1, bytes: 0 } : undefined;
      },
      context: this.context,
    };
  }

  /**
   * Writes Swift makes inside itself in a container with legacy versioning, which would archive (or, deleting,
   * restore) objects there uncounted: an S3 multipart upload's marker and parts in `<bucket>+segments` (s3api
   * deletes them itself), and bulk extractions (file by file). Such containers take none of those through the
   * proxy (object_versioning counts versions in the container itself and takes them). True when refused so (and
   * answered).
   */
  async refusedForLegacyVersioning(account: string, container: string): Promise<boolean> {
    if ((await this.core.containerVersioning(containerKey(account, container)))?.kind !== 'archive') return false;
    refuse(this.exchange, 400, LEGACY_VERSIONING_REFUSED);
    return true;
  }

  /** What to wait for while a manifest on its way to Swift rests on this object (pins.ts); undefined: nothing. */
  untilUnpinned(account: string, container: string, object: string): Promise<void> | undefined {
    return this.core.pins.waitFor(ObjectPins.key(account, container, object));
  }

  /**
   * The write goes to Swift now: once no other request's pin is on its object (a manifest resting on it, a write
   * taking its turn), it is marked as on its way until Swift answers, so a manifest checked meanwhile reads the
   * object only after it has landed (pins.ts).
   */
  enterWrite(written: { account: string; container: string; object: string }): Promise<void> | undefined {
    // Other processes' pins (shared-pins.ts): a reservation of the object was checked against them as the ledger
    // made it; a delete cannot make what a pin holds larger (a manifest or copy resting on the object then fails).
    const checked = this.exchange.line.method === 'DELETE' || this.exchange.held.some((held) => held.key === containerKey(written.account, written.container) && held.target === written.object);
    const entered = this.core.pins.enter(ObjectPins.key(written.account, written.container, written.object), this.exchange, checked);
    if (typeof entered !== 'function') return entered.then((leave) => this.onItsWay(leave));
    this.onItsWay(entered);
    return undefined;
  }

  /** Marked as on its way to Swift until Swift has answered (or the exchange ends). */
  private onItsWay(leave: () => void): void {
    this.exchange.unpinOnSettle(leave);
    this.endsWith(leave);
  }

  /**
   * A write admitted on the caller's grant as kept (authority.ts), until its exchange ends: refused with Swift's
   * answer (and cut) if the grant is revoked before Swift can have all of it (grants.ts); the grant is forgotten if
   * Swift refuses it.
   */
  trackGrant(scopeKey: string, credentials: Credentials, account: string, container: string, bodyComplete: () => boolean): void {
    const exchange = track(this.core, this.exchange);
    exchange.finally(
      this.core.grants.add(scopeKey, {
        credentials,
        account,
        container,
        since: Date.now(),
        // Seen by Swift with its body still coming from the client: Swift cannot have all of it yet, and cutting
        // it stores nothing, so a grantee cannot keep a started upload open on a revoked grant.
        reachedSwift: () => exchange.reachedSwift && bodyComplete(),
        refuse: (answer) => {
          exchange.decision = `refused:${answer.status}`;
          return exchange.interrupt({ status: answer.status, headers: answer.headers, body: answer.body });
        },
      }),
    );
    exchange.whenRefused(() => this.core.authority.forget(credentials, account, container));
  }
}

type ObjectWrite = Extract<Intent, { type: 'object-write' }>;

/** The body an object write comes with, as the HTTP edge has it. */
export interface ObjectBody {
  /** The client's request: its body stream. */
  readonly raw: IncomingMessage;
  /** Reads the body's first `limit` bytes under the buffer budgets; undefined when the edge answered instead. */
  readBody(account: string, limit: number): Promise<BodyHead | undefined>;
}

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
  run(): void {
    for (const release of this.all) release();
  }
  /** `run` as a function of its own, for what calls it later. */
  get runner(): () => void {
    return () => this.run();
  }
}

/**
 * An object write (a PUT, a COPY, a manifest; an S3 PUT or copy): what it stores is worked out as Swift will
 * store it, then admitted in the container, the account counting its refusals too. The container's usage is
 * read once, with its versioning, which is held still until Swift has answered. `source`: a copy's source as
 * the caller's own HEAD found it.
 */
export async function admitObject(path: WritePath, body: ObjectBody, intent: ObjectWrite, source: SourceHead | undefined): Promise<void> {
  const { core, exchange, view } = path;
  const { account, container } = intent.target;
  const { verdict, caller } = await authorise(core, view, account, container, intent.target.object);
  if (!verdict.allowed) return answerSwift(exchange, verdict.answer);
  if (await tooLarge(core, view, intent)) return answerSwift(exchange, TOO_LARGE);
  const levelInfo = await path.level(account);
  const scope = path.enforced(account, container, levelInfo);
  if (!scope) return enterWritten(path, intent);
  // The container's versioning, held still from before it is read until Swift has answered (see below).
  const holding = path.held(core.pins.versioningSteady(account, container));
  const steady = typeof holding === 'function' ? holding : await holding;
  const notBefore = core.admissions.readNotBefore();
  const stored = intent.copy || intent.manifest ? await storedSize(core, { caller, view, exchange }, intent, source, body) : { size: intent.size };
  if (stored === 'precondition-failed') return answerSwift(exchange, PRECONDITION_FAILED);
  if (stored === 'symlink-ranges') return refuse(exchange, 400, SYMLINK_RANGES_REFUSED);
  if (stored === undefined) return enterWritten(path, intent); // answered, or nothing to count
  // The container's usage, read once, after the size (which may wait on the client's body or on pins): its
  // versioning decides what the write frees, and the admission decides on it.
  const reading = await core.ledger.read(scope.key, notBefore);
  const releases = new Releases();
  releases.add(stored.unpin);
  const admitted = await admitStored(path, { intent, caller, levelInfo, scope, reading, notBefore, size: stored.size, releases, steady }, body);
  if (admitted) return enterWritten(path, intent);
}

/** The write goes to Swift now (unless answered): marked as on its way once no pin is on its object. */
function enterWritten(path: WritePath, intent: ObjectWrite): Promise<void> | undefined {
  return path.exchange.answeredHere ? undefined : path.enterWrite(intent.target);
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

/** Admits the write (and, with legacy versioning, the version Swift archives) and holds both; false: refused. */
async function admitStored(path: WritePath, stored: Stored, body: ObjectBody): Promise<boolean> {
  const { core, exchange } = path;
  const { intent, caller, scope, reading, releases, steady } = stored;
  const { versioning } = reading;
  const { read, archived } = versioning?.kind === 'archive' ? await legacyArchive(path, stored) : NO_ARCHIVE;
  if (releases.any) path.endsWith(releases.runner);
  const add = { count: 1, bytes: stored.size ?? 0 };
  const write: Write = {
    scope,
    add,
    target: intent.target.object,
    replaced: creditOf(core, caller, intent.target, versioning, read),
    context: path.context,
    alsoCounted: [{ scope: path.scope(scope.account, undefined, stored.levelInfo), snapshot: stored.levelInfo.snapshot }],
    notBefore: stored.notBefore,
    // Decided on the reading just taken, unless legacy versioning waited for the object's turn since.
    ...(read === undefined ? { reading } : {}),
    versioningRead: reading,
    // What it replaces is archived in another container of the account: the account's total frees nothing.
    ...(versioning?.kind === 'archive' ? { totalAdd: add } : {}),
  };
  let result = await core.admissions.admit(write);
  // Room held by writes on a grant revoked since: Swift will refuse them, so they give their room back now.
  if (!result.admitted && caller.kind === 'credentials' && (await core.grants.revokeStale(scope.key, caller.credentials.key))) result = await core.admissions.admit(write);
  if (!result.admitted) {
    releases.run();
    path.reject(result.decision);
    return false;
  }
  path.hold(result.reservation);
  if (caller.kind === 'credentials') path.trackGrant(scope.key, caller.credentials, scope.account, intent.target.container, () => body.raw.complete);
  if (archived && versioning?.kind === 'archive') {
    const archive = await core.admissions.admit({ scope: path.scope(scope.account, versioning.location, stored.levelInfo), add: archived, target: undefined, context: path.context, totalAdd: MOVED, movedFrom: intent.target.container });
    if (!archive.admitted) {
      core.ledger.release(result.reservation);
      releases.run();
      path.reject(archive.decision);
      return false;
    }
    path.hold(archive.reservation);
    // Swift archives the replaced object before it reads the body: kept whatever becomes of the write.
    exchange.partial = true;
    exchange.invalidates.push(scope.key, containerKey(scope.account, versioning.location));
  }
  // Admitted as freeing bytes (the replaced object's, those of other writes of the object in flight), it rests
  // on versioning staying off: a change of the container's versioning waits for this write. Kept as a version,
  // it frees nothing: the change need not wait.
  if (result.reservation.keepsVersions) steady();
  else releases.add(steady);
  settledAs(path, stored, result);
  // Its growth may count on what it replaces: it holds the container's versioning still already (above).
  if (stored.size === undefined && !intent.copy && !intent.manifest) limitChunkedUpload(path, body, write, result.reservation);
  return true;
}

/** An archive copy moves an object between containers of the account: its total does not change (its policy's may: `movedFrom`). */
const MOVED = Object.freeze({ count: 0, bytes: 0 });

const NO_ARCHIVE: { read?: { current: Usage | undefined }; archived?: Usage } = Object.freeze({});

/**
 * Legacy versioning archives the object this write replaces: writes of the object take turns, so the object
 * read now (`read`) is the one Swift archives (`archived`, versioning.ts). Nothing without legacy versioning.
 */
async function legacyArchive({ core, exchange }: WritePath, { intent, caller, reading, releases }: Stored): Promise<{ read?: { current: Usage | undefined }; archived?: Usage }> {
  if (reading.versioning?.kind !== 'archive') return {};
  const { account, container, object } = intent.target;
  releases.add(await core.pins.exclusive(ObjectPins.key(account, container, object), exchange));
  const current = await replacedObject(core, caller, intent.target).catch((error: unknown) => {
    releases.run();
    throw error;
  });
  return { read: { current }, archived: archivedByWrite(reading.versioning, current) };
}

/** How the admitted write is settled once Swift has answered. */
function settledAs({ exchange, view }: WritePath, { intent, scope, releases }: Stored, result: Admitted): void {
  exchange.watched = { scope, persisted: result.snapshot.persisted };
  // What a copy or a manifest stores is read again from Swift once it is done.
  if ((intent.copy || intent.manifest) && !exchange.invalidates.includes(scope.key)) exchange.invalidates.push(scope.key);
  if (releases.any) exchange.unpinOnSettle(releases.runner);
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
async function tooLarge(core: QuotaCore, view: SwiftView, intent: ObjectWrite): Promise<boolean> {
  if (intent.copy || intent.manifest || view.s3 || intent.size === undefined || intent.size <= core.capabilities().maxFileSize) return false;
  return (await core.ledger.read(containerKey(intent.target.account, intent.target.container))).exists;
}

/** Chunked upload: every chunk must fit before it is passed on; the upload is cut at the first that does not. */
function limitChunkedUpload({ core, exchange }: WritePath, body: ObjectBody, write: Write, reservation: Reservation): void {
  const credit = { bytes: 0, looked: false };
  const limiter = createUploadLimiter<Denied>((bytes) => core.admissions.grow(write, reservation, bytes, credit));
  const source = body.raw;
  source.on('error', (error) => limiter.destroy(error));
  source.on('aborted', () => limiter.destroy(new Error('client aborted the upload')));
  source.pipe(limiter);
  exchange.body = limiter;
}
