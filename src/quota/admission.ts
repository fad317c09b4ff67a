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
 *
 * Where Swift keeps every write of an object as a version (object_versioning on, by the reading decided on:
 * versioning.ts), a write frees no bytes: neither the replaced object's nor those of other writes of its target
 * in flight (the ledger shares only their count then).
 */
import type { Config } from '../config/load.js';
import { DEFAULT_LEVEL, type Limits, type QuotaKind } from '../config/quota-levels.js';
import { LRUCache } from 'lru-cache';
import type { Log } from '../log.js';
import { decideWrite, isNearLimit, type Decision, type ExpiredSoftLimits, type Usage } from './decide.js';
import { accountKey, rulesFor, scopeKey, type Projection, type Reservation, type Rules, type Snapshot, type UsageLedger } from './ledger/ledger.js';
import { kindsOf, type PersistedQuotaState } from '../swift/quota-metadata.js';
import { keepsVersions, overwriteCredit } from './versioning.js';
import type { ContextSource, QuotaWatch, Scope } from './watch.js';
import { noteAdmitted, noteRefused, withAsked } from './write-trace.js';
import { TotalAdmissions } from './total-admission.js';
import { containerLimited, effectiveLimits } from './limits.js';

export type Denied = Extract<Decision, { allow: false }>;

const ZERO: Usage = Object.freeze({ count: 0, bytes: 0 });
/** How many times a refusal resting on writes that finished during a live read is decided again. */
const LIVE_RECHECKS = 3;
/** How many times a reservation the ledger refused, on a projection that allows it, is tried again. */
const RESERVE_ATTEMPTS = 3;

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
  /** The object (or container) written: writes of one target replace each other (their bytes too, unless versioned). */
  readonly target: string | undefined;
  /** What the write replaces (an existing object or container), looked up only when the decision needs it. */
  readonly replaced?: () => Promise<Usage | undefined>;
  /** Who asked, for quota events (built only when an event fires). */
  readonly context: ContextSource;
  /** Scopes whose refusal counters count a refusal of this write too (an object write's account). */
  readonly alsoCounted?: ReadonlyArray<{ scope: Scope; snapshot: Snapshot }>;
  /** The send order the first usage read must have (`readNotBefore()` taken when the door read the scope). */
  readonly notBefore?: number;
  /**
   * The scope's usage as the door read it (with `notBefore`) just before admitting, nothing awaited since: the
   * decision's first reading. A reading older than that is not passed: finished writes the ledger has forgotten
   * since (its entry evicted) or a reading made stale meanwhile would be decided on.
   */
  readonly reading?: Snapshot;
  /** The reading whose versioning the door decided on, when it read one itself (a shared ledger checks it still holds). */
  readonly versioningRead?: Snapshot;
  /**
   * What the write adds to its account's total (the account-wide kinds), where that is not `add` less what it
   * replaces: legacy versioning moves objects between containers of one account. An overwrite frees nothing of
   * the total (Swift archives what it replaces), the archive copy adds nothing to it, a history-mode delete adds
   * its marker alone and a stack-mode delete nothing. Given, nothing is credited in the total.
   */
  readonly totalAdd?: Usage;
  /**
   * With `totalAdd`: the container of the account legacy versioning moves the object from (an archive copy, a
   * history-mode delete, a stack-mode restore). Where its storage policy is not the write's container's, the
   * object enters that policy's total in full (total-admission.ts).
   */
  readonly movedFrom?: string;
}

export type Admission =
  /** `credit`: what the decision took the write to replace (it rests on that staying so). */
  | { readonly admitted: true; readonly reservation: Reservation; readonly snapshot: Snapshot; readonly credit: Usage }
  | { readonly admitted: false; readonly decision: Denied };

export interface AdmissionsOptions {
  config: Config;
  ledger: UsageLedger;
  watch: QuotaWatch;
  log: Log;
  /** Swift's default storage policy (lower case), where known: that of a container bulk extraction makes. */
  defaultPolicy?: () => string | undefined;
}

export class Admissions {
  private config: Config;
  readonly ledger: UsageLedger;
  private readonly watch: QuotaWatch;
  private readonly log: Log;
  private readonly unknownLevelsLogged = new LRUCache<string, true>({ max: 10_000 });
  private readonly totals: TotalAdmissions;
  private readonly overridden = new WeakMap<Limits, { base: Limits; baseSoft: Limits; limits: Limits; soft: Limits }>();

  constructor({ config, ledger, watch, log, defaultPolicy }: AdmissionsOptions) {
    this.config = config;
    this.ledger = ledger;
    this.watch = watch;
    this.log = log;
    this.totals = new TotalAdmissions({ ledger, watch, config: () => this.config, levelOf: (account) => this.levelOf(account), countedWith: (write, withOwn) => this.countedWith(write, withOwn), ...(defaultPolicy ? { defaultPolicy } : {}) });
    // Grace periods ending with no request, and level changes, are judged by the level held now.
    watch.useLevelSource((account) => this.levelOf(account, true));
  }

  /** The rules of a reloaded configuration (levels, limits, modes), for decisions from now on. */
  useConfig(config: Config): void {
    this.config = config;
  }

  // ---- levels and scopes -----------------------------------------------------------------------------

  /**
   * The account's level and limits. A level no longer configured is held to `default`, never unlimited.
   * `fresh`: read from Swift now, not from a cached reading that may predate a level change.
   */
  async levelOf(account: string, fresh = false): Promise<LevelInfo> {
    const snapshot = await this.ledger.read(accountKey(account), fresh ? this.ledger.now() + 1 : undefined);
    const { levels: { byLevel: levels }, retiredLevels } = this.config.quota;
    // A retired level is held to the level it was mapped to (retired_levels).
    const stored = snapshot.level === undefined ? undefined : (retiredLevels.get(snapshot.level) ?? snapshot.level);
    const own = stored === undefined ? undefined : levels.get(stored);
    if (stored !== undefined && own === undefined && !this.unknownLevelsLogged.has(`${account}\0${stored}`)) {
      this.unknownLevelsLogged.set(`${account}\0${stored}`, true);
      this.log.warn({ account, level: stored }, `account has quota level "${stored}", which is not configured: holding it to "${DEFAULT_LEVEL}"`);
    }
    const level = own ? stored! : DEFAULT_LEVEL;
    const { limits, soft } = this.withOverrides(own ?? levels.get(DEFAULT_LEVEL)!, this.config.quota.softLimits.get(level) ?? {}, snapshot.overrides);
    return { level, limits, soft, snapshot };
  }

  /** The level's limits with the account's overrides; the same objects for the same inputs (the watch compares them). */
  private withOverrides(limits: Limits, soft: Limits, overrides: Limits | undefined): { limits: Limits; soft: Limits } {
    if (overrides === undefined) return { limits, soft };
    const known = this.overridden.get(overrides);
    if (known && known.base === limits && known.baseSoft === soft) return known;
    const made = { base: limits, baseSoft: soft, ...effectiveLimits(limits, soft, overrides) };
    this.overridden.set(overrides, made);
    return made;
  }

  scope(account: string, container: string | undefined, level: LevelInfo): Scope {
    const key = scopeKey(account, container);
    if (container === undefined) return { key, type: 'account', account, level: level.level, limits: level.limits, soft: level.soft };
    return { key, type: 'container', account, container, level: level.level, limits: level.limits, soft: level.soft };
  }

  /** Whether any of the scope's kinds has a limit (hard, or soft that could be enforced). */
  enforces(scope: Scope): boolean {
    // A container's own limits (container_quotas, a reseller's override) are known only once it is read.
    if (scope.type === 'container') return true;
    return kindsOf(scope.type).some((kind) => scope.limits[kind] !== undefined || scope.soft[kind] !== undefined);
  }

  // ---- admission -------------------------------------------------------------------------------------

  /** The earliest read a check may use: any fresh cache entry, or in precise mode one sent after now. */
  readNotBefore(): number {
    return this.config.quota.preciseMode ? this.ledger.now() + 1 : 0;
  }

  /**
   * Decides a write and, if it fits, reserves what it may add. The caller has established that Swift
   * authorises the write: nothing is held, refused or recorded for anyone else.
   */
  async admit(asked: Write): Promise<Admission> {
    const { add, target } = asked;
    const { key } = asked.scope;
    const kinds = kindsOf(asked.scope.type);
    let replaced: Usage | undefined;
    let creditLooked = false;
    let { snapshot, write } = await this.firstReading(asked);
    const { scope } = write;
    // What the replaced object frees, by the reading decided on.
    const credit = (): Usage => overwriteCredit(snapshot.versioning, replaced) ?? ZERO;
    // What the write adds on top of `view`: less what it replaces, and less what other writes of its target hold.
    const net = (view: Projection): Usage => ({ count: add.count - credit().count - view.held.count, bytes: add.bytes - credit().bytes - view.held.bytes });
    const decide = (view: Projection): Decision => decideWrite(kinds, scope.limits, scope.level, view.used, net(view), this.watch.expiredSoftLimits(scope, view.used));

    let view = await this.ledger.project(key, snapshot, target, undefined, keepsVersions(snapshot.versioning));
    await this.watch.load(scope, snapshot.persisted, view.settled ?? snapshot);
    this.observe(scope, snapshot, view, write.context);
    let decision = decide(view);
    if (this.needsLiveRead(decision, view, scope.limits, kinds, add)) {
      ({ snapshot, view } = await this.liveView(key, target, decide));
      this.observe(scope, snapshot, view, write.context);
      decision = decide(view);
    }
    for (let attempt = 0; ; attempt++) {
      if (!decision.allow && write.replaced && !creditLooked) {
        // Only now does it matter what the write replaces.
        creditLooked = true;
        replaced = await write.replaced();
        decision = decide(view);
      }
      if (!decision.allow) {
        noteRefused(decision, scope, add);
        this.watch.refused(scope, snapshot.persisted, decision, withAsked(write.context, add), await this.countedWith(write));
        return { admitted: false, decision };
      }
      // The ledger checks again and reserves in one atomic step: other admissions (of this proxy or others)
      // may have come between the decision above and now.
      const rules = rulesFor(kinds, scope.limits, this.watch.expiredSoftLimits(scope, view.used));
      const versioningRead = write.versioningRead ? { versioningRead: write.versioningRead } : {};
      const reserved = await this.ledger.reserve({ key, snapshot, add, credit: credit(), target, keepsVersions: keepsVersions(snapshot.versioning), rules, ...versioningRead });
      if (reserved.ok) return this.admitted(write, reserved.reservation, snapshot, view, credit, write.replaced && !creditLooked ? async () => ((replaced = await write.replaced!()), credit()) : undefined);
      view = reserved.projection;
      decision = decide(view);
      if (!decision.allow && view.writesSince && attempt < RESERVE_ATTEMPTS) {
        // Writes finished meanwhile: the refusal may rest on them being counted on top of a reading that has them.
        ({ snapshot, view } = await this.liveView(key, target, decide));
        decision = decide(view);
      }
      // Both said yes and the ledger no: the rules moved between them (a soft limit's grace ran out). Its
      // refusal stands after a few rounds.
      if (decision.allow && attempt >= RESERVE_ATTEMPTS) decision = decideWrite(kinds, scope.limits, scope.level, view.used, net(view), rulesAsExpired(rules));
    }
  }

  /** The write's first reading (the door's, when it has just taken one) and its scope under the container's own limits. */
  private async firstReading(asked: Write): Promise<{ snapshot: Snapshot; write: Write }> {
    // A door that has just read the scope (for its versioning, nothing awaited since) decides on that reading:
    // usage is read once.
    const snapshot = asked.reading ?? (await this.ledger.read(asked.scope.key, asked.notBefore ?? this.readNotBefore()));
    const scope = containerLimited(asked.scope, snapshot);
    return { snapshot, write: scope === asked.scope ? asked : { ...asked, scope } };
  }

  /** Reserved in its scope: admitted, once its account's total (if limited) has room too. */
  private async admitted(write: Write, reservation: Reservation, snapshot: Snapshot, view: Projection, credit: () => Usage, lookCredit?: () => Promise<Usage>): Promise<Admission> {
    const refused = await this.totals.admit(write, reservation, snapshot, credit(), lookCredit);
    if (refused) return { admitted: false, decision: refused };
    noteAdmitted(reservation, write.scope, view.used);
    return { admitted: true, reservation, snapshot, credit: credit() };
  }

  /**
   * The other scopes a refusal of `write` is counted in: the account of a write in a container, so that an
   * account's hits are every refusal in it, as the refusal metric counts them (the usage report reads them).
   */
  async countedWith(write: Write, withOwn = false): Promise<Array<{ scope: Scope; persisted: PersistedQuotaState | undefined }>> {
    const own = withOwn ? [{ scope: write.scope, persisted: undefined }] : [];
    if (write.alsoCounted) return [...own, ...write.alsoCounted.map((other) => ({ scope: other.scope, persisted: other.snapshot.persisted }))];
    if (write.scope.type !== 'container') return own;
    try {
      const level = await this.levelOf(write.scope.account); // read for this request already: from the cache
      return [...own, { scope: this.scope(write.scope.account, undefined, level), persisted: level.snapshot.persisted }];
    } catch (error) {
      // The refusal stands whatever happens to its count: counted in the container only.
      this.log.warn({ err: error, account: write.scope.account }, 'a refusal is not counted in its account: the account cannot be read');
      return own;
    }
  }

  /**
   * A write whose size is learnt as it streams (a chunked upload, a form's file): may `bytes` more be added to
   * its reservation? If so they are reserved; if not, the refusal is returned and the write must stop.
   */
  async grow(asked: Write, reservation: Reservation, bytes: number, credit: { bytes: number; looked: boolean }): Promise<Denied | undefined> {
    const { target } = asked;
    const { key } = asked.scope;
    let snapshot = await this.ledger.read(key);
    // The container's own limits as that reading has them (read at admission, or since).
    const scope = containerLimited(asked.scope, snapshot);
    const write = scope === asked.scope ? asked : { ...asked, scope };
    const usageOnly: readonly QuotaKind[] = ['container_usage'];
    const usedBy = (view: Projection): Usage => ({ count: view.used.count, bytes: view.used.bytes - view.held.bytes - credit.bytes });
    const decide = (view: Projection): Decision => {
      // Usage with this write as far as it has come (less what it replaces; other writes of the same target
      // are replaced by it or replace it), and the new bytes on top.
      const used = usedBy(view);
      return decideWrite(usageOnly, scope.limits, scope.level, used, { count: 0, bytes }, this.watch.expiredSoftLimits(scope, used));
    };
    let view = await this.ledger.project(key, snapshot, target, reservation, reservation.keepsVersions);
    let decision = decide(view);
    if (!decision.allow) {
      ({ snapshot, view } = await this.liveView(key, target, decide, reservation));
      decision = decide(view);
    }
    for (let attempt = 0; ; attempt++) {
      if (!decision.allow && !credit.looked && write.replaced) {
        credit.looked = true;
        // Admitted as keeping versions, it frees nothing of what it replaces.
        credit.bytes = reservation.keepsVersions ? 0 : ((await write.replaced())?.bytes ?? 0);
        decision = decide(view);
      }
      if (!decision.allow) {
        // What it asked: these bytes, on top of what of it usage already counts.
        const asked = { count: 0, bytes };
        noteRefused(decision, scope, asked);
        this.watch.refused(scope, snapshot.persisted, decision, withAsked(write.context, asked), await this.countedWith(write));
        return decision;
      }
      const rules = rulesFor(usageOnly, scope.limits, this.watch.expiredSoftLimits(scope, usedBy(view)));
      const grown = await this.ledger.grow({ reservation, snapshot, bytes, creditBytes: credit.bytes, rules });
      if (grown.ok) return reservation.linked ? this.totals.grow(write, reservation, bytes, credit) : undefined;
      view = grown.projection;
      decision = decide(view);
      if (!decision.allow && view.writesSince && attempt < RESERVE_ATTEMPTS) {
        ({ snapshot, view } = await this.liveView(key, target, decide, reservation));
        decision = decide(view);
      }
      if (decision.allow && attempt >= RESERVE_ATTEMPTS) decision = decideWrite(usageOnly, scope.limits, scope.level, usedBy(view), { count: 0, bytes }, rulesAsExpired(rules));
    }
  }

  /**
   * Brings the watch up to date with usage at a check, so that crossings this proxy did not cause (other
   * clients, deletes elsewhere) are noticed, and an expired grace period is known before deciding.
   */
  private observe(scope: Scope, snapshot: Snapshot, view: Projection, context: ContextSource): void {
    this.watch.observe(scope, snapshot.persisted, view.settled ?? snapshot, context, view.used);
  }

  /**
   * In cached mode a check close to a limit (or failing) is repeated on live usage; in both modes a refusal
   * that rests on writes which may already be in the snapshot is repeated on a read sent after them.
   */
  private needsLiveRead(decision: Decision, view: Projection, limits: Limits, kinds: readonly QuotaKind[], add: Usage): boolean {
    if (!decision.allow && view.writesSince) return true;
    if (this.config.quota.preciseMode) return false;
    return isNearLimit(limits, kinds, view.used, add, this.config.quota.nearLimitRatio);
  }

  /**
   * Live usage to decide on: a read sent now. Writes that finish while that read is under way may or may not be
   * in it and are counted on top, so a refusal that rests on them is tried again on a read sent after them (a
   * few times at most: under a steady stream of finishing writes the last answer stands). Returns the
   * projection, not the decision: the caller decides again, and the ledger checks once more as it reserves.
   */
  private async liveView(key: string, target: string | undefined, decide: (view: Projection) => Decision, except?: Reservation): Promise<{ snapshot: Snapshot; view: Projection }> {
    // A growing write keeps the kind it was admitted as; a new one is decided by the reading it rests on.
    const keeps = (snapshot: Snapshot) => except?.keepsVersions ?? keepsVersions(snapshot.versioning);
    let snapshot = await this.ledger.read(key, this.ledger.now() + 1);
    let view = await this.ledger.project(key, snapshot, target, except, keeps(snapshot));
    for (let again = 0; again < LIVE_RECHECKS && !decide(view).allow && view.writesSince; again++) {
      snapshot = await this.ledger.read(key, this.ledger.now() + 1);
      view = await this.ledger.project(key, snapshot, target, except, keeps(snapshot));
    }
    return { snapshot, view };
  }
}

/** The soft limits a set of rules enforces, for a refusal built from them. */
function rulesAsExpired(rules: Rules): ExpiredSoftLimits {
  return { ...(rules.count.soft === undefined ? {} : { object_count: rules.count.soft, container_count: rules.count.soft }), ...(rules.bytes.soft === undefined ? {} : { container_usage: rules.bytes.soft }) };
}
