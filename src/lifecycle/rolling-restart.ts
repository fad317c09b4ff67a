/**
 * SIGUSR1 to the primary (`workers` > 1): every worker replaced by a new one, one at a time, as Swift's servers
 * reload on SIGUSR1. For each old worker a new one is started first (it loads the config file and the code
 * anew); once it listens, the old one is retired: it drains as on SIGTERM but stays ready (its siblings serve
 * on), and the next worker is replaced as soon as its listeners are closed, while its last requests finish.
 * At no moment does the proxy have fewer workers listening than it had.
 */
import type { Worker } from 'node:cluster';

/** A new worker that has not listened within this long is given up (and the roll stops). */
const START_TIMEOUT_MS = 120_000;

export interface RollDeps {
  fork(): Worker;
  /** Marks `worker` as retired (its exit is expected) and asks it to drain and exit. */
  retire(worker: Worker): void;
  /** New workers not yet listening: the primary lets them fail without stopping the proxy. */
  rollingStarts: Set<Worker>;
  stopping(): boolean;
  log: { info(message: string): void; error(message: string): void };
}

export async function rollWorkers(old: readonly Worker[], deps: RollDeps): Promise<void> {
  let replaced = 0;
  for (const worker of old) {
    if (deps.stopping()) return;
    if (worker.isDead()) continue;
    const fresh = deps.fork();
    deps.rollingStarts.add(fresh);
    if (!(await startsServing(fresh))) {
      if (!fresh.isDead()) fresh.process.kill('SIGKILL');
      deps.log.error(`rolling restart stopped after ${replaced} of ${old.length} workers: the new worker ${fresh.process.pid} did not start serving`);
      return;
    }
    if (deps.stopping()) return;
    const gone = listenersClosed(worker);
    deps.retire(worker);
    await gone;
    replaced++;
    deps.log.info(`rolling restart: worker ${worker.process.pid} replaced by ${fresh.process.pid} (${replaced} of ${old.length})`);
  }
  deps.log.info(`rolling restart done: ${replaced} workers replaced`);
}

/** Resolves true when `worker` says it listens (cluster.ts emits 'serving'), false if it exits or takes too long. */
function startsServing(worker: Worker): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (serving: boolean) => {
      clearTimeout(timer);
      worker.off('serving', onServing);
      worker.off('exit', onExit);
      resolve(serving);
    };
    const onServing = () => done(true);
    const onExit = () => done(false);
    const timer = setTimeout(() => done(false), START_TIMEOUT_MS);
    worker.on('serving', onServing);
    worker.on('exit', onExit);
  });
}

/** Resolves once the retired worker has closed its listeners (cluster.ts emits 'retired') or has exited. */
function listenersClosed(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      worker.off('retired', done);
      worker.off('exit', done);
      resolve();
    };
    worker.on('retired', done);
    worker.on('exit', done);
  });
}
