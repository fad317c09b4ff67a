/**
 * Request bodies in progress: what a client holds of the proxy, and through it of Swift, while it sends one.
 *
 * - A request goes to Swift only once its body has started: a first byte has arrived (or the body has ended).
 *   The request to Swift takes one of the pooled connections to Swift for as long as the body lasts, so a
 *   client that announces a body and sends nothing would otherwise hold one until Swift's own client_timeout;
 *   ~300 such clients held all 256, and every tenant waited. Like nginx's client_body_timeout: a body that has
 *   not started, or that sends nothing, for `client_body_timeout` seconds is cut with 408 (before Swift is
 *   contacted: nothing reached it; after: the request to Swift is aborted, and Swift stores nothing of a body
 *   that did not end).
 * - Requests with a body in progress (from their head until their answer is out) are bounded per client
 *   address and per account (the one the request names): past either, 503 with Retry-After before the proxy
 *   admits the request or reads a byte of it.
 *
 * A body the proxy itself is slow to take (Swift reading slowly, the pool busy) is not the client's stall:
 * bytes waiting in the request's buffer count as progress.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { swiftView } from '../proxy/swift-view.js';
import { BUSY_RETRY_AFTER_SECONDS, type ClientBound } from './connection-bounds.js';

export interface BodyLimits {
  /** Seconds a started request may go without a byte of its body (client_body_timeout). */
  readonly bodyTimeoutSeconds: number;
  /** Bodies in progress from one client address (0: no limit). */
  readonly maxBodiesPerClient: number;
  /** Bodies in progress into one account (0: no limit). */
  readonly maxBodiesPerAccount: number;
}

interface Body {
  readonly raw: IncomingMessage;
  readonly reply: FastifyReply;
  readonly socket: Socket;
  readonly address: string;
  readonly account: string | undefined;
  /** When the clock runs: from the moment the proxy waits for the body (after any 100 Continue). */
  timed: boolean;
  lastBytes: number;
  lastProgress: number;
  /** Set while the request waits for its first byte: lets it go on to Swift. */
  waiting: (() => void) | undefined;
  cut: boolean;
  release: () => void;
}

const BODY = Symbol('swift-quota-proxy.body');
type WithBody = IncomingMessage & { [BODY]?: Body };

/** Whether the request has body bytes still to come. */
function bodyToCome(raw: IncomingMessage): boolean {
  if (raw.complete) return false;
  const length = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function increment(counts: Map<string, number>, key: string, by: 1 | -1): void {
  const next = (counts.get(key) ?? 0) + by;
  if (next > 0) counts.set(key, next);
  else counts.delete(key);
}

export type BodyRefusal = Extract<ClientBound, 'client_bodies' | 'account_bodies' | 'body_timeout'>;

export class BodyWatch {
  private readonly bodies = new Set<Body>();
  private readonly perAddress = new Map<string, number>();
  private readonly perAccount = new Map<string, number>();
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * `addressOf`: the client's address for the bound per client; behind a trusted load balancer the address it
   * forwards (client-address.ts), or every client of the balancer would share one bound.
   */
  constructor(
    private limits: BodyLimits,
    private readonly onRefused: (kind: BodyRefusal) => void = () => {},
    private readonly addressOf: (request: FastifyRequest) => string | undefined = (request) => request.raw.socket.remoteAddress,
  ) {
    this.restartSweeper();
  }

  use(limits: BodyLimits): void {
    this.limits = limits;
    this.restartSweeper();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /**
   * Counts a request whose body is still to come; false when a bound refused it (then it has been answered 503).
   * Requests without a body to come are not counted.
   */
  enter(request: FastifyRequest, reply: FastifyReply): boolean {
    const raw = request.raw as WithBody;
    if (!bodyToCome(raw)) return true;
    const address = this.addressOf(request) ?? '';
    const account = swiftView(raw).path?.account;
    const { maxBodiesPerClient, maxBodiesPerAccount } = this.limits;
    if (maxBodiesPerClient > 0 && (this.perAddress.get(address) ?? 0) >= maxBodiesPerClient) return this.busy(reply, 'client_bodies', 'too many uploads from this address');
    if (account !== undefined && maxBodiesPerAccount > 0 && (this.perAccount.get(account) ?? 0) >= maxBodiesPerAccount) return this.busy(reply, 'account_bodies', 'too many uploads into this account');
    const body: Body = { raw, reply, socket: raw.socket, address, account, timed: false, lastBytes: 0, lastProgress: 0, waiting: undefined, cut: false, release: () => {} };
    let released = false;
    body.release = () => {
      if (released) return;
      released = true;
      this.bodies.delete(body);
      increment(this.perAddress, address, -1);
      if (account !== undefined) increment(this.perAccount, account, -1);
    };
    raw[BODY] = body;
    this.bodies.add(body);
    increment(this.perAddress, address, 1);
    if (account !== undefined) increment(this.perAccount, account, 1);
    // Counted until the answer is out: the request holds its connection to Swift until then.
    reply.raw.once('close', body.release);
    return true;
  }

  /**
   * Calls `go` once the request's body has started (a byte arrived or the body ended), which is when it may
   * take a connection to Swift; a body that does not start within the timeout is answered 408 instead.
   */
  whenBodyStarts(request: FastifyRequest, go: () => void): void {
    const body = (request.raw as WithBody)[BODY];
    if (body === undefined || body.cut) return go();
    this.startClock(body);
    const { raw } = body;
    // Read already (a manifest the proxy buffered), arrived, or ended: nothing to wait for.
    if ((request.body !== undefined && request.body !== raw) || raw.complete || raw.readableLength > 0) return go();
    const onReadable = () => {
      body.waiting = undefined;
      raw.off('readable', onReadable);
      // A listener for 'readable' holds the stream still; once removed (Node settles it on the next tick), the
      // stream flows for whoever pipes it.
      setImmediate(go);
    };
    body.waiting = () => raw.off('readable', onReadable);
    raw.on('readable', onReadable);
  }

  /** Whether the request's body was cut for a stall (it has been answered 408). */
  wasCut(request: FastifyRequest): boolean {
    return (request.raw as WithBody)[BODY]?.cut === true;
  }

  private startClock(body: Body): void {
    body.timed = true;
    body.lastBytes = body.socket.bytesRead;
    body.lastProgress = Date.now();
  }

  private busy(reply: FastifyReply, kind: BodyRefusal, reason: string): false {
    this.onRefused(kind);
    reply.code(503).header('retry-after', String(BUSY_RETRY_AFTER_SECONDS)).header('connection', 'close')
      .header('content-type', 'text/plain; charset=UTF-8').send(`Service Unavailable: ${reason}\n`);
    return false;
  }

  private restartSweeper(): void {
    clearInterval(this.sweeper);
    const timeoutMs = this.limits.bodyTimeoutSeconds * 1000;
    this.sweeper = setInterval(() => this.sweep(timeoutMs), Math.min(1000, Math.max(50, timeoutMs / 8))).unref();
  }

  private sweep(timeoutMs: number): void {
    const now = Date.now();
    for (const body of this.bodies) {
      // Not yet waited for (it may be waiting for 100 Continue), or all of it has arrived.
      if (!body.timed || body.raw.complete) continue;
      const bytes = body.socket.bytesRead;
      if (bytes !== body.lastBytes || body.raw.readableLength > 0) {
        body.lastBytes = bytes;
        body.lastProgress = now;
      } else if (now - body.lastProgress >= timeoutMs) {
        this.cut(body);
      }
    }
  }

  /** 408, as Swift answers a client that stops sending its body; the request to Swift, if any, is aborted. */
  private cut(body: Body): void {
    body.cut = true;
    body.release();
    this.onRefused('body_timeout');
    const text = '<html><h1>Request Timeout</h1><p>The server has waited too long for the request to be sent by the client.</p></html>';
    const { raw, reply } = body;
    if (body.waiting) {
      // Nothing went to Swift: an answer like any other.
      body.waiting();
      body.waiting = undefined;
      reply.code(408).header('connection', 'close').header('content-type', 'text/html; charset=UTF-8').send(text);
      return;
    }
    const response = reply.raw;
    if (response.headersSent || response.writableEnded) {
      raw.destroy();
      return;
    }
    response.writeHead(408, { 'content-type': 'text/html; charset=UTF-8', 'content-length': Buffer.byteLength(text), connection: 'close' });
    // Destroying the body (once the answer is out) aborts the request to Swift, mid-body.
    response.end(text, () => raw.destroy());
  }
}
