/**
 * The HTTP edge of quota: Fastify's request meets the front doors here. For each request it picks the door
 * (doors/door.ts), makes the request's exchange and awaits the door's admission, sends the proxy's own answer
 * if the door made one, and otherwise lets the request go on to Swift with the body the door chose. When Swift
 * answers, or the request to Swift fails, it settles what the request held.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { callerToken } from '../auth/authority.js';
import { expectsContinue } from '../proxy/request-headers.js';
import { swiftView } from '../proxy/swift-view.js';
import { pickDoor, type DoorRequest } from '../doors/door.js';
import { answerCut } from '../doors/formpost/door.js';
import { answerExtract } from '../doors/bulk/door.js';
import type { QuotaCore } from '../quota/core.js';
import type { IncomingMessage } from 'node:http';
import type { Log } from '../log.js';
import type { SwiftView } from '../proxy/swift-view.js';
import { Exchange, exchangeOf, keepExchange, type BodyHead, type ExchangeEdge, type Reply } from '../quota/exchange.js';
import { afterAnswer, settle } from '../quota/settle.js';
import { refuse, reject } from '../quota/answers.js';
import { quotaHeaders } from '../quota/responses.js';
import { DeleteListRefused } from '../quota/bulk-delete.js';
import { UploadLimitError } from '../quota/upload-limiter.js';
import type { Denied } from '../quota/admission.js';
import type { BodyBuffers } from './body-buffer.js';
import { sendReply } from './replies.js';

export class QuotaHooks {
  constructor(
    private readonly core: QuotaCore,
    private readonly bodyBuffers: BodyBuffers,
  ) {}

  /**
   * Runs the request's door, if it enters one; calls `goOn` once the request may go on (or has been answered),
   * `failed` if the door threw. Requests that need no decision (most reads) go on at once, with no promise.
   */
  admit(request: FastifyRequest, reply: FastifyReply, goOn: () => void, failed: (error: Error) => void): void {
    const view = swiftView(request.raw);
    let door;
    try {
      door = pickDoor(this.core, view);
    } catch (error) {
      return failed(error as Error);
    }
    if (door === undefined) return goOn();
    const edge = new EdgeRequest(request, reply, view, this.bodyBuffers);
    const { exchange } = edge;
    keepExchange(request.raw, exchange);
    if (reply.raw.destroyed) exchange.clientGone();
    else reply.raw.once('close', () => exchange.clientGone());
    door(edge).then(() => {
      if (exchange.reply && !reply.sent) sendReply(reply, exchange.reply);
      else if (exchange.body) request.body = exchange.body;
      goOn();
    }, failed);
  }

  /** `100 Continue` for a client that waits for it, unless a door has sent it already. */
  continueUnlessSent(request: FastifyRequest, reply: FastifyReply): void {
    if (!exchangeOf(request.raw)?.continued && expectsContinue(request.headers)) reply.raw.writeContinue();
  }

  /** The exchange that follows a request to Swift, if it holds anything (forward.ts). */
  upstreamEvents(request: FastifyRequest): Exchange | undefined {
    const exchange = exchangeOf(request.raw);
    return exchange?.tracked ? exchange : undefined;
  }

  /** Swift answered; returns true when the proxy answers the client instead (a cut form, a stopped extraction). */
  onUpstreamResponse(request: FastifyRequest, reply: FastifyReply, statusCode: number, headers: Record<string, unknown>, body: Readable): boolean {
    const { core } = this;
    const exchange = exchangeOf(request.raw);
    if (!exchange) return false;
    if (exchange.extractStopped) {
      void answerExtract(core, exchange, statusCode, headers, body).then(() => sendReply(reply, exchange.reply!));
      return true;
    }
    if (exchange.cut) {
      settle(core, exchange, statusCode);
      void answerCut(core, exchange, request.log).then(() => sendReply(reply, exchange.reply!));
      return true;
    }
    if (exchange.settleAtEnd) return false; // settled when Swift's answer ends (exchange.ts)
    if (exchange.describe && statusCode >= 200 && statusCode < 300) {
      for (const [name, value] of Object.entries(quotaHeaders(exchange.describe))) reply.header(name, value);
    }
    settle(core, exchange, statusCode);
    if (statusCode < 200 || statusCode >= 300) return false;
    const transactionId = typeof headers['x-trans-id'] === 'string' ? headers['x-trans-id'] : undefined;
    afterAnswer(core, exchange, () => core.eventContext(exchange, callerToken(swiftView(request.raw).headers), transactionId));
    return false;
  }

  /** An error of the request to Swift that quota answers (a cut upload, a refused delete list); true when it did. */
  answerUpstreamError(request: FastifyRequest, reply: FastifyReply, error: unknown): boolean {
    const exchange = exchangeOf(request.raw);
    if (exchange) settle(this.core, exchange, undefined);
    if (reply.raw.writableEnded) return true; // answered already (a held write refused: interrupt)
    if (!exchange) return false;
    if (exchange.cut) {
      void answerCut(this.core, exchange, request.log).then(() => sendReply(reply, exchange.reply!));
      return true;
    }
    const cause = (error as { cause?: unknown })?.cause;
    const listCut = error instanceof DeleteListRefused ? error : cause;
    if (listCut instanceof DeleteListRefused) refuse(exchange, 400, listCut.reason);
    // An upload cut by the limiter reaches us as an upstream error: answered with the refusal.
    const cut = error instanceof UploadLimitError ? error : cause;
    if (cut instanceof UploadLimitError && !exchange.reply) reject(exchange, this.core.metrics, cut.rejection as Denied);
    if (!exchange.reply) return false;
    sendReply(reply, exchange.reply);
    return true;
  }
}

/**
 * The request as a door sees it (DoorRequest), and what the exchange asks of the client's connection: one
 * object per checked request, its methods on the prototype.
 */
class EdgeRequest implements DoorRequest, ExchangeEdge {
  readonly exchange: Exchange;
  readonly raw: IncomingMessage;
  readonly log: Log;

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    readonly view: SwiftView,
    private readonly bodyBuffers: BodyBuffers,
  ) {
    this.raw = request.raw;
    this.log = request.log;
    this.exchange = new Exchange({ method: request.method, url: request.url, id: request.id }, this);
  }


  async readBody(account: string, limit: number): Promise<BodyHead | undefined> {
    const read = await this.bodyBuffers.read(this.request, this.reply, this.exchange, account, limit);
    if (read === undefined) this.exchange.answeredAtEdge = true;
    return read;
  }

  holdBuffer(account: string, bytes: number): boolean {
    const held = this.bodyBuffers.hold(this.reply, account, bytes);
    if (!held) this.exchange.answeredAtEdge = true;
    return held;
  }

  sendContinue(): void {
    if (!expectsContinue(this.request.headers)) return;
    this.reply.raw.writeContinue();
    this.exchange.continued = true;
  }

  /** Answers a held request now, and cuts its body: a write on a grant revoked while it was held (grants.ts). */
  interrupt(answer: Reply): Promise<void> {
    const { request, reply, exchange } = this;
    return new Promise((resolve) => {
      exchange.finally(resolve);
      if (reply.raw.headersSent) return void request.raw.destroy();
      reply.raw.once('finish', () => request.raw.destroy());
      reply.raw.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)), connection: 'close' });
      reply.raw.end(answer.body);
    });
  }
}
