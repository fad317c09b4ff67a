/**
 * Every Prometheus metric the proxy exports, declared in one place on one registry. No per-account or
 * per-container labels: label values come from small, fixed sets (methods, kinds, configured levels).
 *
 * The proxy's own metrics are named `swift_quota_proxy_*`; the standard process and Node.js metrics keep their
 * standard names (`process_*`, `nodejs_*`), so that stock Node.js dashboards and alerts find them.
 *
 * What every request pays for is kept out of prom-client's per-call label hashing: a request adds to plain
 * numbers (`countRequest`, connection byte counts), and those are turned into series when /metrics is read.
 */
import { CLIENT_BOUNDS } from './http/connection-bounds.js';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Aggregator } from 'prom-client';
import type { Config } from './config/load.js';
import { QUOTA_KINDS } from './config/quota-levels.js';
import type { HeadTarget } from './swift/client.js';
import { QUOTA_EVENT_TYPES } from './quota/soft-state.js';
import type { DeliveryOutcome } from './notify/provider.js';

export const METRIC_PREFIX = 'swift_quota_proxy_';

/**
 * prom-client's default metrics include three gauges named `_total` (a name Prometheus keeps for counters:
 * `promtool check metrics` fails on them). Each is the sum of a gauge by `type` it also exports
 * (`nodejs_active_handles`, `nodejs_active_requests`, `nodejs_active_resources`), so leaving them out loses
 * nothing: `sum without (type) (nodejs_active_handles)` is the same number.
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/**
 * Upper bounds (seconds) of the request duration histogram: from a proxy's own answer (well under a
 * millisecond) through Swift's small-object answers to large transfers, which last as long as their bytes take.
 */
export const REQUEST_DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * The label sets counters start at 0 with, so that a dashboard or an alert sees 0 rather than no series before
 * the first event. Requests: the methods clients use with Swift, by every status class of an answer (error
 * ratios need the 5xx series to exist); other methods appear with their first request.
 */
export const INITIAL_REQUEST_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;
const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx'] as const;
const UPSTREAM_FAILURE_STATUSES = ['502', '503', '504'] as const;
// Records rather than lists: the compiler then insists that every member of each union is here.
const LOOKUP_TARGETS = Object.keys({ account: 0, container: 0, object: 0, auth: 0, metadata: 0, listing: 0 } satisfies Record<HeadTarget, 0>);
const LOOKUP_OUTCOMES = ['ok', 'not_found', 'error'] as const;
const DELIVERY_OUTCOMES = Object.keys({ queued: 0, ok: 0, failed: 0, dropped: 0 } satisfies Record<DeliveryOutcome, 0>);
const LEVEL_CHANGE_OUTCOMES = ['passed', 'forbidden', 'invalid'] as const;

/** Requests of one method and status class: a count, the sum of their durations and a count per bucket. */
class RequestTally {
  count = 0;
  seconds = 0;
  /** Not cumulative: [i] counts durations above bound i-1 up to bound i; the last, those above every bound. */
  readonly buckets = new Float64Array(REQUEST_DURATION_BUCKETS.length + 1);
  constructor(
    readonly method: string,
    readonly statusClass: string,
  ) {}
}

const BOUNDS = Float64Array.from(REQUEST_DURATION_BUCKETS);

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * A metric whose series are computed when it is read, registered on the registry like prom-client's own (which
 * reads any object with a name and get(); so does the aggregation of workers' metrics in cluster.ts).
 */
function computedMetric(registry: Registry, name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[]): void {
  const aggregator: Aggregator = 'sum';
  const metric = { name, help, type, aggregator, get: async () => ({ name, help, type, aggregator, values: values() }) };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** How often the event-loop delay (nodejs_eventloop_lag_*) is sampled, ms. */
const EVENT_LOOP_SAMPLE_MS = 100;

export function createMetrics() {
  const registry = new Registry();
  // The event-loop delay monitor samples every 10 ms by default: 6-7 ms of CPU a second in an idle proxy
  // (measured: 10.5 ms/s idle with it, 4.0 with 100 ms). A loop held up is still seen; it is sampled less often.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  const registers = [registry];
  let queueDepths: () => Array<{ provider: string; depth: number }> = () => [];
  let upstreamProbe: (() => Promise<boolean>) | undefined;
  let ledgerProbe: (() => Promise<boolean>) | undefined;

  // method → tallies by the first digit of the status.
  const tallies = new Map<string, Array<RequestTally | undefined>>();
  const tallyOf = (method: string, digit: number): RequestTally => {
    let byClass = tallies.get(method);
    if (byClass === undefined) {
      byClass = new Array<RequestTally | undefined>(10).fill(undefined);
      tallies.set(method, byClass);
    }
    return (byClass[digit] ??= new RequestTally(method, `${digit}xx`));
  };
  const allTallies = (): RequestTally[] => [...tallies.values()].flatMap((byClass) => byClass.filter((t): t is RequestTally => t !== undefined));

  computedMetric(registry, `${METRIC_PREFIX}requests_total`, 'Requests answered, by method and status class (2xx, 4xx, ...), whether Swift or the proxy answered.', 'counter', () =>
    allTallies().map((t) => ({ labels: { method: t.method, status_class: t.statusClass }, value: t.count })),
  );
  const durationName = `${METRIC_PREFIX}request_duration_seconds`;
  computedMetric(
    registry,
    durationName,
    'Time from a request\'s arrival to the last byte of its answer, by method and status class (transfers included: a large upload or download lasts as long as its bytes take).',
    'histogram',
    () =>
      // Only (method, class) pairs that have had a request: a histogram's ~20 series per pair are not worth
      // starting at 0 (a latency of nothing is no number anyway); the request counter above is.
      allTallies()
        .filter((t) => t.count > 0)
        .flatMap((t) => {
          const labels = { method: t.method, status_class: t.statusClass };
          const samples: Sample[] = [];
          let cumulative = 0;
          REQUEST_DURATION_BUCKETS.forEach((bound, i) => {
            cumulative += t.buckets[i]!;
            samples.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${durationName}_bucket` });
          });
          samples.push({ labels: { ...labels, le: '+Inf' }, value: t.count, metricName: `${durationName}_bucket` });
          samples.push({ labels, value: t.seconds, metricName: `${durationName}_sum` });
          samples.push({ labels, value: t.count, metricName: `${durationName}_count` });
          return samples;
        }),
  );

  // Bytes on client connections, read from the sockets themselves: nothing per request, exact for chunked
  // bodies and transfers cut short, HTTP heads included. Open connections are read when scraped; a closed
  // one's final counts move to the closed totals, so the sums only grow.
  const openConnections = new Set<{ bytesRead: number; bytesWritten: number }>();
  let closedRead = 0;
  let closedWritten = 0;
  const connectionBytes = (which: 'bytesRead' | 'bytesWritten', closed: number) => {
    let total = closed;
    for (const socket of openConnections) total += socket[which];
    return [{ labels: {}, value: total }];
  };
  computedMetric(registry, `${METRIC_PREFIX}client_received_bytes_total`, 'Bytes received on client connections: request heads and bodies.', 'counter', () => connectionBytes('bytesRead', closedRead));
  computedMetric(registry, `${METRIC_PREFIX}client_sent_bytes_total`, 'Bytes sent on client connections: response heads and bodies.', 'counter', () => connectionBytes('bytesWritten', closedWritten));

  new Gauge({
    name: `${METRIC_PREFIX}build_info`,
    help: 'Always 1; the labels say which build runs: version (package.json), revision (the git commit it was built from, when known) and the Node.js version.',
    labelNames: ['version', 'revision', 'nodejs_version'] as const,
    registers,
    // Workers run the same build: one of them says which (a sum would count workers).
    aggregator: 'first',
  }).set({ version: packageVersion(), revision: buildRevision(), nodejs_version: process.version }, 1);

  // Admitted writes not finished yet, oldest first (a Map keeps insertion order).
  const reservationsOpenedAt = new Map<object, number>();
  new Gauge({
    name: `${METRIC_PREFIX}reservation_oldest_age_seconds`,
    help: 'How long the oldest admitted write not finished yet has held its quota (0 when none): one that only grows is a write that never ends or a reservation never given back.',
    registers,
    // Across workers, the oldest of all.
    aggregator: 'max',
    collect() {
      const oldest = reservationsOpenedAt.values().next();
      this.set(oldest.done ? 0 : (Date.now() - oldest.value) / 1000);
    },
  });

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

  new Gauge({
    name: `${METRIC_PREFIX}ledger_up`,
    help: 'Whether the usage ledger answered when these metrics were read (1; always for the in-process ledger) or not (0: writes that need a check get fail_mode, reads are served).',
    registers,
    // With workers, writes are checked everywhere only if every worker reaches the ledger.
    aggregator: 'min',
    async collect() {
      this.set(!ledgerProbe || (await ledgerProbe()) ? 1 : 0);
    },
  });

  const metrics = {
    registry,
    /** One answered request: `elapsedMs` from its arrival to the end of its answer (Fastify's reply.elapsedTime). */
    countRequest(method: string, statusCode: number, elapsedMs: number): void {
      const tally = tallyOf(method, (statusCode / 100) | 0);
      const seconds = elapsedMs / 1000;
      tally.count++;
      tally.seconds += seconds;
      let bucket = 0;
      while (bucket < BOUNDS.length && seconds > BOUNDS[bucket]!) bucket++;
      tally.buckets[bucket]!++;
    },
    /** Counts the bytes of every client connection the server accepts (the client port, not the ops listener). */
    countConnections(server: Server): void {
      server.on('connection', (socket: { bytesRead?: unknown; bytesWritten?: unknown; once(event: 'close', listener: () => void): void }) => {
        // A connection server.ts re-reads through a rewriter is emitted again as a stream without counts of
        // its own; its socket, counted when it connected, carries the bytes.
        if (typeof socket.bytesRead !== 'number') return;
        const counted = socket as { bytesRead: number; bytesWritten: number };
        openConnections.add(counted);
        socket.once('close', () => {
          closedRead += counted.bytesRead;
          closedWritten += counted.bytesWritten;
          openConnections.delete(counted);
        });
      });
    },
    upstreamErrors: new Counter({
      name: `${METRIC_PREFIX}upstream_errors_total`,
      help: 'Requests Swift could not answer (unreachable, reset, timed out), by the status the client got.',
      labelNames: ['status'] as const,
      registers,
    }),
    clientRefusals: new Counter({
      name: `${METRIC_PREFIX}client_refusals_total`,
      help: 'Connections and requests refused by a bound on what clients may hold (503; 408 for a stalled body), by bound.',
      labelNames: ['bound'] as const,
      registers,
    }),
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
    /** A write's reservation was made (opened) or given back (committed or released). */
    reservationChanged(reservation: object, opened: boolean): void {
      if (opened) reservationsOpenedAt.set(reservation, Date.now());
      else reservationsOpenedAt.delete(reservation);
    },
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
    /** How upstream_up asks whether Swift answers (when scraped). */
    setUpstreamProbe(probe: () => Promise<boolean>): void {
      upstreamProbe = probe;
    },
    /** How ledger_up asks whether the usage ledger answers (when scraped). */
    setLedgerProbe(probe: () => Promise<boolean>): void {
      ledgerProbe = probe;
    },
    /**
     * Starts the counters at 0 for the label sets a configuration makes known: fixed sets (statuses, kinds,
     * outcomes) and the configured levels and notification providers. Again after a reload: new levels and
     * providers get their series; those gone keep theirs (a counter's past stays true).
     */
    initialise(config: Pick<Config, 'quota' | 'notifiers'>): void {
      for (const method of INITIAL_REQUEST_METHODS) for (const answered of STATUS_CLASSES) tallyOf(method, Number(answered[0]));
      for (const status of UPSTREAM_FAILURE_STATUSES) metrics.upstreamErrors.inc({ status }, 0);
      for (const level of config.quota.levels.names) for (const kind of QUOTA_KINDS) metrics.rejections.inc({ kind, level }, 0);
      for (const cause of ['swift', 'ledger']) for (const action of ['refused', 'admitted']) metrics.checkFailures.inc({ cause, action }, 0);
      for (const kind of ['account', 'container']) for (const result of ['hit', 'miss']) metrics.cacheRequests.inc({ kind, result }, 0);
      for (const target of LOOKUP_TARGETS) for (const outcome of LOOKUP_OUTCOMES) metrics.lookups.inc({ target, outcome }, 0);
      for (const outcome of LEVEL_CHANGE_OUTCOMES) metrics.levelChanges.inc({ outcome }, 0);
      for (const bound of CLIENT_BOUNDS) metrics.clientRefusals.inc({ bound }, 0);
      for (const type of QUOTA_EVENT_TYPES) metrics.notificationEvents.inc({ type }, 0);
      for (const { name } of config.notifiers) for (const outcome of DELIVERY_OUTCOMES) metrics.notificationDeliveries.inc({ provider: name, outcome }, 0);
    },
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

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
