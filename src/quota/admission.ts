/**
 * How a write is admitted, written once for every kind of write (container creations, object uploads,
 * copies, manifests, form uploads, S3 requests) and free of HTTP: read usage, read it live where the cached
 * reading is not good enough, decide, and reserve in the same tick as the decision.
 *
 * What a write holds is everything it may add ({1 object, N bytes}, {1 container}), whatever it replaces: the
 * object an overwrite replaces, or a container a re-PUT finds, can be deleted before Swift acts on a held
 * request, and then the write adds all of it. What it replaces only enters the decision (an overwrite at the
 * count limit passes), and Swift's own usage settles it once the write is done: a finished write is counted on
 * top of older readings, and a refusal resting on that is decided again on a reading sent after it.
 */
import type { Config } from '../config/load.js';
import { DEFAULT_LEVEL, type Limits, type QuotaKind } from '../config/quota-levels.js';
import { LRUCache } from 'lru-cache';
import type { FastifyBaseLogger } from 'fastify';
import { decideWrite, isNearLimit, type Decision, type Usage } from './decide.js';
import { accountKey, scopeKey, type Reservation, type Snapshot, type UsageBook } from './usage-book.js';
import { kindsOf } from '../swift/quota-metadata.js';
import type { ContextSource, QuotaWatch, Scope } from './watch.js';

export type Denied = Extract<Decision, { allow: false }>;

const ZERO: Usage = Object.freeze({ count: 0, bytes: 0 });
/** How many times a refusal resting on writes that finished during a live read is decided again. */
const LIVE_RECHECKS = 3;

export interface LevelInfo {
  readonly level: string;
  readonly limits: Limits;
  readonly soft: Limits;
  /** The account's usage reading the level came from. */
  readonly snapshot: Snapshot;
}

export interface Write {
  readonly scope: Scope;
  /** Everything the write may add; held in full until Swift has answered. */
  readonly add: Usage;
  /** The object (or container) written: writes of one target replace each other. */
  readonly target: string | undefined;
  /** What the write replaces (an existing object or container), looked up only when the decision needs it. */
  readonly replaced?: () => Promise<Usage | undefined>;
  /** Who asked, for quota events (built only when an event fires). */
  readonly context: ContextSource;
  /** Scopes whose refusal counters count a refusal of this write too (an object write's account). */
  readonly alsoCounted?: ReadonlyArray<{ scope: Scope; snapshot: Snapshot }>;
}

export type Admission =
  | { readonly admitted: true; readonly reservation: Reservation; readonly snapshot: Snapshot }
  | { readonly admitted: false; readonly decision: Denied };

export interface AdmissionsOptions {
  config: Config;
  book: UsageBook;
  watch: QuotaWatch;
  log: FastifyBaseLogger;
}

export class Admissions {
  private readonly config: Config;
  readonly book: UsageBook;
  private readonly watch: QuotaWatch;
  private readonly log: FastifyBaseLogger;
  private readonly unknownLevelsLogged = new LRUCache<string, true>({ max: 10_000 });

  constructor({ config, book, watch, log }: AdmissionsOptions) {
    this.config = config;
    this.book = book;
    this.watch = watch;
    this.log = log;
  }

  // ---- levels and scopes -----------------------------------------------------------------------------

  /** The account's level and limits. A level no longer configured is held to `default`, never unlimited. */
  async levelOf(account: string): Promise<LevelInfo> {
    const snapshot = await this.book.read(accountKey(account));
    const levels = this.config.quota.levels.byLevel;
    const stored = snapshot.level;
    const own = stored === undefined ? undefined : levels.get(stored);
    if (stored !== undefined && own === undefined && !this.unknownLevelsLogged.has(`${account}\0${stored}`)) {
      this.unknownLevelsLogged.set(`${account}\0${stored}`, true);
      this.log.warn({ account, level: stored }, `account has quota level "${stored}", which is not configured: holding it to "${DEFAULT_LEVEL}"`);
    }
    const level = own ? stored! : DEFAULT_LEVEL;
    return { level, limits: own ?? levels.get(DEFAULT_LEVEL)!, soft: this.config.quota.softLimits.get(level) ?? {}, snapshot };
  }

  scope(account: string, container: string | undefined, level: LevelInfo): Scope {
    return {
      key: scopeKey(account, container),
      type: container === undefined ? 'account' : 'container',
      account,
      ...(container === undefined ? {} : { container }),
      level: level.level,
      limits: level.limits,
      soft: level.soft,
    };
  }

  /** Whether any of the scope's kinds has a limit (hard, or soft that could be enforced). */
  enforces(scope: Scope): boolean {
    return kindsOf(scope.type).some((kind) => scope.limits[kind] !== undefined || scope.soft[kind] !== undefined);
  }

  // ---- admission -------------------------------------------------------------------------------------

  /** The earliest read a check may use: any fresh cache entry, or in precise mode one sent after now. */
  private firstReadNotBefore(): number {
    return this.config.quota.preciseMode ? this.book.now() + 1 : 0;
  }

  /**
   * Decides a write and, if it fits, reserves what it may add. The caller has established that Swift
   * authorises the write: nothing is held, refused or recorded for anyone else.
   */
  async admit(write: Write): Promise<Admission> {
    const { scope, add, target } = write;
    const { key } = scope;
    const kinds = kindsOf(scope.type);
    let credit = ZERO;
    const decide = (on: Snapshot): Decision => {
      const used = this.book.projected(key, on);
      const held = target === undefined ? ZERO : this.book.heldFor(key, target);
      const net = { count: add.count - credit.count - held.count, bytes: add.bytes - credit.bytes - held.bytes };
      return decideWrite(kinds, scope.limits, scope.level, used, net, this.watch.expiredSoftLimits(scope, used));
    };

    let snapshot = await this.book.read(key, this.firstReadNotBefore());
    await this.watch.load(scope, snapshot.persisted, this.book.settled(key) ?? snapshot);
    this.observe(scope, snapshot, write.context);
    let decision = decide(snapshot);
    if (this.needsLiveRead(decision, key, snapshot, scope.limits, kinds, add)) {
      snapshot = await this.liveSnapshot(key, decide);
      this.observe(scope, snapshot, write.context);
      decision = decide(snapshot);
    }
    if (!decision.allow && write.replaced) {
      // Only now does it matter what the write replaces.
      credit = (await write.replaced()) ?? ZERO;
      decision = decide(snapshot);
    }
    if (!decision.allow) {
      this.watch.refused(scope, snapshot.persisted, decision, write.context, (write.alsoCounted ?? []).map((other) => ({ scope: other.scope, persisted: other.snapshot.persisted })));
      return { admitted: false, decision };
    }
    // Decided and reserved in one tick: no other admission can come between.
    return { admitted: true, reservation: this.book.reserve(key, add, target), snapshot };
  }

  /**
   * A write whose size is learnt as it streams (a chunked upload, a form's file): may `bytes` more be added to
   * its reservation? If so they are reserved; if not, the refusal is returned and the write must stop.
   */
  async grow(write: Write, reservation: Reservation, bytes: number, credit: { bytes: number; looked: boolean }): Promise<Denied | undefined> {
    const { scope, target } = write;
    const { key } = scope;
    const usageOnly: readonly QuotaKind[] = ['container_usage'];
    const decide = (on: Snapshot): Decision => {
      // Usage with this write as far as it has come (less what it replaces; other writes of the same target
      // are replaced by it or replace it), and the new bytes on top.
      const projected = this.book.projected(key, on);
      const held = target === undefined ? ZERO : this.book.heldFor(key, target, reservation);
      const used = { count: projected.count, bytes: projected.bytes - held.bytes - credit.bytes };
      return decideWrite(usageOnly, scope.limits, scope.level, used, { count: 0, bytes }, this.watch.expiredSoftLimits(scope, used));
    };
    let snapshot = await this.book.read(key);
    let decision = decide(snapshot);
    if (!decision.allow) {
      snapshot = await this.liveSnapshot(key, decide);
      decision = decide(snapshot);
    }
    if (!decision.allow && !credit.looked && write.replaced) {
      credit.looked = true;
      credit.bytes = (await write.replaced())?.bytes ?? 0;
      decision = decide(snapshot);
    }
    if (!decision.allow) {
      this.watch.refused(scope, snapshot.persisted, decision, write.context);
      return decision;
    }
    this.book.adjust(reservation, { count: 0, bytes });
    return undefined;
  }

  /**
   * Brings the watch up to date with usage at a check, so that crossings this proxy did not cause (other
   * clients, deletes elsewhere) are noticed, and an expired grace period is known before deciding.
   */
  private observe(scope: Scope, snapshot: Snapshot, context: ContextSource): void {
    this.watch.observe(scope, snapshot.persisted, this.book.settled(scope.key) ?? snapshot, context);
  }

  /**
   * In cached mode a check close to a limit (or failing) is repeated on live usage; in both modes a refusal
   * that rests on writes which may already be in the snapshot is repeated on a read sent after them.
   */
  private needsLiveRead(decision: Decision, key: string, snapshot: Snapshot, limits: Limits, kinds: readonly QuotaKind[], add: Usage): boolean {
    if (!decision.allow && this.book.hasWritesSince(key, snapshot)) return true;
    if (this.config.quota.preciseMode) return false;
    return isNearLimit(limits, kinds, this.book.projected(key, snapshot), add, this.config.quota.nearLimitRatio);
  }

  /**
   * Live usage to decide on: a read sent now. Writes that finish while that read is under way may or may not be
   * in it and are counted on top, so a refusal that rests on them is tried again on a read sent after them (a
   * few times at most: under a steady stream of finishing writes the last answer stands). Returns the
   * snapshot, not the decision: the caller decides again and reserves in the tick it resumes in, as a decision
   * carried across this function's own return would be stale by the reservations made meanwhile.
   */
  private async liveSnapshot(key: string, decide: (snapshot: Snapshot) => Decision): Promise<Snapshot> {
    let snapshot = await this.book.read(key, this.book.now() + 1);
    for (let again = 0; again < LIVE_RECHECKS && !decide(snapshot).allow && this.book.hasWritesSince(key, snapshot); again++) {
      snapshot = await this.book.read(key, this.book.now() + 1);
    }
    return snapshot;
  }
}
