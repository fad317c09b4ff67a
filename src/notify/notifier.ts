/**
 * Fans quota events out to every configured provider. `emit` never waits and never throws: providers queue
 * and deliver in the background, and their failures end up in logs and metrics, not in client requests.
 */
import type { Log } from '../log.js';
import type { NotifierConfig } from '../config/load.js';
import type { Metrics } from '../metrics.js';
import { createEvent, type EventFields, type QuotaEvent } from './event.js';
import { MemoryProvider } from './memory-provider.js';
import { loadProviderModule } from './module-provider.js';
import type { DeliveryReport, Provider } from './provider.js';
import { WebhookProvider } from './webhook.js';

interface Running {
  readonly config: NotifierConfig;
  readonly provider: Provider;
}

export class Notifier {
  /** Events emitted while a reload swaps providers: they go out, in order, once it is done. */
  private held: QuotaEvent[] | undefined;

  private constructor(
    private running: readonly Running[],
    private readonly metrics: Metrics,
    private readonly log: Log,
  ) {
    metrics.setQueueDepthSource(() => this.depths());
  }

  /** Builds every provider; a provider that cannot start (a module that cannot load, a queue_dir it cannot write) stops start-up (ConfigError). */
  static async create(configs: readonly NotifierConfig[], metrics: Metrics, log: Log): Promise<Notifier> {
    return new Notifier(await openAll(configs, metrics, log), metrics, log);
  }

  /**
   * Runs the providers `configs` describe from now on (SIGHUP). A provider whose settings did not change keeps
   * running as it is; the others are opened before anything is closed, so that one that cannot start (ConfigError)
   * leaves the running set untouched. A new webhook that takes over a retiring one's queue directory opens only
   * once the old one has closed (two queues on one directory would deliver its events twice). No event is lost:
   * those emitted meanwhile wait and go to the new set.
   */
  async reload(configs: readonly NotifierConfig[]): Promise<void> {
    const keep = new Map(this.running.map((entry) => [settingsKey(entry.config), entry]));
    const kept = new Set<Running>();
    const plan = configs.map((config) => {
      const entry = keep.get(settingsKey(config));
      if (entry && !kept.has(entry)) {
        kept.add(entry);
        return entry;
      }
      return config;
    });
    const retiring = this.running.filter((entry) => !kept.has(entry));
    const busyDirs = new Set(retiring.flatMap((entry) => (entry.config.type === 'webhook' ? [entry.config.queueDir] : [])));
    const waitsForRetired = (config: NotifierConfig) => config.type === 'webhook' && busyDirs.has(config.queueDir);

    const opened = new Map<NotifierConfig, Running>();
    try {
      for (const item of plan) {
        if ('provider' in item || waitsForRetired(item)) continue;
        opened.set(item, { config: item, provider: await openProvider(item, this.metrics, this.log) });
      }
    } catch (error) {
      await Promise.allSettled([...opened.values()].map((entry) => entry.provider.close()));
      throw error;
    }
    this.held = [];
    try {
      await Promise.allSettled(retiring.map((entry) => entry.provider.close()));
      const next: Running[] = [];
      for (const item of plan) {
        if ('provider' in item) next.push(item);
        else if (opened.has(item)) next.push(opened.get(item)!);
        else {
          try {
            next.push({ config: item, provider: await openProvider(item, this.metrics, this.log) });
          } catch (error) {
            // Its directory worked for the provider it replaces a moment ago; logged, and the others still run.
            this.log.error({ err: error, provider: item.name }, 'notification provider could not start after the reload');
          }
        }
      }
      this.running = next;
    } finally {
      const held = this.held;
      this.held = undefined;
      for (const event of held) this.deliver(event);
    }
  }

  get enabled(): boolean {
    return this.running.length > 0;
  }

  emit(fields: EventFields): QuotaEvent {
    const event = createEvent(fields);
    this.metrics.notificationEvents.inc({ type: event.type });
    this.log.debug({ quota_event: event }, `quota event ${event.type}`);
    if (this.held) this.held.push(event);
    else this.deliver(event);
    return event;
  }

  private deliver(event: QuotaEvent): void {
    for (const { provider } of this.running) {
      try {
        provider.enqueue(event);
      } catch (error) {
        this.log.error({ err: error, provider: provider.name }, 'notification provider refused an event');
      }
    }
  }

  /** Queue depth per provider, for the gauge (read when Prometheus scrapes). */
  depths(): Array<{ provider: string; depth: number }> {
    return this.running.map(({ provider }) => ({ provider: provider.name, depth: provider.depth() }));
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.running.map(({ provider }) => provider.close()));
  }
}

async function openAll(configs: readonly NotifierConfig[], metrics: Metrics, log: Log): Promise<Running[]> {
  const running: Running[] = [];
  try {
    for (const config of configs) running.push({ config, provider: await openProvider(config, metrics, log) });
  } catch (error) {
    await Promise.allSettled(running.map(({ provider }) => provider.close()));
    throw error;
  }
  return running;
}

async function openProvider(config: NotifierConfig, metrics: Metrics, log: Log): Promise<Provider> {
  const report: DeliveryReport = (provider, outcome) => metrics.notificationDeliveries.inc({ provider, outcome });
  const timeoutMs = config.timeoutSeconds * 1000;
  switch (config.type) {
    case 'stdout':
      return new MemoryProvider({ name: config.name, timeoutMs, report, log, send: (event) => writeLine(event) });
    case 'module': {
      const loaded = await loadProviderModule(config);
      return new MemoryProvider({ name: config.name, timeoutMs, report, log, send: loaded.send, ...(loaded.close ? { onClose: loaded.close } : {}) });
    }
    case 'webhook':
      return WebhookProvider.open(config, report, log);
  }
}

/** A provider's settings, without where they were written. */
function settingsKey(config: NotifierConfig): string {
  return JSON.stringify(config, (key, value: unknown) => (/(^p|P)lace$/.test(key) ? undefined : value instanceof URL ? value.href : value));
}

function writeLine(event: QuotaEvent): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(`${JSON.stringify(event)}\n`, (error) => (error ? reject(error) : resolve()));
  });
}
