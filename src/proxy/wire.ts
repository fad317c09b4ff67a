/**
 * Keeps what Swift and its clients put on the wire as it was, where reply-from and undici would change it.
 *
 * - The request target: reply-from rebuilds it with WHATWG `new URL()` and http-proxy refuses paths with
 *   `..` segments, a leading `//` or bad percent-encoding (400). Those checks protect a proxy that maps a
 *   path prefix onto an upstream; here every path goes to the same Swift, and Swift itself answers such
 *   paths (404 for `//v1/...`, 412 for invalid UTF-8, a stored object for `a/../b`). So the raw target the
 *   client sent is sent on, byte for byte.
 * - The method: one Node's parser does not know reaches the server under a placeholder (server.ts).
 * - Response header names: undici lower-cases them; Swift sends `X-Object-Meta-Color` and some clients
 *   (Swift's own functional tests among them) compare names case-sensitively.
 *
 * Both travel through reply-from inside the request headers object under a symbol, which undici ignores
 * when it serialises headers, and are applied by our own dispatcher (WireDispatcher).
 */
import { Dispatcher } from 'undici';

export const WIRE = Symbol('swift-quota-proxy.wire');

export interface Wire {
  /** The request target exactly as the client sent it (path and query). */
  readonly target: string;
  /** The client's method, where it is not the one the request was routed on (server.ts). */
  readonly method: string | undefined;
  /**
   * Receives the response's raw header list (name, value, name, value, ...: the names in Swift's spelling), read
   * when the answer is copied to the client (forward.ts) rather than turned into a map for every response.
   */
  onRawHeaders(headers: readonly Buffer[]): void;
  /** Follows the request's exchange with Swift, where the proxy holds something until Swift has answered. */
  readonly events: UpstreamEvents | undefined;
}

/** What happens to a request on its way to Swift and back, as the dispatcher sees it (not the client). */
export interface UpstreamEvents {
  /** The request is about to be sent; false: it must not be (the client has gone, and what it held is given back). */
  dispatching(): boolean;
  /** Some of the request body has been written to Swift (its head goes with the first bytes). */
  bodyStarted(): void;
  /** The whole request body has been written to Swift. */
  bodySent(): void;
  /** Swift's answer began (a final status). */
  answered(statusCode: number): void;
  /** Swift's answer has been read to its end. */
  answerEnded(): void;
  /** The request to Swift failed (before or during the answer). */
  failed(): void;
}

/** The error a request the proxy would not send fails with (its client had gone). */
export class NotSentError extends Error {
  override name = 'NotSentError';
}

type HeadersWithWire = Record<string | symbol, unknown> & { [WIRE]?: Wire };

/**
 * Passes every event on to the request's own handler, handing the response's raw header list on the way.
 * Written against undici's handler API that its HTTP/1.1 client and its `request()` both speak (onHeaders with
 * the raw header list), so nothing is converted between handler APIs on the way: an interceptor added with
 * `compose()` would put two converters around each request (the raw headers turned into an object and back).
 */
class HeaderNameRecorder implements Dispatcher.DispatchHandler {
  constructor(private readonly handler: Dispatcher.DispatchHandler, private readonly wire: Wire) {}

  onConnect(abort: (err?: Error) => void, context?: object): void {
    (this.handler.onConnect as ((abort: (err?: Error) => void, context?: object) => void) | undefined)?.call(this.handler, abort, context);
  }

  onError(error: Error): void {
    this.wire.events?.failed();
    this.handler.onError?.(error);
  }

  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void {
    this.handler.onUpgrade?.(statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.handler.onResponseStarted?.();
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    this.wire.onRawHeaders(headers);
    if (statusCode >= 200) this.wire.events?.answered(statusCode);
    return this.handler.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
  }

  onRequestSent(): void {
    this.wire.events?.bodySent();
    (this.handler as { onRequestSent?: () => void }).onRequestSent?.();
  }

  onData(chunk: Buffer): boolean {
    return this.handler.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    this.wire.events?.answerEnded();
    this.handler.onComplete?.(trailers);
  }

  // Typed by undici as (chunkSize, totalBytesSent); its client calls it with the chunk.
  onBodySent(...args: [number, number]): void {
    this.wire.events?.bodyStarted();
    this.handler.onBodySent?.(...args);
  }
}

/**
 * The dispatcher every request to Swift goes through: applies a request's `Wire`, and leaves requests without
 * one (the proxy's own) as they are.
 */
export class WireDispatcher extends Dispatcher {
  constructor(private readonly inner: Dispatcher) {
    super();
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const wire = (options.headers as HeadersWithWire | undefined)?.[WIRE];
    if (!wire) return this.inner.dispatch(options, handler);
    if (wire.events && !wire.events.dispatching()) {
      queueMicrotask(() => handler.onError?.(new NotSentError('the client went away before the request was sent to Swift')));
      return true;
    }
    // Keep the connection after a HEAD, as for any other request (undici closes it by default, for servers
    // that send a body with a HEAD answer; Swift does not).
    // The options object is reply-from's, made for this one dispatch: changed in place rather than copied, so
    // every forwarded request reaches undici's request constructor in one shape (a spread copy's shape varies
    // with the fields present, which makes each of the constructor's ~25 field reads a slow lookup).
    const forwarded = options as { -readonly [K in keyof Dispatcher.DispatchOptions]: Dispatcher.DispatchOptions[K] };
    if (forwarded.method === 'HEAD') forwarded.reset = false;
    forwarded.path = wire.target;
    if (wire.method) forwarded.method = wire.method as Dispatcher.HttpMethod;
    return this.inner.dispatch(forwarded, new HeaderNameRecorder(handler, wire));
  }

  override close(): Promise<void> {
    return this.inner.close();
  }

  override destroy(): Promise<void> {
    return this.inner.destroy();
  }
}
