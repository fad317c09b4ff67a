/**
 * The registry of src/metrics.ts as Prometheus reads it: standard names for the process and Node.js metrics,
 * `promtool check metrics` clean (also added up across workers, as cluster.ts serves it), counters at 0 for
 * their known label sets, the request duration histogram's buckets, build_info, the oldest reservation's age;
 * and the ops listener's settings (ops_bind_ip, ops_bind_port).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError } from '../../src/config/errors.js';
import { configFromText, type Config } from '../../src/config/load.js';
import { planReload } from '../../src/config/reload.js';
import { DROPPED_DEFAULT_METRICS, INITIAL_REQUEST_METHODS, REQUEST_DURATION_BUCKETS, createMetrics } from '../../src/metrics.js';
import { promtool } from '../helpers/promtool.js';
import { perProcessLabelled } from '../../src/cluster.js';

const PROXY = ['[quota-proxy]', 'bind_ip = 127.0.0.1', 'bind_port = 8081', 'upstream = http://127.0.0.1:8080'];
const REST = [
  '[filter:quota]',
  'quota = {"container_count": {"default": 5, "L1": 10}, "object_count": {"default": 100}}',
  '',
  '[filter:tempauth]',
  'user_reseller_reseller = reseller .reseller_admin',
  '',
  '[notify:hook]',
  'type = stdout',
];
const configOf = (proxyLines: string[] = [], overrides = {}): Config => configFromText([...PROXY, ...proxyLines, '', ...REST, ''].join('\n'), 'metrics-test.conf', overrides);

/** The value of the sample `name{labels}` (labels as written), undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('the registry', () => {
  test('standard process_* and nodejs_* names, no gauge named _total, promtool check metrics clean', async () => {
    const metrics = createMetrics();
    metrics.initialise(configOf());
    metrics.countRequest('GET', 200, 1.5);
    metrics.countRequest('PUT', 413, 0.2);
    const text = await metrics.registry.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_version_info']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.doesNotMatch(text, /^swift_quota_proxy_(process|nodejs)_/m);
    // What the dropped gauges added up is still there, by type.
    for (const name of DROPPED_DEFAULT_METRICS) {
      assert.doesNotMatch(text, new RegExp(`^# TYPE ${name} `, 'm'));
      assert.match(text, new RegExp(`^# TYPE ${name.replace(/_total$/, '')} gauge$`, 'm'));
    }
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      if (type !== 'counter') assert.ok(!name!.endsWith('_total'), `${type} ${name}`);
    }
    const checked = await promtool(['check', 'metrics'], { stdin: text });
    assert.equal(checked.code, 0, checked.output);
  });

  test('promtool check metrics fails on what the registry used to export (the check can fail)', async () => {
    const checked = await promtool(['check', 'metrics'], { stdin: '# HELP nodejs_active_handles_total Total number of active handles.\n# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 3\n' });
    assert.notEqual(checked.code, 0);
    assert.match(checked.output, /non-counter metrics should not have "_total" suffix/);
  });

  test('counters start at 0 for their known label sets; the histogram only for pairs that had a request', async () => {
    const metrics = createMetrics();
    metrics.initialise(configOf());
    const text = await metrics.registry.metrics();
    for (const method of INITIAL_REQUEST_METHODS) {
      for (const cls of ['2xx', '3xx', '4xx', '5xx']) assert.equal(sample(text, `swift_quota_proxy_requests_total{method="${method}",status_class="${cls}"}`), 0, `${method} ${cls}`);
    }
    for (const status of ['502', '503', '504']) assert.equal(sample(text, `swift_quota_proxy_upstream_errors_total{status="${status}"}`), 0);
    // Every kind at every configured level (a kind a level does not limit just stays 0).
    for (const level of ['default', 'L1']) {
      for (const kind of ['container_count', 'object_count', 'container_usage']) assert.equal(sample(text, `swift_quota_proxy_quota_rejections_total{kind="${kind}",level="${level}"}`), 0, `${kind} ${level}`);
    }
    for (const cause of ['swift', 'ledger']) for (const action of ['refused', 'admitted']) assert.equal(sample(text, `swift_quota_proxy_check_failures_total{cause="${cause}",action="${action}"}`), 0);
    for (const outcome of ['queued', 'ok', 'failed', 'dropped']) assert.equal(sample(text, `swift_quota_proxy_notification_deliveries_total{provider="hook",outcome="${outcome}"}`), 0);
    for (const type of ['soft_limit_exceeded', 'grace_expired', 'hard_limit_hit', 'back_below_soft', 'back_below_hard']) assert.equal(sample(text, `swift_quota_proxy_quota_events_total{type="${type}"}`), 0);
    for (const outcome of ['passed', 'forbidden', 'invalid']) assert.equal(sample(text, `swift_quota_proxy_level_changes_total{outcome="${outcome}"}`), 0);
    assert.equal(sample(text, 'swift_quota_proxy_usage_cache_requests_total{kind="account",result="hit"}'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_usage_lookups_total{target="container",outcome="error"}'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_client_received_bytes_total'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_reservation_oldest_age_seconds'), 0);
    assert.doesNotMatch(text, /^swift_quota_proxy_request_duration_seconds_(bucket|sum|count)/m);
  });

  test('a reload adds the series of new levels and providers and keeps what was counted', async () => {
    const metrics = createMetrics();
    const first = configOf();
    metrics.initialise(first);
    metrics.rejections.inc({ kind: 'object_count', level: 'default' });
    const next = configFromText(
      [...PROXY, '', ...REST.map((l) => l.replace('"L1": 10}', '"L1": 10, "L2": 20}')), '', '[notify:second]', 'type = stdout', ''].join('\n'),
      'metrics-test.conf',
    );
    metrics.initialise(planReload(first, next).config);
    const text = await metrics.registry.metrics();
    assert.equal(sample(text, 'swift_quota_proxy_quota_rejections_total{kind="object_count",level="default"}'), 1);
    assert.equal(sample(text, 'swift_quota_proxy_quota_rejections_total{kind="container_count",level="L2"}'), 0);
    assert.equal(sample(text, 'swift_quota_proxy_notification_deliveries_total{provider="second",outcome="dropped"}'), 0);
  });

  test('request durations land in the bucket whose bound they do not pass (bounds inclusive), cumulative, with sum and count', async () => {
    const metrics = createMetrics();
    const durationsMs = [0.2, 1, 1.1, 25, 25.0001, 900, 400_000];
    for (const ms of durationsMs) metrics.countRequest('PUT', 201, ms);
    metrics.countRequest('GET', 404, 3);
    const text = await metrics.registry.metrics();
    const labels = 'method="PUT",status_class="2xx"';
    const expectedAt = (bound: number) => durationsMs.filter((ms) => ms / 1000 <= bound).length;
    for (const bound of REQUEST_DURATION_BUCKETS) {
      assert.equal(sample(text, `swift_quota_proxy_request_duration_seconds_bucket{${labels},le="${bound}"}`), expectedAt(bound), `le ${bound}`);
    }
    assert.equal(sample(text, `swift_quota_proxy_request_duration_seconds_bucket{${labels},le="+Inf"}`), durationsMs.length);
    assert.equal(sample(text, `swift_quota_proxy_request_duration_seconds_count{${labels}}`), durationsMs.length);
    assert.ok(Math.abs(sample(text, `swift_quota_proxy_request_duration_seconds_sum{${labels}}`)! - durationsMs.reduce((a, b) => a + b) / 1000) < 1e-9);
    assert.equal(sample(text, `swift_quota_proxy_requests_total{${labels}}`), durationsMs.length);
    // 1 ms is within the first bound, 1.1 ms is not; 25 ms within 0.025; 400 s above every bound.
    assert.equal(sample(text, `swift_quota_proxy_request_duration_seconds_bucket{${labels},le="0.001"}`), 2);
    assert.equal(sample(text, `swift_quota_proxy_request_duration_seconds_bucket{${labels},le="0.025"}`), 4);
    assert.equal(sample(text, `swift_quota_proxy_request_duration_seconds_bucket{${labels},le="300"}`), 6);
    assert.equal(sample(text, 'swift_quota_proxy_request_duration_seconds_count{method="GET",status_class="4xx"}'), 1);
    assert.equal(sample(text, 'swift_quota_proxy_requests_total{method="GET",status_class="4xx"}'), 1);
    assert.equal((await promtool(['check', 'metrics'], { stdin: text })).code, 0);
  });

  test('build_info: the version of package.json, the Node.js version, a revision', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const text = await createMetrics().registry.metrics();
    // Run from the sources (tsx), there is no build-info.json: the revision is unknown.
    assert.equal(sample(text, `swift_quota_proxy_build_info{version="${pkg.version}",revision="unknown",nodejs_version="${process.version}"}`), 1);
  });

  test('the oldest reservation\'s age grows while it is open and is 0 once every reservation is given back', async () => {
    const metrics = createMetrics();
    const first = {};
    const second = {};
    metrics.reservationChanged(first, true);
    await delay(60);
    metrics.reservationChanged(second, true);
    const age = async () => sample(await metrics.registry.metrics(), 'swift_quota_proxy_reservation_oldest_age_seconds')!;
    assert.ok((await age()) >= 0.05, String(await age()));
    metrics.reservationChanged(first, false);
    assert.ok((await age()) < 0.05, 'the second is the oldest now');
    metrics.reservationChanged(second, false);
    assert.equal(await age(), 0);
  });

  test('added up across workers (cluster.ts): counts and histograms summed, build_info once, Swift up only if every worker reaches it', async () => {
    const workers = [createMetrics(), createMetrics()];
    workers.forEach((m, i) => {
      m.initialise(configOf());
      m.countRequest('GET', 200, 2 + i);
      m.setUpstreamProbe(async () => i === 0);
      m.reservationChanged({}, true);
    });
    await delay(20);
    const text = await AggregatorRegistry.aggregate(await Promise.all(workers.map((m) => m.registry.getMetricsAsJSON()))).metrics();
    assert.equal(sample(text, 'swift_quota_proxy_requests_total{method="GET",status_class="2xx"}'), 2);
    assert.equal(sample(text, 'swift_quota_proxy_request_duration_seconds_bucket{method="GET",status_class="2xx",le="0.0025"}'), 1);
    assert.equal(sample(text, 'swift_quota_proxy_request_duration_seconds_count{method="GET",status_class="2xx"}'), 2);
    assert.equal(sample(text, `swift_quota_proxy_build_info{version="${JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version}",revision="unknown",nodejs_version="${process.version}"}`), 1);
    assert.equal(sample(text, 'swift_quota_proxy_upstream_up'), 0);
    const age = sample(text, 'swift_quota_proxy_reservation_oldest_age_seconds')!;
    assert.ok(age > 0 && age < 5, String(age));
    const checked = await promtool(['check', 'metrics'], { stdin: text });
    assert.equal(checked.code, 0, checked.output);
  });

  test('across workers, the per-process metrics are each worker\'s own (a worker label): not summed, not dropped', async () => {
    const workers = [createMetrics(), createMetrics()];
    for (const m of workers) m.initialise(configOf());
    const collected = await Promise.all(workers.map((m) => m.registry.getMetricsAsJSON()));
    const text = await AggregatorRegistry.aggregate(collected.map((metrics, i) => perProcessLabelled(metrics, i + 1))).metrics();
    const own = await workers[0]!.registry.metrics();
    const maxFds = sample(own, 'process_max_fds');
    assert.ok(maxFds !== undefined && maxFds > 0);
    assert.equal(sample(text, 'process_max_fds{worker="1"}'), maxFds);
    assert.equal(sample(text, 'process_max_fds{worker="2"}'), maxFds, 'each worker\'s limit, not the sum');
    assert.equal(sample(text, 'process_max_fds'), undefined);
    assert.equal(sample(text, 'process_start_time_seconds{worker="1"}'), sample(own, 'process_start_time_seconds'));
    assert.ok(text.includes('nodejs_version_info{version='), 'every nodejs_* too');
    assert.ok(/^nodejs_heap_size_total_bytes\{worker="2"\} /m.test(text));
    assert.equal(sample(text, 'swift_quota_proxy_reservations_in_flight'), 0, 'the proxy\'s own: one series, merged');
    assert.ok(!/^swift_quota_proxy_[^{ ]*\{[^}]*worker=/m.test(text), 'no worker label on the proxy\'s own');
    const checked = await promtool(['check', 'metrics'], { stdin: text });
    assert.equal(checked.code, 0, checked.output);
  });
});

describe('ops_bind_ip, ops_bind_port', () => {
  test('off unless ops_bind_port is set; on bind_ip (after --listen) unless ops_bind_ip says otherwise', () => {
    assert.equal(configOf().opsBind, undefined);
    assert.deepEqual(configOf(['ops_bind_port = 9200']).opsBind, { host: '127.0.0.1', port: 9200 });
    assert.deepEqual(configOf(['ops_bind_port = 9200'], { listen: '0.0.0.0:8081' }).opsBind, { host: '0.0.0.0', port: 9200 });
    assert.deepEqual(configOf(['ops_bind_ip = 10.0.0.5', 'ops_bind_port = 0']).opsBind, { host: '10.0.0.5', port: 0 });
    // Another address on the client port's number is another socket.
    assert.deepEqual(configOf(['ops_bind_ip = 127.0.0.2', 'ops_bind_port = 8081']).opsBind, { host: '127.0.0.2', port: 8081 });
  });

  test('refused: ops_bind_ip without a port, the client port itself, a port out of range, a misspelt key', () => {
    const fails = (lines: string[], key: string, reason: RegExp) =>
      assert.throws(() => configOf(lines), (error: unknown) => error instanceof ConfigError && error.key === key && reason.test(error.message) && error.line !== undefined);
    fails(['ops_bind_ip = 127.0.0.1'], 'ops_bind_ip', /needs ops_bind_port/);
    fails(['ops_bind_port = 8081'], 'ops_bind_port', /must differ from the client port 127\.0\.0\.1:8081/);
    fails(['ops_bind_ip = 0.0.0.0', 'ops_bind_port = 8081'], 'ops_bind_port', /must differ/);
    fails(['ops_bind_port = 70000'], 'ops_bind_port', /whole number from 0 to 65535/);
    fails(['ops_bind_prot = 9200'], 'ops_bind_prot', /did you mean "ops_bind_port"/);
  });

  test('a change is reported by its file names and waits for a restart (SIGHUP)', () => {
    const plan = planReload(configOf(), configOf(['ops_bind_port = 9200']));
    assert.deepEqual(plan.needRestart, ['ops_bind_ip / ops_bind_port']);
    assert.equal(plan.config.opsBind, undefined);
  });
});
