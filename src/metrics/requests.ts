/**
 * Requests answered: a count and a duration histogram by method and status class. What every request pays for
 * is kept out of prom-client's per-call label hashing: a request adds to plain numbers (`countRequest`), and
 * those are turned into series when /metrics is read.
 */
import type { Registry } from 'prom-client';
import { METRIC_PREFIX, computedMetric, type Family, type Sample } from './registry.js';

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
const DURATION_NAME = `${METRIC_PREFIX}request_duration_seconds`;

export function requestMetrics(registry: Registry) {
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
  computedMetric(
    registry,
    DURATION_NAME,
    'Time from a request\'s arrival to the last byte of its answer, by method and status class (transfers included: a large upload or download lasts as long as its bytes take).',
    'histogram',
    // Only (method, class) pairs that have had a request: a histogram's ~20 series per pair are not worth
    // starting at 0 (a latency of nothing is no number anyway); the request counter above is.
    () => allTallies().filter((t) => t.count > 0).flatMap(durationSamples),
  );

  return {
    members: {
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
    },
    initialise(): void {
      for (const method of INITIAL_REQUEST_METHODS) for (const answered of STATUS_CLASSES) tallyOf(method, Number(answered[0]));
    },
  } satisfies Family<object>;
}

/** One (method, class) pair's histogram series: cumulative buckets, +Inf, sum and count. */
function durationSamples(t: RequestTally): Sample[] {
  const labels = { method: t.method, status_class: t.statusClass };
  const samples: Sample[] = [];
  let cumulative = 0;
  REQUEST_DURATION_BUCKETS.forEach((bound, i) => {
    cumulative += t.buckets[i]!;
    samples.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${DURATION_NAME}_bucket` });
  });
  samples.push({ labels: { ...labels, le: '+Inf' }, value: t.count, metricName: `${DURATION_NAME}_bucket` });
  samples.push({ labels, value: t.seconds, metricName: `${DURATION_NAME}_sum` });
  samples.push({ labels, value: t.count, metricName: `${DURATION_NAME}_count` });
  return samples;
}
