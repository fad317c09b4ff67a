/**
 * The limits that apply to one account or container: its level's, with the numbers a reseller admin set for it
 * replacing the level's (quota-metadata.ts ACCOUNT_OVERRIDES, CONTAINER_OVERRIDES), and a container's own
 * container_quotas limits (X-Container-Meta-Quota-Bytes / -Count) taking over where they are tighter. Pure.
 */
import type { Limits, QuotaKind } from '../config/quota-levels.js';
import type { Scope } from './watch-scope.js';

/** The effective limits and soft limits of `overrides` (and `owner`) applied to a level's. */
export function effectiveLimits(limits: Limits, soft: Limits, overrides: Limits | undefined, owner?: Limits): { limits: Limits; soft: Limits } {
  if (overrides === undefined && owner === undefined) return { limits, soft };
  const hard: Partial<Record<QuotaKind, number>> = { ...limits, ...overrides };
  for (const [kind, value] of Object.entries(owner ?? {}) as Array<[QuotaKind, number]>) {
    const current = hard[kind];
    hard[kind] = current === undefined ? value : Math.min(current, value);
  }
  return { limits: hard, soft: scaledSoft(limits, soft, hard) };
}

/**
 * A soft limit keeps its share of the hard limit when an override or the owner moves the hard limit (a level's
 * 80 % stays 80 %); never above the hard limit. A kind the level has no hard limit for keeps no soft limit.
 */
function scaledSoft(level: Limits, soft: Limits, hard: Limits): Limits {
  const out: Partial<Record<QuotaKind, number>> = {};
  for (const [kind, value] of Object.entries(soft) as Array<[QuotaKind, number]>) {
    const from = level[kind];
    const to = hard[kind];
    if (from === undefined || to === undefined) continue;
    out[kind] = from === to ? value : from === 0 ? 0 : Math.min(to, Math.floor((value * to) / from));
  }
  return out;
}

/** A container scope under the limits its own reading sets (reseller overrides, container_quotas). */
export function containerLimited(scope: Scope, reading: { readonly overrides?: Limits; readonly ownerLimits?: Limits }): Scope {
  if (scope.type !== 'container' || (reading.overrides === undefined && reading.ownerLimits === undefined)) return scope;
  const { limits, soft } = effectiveLimits(scope.limits, scope.soft, reading.overrides, reading.ownerLimits);
  return { ...scope, limits, soft };
}
