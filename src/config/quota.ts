/**
 * `[filter:quota]`: the levels, soft limits and grace, how usage is read, and the service identity.
 */
import { ConfigError } from './errors.js';
import { parseQuotaLevels, parseSoftLimits, type Limits, type QuotaLevels } from './quota-levels.js';
import { parseServiceIdentity, type ServiceIdentity, type Tempauth } from './identity.js';
import type { SectionReader } from './section-reader.js';

export const QUOTA_SECTION = 'filter:quota';
export const DEFAULT_CACHE_TIMEOUT = 30; // seconds
export const DEFAULT_NEAR_LIMIT_RATIO = 0.95; // like Ceph RGW: within 5 % of a limit, ask Swift live
export const DEFAULT_RETRY_AFTER = 5; // seconds, sent with 503 when usage cannot be read
export const DEFAULT_CACHE_ENTRIES = 100_000; // accounts + containers held in the usage cache
export const DEFAULT_GRACE_PERIOD = 7 * 86_400; // seconds; Linux quota's default grace
export const DEFAULT_HIT_FLUSH_INTERVAL = 30; // seconds between writes of rejection counters to Swift
export const DEFAULT_CENSUS_INTERVAL = 300; // seconds between counts of who is near quota (metrics/census.ts)

export interface QuotaConfig {
  readonly cacheTimeoutSeconds: number;
  readonly preciseMode: boolean;
  readonly levels: QuotaLevels;
  /** In cached mode, a check whose projected usage reaches this share of a limit reads live usage. */
  readonly nearLimitRatio: number;
  /** What a write that needs a check gets when Swift cannot be asked: refused (closed) or let through (open). */
  readonly failMode: 'closed' | 'open';
  readonly retryAfterSeconds: number;
  readonly cacheMaxEntries: number;
  /** The identity the proxy reads usage and keeps its state with (`service_auth`). */
  readonly service: ServiceIdentity;
  /** An account no user owns: a caller Swift lets write there is a reseller admin (see auth/reseller.ts). */
  readonly resellerProbeAccount: string;
  /** Soft limits per level (a kind without one has no soft limit). */
  readonly softLimits: ReadonlyMap<string, Limits>;
  /** How long usage may stay over a soft limit before the soft limit is enforced like a hard one. */
  readonly gracePeriodSeconds: number;
  readonly hitFlushIntervalSeconds: number;
  /**
   * `retired_levels = Ll:L1, old:default`: levels no longer in `quota` that accounts may still hold, each held to
   * a configured level (without, such an account is held to `default`).
   */
  readonly retiredLevels: ReadonlyMap<string, string>;
  /** `allow_dropped_levels`: a reload may drop a level known accounts hold, unmapped (they fall to `default`). */
  readonly allowDroppedLevels: boolean;
  /** `census_interval`: seconds between counts of accounts and containers near their limits (0: none). */
  readonly censusIntervalSeconds: number;
  /** `record_accounts`: accounts the proxy admits writes for are recorded in the account registry (`accounts list`). */
  readonly recordAccounts: boolean;
}

/** `retired_levels`: `old:new` pairs, comma- or space-separated; `new` configured, `old` not. */
function parseRetiredLevels(reader: SectionReader, levels: QuotaLevels): ReadonlyMap<string, string> {
  const map = new Map<string, string>();
  for (const pair of (reader.string('retired_levels', '') ?? '').split(/[\s,]+/).filter((p) => p !== '')) {
    const [from, to, ...rest] = pair.split(':');
    if (!from || !to || rest.length > 0) reader.fail('retired_levels', `"${pair}" is not "retired level:new level"`);
    if (levels.byLevel.has(from!)) reader.fail('retired_levels', `"${from}" is a level of quota: only a level the file no longer has can be retired`);
    if (!levels.byLevel.has(to!)) reader.fail('retired_levels', `"${to}" is not a level of quota (${levels.names.join(', ')})`);
    map.set(from!, to!);
  }
  return map;
}

export function parseQuota(reader: SectionReader | undefined, tempauth: Tempauth, keystoneauth: SectionReader | undefined, file: string, warnings: string[]): QuotaConfig {
  if (!reader) throw new ConfigError(file, undefined, QUOTA_SECTION, undefined, 'section is missing');
  if (!reader.has('quota')) reader.fail(undefined, 'needs a "quota = {...}" JSON value with the levels');
  const levels = parseQuotaLevels(reader.raw('quota')!, {
    fail: (reason, lineOffset = 0) => {
      const line = reader.line('quota');
      throw new ConfigError(file, line === undefined ? undefined : line + lineOffset, QUOTA_SECTION, 'quota', reason);
    },
    warn: (message, lineOffset = 0) => {
      const line = reader.line('quota');
      warnings.push(`${file}:${line === undefined ? '?' : line + lineOffset}: [${QUOTA_SECTION}] quota: ${message}`);
    },
  });

  const service = parseServiceIdentity(reader, tempauth, keystoneauth);
  const softRatio = reader.has('soft_ratio') ? reader.number('soft_ratio', 1, 0, 1) : undefined;
  const softLimits = parseSoftLimits(reader.raw('soft_quota'), softRatio, levels, {
    fail: (reason, lineOffset = 0) => {
      const line = reader.line(reader.has('soft_quota') ? 'soft_quota' : 'soft_ratio');
      throw new ConfigError(file, line === undefined ? undefined : line + lineOffset, QUOTA_SECTION, reader.has('soft_quota') ? 'soft_quota' : 'soft_ratio', reason);
    },
    warn: (message, lineOffset = 0) => {
      const line = reader.line('soft_quota');
      warnings.push(`${file}:${line === undefined ? '?' : line + lineOffset}: [${QUOTA_SECTION}] soft_quota: ${message}`);
    },
  });

  return Object.freeze({
    cacheTimeoutSeconds: reader.integer('cache_timeout', DEFAULT_CACHE_TIMEOUT, 0, 86_400, 'seconds'),
    preciseMode: reader.boolean('precise_mode', false),
    levels,
    nearLimitRatio: reader.number('near_limit_ratio', DEFAULT_NEAR_LIMIT_RATIO, 0, 1),
    failMode: reader.oneOf('fail_mode', 'closed', ['closed', 'open'] as const),
    retryAfterSeconds: reader.integer('retry_after', DEFAULT_RETRY_AFTER, 0, 3600, 'seconds'),
    cacheMaxEntries: reader.integer('cache_max_entries', DEFAULT_CACHE_ENTRIES, 1, 100_000_000),
    service,
    resellerProbeAccount: reader.string('reseller_probe_account', 'quota-proxy-reseller-probe').trim(),
    softLimits,
    gracePeriodSeconds: reader.duration('grace_period', DEFAULT_GRACE_PERIOD, 1),
    hitFlushIntervalSeconds: reader.duration('hit_flush_interval', DEFAULT_HIT_FLUSH_INTERVAL, 1),
    retiredLevels: parseRetiredLevels(reader, levels),
    allowDroppedLevels: reader.boolean('allow_dropped_levels', false),
    censusIntervalSeconds: reader.duration('census_interval', DEFAULT_CENSUS_INTERVAL, 0),
    recordAccounts: reader.boolean('record_accounts', true),
  });
}
