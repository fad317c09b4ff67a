/**
 * The quota decision itself: plain arithmetic on usage, no I/O. As in Swift's container_quotas, a write is
 * refused only when it would take usage *past* the limit (equal passes).
 */
import { inBytes, type Limits, type QuotaKind } from '../config/quota-levels.js';

/** Usage of one account (count = containers) or one container (count = objects, bytes = bytes used). */
export interface Usage {
  readonly count: number;
  readonly bytes: number;
}

export type Decision =
  | { readonly allow: true }
  | {
      readonly allow: false;
      readonly kind: QuotaKind;
      readonly level: string;
      readonly limit: number;
      /** Usage the write was checked against: stored + finished since + reserved by writes in flight. */
      readonly used: number;
      readonly requested: number;
      /** `grace`: the soft limit, enforced because usage stayed over it past the grace period. */
      readonly enforced: 'hard' | 'grace';
      /** The storage policy (lower case) of an account-wide limit set per policy. */
      readonly policy?: string;
    };

/** Soft limits whose grace period has expired, by kind: usage over them may not grow. */
export type ExpiredSoftLimits = Readonly<Partial<Record<QuotaKind, number>>>;

const ALLOW: Decision = Object.freeze({ allow: true });

function check(kind: QuotaKind, limits: Limits, level: string, used: number, requested: number, expired: ExpiredSoftLimits): Decision {
  // A write that does not add (an overwrite at the count limit, a shrinking overwrite) always passes.
  if (requested <= 0) return ALLOW;
  const soft = expired[kind];
  // Linux quota: past the grace period, usage over the soft limit may not grow; once it is back at or under
  // the soft limit a new grace period starts with the next crossing, so only the hard limit applies.
  if (soft !== undefined && used > soft) return { allow: false, kind, level, limit: soft, used, requested, enforced: 'grace' };
  const limit = limits[kind];
  if (limit === undefined || used + requested <= limit) return ALLOW;
  return { allow: false, kind, level, limit, used, requested, enforced: 'hard' };
}

const NONE_EXPIRED: ExpiredSoftLimits = Object.freeze({});

/** A container PUT that creates a new container. */
export function decideContainerCreate(limits: Limits, level: string, account: Usage, expired = NONE_EXPIRED): Decision {
  return check('container_count', limits, level, account.count, 1, expired);
}

/** An object write adding `add.count` objects (0 or 1) and `add.bytes` bytes to a container. */
export function decideObjectWrite(limits: Limits, level: string, container: Usage, add: Usage, expired = NONE_EXPIRED): Decision {
  const count = check('object_count', limits, level, container.count, add.count, expired);
  return count.allow ? check('container_usage', limits, level, container.bytes, add.bytes, expired) : count;
}

/**
 * A write to an account (its kinds: container_count), to a container (object_count, container_usage), or to an
 * account's total (account_object_count, account_usage).
 */
export function decideWrite(kinds: readonly QuotaKind[], limits: Limits, level: string, used: Usage, add: Usage, expired = NONE_EXPIRED): Decision {
  for (const kind of kinds) {
    const decision = inBytes(kind)
      ? check(kind, limits, level, used.bytes, add.bytes, expired)
      : check(kind, limits, level, used.count, add.count, expired);
    if (!decision.allow) return decision;
  }
  return ALLOW;
}

/** Whether the write would bring a limit within `ratio` of being reached: cached usage is then re-read live. */
export function isNearLimit(limits: Limits, kinds: readonly QuotaKind[], used: Usage, add: Usage, ratio: number): boolean {
  return kinds.some((kind) => {
    const limit = limits[kind];
    if (limit === undefined) return false;
    const projected = inBytes(kind) ? used.bytes + add.bytes : used.count + add.count;
    return projected >= limit * ratio;
  });
}
