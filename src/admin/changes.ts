/**
 * `accounts set` and `accounts copy`: a change of level and overrides, turned into the headers a reseller admin
 * POSTs to each account (the same ones the proxy lets reseller admins send), described before it is made, and
 * made for many accounts at once. An account Swift does not have is reported and left alone unless asked to be
 * made (`--create`: Swift's account_autocreate makes it on the POST).
 */
import type { Config } from '../config/load.js';
import type { QuotaKind } from '../config/quota-levels.js';
import { UpstreamUnavailableError, type SwiftClient } from '../swift/client.js';
import { encodePath } from '../swift/path.js';
import { ACCOUNT_OVERRIDES, LEVEL_HEADER, limitsFrom, REMOVE_LEVEL_HEADER, removeHeader } from '../swift/quota-metadata.js';
import { inBatches, OVERRIDE_HEADER, registerAccounts } from './accounts.js';
import { accountExists } from '../swift/usage.js';
import { accountKey } from '../quota/ledger/ledger.js';

/** What to change: a level (null: remove it), overrides by kind (null: remove it); what is not named stays. */
export interface Change {
  readonly level?: string | null;
  readonly overrides: Readonly<Partial<Record<QuotaKind, number | null>>>;
}

/** What an account has stored: its level and overrides as set, not as in force. */
export interface Stored {
  readonly exists: boolean;
  readonly level: string | undefined;
  readonly overrides: Readonly<Partial<Record<QuotaKind, number>>>;
}

export interface ChangeResult {
  readonly account: string;
  /** `changed` (or would be, in a dry run), `unchanged`, `missing` (Swift has no such account: left alone). */
  readonly outcome: 'changed' | 'unchanged' | 'missing';
  readonly changes: readonly string[];
  /** The level it holds after the change. */
  readonly level?: string | undefined;
}

/** Why `change` cannot be made under `config`, or undefined. */
export function changeProblem(config: Config, change: Change): string | undefined {
  if (typeof change.level === 'string' && !config.quota.levels.byLevel.has(change.level)) return `unknown level "${change.level}" (levels: ${config.quota.levels.names.join(', ')})`;
  for (const kind of Object.keys(change.overrides) as QuotaKind[]) {
    if (OVERRIDE_HEADER[kind] === undefined) return `no override for "${kind}"`;
  }
  return undefined;
}

export async function readStored(swift: SwiftClient, account: string): Promise<Stored> {
  const { status, headers } = await swift.head(encodePath('v1', account), 'account');
  if (status === 404 || status === 410 || (status < 300 && !accountExists(headers))) return { exists: false, level: undefined, overrides: {} };
  if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to HEAD ${account}`);
  return { exists: true, level: headers[LEVEL_HEADER]?.trim() || undefined, overrides: limitsFrom(ACCOUNT_OVERRIDES, headers) ?? {} };
}

/** What `change` changes of `stored`, as lines ("level default -> L1"), and the headers that make it. */
export function plan(stored: Stored, change: Change): { lines: string[]; headers: Record<string, string> } {
  const lines: string[] = [];
  const headers: Record<string, string> = {};
  if (change.level !== undefined && (change.level ?? undefined) !== stored.level) {
    lines.push(`level ${stored.level ?? '(none)'} -> ${change.level ?? '(none)'}`);
    if (change.level === null) headers[REMOVE_LEVEL_HEADER] = 'x';
    else headers[LEVEL_HEADER] = change.level;
  }
  for (const [kind, value] of Object.entries(change.overrides) as Array<[QuotaKind, number | null]>) {
    const header = OVERRIDE_HEADER[kind]!;
    if ((value ?? undefined) === stored.overrides[kind]) continue;
    lines.push(`${kind} ${stored.overrides[kind] ?? '(level)'} -> ${value ?? '(level)'}`);
    if (value === null) headers[removeHeader(header)] = 'x';
    else headers[header] = String(value);
  }
  return { lines, headers };
}

/** Makes `change` on every account (16 at a time), or only says what it would do (`dryRun`). */
export async function applyChange(swift: SwiftClient, accounts: readonly string[], change: Change, options: { dryRun: boolean; create: boolean }): Promise<ChangeResult[]> {
  const results = await inBatches(accounts, async (account): Promise<ChangeResult> => {
    const stored = await readStored(swift, account);
    if (!stored.exists && !options.create) return { account, outcome: 'missing', changes: [] };
    const { lines, headers } = plan(stored, change);
    if (lines.length === 0) return { account, outcome: 'unchanged', changes: [], level: stored.level };
    if (!options.dryRun) {
      const { status } = await swift.post(encodePath('v1', account), headers);
      if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to the change of ${account}`);
    }
    return { account, outcome: 'changed', changes: lines, level: change.level === undefined ? stored.level : (change.level ?? undefined) };
  });
  if (!options.dryRun) await registerAccounts(swift, results.filter((r) => r.outcome !== 'missing').map((r) => ({ account: r.account, level: r.level })));
  return results;
}

/** The ledger keys of the accounts a change changed: running proxies on a Redis ledger drop their readings of them. */
export function changedKeys(results: readonly ChangeResult[]): string[] {
  return results.filter((r) => r.outcome === 'changed').map((r) => accountKey(r.account));
}

/** `copy`: the source account's stored level and overrides, as a change (what it lacks is removed). */
export function copyOf(stored: Stored): Change {
  const overrides: Partial<Record<QuotaKind, number | null>> = {};
  for (const kind of Object.keys(OVERRIDE_HEADER) as QuotaKind[]) overrides[kind] = stored.overrides[kind] ?? null;
  return { level: stored.level ?? null, overrides };
}
