/**
 * `workers = N`: the primary process forks N workers (node:cluster) that share the listening port, restarts
 * one that crashes, on SIGTERM/SIGINT has every worker drain before it exits, and passes SIGHUP (reload the
 * config file) on to every worker, each of which reloads its own. SIGUSR1 restarts the workers one at a time
 * (lifecycle/rolling-restart.ts), as Swift's servers reload on it: new code and a new config without a failed request.
 * The workers share the primary's listening sockets, whatever reuse_port says (lifecycle/drain.ts
 * takesReusePort), and each accepts its connections itself (SCHED_NONE), as Swift's workers do: with node:cluster's
 * round robin the primary accepts and hands each connection to a worker, and one handed to a worker as it dies
 * stays open, unanswered, until the client gives up. Workers are exact together
 * only through a shared ledger (the config refuses more than one worker with `ledger = memory`).
 *
 * `/metrics` is answered by whichever worker takes the scrape, with every worker's series added up (the
 * primary gathers them over IPC and adds them up with prom-client's AggregatorRegistry.aggregate), so one scrape
 * sees the whole proxy; the standard per-process metrics stay each worker's own, with a `worker` label
 * (perProcessLabelled). The primary asks only the workers that have said they answer: one still loading (at
 * start, or started again after a crash) has nothing to add, and waiting for it would fail the scrape.
 * A worker that exits does not take its counts out of the sums (metrics-carry.ts): one that retires sends its
 * final metrics before it exits (sendFinalMetrics), and the primary adds what an exited worker had counted to
 * every scrape after it, so the proxy's counters never go down while the primary runs.
 */
import cluster, { type Worker } from 'node:cluster';
import { rollWorkers } from './lifecycle/rolling-restart.js';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import { CarriedCounts, readCounts } from './metrics-carry.js';

/** Worker → primary: a scrape wants every worker's metrics. */
const METRICS_REQUEST = 'swift-quota-proxy:metrics';
/** Primary → worker: the added-up text (or why not). */
const METRICS_REPLY = 'swift-quota-proxy:metrics-reply';
/** Worker → primary: this worker answers METRICS_COLLECT from now on. */
const METRICS_READY = 'swift-quota-proxy:metrics-ready';
/** Primary → worker: send your own metrics; worker → primary: here they are. */
const METRICS_COLLECT = 'swift-quota-proxy:metrics-collect';
const METRICS_COLLECTED = 'swift-quota-proxy:metrics-collected';
/** Worker → primary: my metrics as I exit (after a drain); primary → worker: kept, you may exit. */
const METRICS_FINAL = 'swift-quota-proxy:metrics-final';
const METRICS_FINAL_KEPT = 'swift-quota-proxy:metrics-final-kept';
/** How long an exiting worker waits for the primary to keep its final metrics (it exits anyway then). */
const FINAL_METRICS_TIMEOUT_MS = 2_000;
/** A worker that crashes again within this long waits longer before it is started again (up to 30 s). */
const QUICK_CRASH_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** How long a scrape waits for the primary; the primary waits a little less for the workers, to say which did not answer. */
const METRICS_TIMEOUT_MS = 5_000;
const COLLECT_TIMEOUT_MS = 4_000;
/** A worker's exit code when it could not start (main.ts's `fail`). */
const START_FAILURE = 2;
/** Worker → primary: the client port (and the ops port) listen; the worker serves. */
const WORKER_LISTENING = 'swift-quota-proxy:listening';
/** Primary → worker: stop serving (drain) and exit; worker → primary: my listeners are closed. */
const WORKER_RETIRE = 'swift-quota-proxy:retire';
const WORKER_RETIRED = 'swift-quota-proxy:retired';

interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Runs the primary: forks, restarts, drains. Resolves with the exit code once every worker has exited. */
export function runPrimary(workers: number, log: Log): Promise<number> {
  return new Promise((resolve) => new Primary(log, resolve).start(workers));
}

/** The primary's workers and what it is doing with them; `resolve` ends runPrimary with the exit code. */
class Primary {
  private readonly gatherer = new MetricsGatherer();
  private stopping = false;
  private restartDelay = 0;
  private readonly startedAt = new Map<Worker, number>();
  private readonly listening = new Set<Worker>();
  private readonly reloadWhenListening = new Set<Worker>();
  /** Workers told to retire by a rolling restart: their exit is expected, no other takes their place. */
  private readonly retired = new Set<Worker>();
  /** Workers started by a rolling restart that have not listened yet: failing to start ends the roll, not the proxy. */
  private readonly rollingStarts = new Set<Worker>();
  private rolling: Promise<void> | undefined;

  constructor(
    private readonly log: Log,
    private readonly resolve: (code: number) => void,
  ) {}

  start(workers: number): void {
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    process.on('SIGTERM', () => this.stop('SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT'));
    process.on('SIGHUP', () => this.reload());
    process.on('SIGUSR1', () => this.rollingRestart());
    // Before the first fork: the policy is fixed once the primary shares its first socket.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    this.log.info(`starting ${workers} workers`);
    for (let i = 0; i < workers; i++) this.fork();
  }

  private fork(): Worker {
    const worker = cluster.fork();
    this.startedAt.set(worker, Date.now());
    worker.on('message', (message: unknown) => this.heard(worker, message));
    return worker;
  }

  /** A worker's message: it listens, it has retired, or it asks for, says it answers or sends metrics. */
  private heard(worker: Worker, message: unknown): void {
    const { gatherer } = this;
    if (isMessage(message, WORKER_LISTENING)) {
      this.listening.add(worker);
      this.rollingStarts.delete(worker);
      worker.emit('serving');
      if (this.reloadWhenListening.delete(worker)) worker.process.kill('SIGHUP');
    } else if (isMessage(message, WORKER_RETIRED)) worker.emit('retired');
    else if (isMessage(message, METRICS_REQUEST)) {
      gatherer.gather().then(
        (text) => worker.send({ type: METRICS_REPLY, id: message.id, text }),
        (error: unknown) => worker.send({ type: METRICS_REPLY, id: message.id, error: (error as Error).message }),
      );
    } else if (isMessage(message, METRICS_READY)) gatherer.ready(worker);
    else if (isMessage(message, METRICS_COLLECTED)) gatherer.collected(worker, message.id, message.metrics);
    else if (isMessage(message, METRICS_FINAL)) {
      gatherer.final(worker, message.metrics);
      if (worker.isConnected()) worker.send({ type: METRICS_FINAL_KEPT });
    }
  }

  /** A worker ended: expected (stopping, retired), a rolling restart's that failed, or one to start again. */
  private exited(worker: Worker, code: number, signal: string | null): void {
    const lived = Date.now() - (this.startedAt.get(worker) ?? 0);
    this.startedAt.delete(worker);
    this.gatherer.gone(worker);
    this.listening.delete(worker);
    this.reloadWhenListening.delete(worker);
    if (this.stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) this.resolve(0);
      return;
    }
    if (this.retired.delete(worker)) return;
    if (this.rollingStarts.delete(worker)) {
      // A new worker of a rolling restart that could not start (a config made invalid since): the old ones serve on.
      this.log.error(`worker ${worker.process.pid} of the rolling restart ended before it listened (${signal ?? `exit ${code}`}); the rolling restart stops, the running workers serve on`);
      return;
    }
    if (code === START_FAILURE) {
      // It could not start (its port taken, say): another would not either.
      this.log.error(`worker ${worker.process.pid} could not start (exit ${code}); stopping`);
      this.stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      this.resolve(START_FAILURE);
      return;
    }
    this.restartDelay = lived < QUICK_CRASH_MS ? Math.min(Math.max(this.restartDelay * 2, 500), MAX_RESTART_DELAY_MS) : 0;
    this.log.error(`worker ${worker.process.pid} ended (${signal ?? `exit ${code}`}); starting another${this.restartDelay ? ` in ${this.restartDelay} ms` : ''}`);
    setTimeout(() => this.fork(), this.restartDelay);
  }

  /** SIGTERM/SIGINT: every worker drains, then the primary exits; a second signal ends them at once. */
  private stop(signal: NodeJS.Signals): void {
    const running = runningWorkers();
    if (this.stopping) {
      this.log.warn(`${signal} again: ending the workers without waiting for in-flight requests`);
      for (const worker of running) worker.process.kill('SIGKILL');
      this.resolve(1);
      return;
    }
    this.stopping = true;
    this.log.info(`${signal}: draining ${running.length} workers`);
    if (running.length === 0) this.resolve(0);
    for (const worker of running) worker.process.kill('SIGTERM');
  }

  /** SIGHUP: every worker reloads its configuration. */
  private reload(): void {
    const running = runningWorkers();
    this.log.info(`SIGHUP: asking ${running.length} workers to reload the configuration`);
    for (const worker of running) {
      // A worker still starting may not handle the signal yet (it would end it): it is asked once it listens.
      if (this.listening.has(worker)) worker.process.kill('SIGHUP');
      else this.reloadWhenListening.add(worker);
    }
  }

  /** SIGUSR1: every worker replaced by a new one, one at a time (lifecycle/rolling-restart.ts). */
  private rollingRestart(): void {
    if (this.stopping) return;
    if (this.rolling) {
      this.log.warn('SIGUSR1: a rolling restart is already under way');
      return;
    }
    const running = runningWorkers().filter((worker) => !this.retired.has(worker));
    this.log.info(`SIGUSR1: restarting ${running.length} workers one at a time`);
    const retire = (worker: Worker) => {
      this.retired.add(worker);
      sendRetire(worker);
    };
    this.rolling = rollWorkers(running, { fork: () => this.fork(), retire, rollingStarts: this.rollingStarts, stopping: () => this.stopping, log: this.log }).finally(() => {
      this.rolling = undefined;
    });
  }
}

function runningWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
}

/** In a worker: tells the primary it serves (a rolling restart retires an old worker only then). */
export function announceListening(): void {
  if (cluster.isWorker) process.send!({ type: WORKER_LISTENING });
}

/** In a worker: `retire` runs when the primary's rolling restart asks this worker to drain and exit. */
export function onRetire(retire: () => void): void {
  if (!cluster.isWorker) return;
  process.on('message', (message: unknown) => {
    if (isMessage(message, WORKER_RETIRE)) retire();
  });
}

/** In a worker being retired: its listeners are closed (the rolling restart moves on to the next worker). */
export function announceListenersClosed(): void {
  if (cluster.isWorker && process.connected) process.send!({ type: WORKER_RETIRED });
}

/** Primary → worker: drain and exit. */
export function sendRetire(worker: Worker): void {
  worker.send({ type: WORKER_RETIRE });
}

/**
 * In a worker: the metrics text of every worker, added up by the primary. Outside a cluster: this process's.
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  if (!cluster.isWorker) return () => registry.metrics();
  workerRegistry = registry;
  let nextId = 0;
  const waiting = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  process.on('message', (message: unknown) => {
    if (isMessage(message, METRICS_COLLECT)) {
      registry.getMetricsAsJSON().then(
        (metrics) => process.send!({ type: METRICS_COLLECTED, id: message.id, metrics }),
        () => process.send!({ type: METRICS_COLLECTED, id: message.id, metrics: undefined }),
      );
      return;
    }
    if (!isMessage(message, METRICS_REPLY)) return;
    const pending = waiting.get(message.id);
    if (!pending) return;
    waiting.delete(message.id);
    if (typeof message.text === 'string') pending.resolve(message.text);
    else pending.reject(new Error(`metrics of the other workers: ${String(message.error)}`));
  });
  process.send!({ type: METRICS_READY });
  return () =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary did not answer for the other workers\' metrics'));
      }, METRICS_TIMEOUT_MS);
      waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      process.send!({ type: METRICS_REQUEST, id });
    });
}

/** The registry a worker's metrics are read from (clusterMetricsText), for its final metrics. */
let workerRegistry: Registry | undefined;

/**
 * In a worker about to exit (its drain done: nothing more to count): sends its metrics to the primary, which keeps
 * its counts in the proxy's sums, and resolves once the primary has them (or after FINAL_METRICS_TIMEOUT_MS).
 * Outside a cluster, or before the registry exists, nothing to do.
 */
export async function sendFinalMetrics(): Promise<void> {
  const registry = workerRegistry;
  if (!cluster.isWorker || !registry || !process.connected) return;
  const metrics = await readCounts(registry).catch(() => undefined);
  if (!metrics || !process.connected) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve();
    };
    const onMessage = (message: unknown) => {
      if (isMessage(message, METRICS_FINAL_KEPT)) done();
    };
    const timer = setTimeout(done, FINAL_METRICS_TIMEOUT_MS);
    process.on('message', onMessage);
    try {
      process.send!({ type: METRICS_FINAL, metrics }, undefined, undefined, (error: Error | null) => {
        if (error) done();
      });
    } catch {
      // The channel closed meanwhile (the primary is gone): nobody to keep them.
      done();
    }
  });
}

type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/**
 * The primary's side of a scrape: asks every worker that has said it answers for its metrics, and adds them up,
 * with what the workers that have exited had counted (metrics-carry.ts). A worker that ends meanwhile is not
 * waited for (its last counts are among those carried); one that does not answer in time fails the scrape, since
 * a sum without it would look like a reset.
 */
class MetricsGatherer {
  private readonly answering = new Set<Worker>();
  private readonly gathers = new Map<number, { waitingFor: Set<Worker>; metrics: Map<Worker, WorkerMetrics>; finish(error?: Error): void }>();
  private readonly carried = new CarriedCounts<Worker>();
  private nextId = 0;

  ready(worker: Worker): void {
    this.answering.add(worker);
  }

  gone(worker: Worker): void {
    this.answering.delete(worker);
    // Its counts are carried from now on: a scrape under way that already has them must not add them twice.
    this.carried.gone(worker);
    for (const gather of this.gathers.values()) {
      gather.metrics.delete(worker);
      if (gather.waitingFor.delete(worker) && gather.waitingFor.size === 0) gather.finish();
    }
  }

  collected(worker: Worker, id: number, metrics: unknown): void {
    const gather = this.gathers.get(id);
    if (!gather || !gather.waitingFor.delete(worker)) return;
    if (!Array.isArray(metrics)) return gather.finish(new Error(`worker ${worker.process.pid} could not read its metrics`));
    const labelled = perProcessLabelled(metrics as WorkerMetrics, worker.id);
    this.carried.heard(worker, labelled);
    gather.metrics.set(worker, labelled);
    if (gather.waitingFor.size === 0) gather.finish();
  }

  /** A worker's metrics as it exits: what it counted, kept once it is gone. */
  final(worker: Worker, metrics: unknown): void {
    // Labelled first: its per-process series (merged with 'first') are not carried.
    if (Array.isArray(metrics)) this.carried.heard(worker, perProcessLabelled(metrics as WorkerMetrics, worker.id));
  }

  gather(): Promise<string> {
    const id = ++this.nextId;
    const waitingFor = new Set([...this.answering].filter((worker) => worker.isConnected()));
    return new Promise((resolve, reject) => {
      const metrics = new Map<Worker, WorkerMetrics>();
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.gathers.delete(id);
        if (error) return reject(error);
        // The exited workers' counts last: the live workers' help and types are the ones written.
        const all = [...metrics.values(), this.carried.snapshot() as unknown as WorkerMetrics];
        AggregatorRegistry.aggregate(all).metrics().then(resolve, reject);
      };
      const timer = setTimeout(() => {
        const pids = [...waitingFor].map((worker) => worker.process.pid).join(', ');
        finish(new Error(`worker ${pids} did not send its metrics within ${COLLECT_TIMEOUT_MS} ms`));
      }, COLLECT_TIMEOUT_MS);
      this.gathers.set(id, { waitingFor, metrics, finish });
      if (waitingFor.size === 0) return finish();
      for (const worker of waitingFor) worker.send({ type: METRICS_COLLECT, id });
    });
  }
}

/**
 * The standard process and Node.js metrics (`process_*`, `nodejs_*`) each describe one process: a sum of the
 * workers' `process_max_fds` or heap limits is no limit of anything, and prom-client leaves
 * `process_start_time_seconds` out of a merge altogether. Each worker's are kept as they are, told apart by a
 * `worker` label (the cluster's worker id: 1..N, a worker started again gets the next); summing them is the
 * query's to do (`sum without (worker) (process_resident_memory_bytes)`). The proxy's own metrics are merged
 * as before, each by its own aggregator: one series for the whole proxy.
 */
export function perProcessLabelled(metrics: WorkerMetrics, workerId: number): WorkerMetrics {
  const worker = String(workerId);
  return metrics.map((metric) => {
    if (!PER_PROCESS.test(metric.name)) return metric;
    // One value per label set once labelled: 'first' keeps it (and keeps what 'omit' would drop).
    const values = metric.values.map((value) => ({ ...value, labels: { ...value.labels, worker } }));
    return { ...metric, aggregator: 'first', values } as typeof metric;
  });
}

const PER_PROCESS = /^(process|nodejs)_/;

function isMessage(message: unknown, type: string): message is { type: string; id: number; text?: unknown; error?: unknown; metrics?: unknown } {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}
