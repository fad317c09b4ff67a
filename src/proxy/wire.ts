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
 * when it serialises headers, and are applied by an undici interceptor on our own dispatcher.
 */
import { DecoratorHandler, type Dispatcher } from 'undici';

export const WIRE = Symbol('swift-quota-proxy.wire');

export interface Wire {
  /** The request target exactly as the client sent it (path and query). */
  readonly target: string;
  /** The client's method, where it is not the one the request was routed on (server.ts). */
  readonly method?: string;
  /** Receives the response's header names in Swift's spelling, lower-cased name → name. */
  onHeaderNames(names: Map<string, string>): void;
}

type HeadersWithWire = Record<string | symbol, unknown> & { [WIRE]?: Wire };

interface NewStyleHandler extends Dispatcher.DispatchHandler {
  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void;
}

// undici 7's DecoratorHandler adapts any handler to the new handler API (onResponseStart & co.); its
// typings still describe only the old one.
const ForwardingHandler = DecoratorHandler as unknown as new (handler: Dispatcher.DispatchHandler) => NewStyleHandler;

class HeaderNameRecorder extends ForwardingHandler {
  constructor(handler: Dispatcher.DispatchHandler, private readonly wire: Wire) {
    super(handler);
  }

  override onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void {
    // undici keeps the raw header list on the controller of a new-style handler.
    const raw = (controller as { rawHeaders?: Buffer[] }).rawHeaders;
    if (raw) {
      const names = new Map<string, string>();
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toString('latin1');
        names.set(name.toLowerCase(), name);
      }
      this.wire.onHeaderNames(names);
    }
    return super.onResponseStart(controller, statusCode, headers, statusMessage);
  }
}

/** The undici interceptor that applies a request's `Wire`. */
export function wireInterceptor(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const wire = (options.headers as HeadersWithWire | undefined)?.[WIRE];
    if (!wire) return dispatch(options, handler);
    // Keep the connection after a HEAD, as for any other request (undici closes it by default, for servers
    // that send a body with a HEAD answer; Swift does not).
    const reset = options.method === 'HEAD' ? false : options.reset;
    return dispatch({ ...options, path: wire.target, reset, ...(wire.method ? { method: wire.method as Dispatcher.HttpMethod } : {}) }, new HeaderNameRecorder(handler, wire));
  };
}
