/**
 * Per-account and per-container limits set through Swift, like the level: reseller admins only, every value a
 * whole number (or empty, or `X-Remove-`, to go back to the level's), and no header of their reserved names that
 * is not one of them (quota-metadata.ts). Once Swift has taken a change, every process sharing the ledger drops
 * its reading of the scope (ledger/forget-channel.ts) and reads the new limits with its next check.
 */
import { callerCredentials, callerToken } from '../../auth/authority.js';
import { accountKey, containerKey } from '../../quota/ledger/ledger.js';
import type { WritePath } from '../../quota/writes.js';
import type { Intent } from '../../quota/intent.js';
import { answerSwift, refuse } from '../../quota/answers.js';
import { ACCOUNT_OVERRIDES, CONTAINER_OVERRIDES, limitValue } from '../../swift/quota-metadata.js';

type Of<T extends Intent['type']> = Extract<Intent, { type: T }>;

/** Why a change is refused (400), or undefined when every header is a known override with a valid value. */
export function overrideProblem(intent: Pick<Of<'override-change'>, 'container' | 'changes'>): string | undefined {
  const table = intent.container === undefined ? ACCOUNT_OVERRIDES : CONTAINER_OVERRIDES;
  for (const { header, value } of intent.changes) {
    const kind = table[header];
    if (kind === undefined) return `Unknown quota override ${header}. Known: ${Object.keys(table).join(', ')}.`;
    if (value !== undefined && limitValue(value) === undefined) return `Invalid quota override ${header}: ${JSON.stringify(value)} is not a whole number (${kind}).`;
  }
  return undefined;
}

/** A reseller admin's change of per-account or per-container limits; then what the request also does. */
export async function admitOverrideChange(writes: WritePath, intent: Of<'override-change'>, then: () => Promise<void> | void): Promise<void> {
  const { core, exchange, view } = writes;
  if (!(await core.isResellerAdmin(callerToken(view.headers)))) {
    const verdict = await core.authority.mayWrite(callerCredentials(view.headers, view.s3), intent.account);
    if (!verdict.allowed) return answerSwift(exchange, verdict.answer);
    return refuse(exchange, 403, 'Forbidden: only a reseller admin may set or remove a quota override.');
  }
  const problem = overrideProblem(intent);
  if (problem) return refuse(exchange, 400, problem);
  await then();
  if (exchange.answeredHere) return;
  changedLimits(writes, intent.account, intent.container);
}

/** A container's own limits (container_quotas' headers) change: Swift checks the values; the reading goes. */
export async function admitOwnerLimitsChange(writes: WritePath, intent: Of<'owner-limits-change'>, then: () => Promise<void> | void): Promise<void> {
  await then();
  if (writes.exchange.answeredHere) return;
  changedLimits(writes, intent.account, intent.container);
}

/** Once Swift has taken the change, this proxy reads the scope again before its next check. */
function changedLimits({ exchange }: WritePath, account: string, container: string | undefined): void {
  const key = container === undefined ? accountKey(account) : containerKey(account, container);
  exchange.invalidates.push(key);
  exchange.rereadEverywhere.push(key);
  if (container === undefined) exchange.levelChanged = account;
}
