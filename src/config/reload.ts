/**
 * What a configuration reload (SIGHUP) may change in a running proxy, and what only a restart can.
 *
 * Changed in place: the quota rules (levels, limits, soft limits, grace period, precise or cached mode, the
 * near-limit ratio, fail mode, Retry-After), the notification providers, the log level and the bounds on what
 * clients may hold (for connections and requests from then on). Everything else
 * is built into what is already running: the listening socket, Swift's address and the connection pool, the
 * ledger (its reservations must not be lost), the caches' sizes, the identities, how requests are read
 * (s3api, domain_remap, cname_lookup), the routes. A change to those is reported and the running value kept,
 * so a reload never half-applies a setting.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Config, QuotaConfig } from './load.js';

/** Quota settings a reload applies. */
const RELOADED_QUOTA_KEYS = ['levels', 'softLimits', 'gracePeriodSeconds', 'preciseMode', 'nearLimitRatio', 'failMode', 'retryAfterSeconds', 'retiredLevels', 'allowDroppedLevels'] as const;
/** Top-level settings a reload applies. */
const RELOADED_KEYS = ['notifiers', 'logLevel', 'bounds', 'trace'] as const;
/** Not settings: where the file is and what it warned about. */
const IGNORED_KEYS = new Set<string>(['file', 'warnings']);

/** The config file's names for the settings, so that the log speaks the operator's language. */
const SETTING_NAMES: Readonly<Record<string, string>> = {
  bindIp: 'bind_ip', bindPort: 'bind_port', opsBind: 'ops_bind_ip / ops_bind_port', upstream: 'upstream', upstreamTimeoutSeconds: 'upstream_timeout',
  metricsPath: 'metrics_path', reportPath: 'report_path', logLevel: 'log_level', accessLog: 'access_log',
  resellerPrefix: '[filter:tempauth] reseller_prefix', users: '[filter:tempauth] users', notifiers: '[notify:*]',
  s3: '[filter:s3api]', domainRemap: '[filter:domain_remap]', cnameLookup: '[filter:cname_lookup]', ledger: 'ledger',
  workers: 'workers', restart: 'drain_delay / drain_timeout / reuse_port', trace: 'trusted_proxies / client_ip_header / trans_id_suffix',
  bounds: 'the bounds on clients (client_header_timeout, client_body_timeout, max_connections, ...)',
  'quota.cacheTimeoutSeconds': 'cache_timeout', 'quota.preciseMode': 'precise_mode', 'quota.levels': 'quota',
  'quota.nearLimitRatio': 'near_limit_ratio', 'quota.failMode': 'fail_mode', 'quota.retryAfterSeconds': 'retry_after',
  'quota.cacheMaxEntries': 'cache_max_entries', 'quota.service': 'service_auth / service_user / the Keystone identity',
  'quota.resellerProbeAccount': 'reseller_probe_account', 'quota.softLimits': 'soft_quota / soft_ratio',
  'quota.gracePeriodSeconds': 'grace_period', 'quota.hitFlushIntervalSeconds': 'hit_flush_interval',
  'quota.retiredLevels': 'retired_levels', 'quota.allowDroppedLevels': 'allow_dropped_levels', 'quota.censusIntervalSeconds': 'census_interval', 'quota.recordAccounts': 'record_accounts',
};

export interface ReloadPlan {
  /** The configuration to run with: the new file's reloadable settings, the running values of the rest. */
  readonly config: Config;
  /** Settings that change now (the file's names). */
  readonly applied: readonly string[];
  /** Settings that differ in the file but take effect only at the next restart (the running value is kept). */
  readonly needRestart: readonly string[];
}

export function planReload(running: Config, next: Config): ReloadPlan {
  const applied: string[] = [];
  const needRestart: string[] = [];
  const name = (key: string) => SETTING_NAMES[key] ?? key;

  const quota: Record<string, unknown> = { ...running.quota };
  for (const key of Object.keys(running.quota) as (keyof QuotaConfig)[]) {
    if (same(running.quota[key], next.quota[key])) continue;
    if ((RELOADED_QUOTA_KEYS as readonly string[]).includes(key)) {
      quota[key] = next.quota[key];
      applied.push(name(`quota.${key}`));
    } else {
      needRestart.push(name(`quota.${key}`));
    }
  }

  const config: Record<string, unknown> = { ...running, file: next.file, warnings: next.warnings, quota: Object.freeze(quota) };
  for (const key of Object.keys(running) as (keyof Config)[]) {
    if (key === 'quota' || IGNORED_KEYS.has(key) || same(running[key], next[key])) continue;
    if ((RELOADED_KEYS as readonly string[]).includes(key)) {
      config[key] = next[key];
      applied.push(name(key));
    } else {
      needRestart.push(name(key));
    }
  }
  return { config: Object.freeze(config) as unknown as Config, applied: dedupe(applied), needRestart: dedupe(needRestart) };
}

function dedupe(names: string[]): string[] {
  return [...new Set(names)];
}

/**
 * Deep equality of settings, URLs by their text (util's comparison sees no difference between two URLs), and
 * where a setting was written (file lines, for error messages) left out: moving a section is no change.
 */
function same(a: unknown, b: unknown): boolean {
  return isDeepStrictEqual(comparable(a), comparable(b));
}

function comparable(value: unknown): unknown {
  if (value instanceof URL) return value.href;
  if (value instanceof Map) return [...value].map(([k, v]) => [k, comparable(v)]);
  if (Array.isArray(value)) return value.map(comparable);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k]) => !/(^p|P)lace$/.test(k)).map(([k, v]) => [k, comparable(v)]));
  }
  return value;
}
