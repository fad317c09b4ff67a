/**
 * Every Prometheus metric the proxy exports, on one registry: one module per family in metrics/ (requests,
 * client connections, reservations, upstream, ledger, quota, notifications, as prom-client's lib/metrics/ has one
 * per standard metric), put together here into the Metrics object the rest of the proxy uses. No per-account or
 * per-container labels: label values come from small, fixed sets (methods, kinds, configured levels).
 *
 * The proxy's own metrics are named `swift_quota_proxy_*`; the standard process and Node.js metrics keep their
 * standard names (`process_*`, `nodejs_*`), so that stock Node.js dashboards and alerts find them.
 *
 * What every request pays for is kept out of prom-client's per-call label hashing: a request adds to plain
 * numbers (`countRequest`, connection byte counts), and those are turned into series when /metrics is read.
 */
import { readFileSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import { censusMetrics } from './metrics/census.js';
import { clientMetrics } from './metrics/client.js';
import { ledgerMetrics } from './metrics/ledger.js';
import { notifyMetrics } from './metrics/notify.js';
import { quotaMetrics } from './metrics/quota.js';
import { METRIC_PREFIX, createRegistry, type MetricsConfig } from './metrics/registry.js';
import { requestMetrics } from './metrics/requests.js';
import { reservationMetrics } from './metrics/reservations.js';
import { upstreamMetrics } from './metrics/upstream.js';

export { DROPPED_DEFAULT_METRICS, METRIC_PREFIX } from './metrics/registry.js';
export { INITIAL_REQUEST_METHODS, REQUEST_DURATION_BUCKETS } from './metrics/requests.js';

export function createMetrics() {
  const registry = createRegistry();
  const requests = requestMetrics(registry);
  const client = clientMetrics(registry);
  buildInfoMetric(registry);
  const reservations = reservationMetrics(registry);
  const upstream = upstreamMetrics(registry);
  const ledger = ledgerMetrics(registry);
  const quota = quotaMetrics(registry);
  const notify = notifyMetrics(registry);
  const census = censusMetrics(registry);
  return {
    registry,
    ...requests.members,
    ...client.members,
    ...reservations.members,
    ...upstream.members,
    ...ledger.members,
    ...quota.members,
    ...notify.members,
    ...census.members,
    /**
     * Starts the counters at 0 for the label sets a configuration makes known: fixed sets (statuses, kinds,
     * outcomes) and the configured levels and notification providers. Again after a reload: new levels and
     * providers get their series; those gone keep theirs (a counter's past stays true).
     */
    initialise(config: MetricsConfig): void {
      for (const family of [requests, upstream, quota, client, notify]) family.initialise(config);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Which build runs (read here: package.json and build-info.json are found from this module's place). */
function buildInfoMetric(registry: Registry): void {
  new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'Always 1; the labels say which build runs: version (package.json), revision (the git commit it was built from, when known) and the Node.js version.',
    labelNames: ['version', 'revision', 'nodejs_version'] as const,
    registers: [registry],
    // Workers run the same build: one of them says which (a sum would count workers).
    aggregator: 'first',
  }).set({ version: packageVersion(), revision: buildRevision(), nodejs_version: process.version }, 1);
}

export function statusClass(statusCode: number): string {
  return `${Math.floor(statusCode / 100)}xx`;
}

/**
 * package.json's version. This module runs as src/metrics.ts (tsx) or dist/src/metrics.js (built, and in the
 * image, which keeps package.json beside dist/): package.json is one or two directories up.
 */
export function packageVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'swift-quota-proxy' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not there: the other place
    }
  }
  return 'unknown';
}

/**
 * The git commit `npm run build` found (dist/build-info.json, beside dist/src/); unknown when built without git
 * (the image's build context has no .git) or run from the sources.
 */
export function buildRevision(): string {
  try {
    const info = JSON.parse(readFileSync(new URL('../build-info.json', import.meta.url), 'utf8')) as { revision?: unknown };
    if (typeof info.revision === 'string' && /^[0-9a-f]{7,40}$/.test(info.revision)) return info.revision;
  } catch {
    // no build info
  }
  return 'unknown';
}
