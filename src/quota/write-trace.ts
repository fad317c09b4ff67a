/**
 * What a checked write leaves for the access log and quota events: the account and container it was checked
 * in, the level, the limit it met (or came nearest to), the usage it was checked against and the size it asked.
 *
 * Admissions (admission.ts) note each decision on what it already returns, a reservation or a refusal, in weak
 * maps: nothing is added to the request on the way, and an admitted write costs one small record. The access log
 * reads the notes once the request is answered (`checkedWriteFields`); a refusal is found through the
 * exchange's `refusal`, set when the proxy answers one.
 */
import { inBytes, type QuotaKind } from '../config/quota-levels.js';
import type { Usage } from './decide.js';
import type { Denied } from './admission.js';
import type { Reservation } from './ledger/ledger.js';
import type { ContextSource, EventContext, Scope } from './watch.js';
import { kindsOf } from '../swift/quota-metadata.js';
import type { Exchange } from './exchange.js';

/** An admitted write: where, and the usage it was checked against (stored + finished since + writes in flight). */
interface AdmittedNote {
  readonly scope: Scope;
  readonly used: Usage;
}

/** A refused write: where, and what it asked to add (its usage and limit are the refusal's own). */
interface RefusedNote {
  readonly scope: Scope;
  readonly asked: Usage;
}

const admitted = new WeakMap<Reservation, AdmittedNote>();
const refused = new WeakMap<Denied, RefusedNote>();

export function noteAdmitted(reservation: Reservation, scope: Scope, used: Usage): void {
  admitted.set(reservation, { scope, used });
}

export function noteRefused(decision: Denied, scope: Scope, asked: Usage): void {
  refused.set(decision, { scope, asked });
}

/** A refusal's context for events: what the request asked rides along (the event's requested_* fields). */
export function withAsked(source: ContextSource, asked: Usage): ContextSource {
  return () => ({ ...source(), asked });
}

/** What the write holds, all its reservations together (a form's files, an archive's). */
function held(exchange: Exchange): { reservations: readonly Reservation[]; asked: Usage } | undefined {
  const reservations = exchange.held;
  if (reservations.length === 0) return undefined;
  let count = 0;
  let bytes = 0;
  for (const reservation of reservations) {
    count += reservation.count;
    bytes += reservation.bytes;
  }
  return { reservations, asked: { count, bytes } };
}

/** Who asked and what, for quota events: Swift's id once Swift has answered, else the proxy's own. */
export function requestEventContext(exchange: Exchange, caller: string | undefined, transactionId: string | undefined): EventContext {
  const { url, method, id } = exchange.line;
  const query = url.indexOf('?');
  const asked = held(exchange)?.asked;
  return {
    ...(caller ? { caller } : {}),
    ...(asked ? { asked } : {}),
    request: { method, path: query < 0 ? url : url.slice(0, query), transaction_id: transactionId ?? id },
  };
}

function amountOf(kind: QuotaKind, usage: Usage): number {
  return inBytes(kind) ? usage.bytes : usage.count;
}

/** The limit of the scope an admitted write came nearest to, by the share of it the write took usage to. */
function nearestLimit(note: AdmittedNote, asked: Usage): { kind: QuotaKind; limit: number } | undefined {
  let nearest: { kind: QuotaKind; limit: number; share: number } | undefined;
  for (const kind of kindsOf(note.scope.type)) {
    const limit = note.scope.limits[kind];
    if (limit === undefined) continue;
    const share = limit === 0 ? Infinity : (amountOf(kind, note.used) + amountOf(kind, asked)) / limit;
    if (!nearest || share > nearest.share) nearest = { kind, limit, share };
  }
  return nearest;
}

/** Where a request went in Swift, and who asked: read only for the access line of a checked write. */
export interface RequestWhere {
  path(): { account?: string; container?: string } | undefined;
  user(): string | undefined;
}

/** The access line's fields for a checked write; undefined for any other request (nothing is looked up for those). */
export function checkedWriteFields(exchange: Exchange | undefined, request: RequestWhere): Record<string, unknown> | undefined {
  if (exchange === undefined) return undefined;
  const decision = exchange.refusal;
  if (decision) {
    const note = refused.get(decision);
    return {
      ...where(note?.scope, request),
      // Not `level`: that is the log line's own (pino's number).
      quotaLevel: decision.level,
      kind: decision.kind,
      enforced: decision.enforced,
      limit: decision.limit,
      usage: decision.used,
      askedCount: note?.asked.count,
      askedBytes: note?.asked.bytes ?? (inBytes(decision.kind) ? decision.requested : undefined),
    };
  }
  const holding = held(exchange);
  const note = holding && admitted.get(holding.reservations[0]!);
  if (!holding || !note) {
    // Looked at by a door but not decided on a limit (refused by Swift's authorisation, usage unavailable, no
    // limit for the scope): where it went, and who asked.
    if (exchange.decision === undefined) return undefined;
    const path = request.path();
    return { account: path?.account, container: path?.container, user: request.user() ?? null };
  }
  const nearest = nearestLimit(note, holding.asked);
  return {
    ...where(note.scope, request),
    quotaLevel: note.scope.level,
    kind: nearest?.kind,
    limit: nearest?.limit,
    usage: nearest ? amountOf(nearest.kind, note.used) : undefined,
    askedCount: holding.asked.count,
    askedBytes: holding.asked.bytes,
  };
}

function where(scope: Scope | undefined, request: RequestWhere): Record<string, unknown> {
  return { account: scope?.account, container: scope?.container, user: request.user() ?? null };
}
