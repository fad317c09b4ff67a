/**
 * A provider whose events wait in memory and go out one at a time, in order: stdout and custom modules.
 * Each send may take at most the configured timeout; one that throws or times out is counted as failed and
 * the next event goes out. Not retried: a module that wants retries or durability does them itself.
 */
import type { Log } from '../log.js';
import type { QuotaEvent } from './event.js';
import { withTimeout, type DeliveryReport, type Provider } from './provider.js';

/** Beyond this many waiting events (a provider that stopped answering), new ones are dropped and counted. */
export const MEMORY_QUEUE_LIMIT = 10_000;

export interface MemoryProviderOptions {
  name: string;
  send(event: QuotaEvent): unknown;
  timeoutMs: number;
  report: DeliveryReport;
  log: Log;
  onClose?(): unknown;
}

export class MemoryProvider implements Provider {
  readonly name: string;
  private readonly waiting: QuotaEvent[] = [];
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: MemoryProviderOptions) {
    this.name = options.name;
  }

  enqueue(event: QuotaEvent): void {
    if (this.closed || this.waiting.length >= MEMORY_QUEUE_LIMIT) {
      this.options.report(this.name, 'dropped');
      this.options.log.error({ provider: this.name, event: event.id }, 'notification provider is not keeping up: event dropped');
      return;
    }
    this.waiting.push(event);
    this.options.report(this.name, 'queued');
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  depth(): number {
    return this.waiting.length;
  }

  private async drain(): Promise<void> {
    // Start on a later tick: the request that emitted the event is not kept waiting even by a synchronous send.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let event = this.waiting[0]; event !== undefined && !this.closed; event = this.waiting[0]) {
      try {
        await withTimeout(() => this.options.send(event), this.options.timeoutMs, `provider ${this.name}`);
        this.options.report(this.name, 'ok');
      } catch (error) {
        this.options.report(this.name, 'failed');
        this.options.log.warn({ err: error, provider: this.name, event: event.id }, 'notification provider failed to take an event');
      }
      this.waiting.shift();
    }
  }

  async close(): Promise<void> {
    // Events already waiting get one timeout's worth of time to go out; then the provider stops.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.timeoutMs)))]);
    clearTimeout(timer);
    this.closed = true;
    await this.options.onClose?.();
  }
}
