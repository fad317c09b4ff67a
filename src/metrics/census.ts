/**
 * Who is near quota, for dashboards and alerts: how many accounts and containers stand where against each
 * limit, by level and kind, as the last census found them (report/census.ts). No per-account label: the
 * `accounts list --near` command names them.
 */
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './registry.js';

/** over_soft: over the soft limit, in its grace period; grace_expired: past it; at_hard: at or over the hard limit. */
export const CENSUS_STATES = ['over_soft', 'grace_expired', 'at_hard'] as const;
export type CensusState = (typeof CENSUS_STATES)[number];

export function censusMetrics(registry: Registry) {
  const registers = [registry];
  // Every worker counts the same accounts: a sum would count them once per worker.
  const aggregator = 'max' as const;
  return {
    members: {
      censusScopes: new Gauge({
        name: `${METRIC_PREFIX}quota_scopes`,
        help: 'Accounts (container_count, account_object_count, account_usage) and containers (object_count, container_usage) over a soft limit in its grace period (over_soft), past it (grace_expired), or at or over the hard limit (at_hard), by level and kind, at the last census (census_interval).',
        labelNames: ['level', 'kind', 'state'] as const,
        registers,
        aggregator,
      }),
      censusAccounts: new Gauge({
        name: `${METRIC_PREFIX}census_accounts`,
        help: 'Accounts the last census read (tempauth\'s, Keystone\'s projects where listed, and those given a level through the proxy or the accounts command).',
        registers,
        aggregator,
      }),
      censusTime: new Gauge({
        name: `${METRIC_PREFIX}census_timestamp_seconds`,
        help: 'When the last census ended (Unix time); 0 before the first.',
        registers,
        aggregator,
      }),
    },
  };
}
