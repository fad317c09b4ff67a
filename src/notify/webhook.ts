/**
 * Webhook provider: every event is POSTed as JSON to a URL, at least once and in order. Events go to a
 * disk queue first; one delivery loop sends the oldest, removes it on a 2xx and otherwise retries it with
 * exponential backoff. One queue for all accounts keeps every account's events in order.
 */
import { createHmac } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Agent, request } from 'undici';
import type { NotifierConfig } from '../config/load.js';
import { DiskQueue } from './disk-queue.js';
import type { QuotaEvent } from './event.js';
import type { DeliveryReport, Provider } from './provider.js';

type WebhookConfig = Extract<NotifierConfig, { type: 'webhook' }>;

export const SIGNATURE_HEADER = 'x-quota-signature';

/** A refusal retrying cannot change (400, 404, 413, ...): the event is dropped, and logged, not retried forever. */
function isPermanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;
}

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookProvider implements Provider {
  readonly name: string;
  private readonly agent = new Agent({ keepAliveTimeout: 10_000 });
  private pumping: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private inFlight: AbortController | undefined;

  private constructor(
    private readonly config: WebhookConfig,
    private readonly queue: DiskQueue,
    private readonly report: DeliveryReport,
    private readonly log: FastifyBaseLogger,
  ) {
    this.name = config.name;
  }

  static async open(config: WebhookConfig, report: DeliveryReport, log: FastifyBaseLogger): Promise<WebhookProvider> {
    const queue = await DiskQueue.open(config.queueDir, config.queueMaxBytes);
    const provider = new WebhookProvider(config, queue, report, log);
    if (queue.depth > 0) log.info({ provider: config.name, queued: queue.depth }, 'webhook: delivering events queued before the restart');
    provider.pump();
    return provider;
  }

  enqueue(event: QuotaEvent): void {
    if (this.closed) {
      this.report(this.name, 'dropped');
      return;
    }
    this.queue.push(JSON.stringify(event)).then(
      (queued) => {
        if (!queued) {
          this.report(this.name, 'dropped');
          this.log.error({ provider: this.name, event: event.id, queue_bytes: this.queue.size }, 'webhook queue is full (queue_max_bytes): event dropped');
          return;
        }
        this.report(this.name, 'queued');
        this.pump();
      },
      (error: unknown) => {
        this.report(this.name, 'dropped');
        this.log.error({ err: error, provider: this.name, event: event.id }, 'webhook queue: cannot write the event to disk: event dropped');
      },
    );
  }

  depth(): number {
    return this.queue.depth;
  }

  private pump(): void {
    this.pumping ??= this.deliverAll()
      .catch((error: unknown) => this.log.error({ err: error, provider: this.name }, 'webhook delivery loop stopped'))
      .finally(() => {
        this.pumping = undefined;
      });
  }

  private async deliverAll(): Promise<void> {
    let backoff = this.config.retryMinSeconds * 1000;
    while (!this.closed) {
      const next = await this.queue.peek();
      if (!next) return;
      const outcome = await this.post(next.body);
      if (this.closed && outcome === 'retry') return; // stays on disk for the next start
      if (outcome === 'retry') {
        this.report(this.name, 'failed');
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.config.retryMaxSeconds * 1000);
        continue;
      }
      this.report(this.name, outcome === 'ok' ? 'ok' : 'failed');
      await this.queue.remove(next.name);
      backoff = this.config.retryMinSeconds * 1000;
    }
  }

  private async post(body: string): Promise<'ok' | 'retry' | 'gave-up'> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'swift-quota-proxy' };
    if (this.config.bearerToken) headers.authorization = `Bearer ${this.config.bearerToken}`;
    if (this.config.secret) headers[SIGNATURE_HEADER] = signature(this.config.secret, body);
    const abort = new AbortController();
    this.inFlight = abort;
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${this.config.timeoutSeconds} s`)), this.config.timeoutSeconds * 1000);
    try {
      const response = await request(this.config.url, { method: 'POST', headers, body, dispatcher: this.agent, signal: abort.signal });
      await response.body.dump();
      if (response.statusCode >= 200 && response.statusCode < 300) return 'ok';
      if (isPermanent(response.statusCode)) {
        this.log.error({ provider: this.name, status: response.statusCode, body }, 'webhook receiver refused an event for good: dropped');
        return 'gave-up';
      }
      this.log.warn({ provider: this.name, status: response.statusCode }, 'webhook receiver failed; will retry');
      return 'retry';
    } catch (error) {
      if (this.closed) return 'retry'; // aborted by close(): the event stays on disk for the next start
      this.log.warn({ provider: this.name, err: error }, 'webhook receiver unreachable; will retry');
      return 'retry';
    } finally {
      clearTimeout(timer);
      this.inFlight = undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.flushed(); // every event emitted so far is on disk for the next start
    this.inFlight?.abort(new Error('proxy shutting down'));
    this.wake?.();
    await this.pumping;
    await this.agent.close();
  }
}
