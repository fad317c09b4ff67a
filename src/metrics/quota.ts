/** What quota checks decided: refusals, checks that could not be made, level changes, refusals not yet persisted. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { QUOTA_KINDS } from '../config/quota-levels.js';
import { METRIC_PREFIX, type Family, type MetricsConfig } from './registry.js';

const LEVEL_CHANGE_OUTCOMES = ['passed', 'forbidden', 'invalid'] as const;

export function quotaMetrics(registry: Registry) {
  const registers = [registry];
  const members = {
    rejections: new Counter({
      name: `${METRIC_PREFIX}quota_rejections_total`,
      help: 'Writes refused because they would pass a quota, by quota kind and level.',
      labelNames: ['kind', 'level'] as const,
      registers,
    }),
    checkFailures: new Counter({
      name: `${METRIC_PREFIX}check_failures_total`,
      help: 'Writes whose quota check could not be made, by cause (swift: usage could not be read; ledger: the shared ledger did not answer) and what fail_mode did: refused (closed: 503) or admitted unchecked (open).',
      labelNames: ['cause', 'action'] as const,
      registers,
    }),
    levelChanges: new Counter({
      name: `${METRIC_PREFIX}level_changes_total`,
      help: 'Attempts to set or remove an account quota level, by outcome (passed on to Swift, forbidden, invalid).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    keystoneRequests: new Counter({
      name: `${METRIC_PREFIX}keystone_requests_total`,
      help: 'Requests to Keystone for S3 requests signed with EC2 credentials ([filter:s3token]), by API (s3tokens: a signature checked; credential: a secret read; ec2tokens: a user token) and result (ok, refused: Keystone said no, failed: no answer).',
      labelNames: ['api', 'result'] as const,
      registers,
    }),
    hitsPending: new Gauge({
      name: `${METRIC_PREFIX}quota_hits_pending`,
      help: 'Refusals counted in memory and not yet written to the Swift metadata hit counters.',
      registers,
    }),
  };
  return {
    members,
    initialise(config: MetricsConfig): void {
      for (const level of config.quota.levels.names) for (const kind of QUOTA_KINDS) members.rejections.inc({ kind, level }, 0);
      for (const cause of ['swift', 'ledger']) for (const action of ['refused', 'admitted']) members.checkFailures.inc({ cause, action }, 0);
      for (const outcome of LEVEL_CHANGE_OUTCOMES) members.levelChanges.inc({ outcome }, 0);
      if (config.s3token) for (const api of ['s3tokens', 'credential', 'ec2tokens']) for (const result of ['ok', 'refused', 'failed']) members.keystoneRequests.inc({ api, result }, 0);
    },
  } satisfies Family<object>;
}
