/**
 * An object write admitted in its container, admitted in its account's totals too (account-total.ts): the
 * account's whole total and its container's storage policy's, where the level limits them. The account's whole
 * total is watched like any scope (watch.ts, scope type `total`): soft limits, grace periods, events, its state
 * kept in the account's metadata; its refusals are counted in the account's and the container's hits.
 */
import type { Config } from '../config/load.js';
import type { PersistedQuotaState } from '../swift/quota-metadata.js';
import { AccountTotals, totalsOf, type TotalScope } from './account-total.js';
import type { Usage } from './decide.js';
import { accountTotalKey, containerKey, policyTotalKey, type Projection, type Reservation, type Snapshot, type UsageLedger } from './ledger/ledger.js';
import type { Denied, LevelInfo, Write } from './admission.js';
import { keepsVersions } from './versioning.js';
import type { QuotaWatch, Scope } from './watch.js';
import { hasSoftLimit } from './watch-scope.js';
import { noteRefused, withAsked } from './write-trace.js';

const ZERO: Usage = Object.freeze({ count: 0, bytes: 0 });

type Counted = Array<{ scope: Scope; persisted: PersistedQuotaState | undefined }>;

export interface TotalAdmissionsOptions {
  readonly ledger: UsageLedger;
  readonly watch: QuotaWatch;
  readonly config: () => Config;
  /** The account's level, from the cache: its reading holds the total's recorded state. */
  readonly levelOf: (account: string) => Promise<LevelInfo>;
  /** The scopes a refusal of the write is counted in (its container's and its account's hits). */
  readonly countedWith: (write: Write, withOwn: boolean) => Promise<Counted>;
  /** Swift's default storage policy (lower case), where known (/info). */
  readonly defaultPolicy?: () => string | undefined;
}

/**
 * What `write` adds to one of its account's totals: `totalAdd` where it is given (legacy versioning moves objects
 * between containers of the account), but in full in a policy's total when the move crosses policies (`crosses`):
 * the object leaves another policy's containers and enters this one's.
 */
function addedTo(write: Write, total: TotalScope, crosses: boolean): Usage {
  if (write.totalAdd === undefined || (crosses && total.policy !== undefined)) return write.add;
  return write.totalAdd;
}

/** The storage policy a total's ledger key names (`p/<account>/<policy>`); undefined for the account's whole total. */
function policyInKey(account: string, key: string): string | undefined {
  const prefix = policyTotalKey(account, '');
  return key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
}

/** What a check of one total tells the quota watch, when its account's total is watched. */
interface Watched {
  readonly scope: Scope;
  readonly persisted: PersistedQuotaState | undefined;
}

export class TotalAdmissions {
  private readonly totals: AccountTotals;

  constructor(private readonly options: TotalAdmissionsOptions) {
    this.totals = new AccountTotals(options.ledger, () => options.config().quota.nearLimitRatio);
  }

  /** The quota watch's scope of `account`'s whole total, under its level's limits (as a scope of the account has them). */
  static watchScope(account: string, { level, limits, soft }: Pick<Scope, 'level' | 'limits' | 'soft'>): Scope {
    return { key: accountTotalKey(account), type: 'total', account, level, limits, soft };
  }

  /**
   * Admits `write`, admitted in its container (`reservation`), in its account's totals: each linked to the
   * reservation before it, or the refusal (and all given back).
   */
  async admit(write: Write, reservation: Reservation, snapshot: Snapshot, credit: Usage, lookCredit?: () => Promise<Usage>): Promise<Denied | undefined> {
    const { scope } = write;
    const policy = this.policyOf(snapshot);
    const totals = this.totalsFor(scope, policy);
    if (totals.length === 0) return undefined;
    const crosses = await this.crossesPolicies(write, totals, policy);
    const target = write.target === undefined ? undefined : `${scope.container!}/${write.target}`;
    // Legacy versioning keeps what the write replaces in the account: nothing is credited in its total.
    const credits = write.totalAdd === undefined ? { credit, ...(lookCredit ? { lookCredit } : {}) } : { credit: ZERO };
    const { ledger, watch } = this.options;
    try {
      const keeps = keepsVersions(snapshot.versioning);
      let last = reservation;
      for (const total of totals) {
        const add = addedTo(write, total, crosses);
        if (add.count <= 0 && add.bytes <= 0) continue;
        const watched = await this.watched(scope, total);
        const watching = watched ? this.watching(watched, write) : {};
        const admitted = await this.totals.admit({ total, level: scope.level, add, target, keepsVersions: keeps, ...credits, ...watching });
        if (!admitted.ok) {
          ledger.release(reservation);
          noteRefused(admitted.decision, scope, write.add);
          const counted = await this.options.countedWith(write, true);
          if (watched) watch.refused(watched.scope, watched.persisted, admitted.decision, withAsked(write.context, write.add), counted);
          else watch.countRefusals(counted);
          return admitted.decision;
        }
        last = last.linked = admitted.reservation;
      }
      return undefined;
    } catch (error) {
      ledger.release(reservation);
      throw error;
    }
  }

  /**
   * The storage policy of the container a reading is of. One Swift does not have (yet) gets the default policy:
   * bulk extraction makes the containers its files name, without X-Storage-Policy (a write into any other missing
   * container is answered 404 and stores nothing).
   */
  private policyOf(snapshot: Snapshot): string | undefined {
    return snapshot.exists ? snapshot.policy : this.options.defaultPolicy?.();
  }

  /**
   * Whether `write`, an object legacy versioning moves into its container (`movedFrom`), takes it from a container
   * of another storage policy than `policy` (its own): then the object enters `policy`'s total in full. Asked only
   * where a policy's total is limited; a source the proxy cannot read is taken for one of another policy.
   */
  private async crossesPolicies(write: Write, totals: readonly TotalScope[], policy: string | undefined): Promise<boolean> {
    if (write.movedFrom === undefined || !totals.some((total) => total.policy !== undefined)) return false;
    const source = await this.options.ledger.read(containerKey(write.scope.account, write.movedFrom));
    return !source.exists || source.policy === undefined || source.policy !== policy;
  }

  /** A chunked upload's next bytes in its account's totals, once they fit in its container; refused: counted. */
  async grow(write: Write, reservation: Reservation, bytes: number, credit: { bytes: number; looked: boolean }): Promise<Denied | undefined> {
    for (let total = reservation.linked; total; total = total.linked) {
      // The limits of the total it holds, by the policy it was admitted in (not by a newer reading of the
      // container, which could name another policy); a total the limits no longer name is not grown.
      const key = total.key;
      const scope = this.totalsFor(write.scope, policyInKey(write.scope.account, key)).find((candidate) => candidate.key === key);
      const refused = scope && (await this.growOne(write, total, scope, bytes, credit));
      if (refused) return refused;
    }
    return undefined;
  }

  /** The totals an object write into a container of `scope` (of storage policy `policy`) is admitted in. */
  private totalsFor(scope: Scope, policy: string | undefined): readonly TotalScope[] {
    if (scope.type !== 'container') return [];
    const policyLimits = policy === undefined ? undefined : this.options.config().quota.levels.byPolicy.get(scope.level)?.get(policy);
    return totalsOf(scope.account, scope.limits, policy, policyLimits);
  }

  /**
   * The account's whole total as the quota watch sees it, when the watch has something to do there (a soft
   * limit, or a state being followed); undefined for a policy's total (hard limits only).
   */
  private async watched(scope: Scope, total: TotalScope): Promise<Watched | undefined> {
    if (total.policy !== undefined) return undefined;
    const watchScope = TotalAdmissions.watchScope(scope.account, scope);
    if (!hasSoftLimit(watchScope) && !this.options.watch.isWatching(watchScope.key)) return undefined;
    const account = await this.options.levelOf(scope.account);
    return { scope: watchScope, persisted: account.snapshot.persisted };
  }

  /** The hooks by which a check of the watched total tells the watch what it saw, and learns of expired soft limits. */
  private watching({ scope, persisted }: Watched, write: Write): { expired: (used: Usage) => ReturnType<QuotaWatch['expiredSoftLimits']>; seen: (snapshot: Snapshot, view: Projection) => void } {
    const { watch } = this.options;
    return {
      expired: (used) => watch.expiredSoftLimits(scope, used),
      seen: (snapshot, view) => watch.observe(scope, persisted, view.settled ?? snapshot, write.context, view.used),
    };
  }

  /** A chunked upload's next bytes in one of its account's totals. */
  private async growOne(write: Write, total: Reservation, scope: TotalScope, bytes: number, credit: { bytes: number; looked: boolean }): Promise<Denied | undefined> {
    const { level } = write.scope;
    const watched = await this.watched(write.scope, scope);
    const expired = watched ? this.watching(watched, write).expired : undefined;
    // What a write under legacy versioning replaces stays in the account (archived): no credit in its total.
    if (write.totalAdd !== undefined) return this.refusedInTotal(write, await this.totals.grow(total, scope, level, bytes, 0, expired), bytes, watched);
    let refused = await this.totals.grow(total, scope, level, bytes, credit.bytes, expired);
    if (refused && !credit.looked && write.replaced && !total.keepsVersions) {
      credit.looked = true;
      credit.bytes = (await write.replaced())?.bytes ?? 0;
      refused = await this.totals.grow(total, scope, level, bytes, credit.bytes, expired);
    }
    return this.refusedInTotal(write, refused, bytes, watched);
  }

  /** A chunked upload's growth refused in its account's total (or not): counted. */
  private async refusedInTotal(write: Write, refused: Denied | undefined, bytes: number, watched: Watched | undefined): Promise<Denied | undefined> {
    if (!refused) return undefined;
    const asked = { count: 0, bytes };
    noteRefused(refused, write.scope, asked);
    const counted = await this.options.countedWith(write, true);
    if (watched) this.options.watch.refused(watched.scope, watched.persisted, refused, withAsked(write.context, asked), counted);
    else this.options.watch.countRefusals(counted);
    return refused;
  }
}
