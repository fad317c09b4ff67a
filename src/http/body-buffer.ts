/**
 * Request bodies the proxy must read before it can decide: SLO manifests (SLO stores its own manifest, not the
 * body) and S3 multipart completions (which parts they list); and what it may hold of a bulk archive it reads as
 * it streams (extended headers, up to 2 MiB). Each is held in memory from the moment it is read
 * until its request ends, up to max_manifest_size (8 MiB) or s3api's 2 MiB: 30 held manifests took the proxy
 * from 128 to 367 MiB. So they share a budget, for the whole process and for one account; a request that would
 * take more than is left is answered 503 with Retry-After: before its body when it announces its length (and
 * before `100 Continue`), otherwise as soon as what it sent passes the budget. A body that stops coming for
 * client_body_timeout is answered 408.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { expectsContinue } from '../proxy/request-headers.js';
import { BUSY_RETRY_AFTER_SECONDS } from './connection-bounds.js';
import type { BodyHead } from '../doors/door.js';
import type { Exchange } from '../quota/exchange.js';

export interface BufferLimits {
  /** Bytes held for all requests together (body_buffer_bytes). */
  readonly bodyBufferBytes: number;
  /** Bytes held for one account's requests (body_buffer_account_bytes). */
  readonly bodyBufferAccountBytes: number;
  /** Seconds a body may go without a byte (client_body_timeout). */
  readonly bodyTimeoutSeconds: number;
}

/** Bytes taken from the budgets for one request; given back all at once when it ends. */
class Charge {
  taken = 0;
  constructor(private readonly budgets: BodyBuffers, readonly account: string) {}

  /** Takes `bytes` more, or nothing if that passes a budget. */
  take(bytes: number): boolean {
    if (!this.budgets.reserve(this.account, bytes)) return false;
    this.taken += bytes;
    return true;
  }

  giveBack(): void {
    this.budgets.reserve(this.account, -this.taken);
    this.taken = 0;
  }
}

type ReadEnd = 'complete' | 'over-limit' | 'over-budget' | 'timeout';

export class BodyBuffers {
  private total = 0;
  private readonly perAccount = new Map<string, number>();

  constructor(private limits: BufferLimits, private readonly onRefused: (bound: 'body_buffer' | 'body_timeout') => void = () => {}) {}

  use(limits: BufferLimits): void {
    this.limits = limits;
  }

  /** Bytes held now, in all and for `account`. */
  held(account?: string): number {
    return account === undefined ? this.total : (this.perAccount.get(account) ?? 0);
  }

  /** Adds `bytes` (negative: gives back) if both budgets have room; false, changing nothing, if not. */
  reserve(account: string, bytes: number): boolean {
    const accountHeld = this.perAccount.get(account) ?? 0;
    if (bytes > 0 && (this.total + bytes > this.limits.bodyBufferBytes || accountHeld + bytes > this.limits.bodyBufferAccountBytes)) return false;
    this.total += bytes;
    if (accountHeld + bytes > 0) this.perAccount.set(account, accountHeld + bytes);
    else this.perAccount.delete(account);
    return true;
  }

  /**
   * Takes `bytes` for `account` until the request ends, for a body the proxy reads as it streams but may hold
   * part of (a bulk archive's extended headers); false when a budget has no room (then it has been answered 503).
   */
  hold(reply: FastifyReply, account: string, bytes: number): boolean {
    const charge = new Charge(this, account);
    if (!charge.take(bytes)) {
      this.refuse(reply, 'over-budget');
      return false;
    }
    reply.raw.once('close', () => charge.giveBack());
    return true;
  }

  /**
   * Reads the first `limit` bytes of the request's body for `account` (sending `100 Continue` first if the client
   * waits for it), held under the budgets until the request ends. Undefined when the request was answered
   * instead (503 past a budget, 408 for a stalled body). Rejects if the client goes away.
   */
  async read(request: FastifyRequest, reply: FastifyReply, exchange: Exchange, account: string, limit: number): Promise<BodyHead | undefined> {
    const charge = new Charge(this, account);
    reply.raw.once('close', () => charge.giveBack());
    const declared = Number(request.headers['content-length']);
    // A body that says how long it is takes its room before the client is asked to send it.
    if (Number.isSafeInteger(declared) && declared > 0 && !charge.take(Math.min(declared, limit))) return this.refuse(reply, 'over-budget');
    if (expectsContinue(request.headers)) {
      reply.raw.writeContinue();
      exchange.continued = true;
    }
    const chunks: Buffer[] = [];
    const end = await this.readChunks(request.raw, limit, chunks, charge);
    if (end === 'over-budget' || end === 'timeout') return this.refuse(reply, end);
    const read = Buffer.concat(chunks);
    if (end === 'complete') return { head: read, complete: true, body: Readable.from([read]) };
    const body = new PassThrough();
    body.write(read);
    request.raw.pipe(body);
    request.raw.resume();
    return { head: read.subarray(0, limit), complete: false, body };
  }

  /** Reads into `chunks` until the body ends, passes `limit`, passes the budget or stalls. */
  private readChunks(raw: IncomingMessage, limit: number, chunks: Buffer[], charge: Charge): Promise<ReadEnd> {
    const timeoutMs = this.limits.bodyTimeoutSeconds * 1000;
    let length = 0;
    return new Promise<ReadEnd>((resolve, reject) => {
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      const finish = (end: ReadEnd) => {
        cleanup();
        if (end !== 'complete') raw.pause();
        resolve(end);
      };
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        // Counted as it comes past what was taken up front (a chunked body, or one longer than it said).
        if (length > charge.taken && !charge.take(Math.min(length, limit) - charge.taken)) return finish('over-budget');
        if (length > limit) return finish('over-limit');
        timer.refresh();
      };
      const onEnd = () => finish('complete');
      const onError = () => {
        cleanup();
        reject(new Error('the client went away before its body was read'));
      };
      const cleanup = () => {
        clearTimeout(timer);
        raw.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onError);
      };
      raw.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onError);
    });
  }

  private refuse(reply: FastifyReply, why: 'over-budget' | 'timeout'): undefined {
    this.onRefused(why === 'timeout' ? 'body_timeout' : 'body_buffer');
    reply.header('connection', 'close').header('content-type', 'text/plain; charset=UTF-8');
    if (why === 'timeout') {
      reply.code(408).send('Request Timeout: the body stopped coming\n');
    } else {
      reply.code(503).header('retry-after', String(BUSY_RETRY_AFTER_SECONDS)).send('Service Unavailable: too many request bodies held in memory; try again\n');
    }
    return undefined;
  }
}
