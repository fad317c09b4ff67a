/**
 * What the notifier hands events to. `enqueue` must return at once: a provider does its delivery in the
 * background, so that a slow or failing receiver never holds up a client request.
 */
import type { QuotaEvent } from './event.js';

export interface Provider {
  readonly name: string;
  enqueue(event: QuotaEvent): void;
  /** Events accepted but not delivered yet. */
  depth(): number;
  /** Stops delivering; events not delivered by then are kept (webhook: on disk) or dropped (in memory). */
  close(): Promise<void>;
}

/** How a delivery ended, for metrics: delivered, failed (will be retried or was given up), queued, dropped. */
export type DeliveryOutcome = 'ok' | 'failed' | 'queued' | 'dropped';

export interface DeliveryReport {
  (provider: string, outcome: DeliveryOutcome): void;
}

export class DeliveryTimeoutError extends Error {
  readonly code = 'SQP_ERR_DELIVERY_TIMEOUT';
}

/** Runs `work` but gives up waiting after `ms`: a provider whose promise never settles cannot stall its queue. */
export function withTimeout<T>(work: () => Promise<T> | T, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeliveryTimeoutError(`${what} took longer than ${ms} ms`)), ms);
    Promise.resolve()
      .then(work)
      .then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
  });
}
