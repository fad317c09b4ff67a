/**
 * Webhook provider: every event is POSTed as JSON to a URL, at least once and in order. Events go to a
 * disk queue first; one delivery loop sends the oldest, removes it on a 2xx and otherwise retries it with
 * exponential backoff. One queue for all accounts keeps every account's events in order.
 */
import { createHmac } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { ConfigError } from '../config/errors.js';
import type { NotifierConfig } from '../config/load.js';
import { DiskQueue } from './disk-queue.js';
import type { QuotaEvent } from './event.js';
import type { DeliveryReport, Provider } from './provider.js';

type WebhookConfig = Extract<NotifierConfig, { type: 'webhook' }>;

/** The proxy's first signature header (`signature = legacy` or `both`): the body's HMAC, with no id or time. */
export const LEGACY_SIGNATURE_HEADER = 'x-quota-signature';

/** A refusal retrying cannot change (400, 404, 413, ...): the event is dropped, and logged, not retried forever. */
function isPermanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429;
}

/** `X-Quota-Signature`'s value: HMAC-SHA256 of the body with the shared secret, as sha256=<hex>. */
export function legacySignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Standard Webhooks' signer for a secret: a `whsec_` secret is base64 of the key (what the scheme's tools
 * issue), any other string is the key's bytes as written.
 */
export function standardSigner(secret: string): Webhook {
  return secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(secret, { format: 'raw' });
}

/**
 * The headers that identify and sign one delivery attempt. Standard Webhooks: `webhook-id` is the event's id
 * (the same on every retry, so a receiver drops duplicates), `webhook-timestamp` the attempt's time in seconds
 * (a receiver refuses old ones, so a captured delivery cannot be replayed later), and `webhook-signature` signs
 * both with the body.
 */
export function deliveryHeaders(config: Pick<WebhookConfig, 'secret' | 'signature'>, signer: Webhook | undefined, id: string, body: string, now: Date): Record<string, string> {
  const headers: Record<string, string> = {};
  if (config.signature !== 'legacy') {
    const seconds = Math.floor(now.getTime() / 1000);
    headers['webhook-id'] = id;
    headers['webhook-timestamp'] = String(seconds);
    if (signer) headers['webhook-signature'] = signer.sign(id, new Date(seconds * 1000), body);
  }
  if (config.signature !== 'standard' && config.secret) headers[LEGACY_SIGNATURE_HEADER] = legacySignature(config.secret, body);
  return headers;
}

export class WebhookProvider implements Provider {
  readonly name: string;
  private readonly agent = new Agent({ keepAliveTimeout: 10_000 });
  private pumping: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;
  private inFlight: AbortController | undefined;
  private readonly signer: Webhook | undefined;

  private constructor(
    private readonly config: WebhookConfig,
    private readonly queue: DiskQueue,
    private readonly report: DeliveryReport,
    private readonly log: FastifyBaseLogger,
  ) {
    this.name = config.name;
    this.signer = config.secret ? standardSigner(config.secret) : undefined;
  }

  static async open(config: WebhookConfig, report: DeliveryReport, log: FastifyBaseLogger): Promise<WebhookProvider> {
    let queue: DiskQueue;
    try {
      queue = await DiskQueue.open(config.queueDir, config.queueMaxBytes);
    } catch (error) {
      const { file, line, section, key } = config.queueDirPlace;
      throw new ConfigError(file, line, section, key, `cannot use ${config.queueDir} for the event queue: ${(error as Error).message}`);
    }
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
    const id = (JSON.parse(body) as { id: string }).id;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'swift-quota-proxy',
      ...deliveryHeaders(this.config, this.signer, id, body, new Date()),
    };
    if (this.config.bearerToken) headers.authorization = `Bearer ${this.config.bearerToken}`;
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
