/**
 * One structured JSON line per request (through the app's pino logger): method, path, status, bytes,
 * duration, Swift's transaction id and the quota decision.
 */
import type { FastifyInstance } from 'fastify';
import { rawMethod, rawTarget } from '../server.js';

function bytes(value: unknown): number | undefined {
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(n) ? n : undefined;
}

export function accessLog(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    const target = rawTarget(request.raw);
    const queryAt = target.indexOf('?');
    request.log.info(
      {
        access: true,
        method: rawMethod(request.raw),
        // The path only: query strings can carry temp URL signatures.
        path: queryAt < 0 ? target : target.slice(0, queryAt),
        status: reply.statusCode,
        bytesIn: bytes(request.headers['content-length']),
        bytesOut: bytes(reply.raw.getHeader('content-length')),
        durationMs: Math.round(reply.elapsedTime * 1000) / 1000,
        transId: reply.raw.getHeader('x-trans-id'),
        quota: request.quotaDecision,
        client: request.ip,
      },
      'request',
    );
  });
}
