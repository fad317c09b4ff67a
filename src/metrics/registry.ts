/**
 * What every family of metrics (the other modules here) shares: the registry with the standard process and
 * Node.js metrics, the proxy's name prefix, metrics computed when read, and the shape of a family.
 */
import { Registry, collectDefaultMetrics, type Aggregator } from 'prom-client';
import type { Config } from '../config/load.js';

export const METRIC_PREFIX = 'swift_quota_proxy_';

/**
 * prom-client's default metrics include three gauges named `_total` (a name Prometheus keeps for counters:
 * `promtool check metrics` fails on them). Each is the sum of a gauge by `type` it also exports
 * (`nodejs_active_handles`, `nodejs_active_requests`, `nodejs_active_resources`), so leaving them out loses
 * nothing: `sum without (type) (nodejs_active_handles)` is the same number.
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** How often the event-loop delay (nodejs_eventloop_lag_*) is sampled, ms. */
const EVENT_LOOP_SAMPLE_MS = 100;

/** What `initialise` reads of a configuration: the configured levels and notification providers. */
export type MetricsConfig = Pick<Config, 'quota' | 'notifiers'> & Partial<Pick<Config, 's3token'>>;

/**
 * One family of metrics: `members` become members of the Metrics object; `initialise`, when there is one, starts
 * the family's counters at 0 for the label sets a configuration makes known.
 */
export interface Family<Members extends object> {
  readonly members: Members;
  initialise?(config: MetricsConfig): void;
}

/** A registry with the standard process and Node.js metrics, under their standard names. */
export function createRegistry(): Registry {
  const registry = new Registry();
  // The event-loop delay monitor samples every 10 ms by default: 6-7 ms of CPU a second in an idle proxy
  // (measured: 10.5 ms/s idle with it, 4.0 with 100 ms). A loop held up is still seen; it is sampled less often.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  return registry;
}

export interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * A metric whose series are computed when it is read, registered on the registry like prom-client's own (which
 * reads any object with a name and get(); so does the aggregation of workers' metrics in cluster.ts).
 */
export function computedMetric(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): void {
  const aggregator: Aggregator = 'sum';
  const metric = { name, help, type, aggregator, get: async () => ({ name, help, type, aggregator, values: values() }) };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
