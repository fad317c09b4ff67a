/**
 * The transparent part: every request that reaches this plugin is streamed to Swift as it is, and Swift's
 * answer is streamed back. @fastify/http-proxy (reply-from + undici) moves the bytes; this module only says
 * which headers change and how upstream failures look to a client.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { METHODS, type IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { forwardedRequestHeaders } from './request-headers.js';
import { WIRE, type UpstreamEvents, type Wire } from './wire.js';
import { swiftView } from './swift-view.js';
import { restoreLocation } from '../swift/host-addressing.js';

/**
 * Every method Node can parse goes to Swift, which answers those it does not implement (405) itself; COPY
 * is Swift's server-side copy. CONNECT is a tunnel, not a request for Swift.
 */
export const FORWARDED_METHODS: readonly string[] = METHODS.filter((method) => method !== 'CONNECT');

export interface ForwardHooks {
  /**
   * Runs after routing, before Swift is contacted; the request body has not been read yet. Calls `done` when
   * the request may go on (or has been answered).
   */
  preHandler(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void;
  /**
   * Swift answered (status and headers known); runs before the answer is sent on. Returns true if it answered
   * the client itself (then it may read `body`; what it leaves unread is discarded).
   */
  onUpstreamResponse(request: FastifyRequest, reply: FastifyReply, statusCode: number, headers: Record<string, unknown>, body: Readable): boolean;
  /**
   * What follows the request's exchange with Swift (wire.ts), when the proxy holds something until Swift has
   * answered it; undefined for the rest (most requests), which then cost nothing more.
   */
  upstreamEvents(request: FastifyRequest): (UpstreamEvents & { readonly keepsReading: boolean }) | undefined;
  /** Swift could not be reached or the request failed mid-way; returns true if it answered the client itself. */
  onUpstreamError(request: FastifyRequest, reply: FastifyReply, error: Error): boolean;
}

interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, unknown>;
  stream: Readable;
}

export interface ForwardOptions {
  upstream: URL;
  dispatcher: Dispatcher;
  hooks: ForwardHooks;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Swift's response headers as they came, for their names' spelling (see wire.ts). */
    upstreamRawHeaders?: readonly Buffer[];
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** The status a client gets when Swift itself failed: 503 unreachable, 504 too slow, 502 anything else. */
export function upstreamFailureStatus(error: Error & { statusCode?: number; cause?: unknown }): 502 | 503 | 504 {
  const code = (error.cause as { code?: string } | undefined)?.code;
  if (code !== undefined && UNREACHABLE.has(code)) return 503;
  if (error.statusCode === 503 || error.statusCode === 504) return error.statusCode;
  return 502;
}

const FAILURE_TEXT = {
  502: 'Bad Gateway: Swift failed to answer',
  503: 'Service Unavailable: Swift cannot be reached',
  504: 'Gateway Timeout: Swift did not answer in time',
} as const;

/** A short plain-text body for failures of Swift itself, like Swift's own error pages. */
function upstreamFailure(reply: FastifyReply, error: Error): void {
  const statusCode = upstreamFailureStatus(error);
  reply.code(statusCode).header('content-type', 'text/plain; charset=utf-8');
  // A body the client is still sending would otherwise be drained to keep the socket.
  if (!reply.request.raw.complete) reply.header('connection', 'close');
  reply.send(`${FAILURE_TEXT[statusCode]}\n`);
}

// Hop-by-hop response headers describe the proxy's connection to Swift, not the client's. (Swift answers
// undici's `Connection: keep-alive` in kind; it says nothing of the sort to clients that do not ask.)
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'trailer']);

/**
 * Sets Swift's headers on the client's answer: each under its name as Swift spelled it (`rawHeaders`, in Swift's
 * order), with the value undici read (`headers`, by lower-cased name: repeated names joined as undici joins
 * them, and any change made here, such as a restored Location). Without the raw list, the lower-cased names.
 */
function copyUpstreamHeaders(reply: FastifyReply, headers: Record<string, unknown>, rawHeaders: readonly Buffer[] | undefined): void {
  // Swift answered: its transaction id (if any) replaces the proxy's (http/trans-id.ts), in Swift's place among its headers.
  reply.raw.removeHeader('x-trans-id');
  reply.raw.removeHeader('x-openstack-request-id');
  if (rawHeaders === undefined) {
    for (const name of Object.keys(headers)) setUpstreamHeader(reply, name, name, headers[name]);
  } else {
    // A name Swift repeated is set again with the same value: every value, as undici gathered them.
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      const lower = name.toLowerCase();
      setUpstreamHeader(reply, name, lower, headers[lower]);
    }
  }
  // Like Swift (eventlet), answer `Connection: keep-alive` only to a client that sent a Connection header;
  // otherwise Node's own `Connection`/`Keep-Alive` headers are left out. Node still keeps or closes the
  // connection as HTTP/1.1 says, and a `Connection: close` of ours (unread body) stays.
  if (!reply.hasHeader('connection') && reply.request.headers.connection === undefined) reply.raw.removeHeader('connection');
}

function setUpstreamHeader(reply: FastifyReply, name: string, lower: string, value: unknown): void {
  if (value === undefined || RESPONSE_HOP_BY_HOP.has(lower)) return;
  try {
    reply.raw.setHeader(name, value as string | string[]);
  } catch (error) {
    reply.log.warn({ err: error, header: lower }, 'dropped a response header Node refuses to send');
  }
}

/**
 * Where the proxy sent Swift the host name a CNAME pointed to, the Location headers Swift built from it go
 * back on the client's own host name, as cname_lookup does.
 */
function restoreLocations(headers: Record<string, unknown>, pinnedHost: string, requestedHost: string): void {
  for (const name of ['location', 'content-location']) {
    const value = headers[name];
    if (typeof value === 'string') headers[name] = restoreLocation(value, pinnedHost, requestedHost);
  }
}

/**
 * Where Swift reports a write in its answer's body (it answered at once and works on), the proxy's hold ends only
 * with that body: if the client goes away first, the rest of Swift's answer is still read (and dropped) instead
 * of the request to Swift being cut, so the hold ends when Swift is done, not before. Other answers go as they are.
 */
function readToEnd(stream: Readable, events: { readonly keepsReading: boolean } | undefined): Readable {
  if (!events?.keepsReading) return stream;
  const toClient = new PassThrough();
  stream.pipe(toClient);
  stream.once('error', (error) => toClient.destroy(error));
  toClient.once('close', () => {
    if (stream.readableEnded) return;
    stream.unpipe(toClient);
    stream.resume();
  });
  return toClient;
}

export async function forwardPlugin(app: FastifyInstance, options: ForwardOptions): Promise<void> {
  const { upstream, hooks } = options;
  // Built-in parsers (text/plain, application/json) would buffer bodies; http-proxy adds pass-through ones.
  app.removeAllContentTypeParsers();

  await app.register(httpProxy, {
    upstream: upstream.origin,
    httpMethods: [...FORWARDED_METHODS],
    preHandler: hooks.preHandler,
    // Swift's Location headers are already right: they are built from the Host we pass on.
    internalRewriteLocationHeader: false,
    // The request target goes to Swift as the client sent it (wire.ts); http-proxy routes on a placeholder.
    preRewrite: () => '/',
    undici: options.dispatcher as never,
    // reply-from would write two info lines per request ("fetching from remote server", "response received"):
    // the access log's one line says all of it.
    disableRequestLogging: true,
    replyOptions: {
      rewriteRequestHeaders: (request) => {
        const view = swiftView(request.raw as IncomingMessage);
        const headers: Record<string | symbol, unknown> = forwardedRequestHeaders(view.headers, view.upstream, { remoteAddress: request.raw.socket.remoteAddress, upstreamHost: upstream.host });
        const wire: Wire = {
          target: view.addedQuery === undefined ? view.target : `${view.target}${view.target.includes('?') ? '&' : '?'}${view.addedQuery}`,
          method: view.method !== request.raw.method ? view.method : undefined,
          onRawHeaders: (raw) => {
            request.upstreamRawHeaders = raw;
          },
          events: hooks.upstreamEvents(request as FastifyRequest),
        };
        headers[WIRE] = wire;
        return headers as Record<string, string>;
      },
      // Swift's headers are copied in onResponse, in Swift's spelling, rather than through Fastify, which
      // lower-cases names.
      rewriteHeaders: () => ({}),
      onResponse: (request, reply, response) => {
        // reply-from's typings describe a Node response; it hands us undici's status, headers and body.
        const { statusCode, headers, stream } = response as unknown as UpstreamResponse;
        if (hooks.onUpstreamResponse(request as FastifyRequest, reply as FastifyReply, statusCode, headers, stream)) {
          stream.resume();
          return;
        }
        const addressing = swiftView(request.raw as IncomingMessage).hostAddressing;
        if (addressing?.kind === 'host' && addressing.pinnedHost !== undefined) restoreLocations(headers, addressing.pinnedHost, addressing.requestedHost);
        copyUpstreamHeaders(reply as FastifyReply, headers, request.upstreamRawHeaders);
        if (statusCode === 204 || statusCode === 304) {
          // No body to send, whatever the stream holds; sent without one, Fastify keeps Swift's headers as they are.
          stream.resume();
          reply.send();
        } else {
          reply.send(readToEnd(stream, hooks.upstreamEvents(request as FastifyRequest)));
        }
      },
      onError: (reply, { error }) => {
        if (!hooks.onUpstreamError(reply.request as FastifyRequest, reply as FastifyReply, error)) upstreamFailure(reply as FastifyReply, error);
      },
    },
  });
}
