/**
 * Fans quota events out to every configured provider. `emit` never waits and never throws: providers queue
 * and deliver in the background, and their failures end up in logs and metrics, not in client requests.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { NotifierConfig } from '../config/load.js';
import type { Metrics } from '../metrics.js';
import { createEvent, type EventFields, type QuotaEvent } from './event.js';
import { MemoryProvider } from './memory-provider.js';
import { loadProviderModule } from './module-provider.js';
import type { DeliveryReport, Provider } from './provider.js';
import { WebhookProvider } from './webhook.js';

export class Notifier {
  private constructor(
    private readonly providers: readonly Provider[],
    private readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
  ) {
    metrics.setQueueDepthSource(() => this.depths());
  }

  /** Builds every provider; a provider module that cannot be loaded stops start-up (ConfigError). */
  static async create(configs: readonly NotifierConfig[], metrics: Metrics, log: FastifyBaseLogger): Promise<Notifier> {
    const report: DeliveryReport = (provider, outcome) => metrics.notificationDeliveries.inc({ provider, outcome });
    const providers: Provider[] = [];
    try {
      for (const config of configs) {
        const timeoutMs = config.timeoutSeconds * 1000;
        switch (config.type) {
          case 'stdout':
            providers.push(new MemoryProvider({ name: config.name, timeoutMs, report, log, send: (event) => writeLine(event) }));
            break;
          case 'module': {
            const loaded = await loadProviderModule(config);
            providers.push(new MemoryProvider({ name: config.name, timeoutMs, report, log, send: loaded.send, ...(loaded.close ? { onClose: loaded.close } : {}) }));
            break;
          }
          case 'webhook':
            providers.push(await WebhookProvider.open(config, report, log));
            break;
        }
      }
    } catch (error) {
      await Promise.allSettled(providers.map((provider) => provider.close()));
      throw error;
    }
    return new Notifier(providers, metrics, log);
  }

  get enabled(): boolean {
    return this.providers.length > 0;
  }

  emit(fields: EventFields): QuotaEvent {
    const event = createEvent(fields);
    this.metrics.notificationEvents.inc({ type: event.type });
    this.log.debug({ quota_event: event }, `quota event ${event.type}`);
    for (const provider of this.providers) {
      try {
        provider.enqueue(event);
      } catch (error) {
        this.log.error({ err: error, provider: provider.name }, 'notification provider refused an event');
      }
    }
    return event;
  }

  /** Queue depth per provider, for the gauge (read when Prometheus scrapes). */
  depths(): Array<{ provider: string; depth: number }> {
    return this.providers.map((provider) => ({ provider: provider.name, depth: provider.depth() }));
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.providers.map((provider) => provider.close()));
  }
}

function writeLine(event: QuotaEvent): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(`${JSON.stringify(event)}\n`, (error) => (error ? reject(error) : resolve()));
  });
}
