/**
 * src/metrics-carry.ts: with workers, what an exited worker had counted stays in the proxy's sums (counters and
 * histograms), merged as cluster.ts merges them (perProcessLabelled, AggregatorRegistry.aggregate); gauges and
 * per-process series end with their worker.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry } from 'prom-client';
import { configFromText } from '../../src/config/load.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { perProcessLabelled } from '../../src/cluster.js';
import { CarriedCounts, readCounts, type MetricJson } from '../../src/metrics-carry.js';
import { promtool } from '../helpers/promtool.js';

const CONFIG = configFromText(
  ['[quota-proxy]', 'bind_ip = 127.0.0.1', 'bind_port = 8081', 'upstream = http://127.0.0.1:8080', '', '[filter:quota]', 'quota = {"object_count": {"default": 100}}', '', '[filter:tempauth]', 'user_reseller_reseller = reseller .reseller_admin', ''].join('\n'),
  'carry-test.conf',
);

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

interface FakeWorker {
  id: number;
  metrics: Metrics;
}

function worker(id: number): FakeWorker {
  const metrics = createMetrics();
  metrics.initialise(CONFIG);
  return { id, metrics };
}

/** A worker's metrics as the primary receives them (labelled as cluster.ts labels them). */
async function read(w: FakeWorker): Promise<MetricJson[]> {
  return perProcessLabelled(await w.metrics.registry.getMetricsAsJSON(), w.id);
}

/** What the primary answers a scrape with: the live workers' metrics and the carried counts, added up. */
async function scrape(carried: CarriedCounts<FakeWorker>, live: FakeWorker[]): Promise<string> {
  const metrics = await Promise.all(live.map(read));
  for (const [i, w] of live.entries()) carried.heard(w, metrics[i]!);
  const all = [...metrics, carried.snapshot()] as unknown as Parameters<typeof AggregatorRegistry.aggregate>[0];
  return AggregatorRegistry.aggregate(all).metrics();
}

const GET_2XX = 'swift_quota_proxy_requests_total{method="GET",status_class="2xx"}';
const GET_2XX_COUNT = 'swift_quota_proxy_request_duration_seconds_count{method="GET",status_class="2xx"}';
const GET_2XX_FAST = 'swift_quota_proxy_request_duration_seconds_bucket{method="GET",status_class="2xx",le="0.005"}';
const REJECTED = 'swift_quota_proxy_quota_rejections_total{kind="object_count",level="default"}';

describe('counts of exited workers (metrics-carry.ts)', () => {
  test('3 workers at 1000 requests each read 3000, and still 3000 after one exits (not 2000: a counter reset)', async () => {
    const carried = new CarriedCounts<FakeWorker>();
    const workers = [worker(1), worker(2), worker(3)];
    for (const w of workers) for (let i = 0; i < 1000; i++) w.metrics.countRequest('GET', 200, 1);
    assert.equal(sample(await scrape(carried, workers), GET_2XX), 3000);
    carried.gone(workers[0]!);
    const after = await scrape(carried, workers.slice(1));
    assert.equal(sample(after, GET_2XX), 3000);
    assert.equal(sample(after, GET_2XX_COUNT), 3000, 'histograms too');
    assert.equal(sample(after, GET_2XX_FAST), 3000, 'every bucket');
    const checked = await promtool(['check', 'metrics'], { stdin: after });
    assert.equal(checked.code, 0, checked.output);
  });

  test('a worker\'s final metrics count (sent after its drain), and those of every worker gone are added up', async () => {
    const carried = new CarriedCounts<FakeWorker>();
    const [a, b, c] = [worker(1), worker(2), worker(3)];
    a.metrics.rejections.inc({ kind: 'object_count', level: 'default' }, 2);
    b.metrics.rejections.inc({ kind: 'object_count', level: 'default' }, 3);
    assert.equal(sample(await scrape(carried, [a, b]), REJECTED), 5);
    // Counted after that scrape, then sent as it retires (counters and histograms only, labelled as cluster.ts does).
    a.metrics.rejections.inc({ kind: 'object_count', level: 'default' }, 4);
    carried.heard(a, perProcessLabelled((await readCounts(a.metrics.registry)) as unknown as Parameters<typeof perProcessLabelled>[0], a.id));
    carried.gone(a);
    assert.equal(sample(await scrape(carried, [b, c]), REJECTED), 9);
    c.metrics.rejections.inc({ kind: 'object_count', level: 'default' });
    carried.gone(b);
    assert.equal(sample(await scrape(carried, [c]), REJECTED), 10);
  });

  test('a crashed worker counts as last heard; a message read after its exit is not counted again', async () => {
    const carried = new CarriedCounts<FakeWorker>();
    const [a, b] = [worker(1), worker(2)];
    a.metrics.countRequest('GET', 200, 1);
    await scrape(carried, [a, b]);
    a.metrics.countRequest('GET', 200, 1);
    carried.gone(a);
    // Its counts since the last scrape are lost: short, never over, never down.
    assert.equal(sample(await scrape(carried, [b]), GET_2XX), 1);
    carried.heard(a, await read(a));
    assert.equal(sample(await scrape(carried, [b]), GET_2XX), 1, 'a late message of a gone worker');
    carried.gone(a);
    assert.equal(sample(await scrape(carried, [b]), GET_2XX), 1, 'gone twice');
    // Never heard from (it exited while loading): nothing to add.
    carried.gone(worker(3));
    assert.equal(sample(await scrape(carried, [b]), GET_2XX), 1);
  });

  test('gauges and per-process series end with their worker', async () => {
    const carried = new CarriedCounts<FakeWorker>();
    const [a, b] = [worker(1), worker(2)];
    a.metrics.reservations.inc(5);
    a.metrics.hitsPending.set(7);
    const before = await scrape(carried, [a, b]);
    assert.equal(sample(before, 'swift_quota_proxy_reservations_in_flight'), 5);
    assert.match(before, /^process_cpu_seconds_total\{worker="1"\} /m);
    carried.gone(a);
    const after = await scrape(carried, [b]);
    assert.equal(sample(after, 'swift_quota_proxy_reservations_in_flight'), 0);
    assert.equal(sample(after, 'swift_quota_proxy_quota_hits_pending'), 0);
    assert.doesNotMatch(after, /worker="1"/, 'no per-process series of a worker gone (process_cpu_seconds_total is a counter, but its own)');
  });

  test('an exiting worker reads its counters and histograms (its own and the computed ones), not its gauges', async () => {
    const a = worker(1);
    let probed = 0;
    a.metrics.setUpstreamProbe(async () => {
      probed++;
      return true;
    });
    a.metrics.countRequest('PUT', 201, 3);
    const counts = await readCounts(a.metrics.registry);
    const names = counts.map((metric) => metric.name);
    assert.ok(names.includes('swift_quota_proxy_requests_total') && names.includes('swift_quota_proxy_request_duration_seconds'), names.join(' '));
    assert.ok(names.includes('swift_quota_proxy_quota_rejections_total') && names.includes('swift_quota_proxy_usage_lookup_duration_seconds'));
    assert.ok(counts.every((metric) => metric.type === 'counter' || metric.type === 'histogram'), 'no gauge');
    assert.equal(probed, 0, 'Swift not asked for upstream_up');
    const requests = counts.find((metric) => metric.name === 'swift_quota_proxy_requests_total')!;
    assert.equal(requests.values.find((v) => v.labels.method === 'PUT' && v.labels.status_class === '2xx')?.value, 1);
  });

  test('series are told apart by name and labels in any order', () => {
    const carried = new CarriedCounts<object>();
    const metric = (labels: Record<string, string>, value: number): MetricJson[] => [
      { name: 'x_total', help: 'x', type: 'counter', aggregator: 'sum', values: [{ labels, value }] },
    ];
    const [a, b] = [{}, {}];
    carried.heard(a, metric({ p: '1', q: '2' }, 3));
    carried.heard(b, metric({ q: '2', p: '1' }, 4));
    carried.gone(a);
    carried.gone(b);
    const [x] = carried.snapshot();
    assert.deepEqual(x?.values, [{ labels: { p: '1', q: '2' }, value: 7 }]);
  });
});
