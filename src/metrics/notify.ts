/** Quota events: how many were emitted, how their deliveries went, and how many wait to be delivered. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeliveryOutcome } from '../notify/provider.js';
import { QUOTA_EVENT_TYPES } from '../quota/soft-state.js';
import { METRIC_PREFIX, type Family, type MetricsConfig } from './registry.js';

// A record rather than a list: the compiler then insists that every member of the union is here.
const DELIVERY_OUTCOMES = Object.keys({ queued: 0, ok: 0, failed: 0, dropped: 0 } satisfies Record<DeliveryOutcome, 0>);

export function notifyMetrics(registry: Registry) {
  const registers = [registry];
  let queueDepths: () => Array<{ provider: string; depth: number }> = () => [];
  const members = {
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
    /** Where the queue-depth gauge reads from when scraped (the notifier, once it exists). */
    setQueueDepthSource(source: () => Array<{ provider: string; depth: number }>): void {
      queueDepths = source;
    },
  };
  return {
    members,
    initialise(config: MetricsConfig): void {
      for (const type of QUOTA_EVENT_TYPES) members.notificationEvents.inc({ type }, 0);
      for (const { name } of config.notifiers) for (const outcome of DELIVERY_OUTCOMES) members.notificationDeliveries.inc({ provider: name, outcome }, 0);
    },
  } satisfies Family<object>;
}
