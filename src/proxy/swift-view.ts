/**
 * The one reading of a client request that both the quota checks and the forwarding use (swift/request.ts):
 * built once per request and kept on Node's request object under a symbol. The headers Swift gets are built
 * from it, with the proxy's own changes (`upstream`), so what the proxy checked is what Swift acts on.
 */
import type { IncomingMessage } from 'node:http';
import { SwiftHeaders } from '../swift/request.js';
import { parseSwiftPath, type SwiftPath } from '../swift/path.js';
import { rawMethod, rawTarget } from '../server.js';
import type { Credentials } from '../auth/authority.js';

/** How the client framed its body, as Node read it (quota/intent.ts refuses the framings Swift would). */
export interface Framing {
  /** The client's `Content-Length`, exact name (Node's framing). */
  readonly contentLength: string | undefined;
  /** The client's `Transfer-Encoding`, exact name. */
  readonly transferEncoding: string | undefined;
}

const VIEW = Symbol('swift-quota-proxy.swift-view');

export interface SwiftView {
  readonly method: string;
  /** The request target exactly as the client sent it. */
  readonly target: string;
  readonly headers: SwiftHeaders;
  /** The account, container or object the target reaches in Swift's proxy server (undefined for anything else). */
  readonly path: SwiftPath | undefined;
  readonly framing: Framing;
  /** Headers the proxy sets (a value) or removes (undefined) on the request it forwards. */
  readonly upstream: Map<string, string | undefined>;
  /** A query parameter the proxy adds to the target it forwards (after the client's, so it is the last). */
  addedQuery?: string;
  /**
   * An S3 request, read as the Swift request s3api makes of it: the caller is the tempauth user whose key
   * signed it (the proxy asks Swift with that user's own token), and answers are S3's.
   */
  readonly s3?: { readonly credentials: Credentials; readonly copyRange?: number };
  /** How the Host header addressed the request (cname_lookup, domain_remap); absent for a plain Swift path. */
  readonly hostAddressing?: HostAddressing;
}

export type HostAddressing =
  /**
   * The Host decided: domain_remap gave the request the path of the Host's account and container (`path` is
   * that one), and/or the proxy resolved the Host's CNAME and sends Swift the name it found (`pinnedHost`).
   */
  | { readonly kind: 'host'; readonly remapped: boolean; readonly requestedHost: string; readonly pinnedHost?: string }
  /** Swift runs domain_remap or cname_lookup, the proxy's config lacks its section, and Host is a name: where it stores is unknown. */
  | { readonly kind: 'unknown'; readonly middleware: string };

type WithView = IncomingMessage & { [VIEW]?: SwiftView };

/** The request's view, read from its target alone when host-addressing.ts has not read it first. */
export function swiftView(request: IncomingMessage): SwiftView {
  return (request as WithView)[VIEW] ?? createSwiftView(request, (target) => ({ path: parseSwiftPath(target) }));
}

/**
 * Builds and keeps the request's view; `address` says which path Swift will act on (the target's own, or
 * the one host-based addressing gives it) and may change the Host Swift gets.
 */
export function createSwiftView(
  request: IncomingMessage,
  address: (target: string, headers: SwiftHeaders) => { path: SwiftPath | undefined; hostAddressing?: HostAddressing; upstreamHost?: string },
): SwiftView {
  const target = rawTarget(request);
  const headers = SwiftHeaders.fromRaw(request.rawHeaders);
  const te = request.headers['transfer-encoding'];
  const { path, hostAddressing, upstreamHost } = address(target, headers);
  const view: SwiftView = {
    method: rawMethod(request),
    target,
    headers,
    path,
    framing: { contentLength: request.headers['content-length'], transferEncoding: Array.isArray(te) ? te.join(',') : te },
    upstream: new Map(upstreamHost === undefined ? [] : [['host', upstreamHost]]),
    ...(hostAddressing ? { hostAddressing } : {}),
  };
  (request as WithView)[VIEW] = view;
  return view;
}
