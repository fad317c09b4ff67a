/**
 * The Node HTTP server under Fastify, with the two settings a Swift proxy needs that Fastify does not expose.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * Swift accepts request header lines up to 8 KiB each (`max_header_size`) and many metadata headers; Node's
 * default of 16 KiB for all headers together would refuse requests Swift takes.
 */
export const MAX_HEADER_BYTES = 256 * 1024;

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

export function createProxyServer(handler: Handler): Server {
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handler);
  // Node answers `Expect: 100-continue` itself unless someone listens for it. We route such requests
  // like any other and send `100 Continue` only once the proxy has decided to let the body come
  // (proxy/continue.ts): a client told 413 up front never sends a byte.
  server.on('checkContinue', handler);
  return server;
}
