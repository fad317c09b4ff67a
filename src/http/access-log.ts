/**
 * One structured JSON line per request at info (through the app's pino logger): method, path, status, bytes,
 * duration, the transaction id the client got (Swift's, or the proxy's own when it answered itself; the
 * proxy's is the line's `reqId` either way), the quota decision, the client's address and, for a checked
 * write, what it was checked against (quota/write-trace.ts). It is the only line a request writes at info:
 * reply-from's own per-request lines are off (forward.ts).
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { rawMethod, rawTarget, type RawAnswer } from '../server.js';
import { checkedWriteFields } from '../quota/write-trace.js';
import { exchangeOf } from '../quota/exchange.js';
import { swiftView } from '../proxy/swift-view.js';
import { plainAddress, type ClientAddresses } from './client-address.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The client's address (client-address.ts), read when the request arrives: by the time it is answered the
     * socket may be gone.
     */
    clientAddress?: string;
    /** The connection's peer, when a trusted proxy's headers named another client address. */
    peerAddress?: string;
    /** When the request arrived (performance.now()), for the duration of one whose client hung up. */
    receivedAt?: number;
    /** Its access line is written: one per request, whichever way it ended. */
    accessLogged?: boolean;
  }
}

function bytes(value: unknown): number | undefined {
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(n) ? n : undefined;
}

export interface AccessLogOptions {
  readonly clients: ClientAddresses;
  /** Who made a checked write, where the proxy knows (a tempauth login it saw). */
  readonly userOf: (request: FastifyRequest) => string | undefined;
}

/** The client's address of a request, read once (the access log, the bounds on bodies per client). */
export function clientAddressOf(request: FastifyRequest, clients: ClientAddresses): string | undefined {
  if (request.clientAddress !== undefined) return request.clientAddress;
  const client = clients.of(request.raw);
  request.clientAddress = client;
  const peer = request.raw.socket.remoteAddress;
  if (client !== peer && peer !== undefined && client !== plainAddress(peer)) request.peerAddress = plainAddress(peer);
  return client;
}

function writeLine(request: FastifyRequest, reply: FastifyReply | undefined, options: AccessLogOptions): void {
  if (request.accessLogged) return;
  request.accessLogged = true;
  const target = rawTarget(request.raw);
  const exchange = exchangeOf(request.raw);
  const queryAt = target.indexOf('?');
  const elapsedMs = reply ? reply.elapsedTime : performance.now() - (request.receivedAt ?? performance.now());
  request.log.info(
    {
      access: true,
      method: rawMethod(request.raw),
      // The path only: query strings can carry temp URL signatures.
      path: queryAt < 0 ? target : target.slice(0, queryAt),
      // 499, as nginx logs it: the client closed the connection before its answer was complete.
      status: reply ? reply.statusCode : 499,
      bytesIn: bytes(request.headers['content-length']),
      bytesOut: reply ? bytes(reply.raw.getHeader('content-length')) : undefined,
      durationMs: Math.round(elapsedMs * 1000) / 1000,
      // The id the client got; a client gone before its answer had the proxy's own as far as it got one.
      transId: reply ? reply.raw.getHeader('x-trans-id') : request.id,
      quota: exchange?.decision,
      client: request.clientAddress,
      peer: request.peerAddress,
      ...checkedWriteFields(exchange, { path: () => swiftView(request.raw).path, user: () => options.userOf(request) }),
    },
    'request',
  );
}

export function accessLog(app: FastifyInstance, options: AccessLogOptions): void {
  app.addHook('onRequest', (request, _reply, done) => {
    clientAddressOf(request, options.clients);
    request.receivedAt = performance.now();
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    writeLine(request, reply, options);
    done();
  });
  // A client that hangs up before its answer is complete: no response finishes, so onResponse never runs.
  app.addHook('onRequestAbort', (request, done) => {
    writeLine(request, undefined, options);
    done();
  });
}

/** The line of an answer the server gave before Fastify had the request (server.ts): a 431, 408 or 400. */
export function rawAccessLine(app: FastifyInstance, answer: RawAnswer): void {
  app.log.info({ access: true, method: answer.method, path: answer.path, status: answer.status, transId: answer.transId, reqId: answer.transId, client: answer.client, error: answer.error }, 'request');
}
