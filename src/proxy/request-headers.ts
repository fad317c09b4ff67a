/**
 * What the proxy changes in a client's request headers before they go to Swift. Pure.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) belong to the client's connection, not to Swift's. undici also refuses
 * some of them outright (`Expect` → "expect header not supported", `Keep-Alive`/`Transfer-Encoding` → invalid
 * header) and frames the upstream body itself. `Expect: 100-continue` is answered by this proxy
 * (see server.ts), after its own checks.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect'];

export interface ForwardContext {
  /** The client's Content-Type, kept aside so that Fastify never parses or refuses it (see app.ts). */
  contentType: string | undefined;
  /** The client's Host; reply-from has already replaced it with the upstream's in the headers it passes us. */
  clientHost: string | undefined;
  remoteAddress: string | undefined;
  upstreamHost: string;
}

export function forwardedRequestHeaders(headers: IncomingHttpHeaders, context: ForwardContext): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = { ...headers };
  for (const name of HOP_BY_HOP) delete out[name];
  // Swift builds storage URLs (auth replies, Location headers) from Host: keep the client's so that the URLs
  // it hands out lead back through this proxy.
  out.host = context.clientHost ?? context.upstreamHost;
  if (context.contentType !== undefined) out['content-type'] = context.contentType;
  if (context.remoteAddress) {
    const prior = headers['x-forwarded-for'];
    out['x-forwarded-for'] = prior ? `${prior}, ${context.remoteAddress}` : context.remoteAddress;
  }
  return out;
}

/** Whether the client waits for `100 Continue` before sending its body. */
export function expectsContinue(headers: IncomingHttpHeaders): boolean {
  return headers.expect?.trim().toLowerCase() === '100-continue';
}
