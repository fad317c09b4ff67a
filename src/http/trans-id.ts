/**
 * Transaction ids as Swift makes them (catch_errors / utils.generate_trans_id): `tx`, 21 random hex digits, `-`,
 * the time in seconds as 10 hex digits, then a suffix. Every request gets one as Fastify's request id (so every
 * log line of the request carries it as `reqId`), and the answers the proxy gives itself carry it as
 * X-Trans-Id and X-Openstack-Request-Id, as Swift's do. Answers Swift gave keep Swift's own: its headers,
 * copied onto the answer (proxy/forward.ts), replace the proxy's.
 *
 * Random, not counted: ids stay unique across workers, proxies and restarts (84 random bits; Swift's have 80).
 * The proxy's id is not sent to Swift (no X-Trans-Id-Extra): Swift would append it to the X-Trans-Id clients
 * see, and a client's own X-Trans-Id-Extra would no longer fit in the 32 characters Swift keeps of it. The
 * access line pairs the two ids instead (`reqId` the proxy's, `transId` the one the client got).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';

/** Swift's spellings. */
const TRANS_ID = 'X-Trans-Id';
const REQUEST_ID = 'X-Openstack-Request-Id';

/** Random bytes drawn a pool at a time: one system call for ~370 ids. */
const POOL_BYTES = 4096;
/** 21 hex digits take 11 bytes (the 22nd digit is dropped). */
const ID_BYTES = 11;
let pool = randomBytes(POOL_BYTES);
let poolAt = 0;
let epochSecond = -1;
let epochHex = '';

/** A new id: 21 random hex digits (Swift takes uuid4's first 21) and the time's 10 hex digits, kept per second. */
export function newTransId(suffix: string, nowMs = Date.now()): string {
  if (poolAt + ID_BYTES > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  const random = pool.toString('hex', poolAt, poolAt + ID_BYTES);
  poolAt += ID_BYTES;
  const second = Math.floor(nowMs / 1000);
  if (second !== epochSecond) {
    epochSecond = second;
    epochHex = second.toString(16).padStart(10, '0');
  }
  return `tx${random.slice(0, 21)}-${epochHex}${suffix}`;
}

/** Whether an id is one of the proxy's own (ends with its suffix), for a reader of logs or tests. */
export function isOwnTransId(id: unknown, suffix: string): boolean {
  return typeof id === 'string' && suffix !== '' && id.startsWith('tx') && id.endsWith(suffix);
}

/** Puts an id on an answer not yet sent; headers set later (Swift's, or a refusal Swift gave) replace it. */
export function stampAnswer(response: ServerResponse, id: string): void {
  if (response.headersSent) return;
  response.setHeader(TRANS_ID, id);
  response.setHeader(REQUEST_ID, id);
}

/** The header lines for an answer written straight on a socket (server.ts, connection-bounds.ts). */
export function transIdLines(id: string): string {
  return `${TRANS_ID}: ${id}\r\n${REQUEST_ID}: ${id}\r\n`;
}

/** The suffix in force (a reload may change it); one holder for every server of the process. */
export class TransIds {
  constructor(private suffix: string) {}

  use(suffix: string): void {
    this.suffix = suffix;
  }

  get currentSuffix(): string {
    return this.suffix;
  }

  readonly next = (): string => newTransId(this.suffix);

  /** Every answer of `app` carries its request's id, unless a header set later replaces it. */
  stamp(app: FastifyInstance): void {
    app.addHook('onRequest', (request, reply, done) => {
      stampAnswer(reply.raw, request.id);
      done();
    });
  }
}
