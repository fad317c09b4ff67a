/**
 * Linux-quota semantics for one quota kind of one account or container, as plain state transitions (no I/O,
 * the clock is an argument):
 *  - usage going over the soft limit starts the grace period and is reported once (soft_limit_exceeded);
 *  - usage staying over it past the grace period is reported once (grace_expired) and from then on writes
 *    that grow usage are refused, as at a hard limit, until usage is back at or under the soft limit;
 *  - usage back at or under the soft limit ends all that (back_below_soft);
 *  - a refusal at the hard limit is reported once (hard_limit_hit) until usage goes down (back_below_hard).
 * As for hard limits, reaching a soft limit exactly is within it; only going past it counts.
 */
import type { SoftRecord } from '../swift/quota-metadata.js';

export const QUOTA_EVENT_TYPES = ['soft_limit_exceeded', 'grace_expired', 'hard_limit_hit', 'back_below_soft', 'back_below_hard'] as const;
export type QuotaEventType = (typeof QUOTA_EVENT_TYPES)[number];

export interface KindState {
  readonly soft?: SoftRecord;
  /** Usage when a write was refused at the hard limit; cleared once usage is lower. */
  readonly hardHitAt?: number;
}

export interface Crossing {
  readonly type: QuotaEventType;
  /** The limit the event is about (the soft limit for soft and grace events). */
  readonly limit: number;
  readonly usage: number;
}

export interface SoftHard {
  readonly soft: number | undefined;
  readonly hard: number | undefined;
}

export interface Observed {
  readonly state: KindState;
  readonly crossings: readonly Crossing[];
}

export function graceEndsAt(record: SoftRecord, graceMs: number): number {
  return record.since + graceMs;
}

/** Usage has been seen (after a write, or read from Swift): the crossings since the state was last updated. */
export function observeUsage(state: KindState, usage: number, limits: SoftHard, now: number, graceMs: number, withInFlight = usage): Observed {
  const crossings: Crossing[] = [];
  let { soft, hardHitAt } = state;
  if (limits.soft !== undefined) {
    if (usage > limits.soft && soft === undefined) {
      soft = { since: now, graceNotified: false };
      crossings.push({ type: 'soft_limit_exceeded', limit: limits.soft, usage });
    } else if (usage <= limits.soft && soft !== undefined) {
      soft = undefined;
      crossings.push({ type: 'back_below_soft', limit: limits.soft, usage });
    }
    if (soft !== undefined && !soft.graceNotified && now >= graceEndsAt(soft, graceMs)) {
      soft = { since: soft.since, graceNotified: true };
      crossings.push({ type: 'grace_expired', limit: limits.soft, usage });
    }
  } else if (soft !== undefined) {
    soft = undefined; // the soft limit was removed from the config: nothing to be over any more
  }
  // A refusal's usage counts the writes then in flight: so does the usage that ends its episode, or writes
  // still in flight would look like usage going down.
  if (hardHitAt !== undefined && withInFlight < hardHitAt) {
    hardHitAt = undefined;
    if (limits.hard !== undefined) crossings.push({ type: 'back_below_hard', limit: limits.hard, usage });
  }
  // Unchanged state is handed back as it was: the watch sees usage at every check.
  if (soft === state.soft && hardHitAt === state.hardHitAt) return { state, crossings };
  return { state: withState(soft, hardHitAt), crossings };
}

/** A write was refused at `limit` with usage `usage`: reported unless this refusal episode already was. */
export function observeRefusal(state: KindState, usage: number, limit: number): Observed {
  // Within an episode nothing changes: no event, and no state to write for every refusal of a hammering client.
  if (state.hardHitAt !== undefined) return { state, crossings: [] };
  return { state: withState(state.soft, usage), crossings: [{ type: 'hard_limit_hit', limit, usage }] };
}

/** Whether writes that grow this usage are refused because it has been over the soft limit for too long. */
export function graceHasExpired(state: KindState, usage: number, soft: number | undefined, now: number, graceMs: number): boolean {
  return soft !== undefined && state.soft !== undefined && usage > soft && now >= graceEndsAt(state.soft, graceMs);
}

function withState(soft: SoftRecord | undefined, hardHitAt: number | undefined): KindState {
  return { ...(soft ? { soft } : {}), ...(hardHitAt !== undefined ? { hardHitAt } : {}) };
}
