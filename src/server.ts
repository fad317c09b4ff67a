/**
 * The Node HTTP server under Fastify, with the settings a Swift proxy needs that Fastify does not expose.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Swift accepts request header lines up to 8 KiB each (`max_header_size`) and many metadata headers; Node's
 * default of 16 KiB for all headers together would refuse requests Swift takes.
 */
export const MAX_HEADER_BYTES = 256 * 1024;

const RAW_TARGET = Symbol('swift-quota-proxy.raw-target');

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
type WithRawTarget = IncomingMessage & { [RAW_TARGET]?: string };

/** The request target exactly as the client sent it, before any clean-up for the router. */
export function rawTarget(request: IncomingMessage): string {
  return (request as WithRawTarget)[RAW_TARGET] ?? request.url ?? '/';
}

/**
 * Fastify's router refuses (400) a target it cannot percent-decode, such as `%FF`; Swift answers those
 * itself (412 Invalid UTF8). The router only needs something routable: it gets the target with every `%`
 * escaped, and the original is kept for Swift.
 */
function routable(request: IncomingMessage): void {
  const url = request.url ?? '/';
  if (!url.includes('%')) return;
  try {
    decodeURI(url);
  } catch {
    (request as WithRawTarget)[RAW_TARGET] = url;
    request.url = url.replaceAll('%', '%25');
  }
}

export function createProxyServer(handler: Handler): Server {
  const handle: Handler = (request, response) => {
    routable(request);
    handler(request, response);
  };
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, handle);
  // Node answers `Expect: 100-continue` itself unless someone listens for it. We route such requests like
  // any other and send `100 Continue` only once the proxy has decided to let the body come (app.ts): a
  // client told 413 up front never sends a byte.
  server.on('checkContinue', handle);
  return server;
}

const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * A request Node cannot parse. When it follows a request whose answer is still being written on the same
 * connection (a client that sent a body without announcing it: the body parses as garbage), that answer
 * goes out first, as Swift's would; only then is the connection closed. Node's default would answer 400
 * at once and drop the answer in progress.
 */
export function onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  const inProgress = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  // Only when that request was whole: an error in its own body (the client hung up half-way) ends it now.
  if (inProgress && !inProgress.writableFinished && inProgress.req.complete) {
    inProgress.once('close', () => socket.destroy());
    return;
  }
  if (socket.writable && socket.bytesWritten === 0) {
    const status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    return;
  }
  socket.destroy(error);
}
