/**
 * One structured JSON line per request at info (through the app's pino logger): method, path, status, bytes,
 * duration, Swift's transaction id, the quota decision and the client's address. It is the only line a request
 * writes at info: reply-from's own per-request lines are off (forward.ts).
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { rawMethod, rawTarget } from '../server.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The client's address, read when the request arrives: by the time it is answered the socket may be gone. */
    clientAddress?: string;
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

function writeLine(request: FastifyRequest, reply: FastifyReply | undefined): void {
  if (request.accessLogged) return;
  request.accessLogged = true;
  const target = rawTarget(request.raw);
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
      transId: reply?.raw.getHeader('x-trans-id'),
      quota: request.quotaDecision,
      client: request.clientAddress,
    },
    'request',
  );
}

export function accessLog(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    request.clientAddress = request.raw.socket.remoteAddress;
    request.receivedAt = performance.now();
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    writeLine(request, reply);
    done();
  });
  // A client that hangs up before its answer is complete: no response finishes, so onResponse never runs.
  app.addHook('onRequestAbort', (request, done) => {
    writeLine(request, undefined);
    done();
  });
}
