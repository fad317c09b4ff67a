/**
 * Every Prometheus metric the proxy exports, declared in one place on one registry. No per-account or
 * per-container labels: label values come from small, fixed sets (methods, kinds, configured levels).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'swift_quota_proxy_';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  let queueDepths: () => Array<{ provider: string; depth: number }> = () => [];
  // Every request counts here, so a request adds to a plain tally (no labels object hashed per request) and
  // the counter takes the tallies when it is read.
  const requestTallies = new Map<string, { labels: { method: string; status_class: string }; count: number; published: number }>();
  const requests = new Counter({
    name: `${METRIC_PREFIX}requests_total`,
    help: 'Requests answered, by method and status class (2xx, 4xx, ...), whether Swift or the proxy answered.',
    labelNames: ['method', 'status_class'] as const,
    registers,
    collect() {
      for (const tally of requestTallies.values()) {
        if (tally.count > tally.published) this.inc(tally.labels, tally.count - tally.published);
        tally.published = tally.count;
      }
    },
  });

  return {
    registry,
    requests,
    countRequest(method: string, statusCode: number): void {
      const key = `${method} ${Math.floor(statusCode / 100)}`;
      const tally = requestTallies.get(key);
      if (tally) tally.count++;
      else requestTallies.set(key, { labels: { method, status_class: statusClass(statusCode) }, count: 1, published: 0 });
    },
    upstreamErrors: new Counter({
      name: `${METRIC_PREFIX}upstream_errors_total`,
      help: 'Requests Swift could not answer (unreachable, reset, timed out), by the status the client got.',
      labelNames: ['status'] as const,
      registers,
    }),
    rejections: new Counter({
      name: `${METRIC_PREFIX}quota_rejections_total`,
      help: 'Writes refused because they would pass a quota, by quota kind and level.',
      labelNames: ['kind', 'level'] as const,
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
    reservations: new Gauge({
      name: `${METRIC_PREFIX}reservations_in_flight`,
      help: 'Admitted writes not finished yet, each holding quota so concurrent writes cannot jointly pass a limit.',
      registers,
    }),
    levelChanges: new Counter({
      name: `${METRIC_PREFIX}level_changes_total`,
      help: 'Attempts to set or remove an account quota level, by outcome (passed on to Swift, forbidden, invalid).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    notificationEvents: new Counter({
      name: `${METRIC_PREFIX}quota_events_total`,
      help: 'Quota events emitted (soft_limit_exceeded, grace_expired, hard_limit_hit, back_below_soft, back_below_hard), by type.',
      labelNames: ['type'] as const,
      registers,
    }),
    notificationDeliveries: new Counter({
      name: `${METRIC_PREFIX}notification_deliveries_total`,
      help: 'Quota event deliveries by provider and outcome: queued, ok (delivered), failed (attempt failed), dropped (given up or queue full).',
      labelNames: ['provider', 'outcome'] as const,
      registers,
    }),
    notificationQueueDepth: new Gauge({
      name: `${METRIC_PREFIX}notification_queue_depth`,
      help: 'Quota events waiting to be delivered, by provider (webhook: on disk).',
      labelNames: ['provider'] as const,
      registers,
      collect() {
        this.reset();
        for (const { provider, depth } of queueDepths()) this.set({ provider }, depth);
      },
    }),
    hitsPending: new Gauge({
      name: `${METRIC_PREFIX}quota_hits_pending`,
      help: 'Refusals counted in memory and not yet written to the Swift metadata hit counters.',
      registers,
    }),
    /** Where the queue-depth gauge reads from when scraped (the notifier, once it exists). */
    setQueueDepthSource(source: () => Array<{ provider: string; depth: number }>): void {
      queueDepths = source;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

export function statusClass(statusCode: number): string {
  return `${Math.floor(statusCode / 100)}xx`;
}
