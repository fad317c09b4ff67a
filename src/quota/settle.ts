/**
 * How a checked request ends: what it held is kept as written or given back, cached usage it made wrong is
 * dropped, and what Swift's answer tells the watch (a soft limit crossed, a delete, a level change) is passed on.
 */
import { accountTotalKey, invalidateUsage, scopeKey } from './ledger/ledger.js';
import { registerAccounts } from './account-registry.js';
import type { Exchange, ExchangeEnd } from './exchange.js';
import type { QuotaCore } from './core.js';
import type { LevelInfo } from './admission.js';
import type { ContextSource, Scope } from './watch.js';
import { TotalAdmissions } from './total-admission.js';

/** Settles the request: what it holds kept as a finished write on success, given back otherwise. */
export function settle(core: QuotaCore, exchange: Exchange, statusCode: number | undefined): void {
  if (exchange.settled) return;
  exchange.settled = true;
  exchange.unpin();
  const ok = statusCode !== undefined && statusCode >= 200 && statusCode < 300;
  const written = ok && (exchange.commitOnlyOn === undefined || exchange.commitOnlyOn === statusCode);
  for (const reservation of exchange.held) {
    if (written || exchange.partial) core.ledger.commit(reservation);
    else core.ledger.release(reservation);
  }
  if (ok || exchange.partial) for (const key of exchange.invalidates) invalidateUsage(core.ledger, key, core.config.quota.levels.policies);
}

/**
 * For a request whose exchange ended without Swift's answer: its request to Swift failed, or it was never sent.
 * If the whole body had reached Swift, Swift may have done the write: count it (a later read corrects an
 * over-count); otherwise Swift cannot have stored anything.
 */
function settleUnanswered(core: QuotaCore, exchange: Exchange, bodySent: boolean): void {
  if (exchange.settled) return;
  exchange.settled = true;
  exchange.unpin();
  const open = exchange.held.filter((reservation) => !reservation.settled);
  if (open.length === 0) return;
  // A form's files are stored as they arrive: those already sent may be in Swift.
  const written = bodySent || exchange.partial;
  for (const reservation of open) {
    if (written) core.ledger.commit(reservation);
    else core.ledger.release(reservation);
  }
  if (exchange.partial) for (const key of exchange.invalidates) invalidateUsage(core.ledger, key, core.config.quota.levels.policies);
}

/** The exchange with Swift ended (exchange.ts): settled by Swift's answer, or without one. */
export function exchangeEnded(core: QuotaCore, exchange: Exchange, end: ExchangeEnd): void {
  if (end.kind === 'answered') settle(core, exchange, end.status);
  else settleUnanswered(core, exchange, end.kind === 'failed' && end.bodySent);
}

/** From now on the request holds something until its exchange with Swift ends. */
export function track(core: QuotaCore, exchange: Exchange): Exchange {
  return exchange.tracked ? exchange : exchange.track((end) => exchangeEnded(core, exchange, end));
}

/**
 * Swift answered a request that succeeded: what that tells the watch. `context` names the request in events,
 * with Swift's transaction id.
 */
export function afterAnswer(core: QuotaCore, exchange: Exchange, context: ContextSource): void {
  for (const key of exchange.forgets) core.forget(key);
  for (const key of exchange.rereadEverywhere) core.ledger.forgetEverywhere(key);
  if (exchange.watched) {
    // The write is in Swift's usage now: a soft limit it went past is reported by this request.
    const { scope, persisted } = exchange.watched;
    core.ledger.settled(scope.key).then(
      (settled) => {
        if (settled) core.watch.observe(scope, persisted, settled.usage, context, settled.inFlight);
      },
      () => {}, // the next check will see it
    );
    if (scope.type === 'container' && watchesTotal(core, scope)) void observeTotal(core, TotalAdmissions.watchScope(scope.account, scope), context);
    core.accountsSeen?.seen(scope.account);
  }
  if (exchange.levelChanged) core.watch.reconsider(exchange.levelChanged);
  if (exchange.levelSet) {
    const { account } = exchange.levelSet;
    registerAccounts(core.swift, [exchange.levelSet]).catch((error: unknown) => core.log.warn({ err: error, account }, 'the account\'s new level is not in the account registry (accounts list and the check of dropped levels miss it)'));
  }
  if (exchange.shrinks) void afterDelete(core, exchange.shrinks.account, exchange.shrinks.container, context);
}

/** The account's whole total after a delete in one of its containers, when the watch follows it (read anew). */
async function totalAfterDelete(core: QuotaCore, account: string, context: ContextSource): Promise<void> {
  const key = accountTotalKey(account);
  if (!core.watch.isWatching(key)) return;
  try {
    const levelInfo = await core.admissions.levelOf(account);
    const scope = TotalAdmissions.watchScope(account, levelInfo);
    const snapshot = await core.ledger.read(key, core.ledger.now() + 1);
    const settled = await core.ledger.settled(key);
    core.watch.observe(scope, levelInfo.snapshot.persisted, settled?.usage ?? snapshot, context, settled?.inFlight ?? snapshot);
  } catch {
    // The next check will see it.
  }
}

/** Whether the watch has something to do with the whole total of `scope`'s account (asked on every write: a lookup, no scope made). */
function watchesTotal(core: QuotaCore, scope: Scope): boolean {
  return scope.soft.account_usage !== undefined || scope.soft.account_object_count !== undefined || core.watch.isWatching(accountTotalKey(scope.account));
}

/** The account's whole total after a write in one of its containers. */
async function observeTotal(core: QuotaCore, scope: Scope, context: ContextSource): Promise<void> {
  try {
    const settled = await core.ledger.settled(scope.key);
    if (!settled) return;
    const { snapshot } = await core.admissions.levelOf(scope.account);
    core.watch.observe(scope, snapshot.persisted, settled.usage, context, settled.inFlight);
  } catch {
    // The next check will see it.
  }
}

/**
 * Usage went down by an amount only Swift knows. If the scope is over a soft limit or had a write refused,
 * read its usage (in the background: the client has its answer) to report it being back below.
 */
async function afterDelete(core: QuotaCore, account: string, container: string | undefined, context: ContextSource): Promise<void> {
  const key = scopeKey(account, container);
  if (container !== undefined) void totalAfterDelete(core, account, context);
  if (!core.watch.isWatching(key)) return;
  try {
    const levelInfo: LevelInfo = await core.admissions.levelOf(account);
    const snapshot = await core.ledger.read(key, core.ledger.now() + 1);
    if (!snapshot.exists) return;
    const settled = await core.ledger.settled(key);
    core.watch.observe(core.admissions.scope(account, container, levelInfo), snapshot.persisted, settled?.usage ?? snapshot, context, settled?.inFlight ?? snapshot);
  } catch {
    // The next check will see it.
  }
}
