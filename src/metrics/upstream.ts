/**
 * Swift as the proxy sees it: whether it answers, requests it could not answer, and the requests the proxy
 * sends it on its own behalf (usage reads, from the cache or not; metadata POSTs; report listings).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { HeadTarget } from '../swift/client.js';
import { METRIC_PREFIX, type Family } from './registry.js';

const UPSTREAM_FAILURE_STATUSES = ['502', '503', '504'] as const;
// A record rather than a list: the compiler then insists that every member of the union is here.
const LOOKUP_TARGETS = Object.keys({ account: 0, container: 0, object: 0, auth: 0, metadata: 0, listing: 0 } satisfies Record<HeadTarget, 0>);
const LOOKUP_OUTCOMES = ['ok', 'not_found', 'error'] as const;

export function upstreamMetrics(registry: Registry) {
  const registers = [registry];
  let upstreamProbe: (() => Promise<boolean>) | undefined;
  new Gauge({
    name: `${METRIC_PREFIX}upstream_up`,
    help: 'Whether Swift\'s proxy answered GET /healthcheck with 200 when these metrics were read (1) or not (0).',
    registers,
    // With workers, each asks: Swift is up only if every one of them reaches it.
    aggregator: 'min',
    async collect() {
      if (upstreamProbe) this.set((await upstreamProbe()) ? 1 : 0);
    },
  });
  const members = {
    upstreamErrors: new Counter({
      name: `${METRIC_PREFIX}upstream_errors_total`,
      help: 'Requests Swift could not answer (unreachable, reset, timed out), by the status the client got.',
      labelNames: ['status'] as const,
      registers,
    }),
    cacheRequests: new Counter({
      name: `${METRIC_PREFIX}usage_cache_requests_total`,
      help: 'Usage reads served from the in-memory cache (hit) or from Swift (miss), by kind of usage (account, container).',
      labelNames: ['kind', 'result'] as const,
      registers,
    }),
    lookups: new Counter({
      name: `${METRIC_PREFIX}usage_lookups_total`,
      help: 'Requests the proxy sent to Swift on its own behalf (usage HEADs; metadata POSTs; report listings), by target and outcome.',
      labelNames: ['target', 'outcome'] as const,
      registers,
    }),
    lookupSeconds: new Histogram({
      name: `${METRIC_PREFIX}usage_lookup_duration_seconds`,
      help: 'Time Swift took to answer a request the proxy sent on its own behalf, by target.',
      labelNames: ['target'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    /** How upstream_up asks whether Swift answers (when scraped). */
    setUpstreamProbe(probe: () => Promise<boolean>): void {
      upstreamProbe = probe;
    },
  };
  return {
    members,
    initialise(): void {
      for (const status of UPSTREAM_FAILURE_STATUSES) members.upstreamErrors.inc({ status }, 0);
      for (const kind of ['account', 'container']) for (const result of ['hit', 'miss']) members.cacheRequests.inc({ kind, result }, 0);
      for (const target of LOOKUP_TARGETS) for (const outcome of LOOKUP_OUTCOMES) members.lookups.inc({ target, outcome }, 0);
    },
  } satisfies Family<object>;
}
