/**
 * One admitted request's exchange with Swift, as far as quota goes: when it ends, and how. What a request holds
 * (reservations, pins, versioning holds) is held until Swift has answered the write, or until the request to
 * Swift has failed, or, if it never went to Swift, until the client has gone: never on the client's word alone.
 * A client can send its whole body and leave while Swift is still at work (validating a manifest, extracting an
 * archive); the proxy's request goes on, and so does the hold.
 *
 * The events come from the dispatcher that carries the request to Swift (proxy/wire.ts), not from the client's
 * connection.
 */
import type { UpstreamEvents } from '../proxy/wire.js';
import type { Reservation } from './ledger/ledger.js';

/** How an exchange ended. */
export type ExchangeEnd =
  /** Swift answered with this status (at the end of its answer's body, for writes Swift reports in the body). */
  | { readonly kind: 'answered'; readonly status: number }
  /** The request to Swift failed; with the whole body sent, Swift may have done the write. */
  | { readonly kind: 'failed'; readonly bodySent: boolean }
  /** The client went away before the request was sent to Swift: Swift never sees it. */
  | { readonly kind: 'abandoned' };

export class Exchange implements UpstreamEvents {
  private phase: 'waiting' | 'sent' | 'answering' | 'ended' = 'waiting';
  private sentWhole = false;
  private started = false;
  private onRefused: (() => void) | undefined;
  private status = 0;
  private readonly whenEnded: Array<() => void> = [];
  /** What the request holds until the exchange ends (also while its admission is still under way). */
  readonly reservations: Reservation[] = [];

  /**
   * `readsToEnd`: the write is done only when Swift's answer ends (SLO with heartbeat, bulk, S3 completions
   * answer at once and report in the body). `ended` settles what the request holds.
   */
  constructor(
    private readonly readsToEnd: () => boolean,
    private readonly ended: (end: ExchangeEnd) => void,
  ) {}

  get over(): boolean {
    return this.phase === 'ended';
  }

  /** Runs `release` when the exchange ends (at once if it has). */
  finally(release: () => void): void {
    if (this.phase === 'ended') release();
    else this.whenEnded.push(release);
  }

  /** Runs `refused` if Swift answers 401 or 403 (it did not authorise the request). */
  whenRefused(refused: () => void): void {
    this.onRefused = refused;
  }

  /** The client's connection closed: the end, unless the request has gone to Swift (then Swift's answer is). */
  clientGone(): void {
    if (this.phase === 'waiting') this.end({ kind: 'abandoned' });
  }

  // ---- UpstreamEvents (the dispatcher) ----

  dispatching(): boolean {
    if (this.phase !== 'waiting') return false;
    this.phase = 'sent';
    return true;
  }

  bodySent(): void {
    this.sentWhole = true;
  }

  bodyStarted(): void {
    this.started = true;
  }

  /**
   * Whether Swift has seen the request: its head goes out with the first bytes of its body (or with its end, for
   * an empty one), so a client holding its body back has not been seen by Swift, nor authorised by it.
   */
  get reachedSwift(): boolean {
    return this.started || this.sentWhole || this.phase === 'answering' || (this.phase === 'ended' && this.status !== 0);
  }

  answered(status: number): void {
    if (this.phase !== 'sent') return;
    this.status = status;
    if (status === 401 || status === 403) this.onRefused?.();
    if (this.readsToEnd()) this.phase = 'answering';
    else this.end({ kind: 'answered', status });
  }

  get keepsReading(): boolean {
    return this.phase === 'answering';
  }

  answerEnded(): void {
    if (this.phase === 'answering') this.end({ kind: 'answered', status: this.status });
  }

  failed(): void {
    if (this.phase === 'ended') return;
    // Swift had started to answer a write it reports in the body: it may have done some or all of it.
    const bodySent = this.sentWhole || this.phase === 'answering';
    this.end({ kind: 'failed', bodySent });
  }

  private end(end: ExchangeEnd): void {
    this.phase = 'ended';
    this.ended(end);
    for (const release of this.whenEnded.splice(0)) release();
  }
}
