/**
 * With workers, the proxy's counters and histograms are the sum of every live worker's (cluster.ts). A worker
 * that exits (a rolling restart retires it, or it crashes) would take its counts out of that sum: 3 workers at
 * 1000 read 3000, then 2000, which Prometheus takes for a counter reset (rate() and increase() count +2000 that
 * never happened). The primary keeps instead what each worker counted when it last heard from it, and once the
 * worker is gone adds that to every sum from then on: while the primary lives, a summed counter never goes down.
 *
 * What is heard last is the worker's final counts when it retires cleanly (sent after its drain, before it
 * exits), or else the counts it sent for the last scrape: a crashed worker's counts since then are lost (the sum
 * is short of them, never over).
 *
 * Kept: metrics of type counter or histogram merged by adding up (aggregator `sum`). Not kept: gauges (they
 * describe what runs now) and the per-process `process_*`/`nodejs_*` series (cluster.ts labels them by worker
 * with aggregator `first`: they end with their worker, as a restarted process's would).
 */
import type { Registry } from 'prom-client';

/**
 * One metric as a worker's registry gives it (prom-client's getMetricsAsJSON; its typings call `type` a number,
 * it is the text: 'counter', 'gauge', 'histogram').
 */
export interface MetricJson {
  name: string;
  help: string;
  type: string | number;
  aggregator?: string;
  values: ReadonlyArray<{ labels: Record<string, string | number | undefined>; value: number; metricName?: string }>;
}

type Sample = MetricJson['values'][number];

interface KeptMetric {
  name: string;
  help: string;
  type: MetricJson['type'];
  /** By series (the sample's name and its labels): the sample, its value added up over the workers gone. */
  series: Map<string, { labels: Sample['labels']; metricName?: string; value: number }>;
}

export class CarriedCounts<Worker extends object> {
  /** What each live worker last sent, only its kept metrics. */
  private readonly last = new Map<Worker, MetricJson[]>();
  /** What the workers that are gone had counted, added up. */
  private readonly carried = new Map<string, KeptMetric>();
  /** Workers already gone: a message of theirs read after their exit is not counted again. */
  private readonly departed = new WeakSet<Worker>();

  /** `worker`'s metrics as it sent them now (for a scrape, or its final ones): the most it is known to have counted. */
  heard(worker: Worker, metrics: readonly MetricJson[]): void {
    if (this.departed.has(worker)) return;
    this.last.set(worker, metrics.filter(isKept));
  }

  /** `worker` has exited: what it was last heard to have counted is added in from now on. */
  gone(worker: Worker): void {
    this.departed.add(worker);
    const snapshot = this.last.get(worker);
    if (!snapshot) return;
    this.last.delete(worker);
    for (const metric of snapshot) this.add(metric);
  }

  /** The exited workers' counts, as one more worker's metrics to merge with the live ones' (empty when none). */
  snapshot(): MetricJson[] {
    return [...this.carried.values()].map((kept) => ({
      name: kept.name,
      help: kept.help,
      type: kept.type,
      aggregator: 'sum',
      values: [...kept.series.values()].map(({ labels, metricName, value }) => ({ labels, value, ...(metricName === undefined ? {} : { metricName }) })),
    }));
  }

  private add(metric: MetricJson): void {
    let kept = this.carried.get(metric.name);
    if (!kept) {
      kept = { name: metric.name, help: metric.help, type: metric.type, series: new Map() };
      this.carried.set(metric.name, kept);
    }
    for (const sample of metric.values) {
      const key = seriesKey(sample);
      const series = kept.series.get(key);
      if (series) series.value += sample.value;
      else kept.series.set(key, { labels: sample.labels, value: sample.value, ...(sample.metricName === undefined ? {} : { metricName: sample.metricName }) });
    }
  }
}

/**
 * What a worker sends as it exits: its counters and histograms only. Its gauges are not read: some ask Swift or
 * the ledger when read (upstream_up, ledger_up), which an exiting worker need not wait for.
 */
export async function readCounts(registry: Registry): Promise<MetricJson[]> {
  const counted = (registry.getMetricsAsArray() as unknown as Array<{ type?: unknown; get(): Promise<MetricJson> }>).filter(
    (metric) => metric.type === 'counter' || metric.type === 'histogram',
  );
  return Promise.all(counted.map((metric) => metric.get()));
}

/** Counters and histograms added up across workers (per-process series are merged with `first`: not kept). */
function isKept(metric: MetricJson): boolean {
  return (String(metric.type) === 'counter' || String(metric.type) === 'histogram') && (metric.aggregator ?? 'sum') === 'sum';
}

/** A series' identity: its sample name (a histogram's _bucket, _sum, _count) and its labels, in any order. */
function seriesKey(sample: Sample): string {
  const labels = Object.entries(sample.labels ?? {})
    .map(([name, value]) => [name, String(value)])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
  return JSON.stringify([sample.metricName ?? '', labels]);
}
