/**
 * A quota event as every provider receives it: plain JSON, one object per crossing. The `id` is the same on
 * every delivery attempt of one event, so a receiver of at-least-once deliveries can drop repeats.
 */
import { randomUUID } from 'node:crypto';
import type { QuotaKind } from '../config/quota-levels.js';
import type { QuotaEventType } from '../quota/soft-state.js';

export interface EventRequest {
  readonly method: string;
  readonly path: string;
  /** Swift's X-Trans-Id when the event follows Swift's answer; otherwise the proxy's own id for the request (the X-Trans-Id of its refusal). */
  readonly transaction_id: string | null;
}

export interface QuotaEvent {
  readonly id: string;
  readonly time: string;
  readonly type: QuotaEventType;
  readonly account: string;
  readonly container: string | null;
  readonly kind: QuotaKind;
  readonly level: string;
  /** The limit the event is about: the soft limit for soft_limit_exceeded, grace_expired, back_below_soft. */
  readonly limit: number;
  readonly soft_limit: number | null;
  readonly hard_limit: number | null;
  readonly usage: number;
  /** While over a soft limit: when its grace period ends (or ended). */
  readonly grace_expires: string | null;
  /** `account:user` of the caller, when this proxy saw the login that issued the caller's token. */
  readonly caller: string | null;
  /** The request that caused or revealed the crossing; null for the grace period ending on its own. */
  readonly request: EventRequest | null;
  /**
   * What that request asked to add: objects or containers, and bytes (for a refused upload its size, or for one
   * without a Content-Length the chunk that would have gone past the limit); null when unknown. Always present in
   * the events the proxy emits (optional here for events made elsewhere, such as tests and providers).
   */
  readonly requested_count?: number | null;
  readonly requested_bytes?: number | null;
}

export type EventFields = Omit<QuotaEvent, 'id' | 'time'>;

export function createEvent(fields: EventFields, now = Date.now()): QuotaEvent {
  return Object.freeze({ id: randomUUID(), time: new Date(now).toISOString(), ...fields });
}
