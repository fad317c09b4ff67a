/**
 * What `swift-quota-proxy accounts` knows of an account, read from Swift as the service identity (the proxy need
 * not run): its level, the overrides a reseller admin set (quota-metadata.ts), the limits in force, and its
 * usage (containers; objects and bytes as the sum of its containers, which Swift's account totals lag behind).
 * And which accounts there are: tempauth's, and those whose level was set through the proxy, or level or overrides by this
 * command (quota/account-registry.ts).
 */
import type { Config } from '../config/load.js';
import { DEFAULT_LEVEL, QUOTA_KINDS, type Limits, type QuotaKind } from '../config/quota-levels.js';
import { countHeader, UpstreamUnavailableError, type SwiftClient } from '../swift/client.js';
import { encodePath } from '../swift/path.js';
import { ACCOUNT_OVERRIDES, LEVEL_HEADER, limitsFrom } from '../swift/quota-metadata.js';
import { accountExists, readAccountTotal } from '../swift/usage.js';
import { effectiveLimits } from '../quota/limits.js';
import { configuredAccounts } from '../report/collect.js';
import { readRegistry } from '../quota/account-registry.js';
export { inBatches, registerAccounts, readRegistry, type Registered } from '../quota/account-registry.js';

/** An account override's header, by kind. */
export const OVERRIDE_HEADER: Readonly<Partial<Record<QuotaKind, string>>> = Object.fromEntries(Object.entries(ACCOUNT_OVERRIDES).map(([header, kind]) => [kind, header]));

export interface AccountSettings {
  readonly account: string;
  readonly exists: boolean;
  /** The level stored on the account (undefined: none, so `default`). */
  readonly storedLevel: string | undefined;
  /** The level in force: the stored one if configured, else `default`. */
  readonly level: string;
  readonly overrides: Limits;
  readonly limits: Limits;
  readonly usage: { readonly containers: number; readonly objects: number; readonly bytes: number };
}

/** Reads one account's settings and usage. */
export async function readSettings(config: Config, swift: SwiftClient, account: string): Promise<AccountSettings> {
  const { status, headers } = await swift.head(encodePath('v1', account), 'account');
  if (status === 404 || status === 410 || (status < 300 && !accountExists(headers))) {
    const level = config.quota.levels.byLevel.get(DEFAULT_LEVEL)!;
    return { account, exists: false, storedLevel: undefined, level: DEFAULT_LEVEL, overrides: {}, limits: level, usage: { containers: 0, objects: 0, bytes: 0 } };
  }
  if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to HEAD ${account}`);
  const storedLevel = headers[LEVEL_HEADER]?.trim() || undefined;
  const held = storedLevel === undefined ? undefined : (config.quota.retiredLevels.get(storedLevel) ?? storedLevel);
  const level = held !== undefined && config.quota.levels.byLevel.has(held) ? held : DEFAULT_LEVEL;
  const overrides = limitsFrom(ACCOUNT_OVERRIDES, headers) ?? {};
  const { limits } = effectiveLimits(config.quota.levels.byLevel.get(level)!, {}, overrides);
  const total = await readAccountTotal(swift, account);
  return { account, exists: true, storedLevel, level, overrides, limits, usage: { containers: countHeader(headers['x-account-container-count']), objects: total.count, bytes: total.bytes } };
}

/** The largest share of a limit the account uses (0 when nothing it uses is limited): what `--near` compares. */
export function nearest(settings: AccountSettings): { kind: QuotaKind | undefined; share: number } {
  const used: Partial<Record<QuotaKind, number>> = {
    container_count: settings.usage.containers,
    account_object_count: settings.usage.objects,
    account_usage: settings.usage.bytes,
  };
  let best: { kind: QuotaKind | undefined; share: number } = { kind: undefined, share: 0 };
  for (const kind of QUOTA_KINDS) {
    const limit = settings.limits[kind];
    const value = used[kind];
    if (limit === undefined || value === undefined) continue;
    const share = limit === 0 ? (value > 0 ? Infinity : 0) : value / limit;
    if (share > best.share) best = { kind, share };
  }
  return best;
}

/** Every account known: tempauth's, Keystone's projects (where the service identity may list them) and the registry's, each once, sorted. */
export async function knownAccounts(config: Config, swift: SwiftClient): Promise<string[]> {
  const registered = (await readRegistry(swift)).map((entry) => entry.account);
  const projects = (await swift.keystoneAccounts()) ?? [];
  return [...new Set([...configuredAccounts(config), ...projects, ...registered])].sort();
}
