/**
 * The usage report (`repquota` for Swift): for each account, its level and container count, and for each of
 * its containers objects and bytes against soft and hard limits, grace state and refusal counts. Read from
 * Swift as the service identity; the proxy's own state comes from the metadata it keeps there.
 */
import type { Config } from '../config/load.js';
import type { Limits, QuotaKind } from '../config/quota-levels.js';
import { DEFAULT_LEVEL } from '../config/quota-levels.js';
import { countHeader, type SwiftClient } from '../swift/client.js';
import { accountKey, containerKey } from '../quota/ledger/ledger.js';
import { encodePath } from '../swift/path.js';
import { accountExists } from '../swift/usage.js';
import { ACCOUNT_OVERRIDES, CONTAINER_OVERRIDES, LEVEL_HEADER, limitsFrom, OWNER_LIMITS, readPersistedState, type PersistedQuotaState } from '../swift/quota-metadata.js';
import { effectiveLimits } from '../quota/limits.js';

export interface GraceState {
  /** `running`: over the soft limit within the grace period; `expired`: past it (growth is refused). */
  readonly state: 'running' | 'expired';
  readonly since: string;
  readonly ends: string;
  readonly remaining_seconds: number;
}

export interface Measure {
  readonly used: number;
  readonly soft: number | null;
  readonly hard: number | null;
  readonly grace: GraceState | null;
}

export interface ContainerReport {
  readonly name: string;
  readonly objects: Measure;
  readonly bytes: Measure;
  readonly hits: number;
}

export interface AccountReport {
  readonly account: string;
  readonly exists: boolean;
  readonly level: string;
  readonly containers: Measure;
  /** Sums of the containers' own counts: Swift's account totals lag behind them (the container updater). */
  readonly objects_used: number;
  readonly bytes_used: number;
  /** The account-wide limits (account_object_count, account_usage), null where none. */
  readonly objects_limit: number | null;
  readonly bytes_limit: number | null;
  /** The account's totals against their hard and soft limits, with the grace period's state. */
  readonly total_objects: Measure;
  readonly total_bytes: Measure;
  readonly hits: number;
  readonly container_list: readonly ContainerReport[];
}

export interface UsageReport {
  readonly generated: string;
  readonly grace_period_seconds: number;
  readonly accounts: readonly AccountReport[];
}

export interface ReportSource {
  config: Config;
  swift: SwiftClient;
  now?: number;
}

const LISTING_PAGE = 10_000;
const HEAD_CONCURRENCY = 8;

/** Every account named by a tempauth user, with the reseller prefix (AUTH_test), in config order. */
export function configuredAccounts(config: Config): string[] {
  return [...new Set(config.users.map((user) => `${config.resellerPrefix}${user.account}`))];
}

/** `test` or `AUTH_test` → `AUTH_test`. */
export function accountName(config: Config, name: string): string {
  return config.resellerPrefix !== '' && name.startsWith(config.resellerPrefix) ? name : `${config.resellerPrefix}${name}`;
}

function measure(kind: QuotaKind, used: number, limits: Limits, soft: Limits, persisted: PersistedQuotaState, graceMs: number, now: number): Measure {
  const softLimit = soft[kind];
  const record = persisted.soft[kind];
  let grace: GraceState | null = null;
  if (record && softLimit !== undefined && used > softLimit) {
    const ends = record.since + graceMs;
    grace = {
      state: now >= ends ? 'expired' : 'running',
      since: new Date(record.since).toISOString(),
      ends: new Date(ends).toISOString(),
      remaining_seconds: Math.max(0, Math.round((ends - now) / 1000)),
    };
  }
  return { used, soft: softLimit ?? null, hard: limits[kind] ?? null, grace };
}

async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function listContainers(swift: SwiftClient, account: string): Promise<{ headers: Record<string, string>; names: string[] } | undefined> {
  const names: string[] = [];
  let headers: Record<string, string> = {};
  for (let marker = ''; ; ) {
    const page = await swift.getJson<{ name: string }>(`${encodePath('v1', account)}?format=json&limit=${LISTING_PAGE}&marker=${encodeURIComponent(marker)}`);
    if (!page) return undefined;
    if (marker === '') headers = page.headers;
    names.push(...page.items.map((item) => item.name));
    if (page.items.length < LISTING_PAGE) return { headers, names };
    marker = page.items[page.items.length - 1]!.name;
  }
}

export async function accountReport(source: ReportSource, account: string): Promise<AccountReport> {
  const { config, swift } = source;
  const now = source.now ?? Date.now();
  const graceMs = config.quota.gracePeriodSeconds * 1000;
  const listing = await listContainers(swift, account);
  const headers = listing?.headers ?? {};
  const storedLevel = headers[LEVEL_HEADER]?.trim();
  const stored = storedLevel && (config.quota.retiredLevels.get(storedLevel) ?? storedLevel);
  const level = stored && config.quota.levels.byLevel.has(stored) ? stored : DEFAULT_LEVEL;
  // The level's limits with the account's overrides, as the proxy applies them (quota/limits.ts).
  const { limits, soft } = effectiveLimits(config.quota.levels.byLevel.get(level)!, config.quota.softLimits.get(level) ?? {}, limitsFrom(ACCOUNT_OVERRIDES, headers));
  const accountState = readPersistedState('account', headers);

  const containerList = await mapLimited(listing?.names ?? [], HEAD_CONCURRENCY, async (name): Promise<ContainerReport | undefined> => {
    const { status, headers: h } = await swift.head(encodePath('v1', account, name), 'container');
    if (status < 200 || status >= 300) return undefined; // deleted since the listing
    const state = readPersistedState('container', h);
    return containerReport(name, h, state, effectiveLimits(limits, soft, limitsFrom(CONTAINER_OVERRIDES, h), limitsFrom(OWNER_LIMITS, h)), graceMs, now);
  });
  const containers = containerList.filter((c): c is ContainerReport => c !== undefined);
  const objectsUsed = containers.reduce((sum, c) => sum + c.objects.used, 0);
  const bytesUsed = containers.reduce((sum, c) => sum + c.bytes.used, 0);
  return {
    account,
    // Swift's account_autocreate answers for an account it does not have with a made-up empty one.
    exists: listing !== undefined && accountExists(listing.headers),
    level,
    containers: measure('container_count', countHeader(headers['x-account-container-count']), limits, soft, accountState, graceMs, now),
    objects_used: objectsUsed,
    bytes_used: bytesUsed,
    objects_limit: limits.account_object_count ?? null,
    bytes_limit: limits.account_usage ?? null,
    total_objects: measure('account_object_count', objectsUsed, limits, soft, accountState, graceMs, now),
    total_bytes: measure('account_usage', bytesUsed, limits, soft, accountState, graceMs, now),
    hits: accountState.hits,
    container_list: containers,
  };
}

function containerReport(name: string, h: Readonly<Record<string, string>>, state: PersistedQuotaState, { limits, soft }: { limits: Limits; soft: Limits }, graceMs: number, now: number): ContainerReport {
  return {
    name,
    objects: measure('object_count', countHeader(h['x-container-object-count']), limits, soft, state, graceMs, now),
    bytes: measure('container_usage', countHeader(h['x-container-bytes-used']), limits, soft, state, graceMs, now),
    hits: state.hits,
  };
}

export async function collectReport(source: ReportSource, accounts: readonly string[]): Promise<UsageReport> {
  const now = source.now ?? Date.now();
  const reports: AccountReport[] = [];
  for (const account of accounts) reports.push(await accountReport({ ...source, now }, account));
  return { generated: new Date(now).toISOString(), grace_period_seconds: source.config.quota.gracePeriodSeconds, accounts: reports };
}
