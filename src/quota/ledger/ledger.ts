/**
 * The usage ledger: the one place where what the proxy knows about usage lives — the last readings of Swift's
 * usage, writes finished since a reading was asked for, and writes admitted but not finished (reservations).
 * Their sum is what a check compares with a limit, so neither a stale reading nor concurrent uploads let a
 * write pass a limit.
 *
 * Two implementations keep one contract (test/helpers/ledger-contract.ts): `MemoryLedger` (one process, no service)
 * and `RedisLedger` (any number of proxies sharing one Redis). Readings are cached in each process; what must
 * be shared to stay exact across proxies — finished writes, reservations, the newest reading — is in the
 * ledger, and the check of a write against its limits and its reservation happen in one atomic step.
 *
 * Ordering uses the ledger's sequence numbers, not clocks: a usage read takes one when it is *sent*, a
 * finished write one when Swift has *answered* it. Swift updates container and account usage before it answers
 * an object or container PUT, so a read sent after a write finished includes that write; a write finished after
 * the read was sent may or may not be included and is counted on top (never under-counted).
 */
import { inBytes, type Limits, type QuotaKind } from '../../config/quota-levels.js';
import type { ExpiredSoftLimits, Usage } from '../decide.js';
import type { PersistedQuotaState } from '../../swift/quota-metadata.js';

/** Keys of the ledger: an account's usage (its containers), a container's (objects and bytes), an account's total. */
export const accountKey = (account: string) => `a/${account}`;
export const containerKey = (account: string, container: string) => `c/${account}/${container}`;
export const scopeKey = (account: string, container?: string) => (container === undefined ? accountKey(account) : containerKey(account, container));
/** An account's total across its containers (count = objects, bytes = bytes used): the account-wide kinds. */
export const accountTotalKey = (account: string) => `t/${account}`;
/** An account's total in the containers of one storage policy (`policy` in lower case): per-policy limits. */
export const policyTotalKey = (account: string, policy: string) => `p/${account}/${policy}`;

/**
 * Object versioning of a container, as Swift reports it.
 * - `archive`: legacy versioned_writes (`X-Versions-Location`: stack mode, `X-History-Location`: history
 *   mode). Swift copies the object an overwrite or delete replaces into `location`, another container of the
 *   account, where it counts like any object of that container.
 * - `object`: object_versioning (`X-Versions-Enabled`). Versions live in a hidden container of the account
 *   whose bytes Swift reports as the container's own (`X-Container-Bytes-Used`); `enabled` false once it was
 *   turned off (the versions stay).
 */
export type Versioning =
  | { readonly kind: 'archive'; readonly mode: 'stack' | 'history'; readonly location: string }
  | { readonly kind: 'object'; readonly enabled: boolean };

/** What a usage read of Swift returns. */
export interface SnapshotData extends Usage {
  readonly exists: boolean;
  /** Account metadata the doors need (the quota level), when the key is an account. */
  readonly level?: string;
  /** The proxy's own quota state kept in the account's or container's metadata. */
  readonly persisted?: PersistedQuotaState;
  /** The account's or container's tempurl/formpost keys (X-*-Meta-Temp-URL-Key, -Key-2). */
  readonly tempUrlKeys?: readonly string[];
  /** How Swift versions the container's objects, when it does (swift/usage.ts). */
  readonly versioning?: Versioning;
  /** Numbers a reseller admin set for this account or container, replacing its level's (quota-metadata.ts). */
  readonly overrides?: Limits;
  /** A container's own limits (container_quotas' X-Container-Meta-Quota-Bytes / -Count): tighter only. */
  readonly ownerLimits?: Limits;
  /** A container's storage policy, in lower case (Swift compares policy names without case). */
  readonly policy?: string;
}

export interface Snapshot extends SnapshotData {
  /** The ledger's sequence number taken when the read was sent. */
  readonly seq: number;
  /** The ledger generation `seq` belongs to (a Redis that lost its data starts a new one). */
  readonly gen: string;
  /** This process's order of sending: what `notBefore` of a read compares with. */
  readonly sent: number;
}

export interface Reservation {
  readonly id: string;
  readonly key: string;
  /** The object (or container) the write creates or replaces; writes of one target replace each other. */
  readonly target: string | undefined;
  /** Swift keeps every write of the target (object_versioning): they replace each other's count, not bytes. */
  readonly keepsVersions: boolean;
  count: number;
  bytes: number;
  settled: boolean;
  /**
   * The reservation made with this one in the account's total (an object write's, admission.ts): committed or
   * released with it, and grown with it.
   */
  linked?: Reservation;
}

/** Usage as far as finished requests go, and with the writes in flight on top. */
export interface Settled {
  readonly usage: Usage;
  /** A refusal's usage counts writes in flight: the end of its episode is judged on the same measure. */
  readonly inFlight: Usage;
}

/** Usage of a key as a check sees it. */
export interface Projection {
  /** The reading (or a newer one) + writes finished since it was asked for + writes in flight. */
  readonly used: Usage;
  /**
   * What other writes in flight hold for the same target: their count (one object of a name remains), and their
   * bytes unless Swift keeps every write of it (object_versioning: each is a version) — on either side.
   */
  readonly held: Usage;
  /** Usage as far as finished requests go (no reservations); undefined when unknown (a delete since). */
  readonly settled: Usage | undefined;
  /** Writes finished after the reading was asked for (it may or may not include them). */
  readonly writesSince: boolean;
}

/** One dimension's rule, as plain data: a hard limit, and a soft limit past its grace period. */
export interface Rule {
  readonly limit?: number;
  /** Usage over it may not grow. */
  readonly soft?: number;
}

/** What an atomic check enforces: `count` (objects or containers) and `bytes`. */
export interface Rules {
  readonly count: Rule;
  readonly bytes: Rule;
}

/** Admit a write: check `used + (add - credit - held)` against the rules and, if it fits, reserve `add`. */
export interface ReserveRequest {
  readonly key: string;
  readonly snapshot: Snapshot;
  readonly add: Usage;
  /** What the write replaces (an overwritten object), when the decision needed it. */
  readonly credit: Usage;
  readonly target: string | undefined;
  /** Swift keeps every write of the target as a version: no bytes of other writes of it are credited. */
  readonly keepsVersions?: boolean;
  readonly rules: Rules;
  /**
   * The reading the decision's versioning came from (the container's legacy or object versioning), when not
   * `snapshot`: a shared ledger refuses the reservation if a change of it began since (redis-pins.ts).
   */
  readonly versioningRead?: { readonly seq: number; readonly gen: string };
}

/** Grow a reservation by `bytes` (an upload streaming in) if `used - held - credit + bytes` fits. */
export interface GrowRequest {
  readonly reservation: Reservation;
  readonly snapshot: Snapshot;
  readonly bytes: number;
  readonly creditBytes: number;
  readonly rules: Rules;
}

export type Reserved =
  | { readonly ok: true; readonly reservation: Reservation }
  /** It did not fit: the projection it was checked against, for the refusal. */
  | { readonly ok: false; readonly projection: Projection };

export interface UsageLedger {
  /** This process's send order now: a read with `notBefore` above it is sent after this moment. */
  now(): number;
  /**
   * A reading sent at or after `notBefore`: from this process's cache when fresh enough, else by joining a read
   * already under way, else by a new HEAD. Concurrent callers share one HEAD.
   */
  read(key: string, notBefore?: number): Promise<Snapshot>;
  /**
   * Usage of `key` projected from `snapshot` (or the newest reading, whichever is newer); `held` for a write of
   * `target` (keeping versions or not), but for `except`.
   */
  project(key: string, snapshot: Snapshot, target?: string, except?: Reservation, keepsVersions?: boolean): Promise<Projection>;
  /** Usage as far as finished requests go; undefined when nothing was read or a delete made it unknown. */
  settled(key: string): Promise<Settled | undefined>;
  /** Checks and reserves in one atomic step. */
  reserve(request: ReserveRequest): Promise<Reserved>;
  grow(request: GrowRequest): Promise<Reserved>;
  /** The write finished in Swift: counted as a finished write until a newer reading covers it. */
  commit(reservation: Reservation, actual?: Usage): void;
  /** The write did not happen (refused, failed, aborted): give its quota back. */
  release(reservation: Reservation): void;
  /** Usage went down by an amount only Swift knows (a delete): the next check reads Swift again. */
  invalidate(key: string): void;
  /**
   * What Swift keeps with `key` changed (its metadata: a level, an override): every process sharing the ledger
   * drops its reading (forget-channel.ts), this one at once.
   */
  forgetEverywhere(key: string): void;
  /** Reservations this process holds. */
  readonly openReservations: number;
  close(): Promise<void>;
}

/** The ledger cannot be reached: a check cannot be made (fail_mode decides). */
export class LedgerUnavailableError extends Error {
  override name = 'LedgerUnavailableError';
}

/** The rules a decision on `kinds` enforces: the same arithmetic as `decideWrite`, as data for an atomic step. */
export function rulesFor(kinds: readonly QuotaKind[], limits: Limits, expired: ExpiredSoftLimits): Rules {
  const count: { limit?: number; soft?: number } = {};
  const bytes: { limit?: number; soft?: number } = {};
  for (const kind of kinds) {
    const rule = inBytes(kind) ? bytes : count;
    if (limits[kind] !== undefined) rule.limit = limits[kind];
    if (expired[kind] !== undefined) rule.soft = expired[kind];
  }
  return { count, bytes };
}

/** Whether `requested` on top of `used` keeps to the rules (as `decideWrite`: equal passes, no growth never fails). */
export function fits(rules: Rules, used: Usage, requested: Usage): boolean {
  return fitsRule(rules.count, used.count, requested.count) && fitsRule(rules.bytes, used.bytes, requested.bytes);
}

function fitsRule(rule: Rule, used: number, requested: number): boolean {
  if (requested <= 0) return true;
  if (rule.soft !== undefined && used > rule.soft) return false;
  return rule.limit === undefined || used + requested <= rule.limit;
}

/**
 * Usage of `key` went down by an amount only Swift knows (a delete): read again, and so are its account's totals
 * when `key` is a container's (the whole account's, and that of each of `policies`, the ones limits name).
 */
export function invalidateUsage(ledger: UsageLedger, key: string, policies: readonly string[]): void {
  ledger.invalidate(key);
  if (!key.startsWith('c/')) return;
  const account = key.slice(2, key.indexOf('/', 2));
  ledger.invalidate(accountTotalKey(account));
  for (const policy of policies) ledger.invalidate(policyTotalKey(account, policy));
}
