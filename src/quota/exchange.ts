/**
 * One checked request, as far as quota goes: what it holds, how it is settled, and what the proxy answers in
 * Swift's place. One object per request, made by the HTTP edge when a door admits the request, kept on Node's
 * request under a symbol (as proxy/swift-view.ts keeps its view), and nothing of it on Fastify's request.
 *
 * What a request holds (reservations, pins, versioning holds) is held until Swift has answered the write, or
 * until the request to Swift has failed, or, if it never went to Swift, until the client has gone: never on
 * the client's word alone. A client can send its whole body and leave while Swift is still at work (validating
 * a manifest, extracting an archive); the proxy's request goes on, and so does the hold.
 *
 * The end comes from the dispatcher that carries the request to Swift (proxy/wire.ts), not from the client's
 * connection. Only a request that holds something follows the dispatcher (`tracked`); the rest are settled by
 * Swift's answer alone, and cost nothing more.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { UpstreamEvents } from '../proxy/wire.js';
import type { SwiftAnswer } from '../auth/authority.js';
import type { PersistedQuotaState } from '../swift/quota-metadata.js';
import type { Limits } from '../config/quota-levels.js';
import type { Reservation } from './ledger/ledger.js';
import type { Denied } from './admission.js';
import type { ObjectRef } from './intent.js';
import type { Scope } from './watch.js';

/** How an exchange ended. */
export type ExchangeEnd =
  /** Swift answered with this status (at the end of its answer's body, for writes Swift reports in the body). */
  | { readonly kind: 'answered'; readonly status: number }
  /** The request to Swift failed; with the whole body sent, Swift may have done the write. */
  | { readonly kind: 'failed'; readonly bodySent: boolean }
  /** The client went away before the request was sent to Swift: Swift never sees it. */
  | { readonly kind: 'abandoned' };

/** An answer the proxy gives in Swift's place, worded by a door's dialect (doors/dialect.ts). */
export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Buffer;
}

/** The first bytes of a body a door had to read to decide, and the whole body to send on in its place. */
export interface BodyHead {
  /** The first `limit` bytes of the body (all of it when `complete`). */
  readonly head: Buffer;
  /** The body ended within the limit. */
  readonly complete: boolean;
  /** The whole body to send on in the request's place: the bytes read, then the rest. */
  readonly body: Readable;
}

/** Whose wording the proxy's own answers take: Swift's text, or s3api's XML. */
export type Dialect = 'swift' | 's3';

/** Why a form upload is cut: a refusal of Swift's own (the form's signature), or a quota. */
export type FormRefusal = { readonly answer: SwiftAnswer } | { readonly decision: Denied };

/** What the exchange asks of the HTTP edge. */
export interface ExchangeEdge {
  /** Answers a held request now, while it is still on its way (a revoked grant), and cuts its body. */
  interrupt(reply: Reply): Promise<void>;
}

/** The request line, for quota events and the access log. */
export interface RequestLine {
  readonly method: string;
  readonly url: string;
  readonly id: string;
}

export class Exchange implements UpstreamEvents {
  // ---- what the request holds, and how it settles ----

  /** The reservations it holds: one write, each file of a form, each member of an archive. */
  readonly held: Reservation[] = [];
  /**
   * Swift may have stored some of the request's writes whatever it answers (a form stores each file as it
   * arrives): what was held is counted as written, and Swift's usage read afresh settles it.
   */
  partial = false;
  /** Keys whose cached usage is wrong once Swift has done this request. */
  readonly invalidates: string[] = [];
  /** Only this status commits (a new container: Swift answers 202 to a PUT of an existing one). */
  commitOnlyOn: number | undefined;
  /** Quota headers added to a successful HEAD or GET. */
  describe: { level: string; limits: Limits; soft: Limits; container: boolean } | undefined;
  /** The scope whose usage this request changes, watched against soft limits once Swift has answered. */
  watched: { scope: Scope; persisted: PersistedQuotaState | undefined } | undefined;
  /** A delete: usage went down in these scopes (account and/or container), by an amount only Swift knows. */
  shrinks: { account: string; container?: string } | undefined;
  /** The proxy's own metadata, or a container's versioning, changed: forget what was cached of it. */
  readonly forgets: string[] = [];
  /** An account whose level this request changes: its soft-limit episodes are looked at again once Swift took it. */
  levelChanged: string | undefined;
  /**
   * Scopes every process reads again once Swift took this request: their limits changed (a level, an override,
   * container_quotas), or a container was made or deleted (a reading of it may name another storage policy, or
   * none).
   */
  readonly rereadEverywhere: string[] = [];
  /** The level this request gives an account (undefined: removes it), recorded once Swift took it (account-registry.ts). */
  levelSet: { account: string; level: string | undefined } | undefined;
  /** A form upload was cut (formpost.ts): Swift's answer is replaced with this refusal, its partial file removed. */
  cut: { refusal: FormRefusal; partial: ObjectRef | undefined; unknownPartial: boolean } | undefined;
  /** A bulk extraction stopped before a file past a limit: Swift's answer gets that refusal added. */
  extractStopped: { path: string; decision: Denied } | { path: string; reason: string } | undefined;
  /**
   * Swift answers before it has done the write (a manifest with `heartbeat=on` answers 202 at once and reports
   * in the body): the request is settled when the answer ends, as a write that may have happened.
   */
  settleAtEnd = false;
  /** Settled already (by the end of the exchange, or by Swift's answer for requests that hold nothing). */
  settled = false;
  private unpins: Array<() => void> = [];

  // ---- what the proxy answers, and logs ----

  dialect: Dialect = 'swift';
  /** What was decided, for the access log: admitted, rejected:<kind>, refused:<status>, unchecked. */
  decision: string | undefined;
  /** The quota refusal answered, for the access log's details (write-trace.ts). */
  refusal: Denied | undefined;
  /** The proxy's own answer, in Swift's place: the request does not go on. */
  reply: Reply | undefined;
  /** The edge answered already (a body past its buffer budget, or stalled). */
  answeredAtEdge = false;
  /** `100 Continue` has been sent (the door had to read the body to decide). */
  continued = false;
  /** What goes to Swift in place of the client's body (a limiter, a filtered archive, a body read ahead). */
  body: Readable | undefined;

  // ---- its exchange with Swift ----

  private phase: 'waiting' | 'sent' | 'answering' | 'ended' = 'waiting';
  private tracking = false;
  private clientClosed = false;
  private sentWhole = false;
  private started = false;
  private onRefused: (() => void) | undefined;
  private status = 0;
  private readonly whenEnded: Array<() => void> = [];
  private ended: (end: ExchangeEnd) => void = () => {};

  constructor(
    readonly line: RequestLine,
    private readonly edge: ExchangeEdge,
  ) {}

  /** The request does not go on to Swift: the proxy has answered it (or is about to). */
  get answeredHere(): boolean {
    return this.reply !== undefined || this.answeredAtEdge;
  }

  /** Whether it follows the request to Swift (it holds, or waits on, something). */
  get tracked(): boolean {
    return this.tracking;
  }

  /**
   * From now on, the request holds something until its exchange with Swift ends; `ended` settles it. Made so
   * when it first holds something: it ends when Swift has answered, when the request to Swift fails, or when the
   * client goes before the request was sent.
   */
  track(ended: (end: ExchangeEnd) => void): this {
    if (this.tracking) return this;
    this.tracking = true;
    this.ended = ended;
    if (this.clientClosed) queueMicrotask(() => this.abandonIfWaiting());
    return this;
  }

  /**
   * The client's connection closed (the edge says so, for every exchange): the end, if the request holds
   * something and has not gone to Swift (then Swift's answer is the end).
   */
  clientGone(): void {
    this.clientClosed = true;
    if (this.tracking) this.abandonIfWaiting();
  }

  private abandonIfWaiting(): void {
    if (this.phase === 'waiting') this.end({ kind: 'abandoned' });
  }

  get over(): boolean {
    return this.phase === 'ended';
  }

  /** Runs `release` when the exchange ends (at once if it has). */
  finally(release: () => void): void {
    if (this.phase === 'ended') release();
    else this.whenEnded.push(release);
  }

  /** Runs `release` when the request is settled: Swift has answered, or the exchange ended without an answer. */
  unpinOnSettle(release: () => void): void {
    this.unpins.push(release);
  }

  /** Runs what waits for the settlement (once). */
  unpin(): void {
    for (const release of this.unpins.splice(0)) release();
  }

  /** Runs `refused` if Swift answers 401 or 403 (it did not authorise the request). */
  whenRefused(refused: () => void): void {
    this.onRefused = refused;
  }

  /** Answers the held request now (a revoked grant); resolves once what it held is given back. */
  interrupt(reply: Reply): Promise<void> {
    return this.edge.interrupt(reply);
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
    if (this.settleAtEnd) this.phase = 'answering';
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

const EXCHANGE = Symbol('swift-quota-proxy.exchange');
type WithExchange = IncomingMessage & { [EXCHANGE]?: Exchange };

/** Keeps the request's exchange on Node's request. */
export function keepExchange(request: IncomingMessage, exchange: Exchange): void {
  (request as WithExchange)[EXCHANGE] = exchange;
}

/** The request's exchange, when a door looked at it. */
export function exchangeOf(request: IncomingMessage): Exchange | undefined {
  return (request as WithExchange)[EXCHANGE];
}
