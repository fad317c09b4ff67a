/**
 * The account-wide kinds (`account_object_count`, `account_usage`): an object write admitted in its container
 * is admitted again in its account's total, and holds a second reservation there, linked to the container's
 * (ledger.ts `linked`: committed, released and grown with it). Every door admits object writes through
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
import { decideWrite, isNearLimit, type Decision, type Usage } from './decide.js';
import { accountTotalKey, rulesFor, type Projection, type Reservation, type Snapshot, type UsageLedger } from './ledger/ledger.js';

const NO_SOFT_LIMITS = Object.freeze({});
/** How many times a reservation the ledger refused, on a projection that allows it, is tried again. */
const RESERVE_ATTEMPTS = 3;
/**
 * How long after it arrived a live reading of a total stands in for a new one (see wantsLive): a reading costs a
 * listing and a HEAD per container, and a tenant at its limit could otherwise have every refused write (or
 * chunk) cost Swift that much (test/adversarial/account-wide-attacks.test.ts).
 */
const LIVE_REUSE_MS = 1_000;

/** The account-wide kinds `limits` sets; none: the account's total is not limited. */
export function accountWideKinds(limits: Limits): readonly QuotaKind[] {
  return ACCOUNT_WIDE_KINDS.filter((kind) => limits[kind] !== undefined);
}

/** An object write as admitted in its container, to be admitted in its account's total. */
export interface TotalWrite {
  readonly account: string;
  readonly level: string;
  readonly limits: Limits;
  readonly kinds: readonly QuotaKind[];
  readonly add: Usage;
  /** `container/object`: writes of one object replace each other in the total too. */
  readonly target: string | undefined;
  readonly keepsVersions: boolean;
  /** What the write replaces, as the container's decision took it (zero when it did not look). */
  readonly credit: Usage;
  /** Looks up what the write replaces, when the container's decision did not need it and this one does. */
  readonly lookCredit?: () => Promise<Usage>;
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
    const key = accountTotalKey(write.account);
    let credit = write.credit;
    let creditLooked = write.lookCredit === undefined;
    const decide = (view: Projection): Decision => {
      const net = { count: write.add.count - credit.count - view.held.count, bytes: write.add.bytes - credit.bytes - view.held.bytes };
      return decideWrite(write.kinds, write.limits, write.level, view.used, net);
    };
    let snapshot = await this.ledger.read(key);
    let view = await this.ledger.project(key, snapshot, write.target, undefined, write.keepsVersions);
    let decision = decide(view);
    if ((!decision.allow || isNearLimit(write.limits, write.kinds, view.used, write.add, this.nearLimitRatio())) && this.wantsLive(key, snapshot, view, decision)) ({ snapshot, view, decision } = await this.live(key, write, decide));
    for (let attempt = 0; ; attempt++) {
      if (!decision.allow && !creditLooked) {
        creditLooked = true;
        credit = await write.lookCredit!();
        decision = decide(view);
      }
      if (!decision.allow) return { ok: false, decision };
      const rules = rulesFor(write.kinds, write.limits, NO_SOFT_LIMITS);
      const reserved = await this.ledger.reserve({ key, snapshot, add: write.add, credit, target: write.target, keepsVersions: write.keepsVersions, rules });
      if (reserved.ok) return { ok: true, reservation: reserved.reservation };
      view = reserved.projection;
      decision = decide(view);
      if (!decision.allow && attempt < RESERVE_ATTEMPTS && this.wantsLive(key, snapshot, view, decision)) ({ snapshot, view, decision } = await this.live(key, write, decide));
      if (decision.allow && attempt >= RESERVE_ATTEMPTS) decision = decideWrite(write.kinds, write.limits, write.level, view.used, { count: write.add.count, bytes: write.add.bytes });
    }
  }

  /**
   * A chunked upload's next `bytes`, in its account's total (`total`: its linked reservation there); undefined
   * when they fit (and are reserved), else the refusal.
   */
  async grow(total: Reservation, write: Pick<TotalWrite, 'level' | 'limits'>, bytes: number, creditBytes: number): Promise<Extract<Decision, { allow: false }> | undefined> {
    const kinds: readonly QuotaKind[] = write.limits.account_usage === undefined ? [] : ['account_usage'];
    if (kinds.length === 0) return undefined;
    const decide = (view: Projection): Decision => {
      const used = { count: view.used.count, bytes: view.used.bytes - view.held.bytes - creditBytes };
      return decideWrite(kinds, write.limits, write.level, used, { count: 0, bytes });
    };
    let snapshot = await this.ledger.read(total.key);
    for (let attempt = 0; ; attempt++) {
      const view = await this.ledger.project(total.key, snapshot, total.target, total, total.keepsVersions);
      const decision = decide(view);
      if (!decision.allow) {
        if (attempt >= RESERVE_ATTEMPTS || !this.wantsLive(total.key, snapshot, view, decision)) return decision;
        snapshot = await this.liveReading(total.key);
        continue;
      }
      const grown = await this.ledger.grow({ reservation: total, snapshot, bytes, creditBytes, rules: rulesFor(kinds, write.limits, NO_SOFT_LIMITS) });
      if (grown.ok) return undefined;
      if (attempt < RESERVE_ATTEMPTS && this.wantsLive(total.key, snapshot, grown.projection, decide(grown.projection))) snapshot = await this.liveReading(total.key);
      if (attempt >= RESERVE_ATTEMPTS) {
        const refused = decide(grown.projection);
        return refused.allow ? { allow: false, kind: 'account_usage', level: write.level, limit: write.limits.account_usage!, used: grown.projection.used.bytes, requested: bytes, enforced: 'hard' } : refused;
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
