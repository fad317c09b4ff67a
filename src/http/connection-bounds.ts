/**
 * What client connections may hold of the proxy before they have sent a whole request head: how many
 * connections there are (overall and per client address), and how many bytes of unfinished heads they hold
 * together. Node's parser keeps an unfinished head in memory (turned into strings 32 headers at a time): 20,000
 * connections sending 250 KB heads each and never finishing them would take ~5 GB. Refusals are answers, not
 * resets: `503 Service Unavailable` with `Retry-After`, then the connection is closed.
 *
 * How long a head may take is Node's `headersTimeout` (408, see server.ts); this module only counts.
 */
import { Socket } from 'node:net';
import type { Server } from 'node:http';

export interface ConnectionLimits {
  /** Client connections one process keeps open at once (0: no limit). */
  readonly maxConnections: number;
  /** Of those, from one client address (0: no limit). */
  readonly maxConnectionsPerClient: number;
  /** Bytes of unfinished request heads all connections may hold together (0: no limit). */
  readonly pendingHeaderBytes: number;
}

/** What refused a client (the `bound` label of swift_quota_proxy_client_refusals_total). */
export const CLIENT_BOUNDS = ['connections', 'client_connections', 'header_bytes', 'client_bodies', 'account_bodies', 'body_timeout', 'body_buffer'] as const;
export type ClientBound = (typeof CLIENT_BOUNDS)[number];

/** Seconds a refused client is asked to wait: long enough for a busy moment to pass, short for a person. */
export const BUSY_RETRY_AFTER_SECONDS = 5;

/** How often the unfinished heads are added up. */
const SWEEP_MS = 200;

/** How long a refused connection may take to read its answer before it is closed outright. */
const REFUSED_GRACE_MS = 2000;

interface Tracked {
  readonly address: string;
  /** `bytesRead` when the head now being sent started (after the last request on the connection ended). */
  headStart: number;
  /** A request of this connection is being handled (its head is complete), as far as the last look went. */
  active: boolean;
}

/** The answer Node is writing on a connection, if any (Node's own field; server.ts reads it too). */
function answering(socket: Socket): boolean {
  return (socket as Socket & { _httpMessage?: unknown })._httpMessage != null;
}

/** A plain-text `503` with `Retry-After`, written straight on a connection that has no request in progress. */
export function refuseConnection(socket: Socket, reason: string): void {
  if (socket.destroyed) return;
  // Nothing more it sends is read (or parsed): the answer goes out, and the connection closes.
  socket.pause();
  const body = `Service Unavailable: ${reason}\n`;
  socket.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Retry-After: ${BUSY_RETRY_AFTER_SECONDS}\r\nConnection: close\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), REFUSED_GRACE_MS).unref();
}

export class ConnectionBounds {
  private readonly connections = new Map<Socket, Tracked>();
  private readonly perAddress = new Map<string, number>();
  /** Connections answered 503: whatever they still send is not handled. */
  private readonly refused = new WeakSet<object>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private limits: ConnectionLimits, private readonly onRefused: (bound: ClientBound) => void = () => {}) {}

  use(limits: ConnectionLimits): void {
    this.limits = limits;
  }

  /** Counts the server's connections from now on; before Node's own listener, so a refused one is never read. */
  attach(server: Server): void {
    server.prependListener('connection', (socket: Socket) => this.accept(socket));
    server.on('close', () => this.close());
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  /**
   * A request's head is complete; false when the connection was refused (its requests are not handled). When its
   * answer is out (seen by the next sweep), the connection's next head starts.
   */
  requestStarted(socket: Socket): boolean {
    if (this.refused.has(socket)) return false;
    const tracked = this.connections.get(socket);
    if (tracked) tracked.active = true;
    return true;
  }

  private accept(socket: Socket): void {
    // A connection handed back to the server through a rewriter (server.ts) is the same connection, counted once.
    if (!(socket instanceof Socket) || this.connections.has(socket)) return;
    const address = socket.remoteAddress ?? '';
    const fromAddress = this.perAddress.get(address) ?? 0;
    const { maxConnections, maxConnectionsPerClient } = this.limits;
    if (maxConnections > 0 && this.connections.size >= maxConnections) return this.refuse(socket, 'connections', 'too many connections');
    if (maxConnectionsPerClient > 0 && fromAddress >= maxConnectionsPerClient) return this.refuse(socket, 'client_connections', 'too many connections from this address');
    this.connections.set(socket, { address, headStart: 0, active: false });
    this.perAddress.set(address, fromAddress + 1);
    socket.once('close', () => this.forget(socket));
  }

  private forget(socket: Socket): void {
    const tracked = this.connections.get(socket);
    if (!tracked) return;
    this.connections.delete(socket);
    const left = (this.perAddress.get(tracked.address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(tracked.address, left);
    else this.perAddress.delete(tracked.address);
  }

  private refuse(socket: Socket, kind: ClientBound, reason: string): void {
    this.refused.add(socket);
    this.onRefused(kind);
    refuseConnection(socket, reason);
  }

  /**
   * Adds up the unfinished heads; past the budget, the connections holding the most are refused until the rest
   * fit (a head that is still small is the one most likely to be an ordinary client's).
   */
  private sweep(): void {
    const budget = this.limits.pendingHeaderBytes;
    if (budget <= 0) return;
    let total = 0;
    const pending: Array<[Socket, number]> = [];
    for (const [socket, tracked] of this.connections) {
      if (tracked.active) {
        if (answering(socket)) continue;
        // Answered since the last look: what arrived after it is the next head (a little of it may be counted as
        // the last request's, never more than one sweep's worth).
        tracked.active = false;
        tracked.headStart = socket.bytesRead;
        continue;
      }
      if (this.refused.has(socket)) continue;
      const bytes = socket.bytesRead - tracked.headStart;
      if (bytes <= 0) continue;
      total += bytes;
      pending.push([socket, bytes]);
    }
    if (total <= budget) return;
    pending.sort((a, b) => b[1] - a[1]);
    for (const [socket, bytes] of pending) {
      if (total <= budget) break;
      this.refuse(socket, 'header_bytes', 'too many unfinished request heads');
      total -= bytes;
    }
  }
}
