/**
 * The account-wide kinds (`account_object_count`, `account_usage`): an object write admitted in its container
 * is admitted again in its account's total, and holds a second reservation there, linked to the container's
 * (ledger.ts `linked`: committed, released and grown with it); where its level limits its container's storage
 * policy (`account_usage:gold`), in that policy's total too, linked in turn. Every door admits object writes through
 * admission.ts, so every way Swift stores an object (Swift API, S3, FormPost, bulk, copies, manifests, the
 * versions legacy versioning archives) counts in the total, and the ledger keeps the total exact across
 * processes as it keeps a container's.
 *
 * The total is read as the sum of the account's containers (swift/usage.ts readAccountTotal: the account's own
 * totals lag by up to the container-updater's interval). That costs a listing and a HEAD per container, so a
 * reading of the total is taken from the cache when one is fresh (cache_timeout) in both modes, writes finished
 * since counted on top by the ledger; a write it would refuse is decided again on a reading sent after it.
 */
import { LRUCache } from 'lru-cache';
import { ACCOUNT_WIDE_KINDS, type Limits, type QuotaKind } from '../config/quota-levels.js';
import { decideWrite, isNearLimit, type Decision, type ExpiredSoftLimits, type Usage } from './decide.js';
import { accountTotalKey, policyTotalKey, rulesFor, type Projection, type Reservation, type Snapshot, type UsageLedger } from './ledger/ledger.js';

const NO_SOFT_LIMITS: ExpiredSoftLimits = Object.freeze({});
const NONE_EXPIRED = (): ExpiredSoftLimits => NO_SOFT_LIMITS;
/** How many times a reservation the ledger refused, on a projection that allows it, is tried again. */
const RESERVE_ATTEMPTS = 3;
/**
 * How long after it arrived a live reading of a total stands in for a new one (see wantsLive): a reading costs a
 * listing and a HEAD per container, and a tenant at its limit could otherwise have every refused write (or
 * chunk) cost Swift that much (test/adversarial/account-wide-attacks.test.ts).
 */
const LIVE_REUSE_MS = 1_000;

/** A refusal in a policy's total says which policy. */
function inPolicy(decision: Decision, policy: string | undefined): Decision {
  return decision.allow || policy === undefined ? decision : { ...decision, policy };
}

/** The account-wide kinds `limits` sets; none: the account's total is not limited. */
export function accountWideKinds(limits: Limits): readonly QuotaKind[] {
  return ACCOUNT_WIDE_KINDS.filter((kind) => limits[kind] !== undefined);
}

/**
 * One total an object write is admitted in: its account's, or its account's in the storage policy of its
 * container (`policy`, lower case), each with the limits that apply to it.
 */
export interface TotalScope {
  readonly key: string;
  readonly limits: Limits;
  readonly kinds: readonly QuotaKind[];
  readonly policy?: string;
}

/**
 * The totals a write into a container of `policy` is admitted in, in the order it is admitted in them (the
 * account's, then its policy's): `limits` the account's, `policyLimits` the level's for that policy.
 */
export function totalsOf(account: string, limits: Limits, policy: string | undefined, policyLimits: Limits | undefined): readonly TotalScope[] {
  const totals: TotalScope[] = [];
  const kinds = accountWideKinds(limits);
  if (kinds.length > 0) totals.push({ key: accountTotalKey(account), limits, kinds });
  const inPolicy = policyLimits === undefined ? [] : accountWideKinds(policyLimits);
  if (policy !== undefined && inPolicy.length > 0) totals.push({ key: policyTotalKey(account, policy), limits: policyLimits!, kinds: inPolicy, policy });
  return totals;
}

/** An object write as admitted in its container, to be admitted in one of its account's totals. */
export interface TotalWrite {
  readonly total: TotalScope;
  readonly level: string;
  readonly add: Usage;
  /** `container/object`: writes of one object replace each other in the total too. */
  readonly target: string | undefined;
  readonly keepsVersions: boolean;
  /** What the write replaces, as the container's decision took it (zero when it did not look). */
  readonly credit: Usage;
  /** Looks up what the write replaces, when the container's decision did not need it and this one does. */
  readonly lookCredit?: () => Promise<Usage>;
  /** Soft limits of the total whose grace period is over, at `used` (the quota watch's); none by default. */
  readonly expired?: (used: Usage) => ExpiredSoftLimits;
  /** Each reading the decision rests on, for the quota watch. */
  readonly seen?: (snapshot: Snapshot, view: Projection) => void;
}

export type TotalAdmission = { readonly ok: true; readonly reservation: Reservation } | { readonly ok: false; readonly decision: Extract<Decision, { allow: false }> };

export class AccountTotals {
  /** The last live reading of each total: its order, and when it arrived. */
  private readonly lastLive = new LRUCache<string, { seq: number; gen: string; at: number }>({ max: 10_000 });

  constructor(
    private readonly ledger: UsageLedger,
    private readonly nearLimitRatio: () => number,
  ) {}

  async admit(write: TotalWrite): Promise<TotalAdmission> {
    const { key, limits, kinds, policy } = write.total;
    const expired = write.expired ?? NONE_EXPIRED;
    let credit = write.credit;
    let creditLooked = write.lookCredit === undefined;
    const decide = (view: Projection): Decision => {
      const net = { count: write.add.count - credit.count - view.held.count, bytes: write.add.bytes - credit.bytes - view.held.bytes };
      return inPolicy(decideWrite(kinds, limits, write.level, view.used, net, expired(view.used)), policy);
    };
    let snapshot = await this.ledger.read(key);
    let view = await this.ledger.project(key, snapshot, write.target, undefined, write.keepsVersions);
    write.seen?.(snapshot, view);
    let decision = decide(view);
    if ((!decision.allow || isNearLimit(limits, kinds, view.used, write.add, this.nearLimitRatio())) && this.wantsLive(key, snapshot, view, decision)) {
      ({ snapshot, view, decision } = await this.live(key, write, decide));
      write.seen?.(snapshot, view);
    }
    for (let attempt = 0; ; attempt++) {
      if (!decision.allow && !creditLooked) {
        creditLooked = true;
        credit = await write.lookCredit!();
        decision = decide(view);
      }
      if (!decision.allow) return { ok: false, decision };
      const rules = rulesFor(kinds, limits, expired(view.used));
      const reserved = await this.ledger.reserve({ key, snapshot, add: write.add, credit, target: write.target, keepsVersions: write.keepsVersions, rules });
      if (reserved.ok) return { ok: true, reservation: reserved.reservation };
      view = reserved.projection;
      decision = decide(view);
      if (!decision.allow && attempt < RESERVE_ATTEMPTS && this.wantsLive(key, snapshot, view, decision)) ({ snapshot, view, decision } = await this.live(key, write, decide));
      if (decision.allow && attempt >= RESERVE_ATTEMPTS) decision = inPolicy(decideWrite(kinds, limits, write.level, view.used, { count: write.add.count, bytes: write.add.bytes }, expired(view.used)), policy);
    }
  }

  /**
   * A chunked upload's next `bytes`, in one of its account's totals (`total`: its linked reservation there, under
   * `scope`'s limits); undefined when they fit (and are reserved), else the refusal.
   */
  async grow(total: Reservation, scope: TotalScope, level: string, bytes: number, creditBytes: number, expired: (used: Usage) => ExpiredSoftLimits = NONE_EXPIRED): Promise<Extract<Decision, { allow: false }> | undefined> {
    const { limits, policy } = scope;
    const kinds: readonly QuotaKind[] = limits.account_usage === undefined ? [] : ['account_usage'];
    if (kinds.length === 0) return undefined;
    const usedBy = (view: Projection): Usage => ({ count: view.used.count, bytes: view.used.bytes - view.held.bytes - creditBytes });
    const decide = (view: Projection): Decision => inPolicy(decideWrite(kinds, limits, level, usedBy(view), { count: 0, bytes }, expired(usedBy(view))), policy);
    let snapshot = await this.ledger.read(total.key);
    for (let attempt = 0; ; attempt++) {
      const view = await this.ledger.project(total.key, snapshot, total.target, total, total.keepsVersions);
      const decision = decide(view);
      if (!decision.allow) {
        if (attempt >= RESERVE_ATTEMPTS || !this.wantsLive(total.key, snapshot, view, decision)) return decision;
        snapshot = await this.liveReading(total.key);
        continue;
      }
      const grown = await this.ledger.grow({ reservation: total, snapshot, bytes, creditBytes, rules: rulesFor(kinds, limits, expired(usedBy(view))) });
      if (grown.ok) return undefined;
      if (attempt < RESERVE_ATTEMPTS && this.wantsLive(total.key, snapshot, grown.projection, decide(grown.projection))) snapshot = await this.liveReading(total.key);
      if (attempt >= RESERVE_ATTEMPTS) {
        const refused = decide(grown.projection);
        return refused.allow ? { allow: false, kind: 'account_usage', level, limit: limits.account_usage!, used: grown.projection.used.bytes, requested: bytes, enforced: 'hard', ...(policy ? { policy } : {}) } : refused;
      }
    }
  }

  /** The total on a reading sent now (a listing and a HEAD per container). */
  private async live(key: string, write: TotalWrite, decide: (view: Projection) => Decision): Promise<{ snapshot: Snapshot; view: Projection; decision: Decision }> {
    const snapshot = await this.liveReading(key);
    const view = await this.ledger.project(key, snapshot, write.target, undefined, write.keepsVersions);
    return { snapshot, view, decision: decide(view) };
  }

  /** A reading of the total sent now. */
  private async liveReading(key: string): Promise<Snapshot> {
    const snapshot = await this.ledger.read(key, this.ledger.now() + 1);
    // From when it arrived: reading many containers may take longer than LIVE_REUSE_MS itself.
    this.lastLive.set(key, { seq: snapshot.seq, gen: snapshot.gen, at: Date.now() });
    return snapshot;
  }

  /**
   * Whether a decision on `snapshot` is made again on a reading sent now: always for a refusal resting on writes
   * counted on top of a reading that may include them, or after a delete; else unless `snapshot` is a live
   * reading that arrived less than LIVE_REUSE_MS ago (writes through the proxies since are counted on top of it).
   */
  private wantsLive(key: string, snapshot: Snapshot, view: Projection, decision: Decision): boolean {
    if (!decision.allow && view.writesSince) return true;
    // A delete since the newest reading (through any proxy): usage went down by an amount only Swift knows.
    if (view.settled === undefined) return true;
    const live = this.lastLive.get(key);
    return !(live && live.seq === snapshot.seq && live.gen === snapshot.gen && Date.now() - live.at < LIVE_REUSE_MS);
  }
}
