/**
 * The Swift metadata the proxy keeps its own quota state in, so that it survives proxy restarts: when a soft
 * limit was first exceeded (and whether the end of its grace period was announced), that a hard limit refused
 * a write (so the next refusal is not announced again), and how many writes were refused. Plain user metadata (the proxy runs outside Swift's pipeline, so it cannot write sysmeta); the
 * gate refuses any client request that sets or removes it unless the caller is a reseller admin.
 *
 *   X-Account-Meta-Quota-Proxy-Soft-Container-Count    <unix seconds>[ notified]
 *   X-Account-Meta-Quota-Proxy-Hard-Container-Count    <usage when a write was refused>
 *   X-Account-Meta-Quota-Proxy-Hits                    <refused writes to this account>
 *   X-Container-Meta-Quota-Proxy-Soft-Object-Count     <unix seconds>[ notified]
 *   X-Container-Meta-Quota-Proxy-Soft-Container-Usage  <unix seconds>[ notified]
 *   X-Container-Meta-Quota-Proxy-Hard-Object-Count     <usage when a write was refused>
 *   X-Container-Meta-Quota-Proxy-Hard-Container-Usage  <usage when a write was refused>
 *   X-Container-Meta-Quota-Proxy-Hits                  <refused writes to this container>
 *
 * " notified" marks a soft state whose grace_expired event was sent, so a restart does not send it again.
 */
import type { QuotaKind } from '../config/quota-levels.js';

/** The account metadata that holds an account's quota level (set and removed by reseller admins only). */
export const LEVEL_HEADER = 'x-account-meta-quota';
export const REMOVE_LEVEL_HEADER = 'x-remove-account-meta-quota';

/**
 * What a watched scope is: an account (its containers), a container (its objects and bytes), or an account's
 * total across its containers (the account-wide kinds), whose state is kept in the account's metadata.
 */
export type ScopeType = 'account' | 'container' | 'total';

/** Whose metadata keeps a scope's state: an account's total is kept in the account's. */
export function metadataOf(scope: ScopeType): 'account' | 'container' {
  return scope === 'container' ? 'container' : 'account';
}

/**
 * Per-account and per-container numbers that replace the level's for one kind, set by reseller admins only
 * (like the level). Where Swift's account_quotas has a header for the same thing, its name and meaning:
 * X-Account-Meta-Quota-Bytes is the account's total bytes.
 */
export const ACCOUNT_OVERRIDES: Readonly<Record<string, QuotaKind>> = {
  'x-account-meta-quota-bytes': 'account_usage',
  'x-account-meta-quota-count': 'account_object_count',
  'x-account-meta-quota-containers': 'container_count',
  'x-account-meta-quota-container-objects': 'object_count',
  'x-account-meta-quota-container-bytes': 'container_usage',
};
export const CONTAINER_OVERRIDES: Readonly<Record<string, QuotaKind>> = {
  'x-container-meta-quota-override-bytes': 'container_usage',
  'x-container-meta-quota-override-count': 'object_count',
};
/** Swift's container_quotas: numbers a container's owner sets, honoured as a tighter limit. */
export const OWNER_LIMITS: Readonly<Record<string, QuotaKind>> = {
  'x-container-meta-quota-bytes': 'container_usage',
  'x-container-meta-quota-count': 'object_count',
};

/** Reserved for reseller admins: the level, its overrides and the proxy's state (account), container overrides. */
const RESELLER_ONLY = /^x-(remove-)?(account-meta-quota(-|$)|container-meta-quota-override(-|$))/;

/** Whether a (Swift-spelled) header sets or removes what only a reseller admin may: a level, an override. */
export function isResellerOnlyHeader(swiftName: string): boolean {
  return RESELLER_ONLY.test(swiftName) && !PROTECTED.test(swiftName);
}

/**
 * A limit as Swift's container_quotas reads one (`isdigit()` then `int()` of the header's latin-1 text): ASCII
 * digits; anything else is no limit (Swift ignores it, or fails the upload itself on ¹²³).
 */
export function limitValue(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The limits a table of headers sets in `headers` (lower-case names); undefined when none. */
export function limitsFrom(table: Readonly<Record<string, QuotaKind>>, headers: Readonly<Record<string, string | undefined>>): Partial<Record<QuotaKind, number>> | undefined {
  let limits: Partial<Record<QuotaKind, number>> | undefined;
  for (const [header, kind] of Object.entries(table)) {
    const value = limitValue(headers[header]);
    if (value !== undefined) (limits ??= {})[kind] = value;
  }
  return limits;
}

export const ACCOUNT_KINDS: readonly QuotaKind[] = ['container_count'];
export const CONTAINER_KINDS: readonly QuotaKind[] = ['object_count', 'container_usage'];
export const TOTAL_KINDS: readonly QuotaKind[] = ['account_object_count', 'account_usage'];

export function kindsOf(scope: ScopeType): readonly QuotaKind[] {
  return scope === 'account' ? ACCOUNT_KINDS : scope === 'container' ? CONTAINER_KINDS : TOTAL_KINDS;
}

/** The kinds whose state an account's (or container's) metadata keeps: an account keeps its total's too. */
function keptIn(metadata: 'account' | 'container'): readonly QuotaKind[] {
  return metadata === 'account' ? [...ACCOUNT_KINDS, ...TOTAL_KINDS] : CONTAINER_KINDS;
}

const PROTECTED = /^x-(remove-)?(account|container)-meta-quota-proxy-/;

/** Whether a header (in Swift's terms: lower case, `_` as `-`) sets or removes the proxy's own metadata. */
export function isProtectedMetadataHeader(swiftName: string): boolean {
  return PROTECTED.test(swiftName);
}

export function softSinceHeader(scope: ScopeType, kind: QuotaKind): string {
  return `x-${metadataOf(scope)}-meta-quota-proxy-soft-${kind.replaceAll('_', '-')}`;
}

export function hardHitHeader(scope: ScopeType, kind: QuotaKind): string {
  return `x-${metadataOf(scope)}-meta-quota-proxy-hard-${kind.replaceAll('_', '-')}`;
}

/** The refusal counter (an account's total has none of its own: its refusals count in the account's). */
export function hitsHeader(scope: 'account' | 'container'): string {
  return `x-${scope}-meta-quota-proxy-hits`;
}

export function removeHeader(name: string): string {
  return name.replace(/^x-/, 'x-remove-');
}

export interface SoftRecord {
  /** When usage first went over the soft limit, in milliseconds since the epoch (stored as seconds). */
  readonly since: number;
  /** The grace_expired event of this crossing was sent. */
  readonly graceNotified: boolean;
}

export interface PersistedQuotaState {
  readonly soft: Partial<Record<QuotaKind, SoftRecord>>;
  /** Usage at which a hard limit refused a write, while that refusal episode lasts. */
  readonly hardHits: Partial<Record<QuotaKind, number>>;
  readonly hits: number;
}

export function formatSoftRecord(record: SoftRecord): string {
  return `${Math.floor(record.since / 1000)}${record.graceNotified ? ' notified' : ''}`;
}

function parseSoftRecord(value: string | undefined): SoftRecord | undefined {
  const match = /^\s*(\d+)(\s+notified)?\s*$/.exec(value ?? '');
  return match ? { since: Number(match[1]) * 1000, graceNotified: match[2] !== undefined } : undefined;
}

/** The proxy's state as found in an account or container HEAD (lower-case header names); an account's has its total's. */
export function readPersistedState(scope: 'account' | 'container', headers: Readonly<Record<string, string>>): PersistedQuotaState {
  const soft: Partial<Record<QuotaKind, SoftRecord>> = {};
  const hardHits: Partial<Record<QuotaKind, number>> = {};
  for (const kind of keptIn(scope)) {
    const record = parseSoftRecord(headers[softSinceHeader(scope, kind)]);
    if (record) soft[kind] = record;
    const hardHit = wholeNumber(headers[hardHitHeader(scope, kind)]);
    if (hardHit !== undefined) hardHits[kind] = hardHit;
  }
  return { soft, hardHits, hits: wholeNumber(headers[hitsHeader(scope)]) ?? 0 };
}

function wholeNumber(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}
