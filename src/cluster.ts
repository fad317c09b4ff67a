/**
 * `workers = N`: the primary process forks N workers (node:cluster) that share the listening port, restarts
 * one that crashes, on SIGTERM/SIGINT has every worker drain before it exits, and passes SIGHUP (reload the
 * config file) on to every worker, each of which reloads its own. Workers are exact together
 * only through a shared ledger (the config refuses more than one worker with `ledger = memory`).
 *
 * `/metrics` is answered by whichever worker takes the scrape, with every worker's series added up (the
 * primary gathers them over IPC with prom-client's AggregatorRegistry), so one scrape sees the whole proxy.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const METRICS_REQUEST = 'swift-quota-proxy:metrics';
const METRICS_REPLY = 'swift-quota-proxy:metrics-reply';
/** A worker that crashes again within this long waits longer before it is started again (up to 30 s). */
const QUICK_CRASH_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;
const METRICS_TIMEOUT_MS = 5_000;
/** A worker's exit code when it could not start (main.ts's `fail`). */
const START_FAILURE = 2;

interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Runs the primary: forks, restarts, drains. Resolves with the exit code once every worker has exited. */
export function runPrimary(workers: number, log: Log): Promise<number> {
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  let restartDelay = 0;
  const startedAt = new Map<Worker, number>();
  const listening = new Set<Worker>();
  const reloadWhenListening = new Set<Worker>();

  const fork = () => {
    const worker = cluster.fork();
    startedAt.set(worker, Date.now());
    worker.once('listening', () => {
      listening.add(worker);
      if (reloadWhenListening.delete(worker)) worker.process.kill('SIGHUP');
    });
    worker.on('message', (message: unknown) => {
      if (!isMessage(message, METRICS_REQUEST)) return;
      aggregator.clusterMetrics().then(
        (text) => worker.send({ type: METRICS_REPLY, id: message.id, text }),
        (error: unknown) => worker.send({ type: METRICS_REPLY, id: message.id, error: (error as Error).message }),
      );
    });
  };

  return new Promise((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      const lived = Date.now() - (startedAt.get(worker) ?? 0);
      startedAt.delete(worker);
      listening.delete(worker);
      reloadWhenListening.delete(worker);
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(0);
        return;
      }
      if (code === START_FAILURE) {
        // It could not start (its port taken, say): another would not either.
        log.error(`worker ${worker.process.pid} could not start (exit ${code}); stopping`);
        stopping = true;
        for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
        resolve(START_FAILURE);
        return;
      }
      restartDelay = lived < QUICK_CRASH_MS ? Math.min(Math.max(restartDelay * 2, 500), MAX_RESTART_DELAY_MS) : 0;
      log.error(`worker ${worker.process.pid} ended (${signal ?? `exit ${code}`}); starting another${restartDelay ? ` in ${restartDelay} ms` : ''}`);
      setTimeout(fork, restartDelay);
    });

    const stop = (signal: NodeJS.Signals) => {
      const running = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
      if (stopping) {
        log.warn(`${signal} again: ending the workers without waiting for in-flight requests`);
        for (const worker of running) worker.process.kill('SIGKILL');
        resolve(1);
        return;
      }
      stopping = true;
      log.info(`${signal}: draining ${running.length} workers`);
      if (running.length === 0) resolve(0);
      for (const worker of running) worker.process.kill('SIGTERM');
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      const running = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
      log.info(`SIGHUP: asking ${running.length} workers to reload the configuration`);
      for (const worker of running) {
        // A worker still starting may not handle the signal yet (it would end it): it is asked once it listens.
        if (listening.has(worker)) worker.process.kill('SIGHUP');
        else reloadWhenListening.add(worker);
      }
    });

    log.info(`starting ${workers} workers`);
    for (let i = 0; i < workers; i++) fork();
  });
}

/**
 * In a worker: the metrics text of every worker, added up by the primary. Outside a cluster: this process's.
 */
export function clusterMetricsText(registry: Registry): () => Promise<string> {
  if (!cluster.isWorker) return () => registry.metrics();
  // What the primary's AggregatorRegistry asks each worker for; constructing one is what makes this worker
  // answer those requests (prom-client adds its listeners then).
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
  let nextId = 0;
  const waiting = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  process.on('message', (message: unknown) => {
    if (!isMessage(message, METRICS_REPLY)) return;
    const pending = waiting.get(message.id);
    if (!pending) return;
    waiting.delete(message.id);
    if (typeof message.text === 'string') pending.resolve(message.text);
    else pending.reject(new Error(`metrics of the other workers: ${String(message.error)}`));
  });
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

function isMessage(message: unknown, type: string): message is { type: string; id: number; text?: unknown; error?: unknown } {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}
