/**
 * Webhook provider: every event is POSTed as JSON to a URL, at least once and in order. Events go to a
 * disk queue first, which the workers of a proxy and other proxies on the same volume may share; the one
 * process holding the queue's delivery lease sends the next event of all of theirs, removes it on a 2xx and
 * otherwise retries it with exponential backoff. One queue for all accounts keeps every account's events in
 * order (disk-queue.ts and queue-order.ts say which order across processes).
 */
import { createHash, createHmac } from 'node:crypto';
import type { Log } from '../log.js';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { ConfigError } from '../config/errors.js';
import type { NotifierConfig } from '../config/load.js';
import { DiskQueue } from './disk-queue.js';
import { DelivererLease } from './queue-lease.js';
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

/**
 * How the processes sharing a queue directory take turns: the deliverer's heartbeat, how long an unchanged
 * one takes to count as gone, how often the directory is read for events other processes wrote, and how long
 * an event waits for an earlier one still being written by another process (queue-lease.ts, disk-queue.ts).
 */
export interface QueueTiming {
  readonly beatMs: number;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly settleMs: number;
}

export const QUEUE_TIMING: QueueTiming = Object.freeze({ beatMs: 1000, leaseMs: 5000, pollMs: 250, settleMs: 500 });

/** What must agree between processes sharing a queue: where and how events are sent (hashed: no secret in the lease). */
function settingsFingerprint(config: WebhookConfig): string {
  const what = JSON.stringify([config.url.href, config.signature, config.secret ?? '', config.bearerToken ?? '']);
  return createHash('sha256').update(what).digest('hex').slice(0, 16);
}

export class WebhookProvider implements Provider {
  readonly name: string;
  private readonly agent = new Agent({ keepAliveTimeout: 10_000 });
  private running: Promise<void> | undefined;
  private closed = false;
  /** Ends the idle wait (an event was queued, the lease was taken, close). */
  private wakeIdle: (() => void) | undefined;
  /** Ends a retry's backoff (close only: a new event does not hurry a receiver that is down). */
  private wakeBackoff: (() => void) | undefined;
  private inFlight: AbortController | undefined;
  private readonly signer: Webhook | undefined;
  private readonly leaseTimer: NodeJS.Timeout;
  private leaseError: string | undefined;

  private constructor(
    private readonly config: WebhookConfig,
    private readonly queue: DiskQueue,
    private readonly lease: DelivererLease,
    private readonly timing: QueueTiming,
    private readonly report: DeliveryReport,
    private readonly log: Log,
  ) {
    this.name = config.name;
    this.signer = config.secret ? standardSigner(config.secret) : undefined;
    this.leaseTimer = setInterval(() => this.checkLease(), timing.beatMs).unref();
  }

  static async open(config: WebhookConfig, report: DeliveryReport, log: Log, timing: QueueTiming = QUEUE_TIMING): Promise<WebhookProvider> {
    let queue: DiskQueue;
    let lease: DelivererLease;
    try {
      queue = await DiskQueue.open(config.queueDir, config.queueMaxBytes, { settleMs: timing.settleMs });
      const onOtherSettings = (holder: { writer: string; host: string; pid: number }) =>
        log.warn({ provider: config.name, queue_dir: config.queueDir, holder }, 'webhook queue: shared with a process whose webhook settings (url, secret, signature, bearer_token) differ; while it delivers, it sends this process\'s events with its own settings');
      lease = new DelivererLease(config.queueDir, queue.writerId, { ...timing, settings: settingsFingerprint(config), onOtherSettings });
      await lease.check();
    } catch (error) {
      const { file, line, section, key } = config.queueDirPlace;
      throw new ConfigError(file, line, section, key, `cannot use ${config.queueDir} for the event queue: ${(error as Error).message}`);
    }
    const provider = new WebhookProvider(config, queue, lease, timing, report, log);
    if (lease.held && queue.depth > 0) log.info({ provider: config.name, queued: queue.depth }, 'webhook: delivering events queued before the restart');
    provider.running = provider.run();
    return provider;
  }

  enqueue(event: QuotaEvent): void {
    if (this.closed) {
      this.report(this.name, 'dropped');
      return;
    }
    this.queue.push(JSON.stringify(event), Date.parse(event.time)).then(
      (queued) => {
        if (!queued) {
          this.report(this.name, 'dropped');
          this.log.error({ provider: this.name, event: event.id, queue_bytes: this.queue.size }, 'webhook queue is full (queue_max_bytes): event dropped');
          return;
        }
        this.report(this.name, 'queued');
        this.wakeIdle?.();
      },
      (error: unknown) => {
        this.report(this.name, 'dropped');
        this.log.error({ err: error, provider: this.name, event: event.id }, 'webhook queue: cannot write the event to disk: event dropped');
      },
    );
  }

  /**
   * Events on disk waiting for delivery, counted by the process that delivers them (every process's, all of
   * them); the others answer 0, so that the sum over workers and proxies is the number of events waiting.
   */
  depth(): number {
    return this.lease.held ? this.queue.depth : 0;
  }

  private checkLease(): void {
    const before = this.lease.held;
    this.lease.check().then(
      (held) => {
        this.leaseError = undefined;
        if (held === before) return;
        this.log.info({ provider: this.name, writer: this.queue.writerId, generation: this.lease.heldGeneration }, held ? 'webhook: this process delivers the queue now' : 'webhook: another process delivers the queue now');
        this.wakeIdle?.();
      },
      (error: unknown) => {
        const message = (error as Error).message;
        if (message !== this.leaseError) this.log.error({ err: error, provider: this.name }, 'webhook queue: cannot read or renew the delivery lease');
        this.leaseError = message;
      },
    );
  }

  /** The delivery loop: while this process holds the lease, sends the queue's next event, one at a time. */
  private async run(): Promise<void> {
    let backoff = this.config.retryMinSeconds * 1000;
    let scanDue = true;
    let lastScan = Number.NEGATIVE_INFINITY;
    while (!this.closed) {
      try {
        if (!this.lease.held) {
          await this.idle(this.timing.beatMs);
          await this.queue.scan(); // keeps the queue's size (queue_max_bytes) current in every process
          continue;
        }
        // A monotonic clock: a wall-clock step back must not stop the deliverer reading other processes' files.
        if (scanDue || performance.now() - lastScan >= this.timing.pollMs) {
          lastScan = performance.now();
          await this.queue.scan();
          scanDue = false;
        }
        const next = await this.queue.peek();
        if (!next) {
          await this.idle(this.queue.depth > 0 ? Math.max(this.queue.waitMs(), 10) : this.timing.pollMs);
          scanDue = true;
          continue;
        }
        const outcome = await this.post(next.body);
        if (this.closed && outcome === 'retry') return; // stays on disk for the next start
        if (outcome === 'retry') {
          this.report(this.name, 'failed');
          await this.backoff(backoff);
          backoff = Math.min(backoff * 2, this.config.retryMaxSeconds * 1000);
          continue;
        }
        this.report(this.name, outcome === 'ok' ? 'ok' : 'failed');
        if (outcome === 'gave-up') this.report(this.name, 'dropped');
        await this.queue.remove(next.name);
        backoff = this.config.retryMinSeconds * 1000;
      } catch (error) {
        this.log.error({ err: error, provider: this.name }, 'webhook queue: cannot read the queue directory; trying again');
        await this.backoff(this.config.retryMinSeconds * 1000);
      }
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

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeIdle = done;
    });
  }

  private backoff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeBackoff = done;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.flushed(); // every event emitted so far is on disk for the next start
    clearInterval(this.leaseTimer);
    this.inFlight?.abort(new Error('proxy shutting down'));
    this.wakeIdle?.();
    this.wakeBackoff?.();
    await this.running;
    // Marked released, so that another process sharing the directory delivers at once, not after leaseMs.
    await this.lease.release().catch((error: unknown) => this.log.warn({ err: error, provider: this.name }, 'webhook queue: cannot release the delivery lease'));
    await this.agent.close();
  }
}
