/**
 * What clients see of quotas: the body and headers of a refusal, and the headers that account and container
 * HEAD/GET responses carry so that `swift stat` shows where a user stands. Pure.
 */
import type { Limits, QuotaKind } from '../config/quota-levels.js';

export interface Rejection {
  readonly kind: QuotaKind;
  readonly level: string;
  readonly limit: number;
  readonly used: number;
  readonly requested: number;
  readonly enforced: 'hard' | 'grace';
  /** The storage policy of a per-policy account-wide limit. */
  readonly policy?: string;
}

export const HEADER_QUOTA_KIND = 'x-quota-exceeded';
export const HEADER_QUOTA_LEVEL = 'x-quota-level';
export const HEADER_QUOTA_LIMIT = 'x-quota-limit';
/** `hard`, or `soft-grace-expired` when the soft limit is enforced after its grace period. */
export const HEADER_QUOTA_ENFORCED = 'x-quota-enforced';
/** The storage policy whose limit refused the write, when the limit is one policy's. */
export const HEADER_QUOTA_POLICY = 'x-quota-policy';

const KIND_TEXT: Record<QuotaKind, string> = {
  container_count: 'containers in this account',
  object_count: 'objects in this container',
  container_usage: 'bytes in this container',
  account_object_count: 'objects in this account',
  account_usage: 'bytes in this account',
};

export function rejectionResponse(rejection: Rejection): { status: number; body: string; headers: Record<string, string> } {
  const { kind, level, limit, used, enforced, policy } = rejection;
  const headers: Record<string, string> = {
    [HEADER_QUOTA_KIND]: kind,
    [HEADER_QUOTA_LEVEL]: level,
    [HEADER_QUOTA_LIMIT]: String(limit),
    [HEADER_QUOTA_ENFORCED]: enforced === 'grace' ? 'soft-grace-expired' : 'hard',
  };
  const what = policy === undefined ? KIND_TEXT[kind] : `${KIND_TEXT[kind]}'s containers of storage policy ${policy}`;
  const name = policy === undefined ? kind : `${kind}:${policy}`;
  if (policy !== undefined) headers[HEADER_QUOTA_POLICY] = policy;
  const detail = enforced === 'grace'
    ? `Quota ${name} of level "${level}": usage has stayed over the soft limit of ${limit} ${what} past its grace period, ${used} used; ` +
      `it may not grow until it is back at or under ${limit}.`
    : `Quota ${name} of level "${level}": at most ${limit} ${what}, ${used} used.`;
  // Swift's own wording for each case, so that clients which match on it keep working.
  if (kind === 'container_count') {
    return { status: 403, body: `Reached container limit of ${limit}.\n${detail}\n`, headers };
  }
  return { status: 413, body: `Upload exceeds quota.\n${detail}\n`, headers };
}

export interface Described {
  readonly level: string;
  readonly limits: Limits;
  readonly soft: Limits;
  /** A container response (object quotas) or an account response (container quota). */
  readonly container: boolean;
  /** The level's account-wide limits per storage policy (lower-case name → limits). */
  readonly policies?: ReadonlyMap<string, Limits>;
}

export function quotaHeaders({ level, limits, soft, container, policies }: Described): Record<string, string> {
  const out: Record<string, string> = {};
  const set = (name: string, value: number | undefined) => {
    if (value !== undefined) out[name] = String(value);
  };
  if (container) {
    out['x-container-quota-level'] = level;
    set('x-container-quota-object-count', limits.object_count);
    set('x-container-quota-bytes', limits.container_usage);
    set('x-container-quota-soft-object-count', soft.object_count);
    set('x-container-quota-soft-bytes', soft.container_usage);
  } else {
    // The per-container limits carry "Container" in their names: Swift's account_quotas gives
    // X-Account-Quota-Bytes and X-Account-Quota-Count (and their -Policy-<name> forms) the account's totals.
    out['x-account-quota-level'] = level;
    // account_quotas' own names and meaning: the account's totals.
    set('x-account-quota-bytes', limits.account_usage);
    set('x-account-quota-count', limits.account_object_count);
    set('x-account-quota-container-count', limits.container_count);
    set('x-account-quota-container-object-count', limits.object_count);
    set('x-account-quota-container-bytes', limits.container_usage);
    set('x-account-quota-soft-container-count', soft.container_count);
    set('x-account-quota-soft-container-object-count', soft.object_count);
    set('x-account-quota-soft-container-bytes', soft.container_usage);
    // account_quotas' per-policy names (newer Swift): X-Account-Quota-Bytes-Policy-<name>.
    for (const [policy, policyLimits] of policies ?? []) {
      set(`x-account-quota-bytes-policy-${policy}`, policyLimits.account_usage);
      set(`x-account-quota-count-policy-${policy}`, policyLimits.account_object_count);
    }
  }
  return out;
}
