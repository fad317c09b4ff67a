/**
 * The Node HTTP server under Fastify, with the settings a Swift proxy needs that Fastify does not expose.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { RequestStreamRewriter } from './proxy/request-lines.js';
import type { ConnectionBounds } from './http/connection-bounds.js';
import { stampAnswer, transIdLines } from './http/trans-id.js';

/**
 * The largest request head Swift 2.30.1's proxy server reads: a request line under 8 KiB (eventlet's
 * url_length_limit) and at most 64 KiB of header lines (eventlet's MAX_TOTAL_HEADER_SIZE; each line under
 * max_header_size, 8 KiB). Node counts the target and the header names and values, which fit in both. Node's
 * default of 16 KiB would refuse requests Swift takes; anything larger, Swift refuses (400 Headers Too Large),
 * and each connection sending an unfinished head of that size holds that much of the proxy's memory.
 */
export const MAX_HEADER_BYTES = 8 * 1024 + 64 * 1024;

export interface ProxyServerOptions {
  /** Seconds a client may take to send a whole request head (client_header_timeout): then 408. */
  readonly headerTimeoutSeconds: number;
  /** The most header lines Swift reads (capabilities.ts); a head with more is refused as Swift does, 431. */
  readonly maxHeaderCount: () => number;
  /** Connections and unfinished heads, counted (connection-bounds.ts). */
  readonly bounds: ConnectionBounds;
  /** A transaction id for an answer given before Fastify has the request (trans-id.ts). */
  readonly transId: () => string;
  /** Such an answer was given: for the access log. */
  readonly answered: (answer: RawAnswer) => void;
}

/** An answer the server wrote before Fastify had the request (431 here, 400/408/431 from onClientError). */
export interface RawAnswer {
  readonly status: number;
  readonly transId: string;
  readonly client: string | undefined;
  readonly method?: string;
  readonly path?: string;
  /** Node's parser error code, for an unparsable request. */
  readonly error?: string;
}

const RAW_TARGET = Symbol('swift-quota-proxy.raw-target');
const RAW_METHOD = Symbol('swift-quota-proxy.raw-method');

/**
 * The header that carries a method Node's parser does not know past it (proxy/request-lines.ts): a name no
 * client can guess, so no client can set a method this way.
 */
const METHOD_HEADER = `x-swift-quota-proxy-method-${randomBytes(12).toString('hex')}`;

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
type WithRawTarget = IncomingMessage & { [RAW_TARGET]?: string; [RAW_METHOD]?: string };

/** The request target exactly as the client sent it, before any clean-up for the router. */
export function rawTarget(request: IncomingMessage): string {
  return (request as WithRawTarget)[RAW_TARGET] ?? request.url ?? '/';
}

/** The method the client sent: one Node's parser does not know travels under a placeholder for routing. */
export function rawMethod(request: IncomingMessage): string {
  return (request as WithRawTarget)[RAW_METHOD] ?? request.method ?? 'GET';
}

/** Takes back a method carried past Node's parser, and its header (it must not reach Swift). */
function restoreMethod(request: IncomingMessage): void {
  const method = request.headers[METHOD_HEADER];
  if (typeof method !== 'string') return;
  (request as WithRawTarget)[RAW_METHOD] = method;
  delete request.headers[METHOD_HEADER];
  const raw = request.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === METHOD_HEADER) raw.splice(i, 2);
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

/** Swift's answer to a head with more header lines than it reads (http_protocol.py). */
function refuseHeaderCount(request: IncomingMessage, response: ServerResponse, options: ProxyServerOptions): void {
  const body = '<html><h1>Request Header Fields Too Large</h1><p>Too many headers</p></html>';
  const transId = options.transId();
  stampAnswer(response, transId);
  response.writeHead(431, { 'content-type': 'text/html; charset=UTF-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
  response.end(body);
  const target = rawTarget(request);
  options.answered({ status: 431, transId, client: request.socket.remoteAddress, method: rawMethod(request), path: target.split('?')[0]! });
}

export function createProxyServer(handler: Handler, options: ProxyServerOptions): Server {
  const { bounds } = options;
  const handle: Handler = (request, response) => {
    if (!bounds.requestStarted(request.socket)) return;
    routable(request);
    restoreMethod(request);
    // rawHeaders holds name and value, each its own entry.
    if (request.rawHeaders.length > 2 * options.maxHeaderCount()) return refuseHeaderCount(request, response, options);
    handler(request, response);
  };
  const headersTimeout = options.headerTimeoutSeconds * 1000;
  const server = createServer({
    maxHeaderSize: MAX_HEADER_BYTES,
    // As Fastify sets it (app.ts): a request's body may take as long as it makes progress (body-watch.ts).
    requestTimeout: 0,
    headersTimeout,
    // Node looks for heads past their time this often (default: every 30 s, which would let one take 90 s).
    connectionsCheckingInterval: Math.min(1000, Math.max(100, headersTimeout / 4)),
  }, handle);
  bounds.attach(server);
  // Node answers `Expect: 100-continue` itself unless someone listens for it. We route such requests like
  // any other and send `100 Continue` only once the proxy has decided to let the body come (app.ts): a
  // client told 413 up front never sends a byte.
  server.on('checkContinue', handle);
  return server;
}

/** How long an answer to a request whose body broke may take before the connection is closed. */
const BROKEN_BODY_GRACE_MS = 1000;

const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * A request Node cannot parse. When it follows a request whose answer is still being written on the same
 * connection (a client that sent a body without announcing it: the body parses as garbage), that answer
 * goes out first, as Swift's would; only then is the connection closed. Node's default would answer 400
 * at once and drop the answer in progress. An answer written here carries a transaction id and gets an access
 * line (`answered`), like any other the proxy gives itself.
 */
export function clientErrorHandler(options: Pick<ProxyServerOptions, 'transId' | 'answered'>): (error: NodeJS.ErrnoException, socket: Socket) => void {
  return (error, socket) => onClientError(error, socket, options);
}

function onClientError(error: NodeJS.ErrnoException, socket: Socket, options: Pick<ProxyServerOptions, 'transId' | 'answered'>): void {
  if (takeOver(error, socket)) return;
  const inProgress = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (inProgress && !inProgress.writableFinished && inProgress.req.complete) {
    inProgress.once('close', () => socket.destroy());
    return;
  }
  if (inProgress && !inProgress.writableFinished && !inProgress.headersSent) {
    // An error in the request's own body (framing it announced but did not keep). Swift reads a body only
    // when it needs it, so it may answer the head (a refusal) regardless: the answer gets a moment to come.
    const timer = setTimeout(() => socket.destroy(), BROKEN_BODY_GRACE_MS);
    inProgress.once('close', () => {
      clearTimeout(timer);
      socket.destroy();
    });
    return;
  }
  if (socket.writable && socket.bytesWritten === 0) {
    const status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request';
    const transId = options.transId();
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n${transIdLines(transId)}Connection: close\r\n\r\n`);
    options.answered({ status: Number(status.slice(0, 3)), transId, client: socket.remoteAddress, ...(error.code ? { error: error.code } : {}) });
    return;
  }
  socket.destroy(error);
}

type ServerSocket = Socket & {
  parser?: { _consumed?: boolean; unconsume(): void; remove?(): void } | null;
  server?: Server;
  _httpMessage?: ServerResponse;
};

/**
 * A request line Node's parser refused for raw bytes >= 0x80 in its target or a method it does not know, which
 * Swift takes (request-lines.ts). No answer is in progress on the connection, so the refused request is the
 * next one: Node's parser lets go of the connection, and the connection goes back to the server through a
 * rewriter from that request on, whatever the connection carries after it (keep-alive, pipelining).
 * Connections that never send such a line never meet it.
 */
function takeOver(error: NodeJS.ErrnoException, socket: Socket): boolean {
  if (error.code !== 'HPE_INVALID_METHOD' && error.code !== 'HPE_INVALID_URL') return false;
  const conn = socket as ServerSocket;
  const { rawPacket: packet, bytesParsed: at } = error as NodeJS.ErrnoException & { rawPacket?: unknown; bytesParsed?: unknown };
  if (conn._httpMessage || !conn.parser || !conn.server || !Buffer.isBuffer(packet) || typeof at !== 'number') return false;
  // The refused request starts on the line the parser stopped in; it must start in this packet.
  const start = at === 0 ? 0 : packet.lastIndexOf(0x0a, at - 1) + 1;
  const rest = packet.subarray(start);
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+ /.test(rest.subarray(0, 64).toString('latin1'))) return false;
  const parser = conn.parser;
  if (parser._consumed) parser.unconsume();
  parser.remove?.();
  conn.parser = null;
  // Node's listeners for that parser; 'close' stays (it cleans up after the connection).
  for (const event of ['data', 'end', 'timeout', 'drain']) conn.removeAllListeners(event);
  conn.server.emit('connection', rewrittenConnection(conn, rest));
  return true;
}

/** The connection as the server reads it from now on: request heads mended, everything else as it comes. */
function rewrittenConnection(socket: Socket, first: Buffer): Duplex {
  const rewriter = new RequestStreamRewriter(METHOD_HEADER);
  const connection = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  const feed = (data: Buffer) => {
    for (const piece of rewriter.push(data)) if (!connection.push(piece)) socket.pause();
  };
  socket.on('data', feed);
  socket.on('end', () => connection.push(null));
  socket.on('close', () => connection.destroy());
  socket.on('error', (error) => connection.destroy(error));
  // What the server and the access log read of a connection.
  for (const name of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort'] as const) {
    Object.defineProperty(connection, name, { get: () => socket[name] });
  }
  Object.assign(connection, {
    setTimeout: (ms: number, callback?: () => void) => {
      socket.setTimeout(ms, callback);
      return connection;
    },
    setNoDelay: (noDelay?: boolean) => {
      socket.setNoDelay(noDelay);
      return connection;
    },
    setKeepAlive: (enable?: boolean, delay?: number) => {
      socket.setKeepAlive(enable, delay);
      return connection;
    },
  });
  socket.on('timeout', () => connection.emit('timeout'));
  feed(first);
  return connection;
}
