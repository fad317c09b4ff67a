/**
 * What the quota watch (watch.ts) knows of one scope: the scope itself as a check sees it, the context of the
 * request that revealed a crossing, and the state kept per scope (soft and hard-hit records, refusals not yet
 * counted in Swift).
 */
import { inBytes, type Limits, type QuotaKind } from '../config/quota-levels.js';
import type { EventRequest } from '../notify/event.js';
import { kindsOf, type PersistedQuotaState, type ScopeType } from '../swift/quota-metadata.js';
import type { Usage } from './decide.js';
import type { KindState } from './soft-state.js';

/** An account (container_count) or a container (object_count, container_usage), with the limits that apply. */
export interface Scope {
  readonly key: string;
  readonly type: ScopeType;
  readonly account: string;
  readonly container?: string;
  readonly level: string;
  readonly limits: Limits;
  readonly soft: Limits;
}

/** What is known of the request that revealed a crossing. */
export interface EventContext {
  readonly caller?: string;
  readonly request?: EventRequest;
  /** What the request asked to add (a refused write's size; an admitted one's reservations). */
  readonly asked?: Usage;
}

/** Asked for only when an event is emitted: checks that cross nothing build no context. */
export type ContextSource = () => EventContext;

export const NO_CONTEXT: ContextSource = () => ({});

export interface ScopeState {
  scope: Scope;
  /** The state is kept in the fallback store (Swift refused it as metadata): keep it there up to date. */
  inFallback: boolean;
  /** Refusals already in the fallback store's counter. */
  fallbackHits: number;
  kinds: Partial<Record<QuotaKind, KindState>>;
  lastUsage: Partial<Record<QuotaKind, number>>;
  /** Refusals counted and not yet added to the counter in Swift. */
  hitsPending: number;
  /** The soft or hard-hit state changed and is not in Swift yet. */
  stateDirty: boolean;
  /** Metadata writes of one scope happen one after another. */
  writing: Promise<void>;
}

/** A scope's state as first watched: from what its metadata (or the fallback store) recorded. */
export function newScopeState(scope: Scope, persisted: PersistedQuotaState | undefined): ScopeState {
  const kinds: Partial<Record<QuotaKind, KindState>> = {};
  for (const kind of kindsOf(scope.type)) {
    const soft = persisted?.soft[kind];
    const hardHitAt = persisted?.hardHits[kind];
    kinds[kind] = { ...(soft ? { soft } : {}), ...(hardHitAt !== undefined ? { hardHitAt } : {}) };
  }
  return { scope, kinds, lastUsage: {}, hitsPending: 0, stateDirty: false, writing: Promise.resolve(), inFallback: false, fallbackHits: 0 };
}

export function hasSoftLimit(scope: Scope): boolean {
  return kindsOf(scope.type).some((kind) => scope.soft[kind] !== undefined);
}

export function hasRecordedState(persisted: PersistedQuotaState | undefined): boolean {
  return persisted !== undefined && (Object.keys(persisted.soft).length > 0 || Object.keys(persisted.hardHits).length > 0);
}

export function usageOfKind(kind: QuotaKind, usage: Usage): number {
  return inBytes(kind) ? usage.bytes : usage.count;
}
