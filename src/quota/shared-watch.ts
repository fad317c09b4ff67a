/**
 * What the quota watch shares with the other proxies when they share a ledger (watch.ts): each scope's
 * soft/hard-hit state per kind, moved only by compare-and-set, so that of several proxies seeing one crossing
 * exactly one moves the state and reports it; and one writer at a time of a scope's metadata, so that refusal
 * counters added by several proxies lose no update. Without a shared ledger there is none: one process's
 * event loop does both.
 */
import type { QuotaKind } from '../config/quota-levels.js';
import type { KindState } from './soft-state.js';

export interface SharedWatchState {
  /**
   * Moves the state of `kind` in scope `key` from `expected` to `next`. Undefined when it did; else the state
   * another proxy moved it to (nothing shared yet counts as `expected`).
   */
  transition(key: string, kind: QuotaKind, expected: KindState, next: KindState): Promise<KindState | undefined>;
  /** Runs `write` unless another proxy is writing this scope's state (then false: try again later). */
  exclusive(key: string, write: () => Promise<void>): Promise<boolean>;
}

/** One text per state, whatever the order its fields were set in. */
export function kindStateText(state: KindState): string {
  return JSON.stringify([state.soft ? [state.soft.since, state.soft.graceNotified] : null, state.hardHitAt ?? null]);
}

export function parseKindState(text: string): KindState {
  const [soft, hardHitAt] = JSON.parse(text) as [[number, boolean] | null, number | null];
  return { ...(soft ? { soft: { since: soft[0], graceNotified: soft[1] } } : {}), ...(hardHitAt !== null ? { hardHitAt } : {}) };
}
