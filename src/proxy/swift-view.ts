/**
 * The one reading of a client request that both the quota checks and the forwarding use (swift/request.ts):
 * built once per request and kept on Node's request object under a symbol. The headers Swift gets are built
 * from it, with the proxy's own changes (`upstream`), so what the proxy checked is what Swift acts on.
 */
import type { IncomingMessage } from 'node:http';
import { SwiftHeaders } from '../swift/request.js';
import { parseSwiftPath, type SwiftPath } from '../swift/path.js';
import type { Framing } from '../quota/intent.js';
import { rawTarget } from '../server.js';
import type { Credentials } from '../auth/authority.js';

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
  /**
   * An S3 request, read as the Swift request s3api makes of it: the caller is the tempauth user whose key
   * signed it (the proxy asks Swift with that user's own token), and answers are S3's.
   */
  readonly s3?: { readonly credentials: Credentials; readonly copyRange?: number };
}

type WithView = IncomingMessage & { [VIEW]?: SwiftView };

export function swiftView(request: IncomingMessage): SwiftView {
  const cached = (request as WithView)[VIEW];
  if (cached) return cached;
  const target = rawTarget(request);
  const te = request.headers['transfer-encoding'];
  const view: SwiftView = {
    method: request.method ?? 'GET',
    target,
    headers: SwiftHeaders.fromRaw(request.rawHeaders),
    path: parseSwiftPath(target),
    framing: { contentLength: request.headers['content-length'], transferEncoding: Array.isArray(te) ? te.join(',') : te },
    upstream: new Map(),
  };
  (request as WithView)[VIEW] = view;
  return view;
}
