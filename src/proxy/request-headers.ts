/**
 * The headers Swift gets for a client's request. Pure.
 *
 * They are built from the request as Swift reads it (swift/request.ts): one header per name in Swift's terms,
 * holding what eventlet would have joined from every spelling. So no spelling reaches Swift that the proxy did
 * not read, and the proxy's own changes (a header it sets or removes) cannot be undone by another spelling.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { SwiftHeaders } from '../swift/request.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) belong to the client's connection, not to Swift's. undici also refuses
 * some of them outright (`Expect` → "expect header not supported", `Keep-Alive`/`Transfer-Encoding` → invalid
 * header) and frames the upstream body itself. `Expect: 100-continue` is answered by this proxy
 * (see server.ts), after its own checks.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']);

export interface ForwardContext {
  /** The Swift proxy's host, for a client that sent no Host. */
  upstreamHost: string;
  remoteAddress: string | undefined;
}

export function forwardedRequestHeaders(headers: SwiftHeaders, changes: ReadonlyMap<string, string | undefined>, context: ForwardContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers.entries()) {
    if (!HOP_BY_HOP.has(name)) out[name] = value;
  }
  for (const [name, value] of changes) {
    if (value === undefined) delete out[name];
    else out[name] = value;
  }
  // Swift builds storage URLs (auth replies, Location headers) from Host: the client's, so that the URLs it
  // hands out lead back through this proxy.
  out.host ??= context.upstreamHost;
  if (context.remoteAddress) {
    const prior = out['x-forwarded-for'];
    out['x-forwarded-for'] = prior ? `${prior}, ${context.remoteAddress}` : context.remoteAddress;
  }
  return out;
}

/** Whether the client waits for `100 Continue` before sending its body. */
export function expectsContinue(headers: IncomingHttpHeaders): boolean {
  return headers.expect?.trim().toLowerCase() === '100-continue';
}
