/**
 * How a proxy process stops without failing a request (docs/operations.md, "Restarts and upgrades"):
 *
 * 1. readiness (/readyz) answers 503, so that a load balancer stops sending new clients here (`shutdown`
 *    only: a worker retired by a rolling restart stays ready, its siblings serve on);
 * 2. for drain_delay the listeners keep accepting and every request is served as before, each answer with
 *    `Connection: close`, so that keep-alive clients go and open their next connection elsewhere; idle
 *    keep-alive connections end meanwhile at Node's keep-alive timeout, which clients know (they never reuse a
 *    connection the server may be closing, as they might if we closed it now);
 * 3. the listeners close and the requests in flight get drain_timeout to finish; what is left is cut.
 *
 * Nothing here runs before a drain: the hot path pays nothing for it.
 */
import cluster from 'node:cluster';
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RestartConfig } from '../config/restart.js';

export type DrainKind = 'shutdown' | 'retire';

/**
 * Whether a listener on `port` takes SO_REUSEPORT: with reuse_port, in a process that binds its own socket.
 * Workers do not: they share the primary's socket (node:cluster), which outlives any of them, so that a worker
 * that crashes or retires loses no connection the kernel had queued for it. (Node would give each worker a
 * socket of its own with SO_REUSEPORT, and cannot set it on the primary's.) Nor on port 0, where the kernel
 * could hand out a port another SO_REUSEPORT socket of ours holds.
 */
export function takesReusePort(settings: RestartConfig, port: number): boolean {
  return settings.reusePort && port !== 0 && !cluster.isWorker;
}

/** Read by /readyz (http/ops-routes.ts): whether this process is on its way out. */
export class DrainState {
  private kind: DrainKind | undefined;

  /** True once a shutdown began: readiness then says 503, whatever else is fine. */
  get notReady(): boolean {
    return this.kind === 'shutdown';
  }

  get draining(): boolean {
    return this.kind !== undefined;
  }

  /** From now on every answer of these servers closes its connection after it. */
  begin(kind: DrainKind, servers: readonly HttpServer[]): void {
    if (this.kind === undefined) {
      for (const server of servers) {
        server.prependListener('request', closeAfterAnswer);
        // Requests with `Expect: 100-continue` come as this event instead (server.ts routes them like any other).
        server.prependListener('checkContinue', closeAfterAnswer);
        // And the answers already under way (a long upload): their connections end with them too, or a client
        // would send its next request on one after the listener closed, to be answered 503.
        for (const response of answersInFlight(server)) closeAfter(response);
      }
    }
    // A shutdown during a retirement still turns readiness off.
    if (this.kind !== 'shutdown') this.kind = kind;
  }
}

function closeAfterAnswer(_request: IncomingMessage, response: ServerResponse): void {
  // Node then writes `Connection: close` and ends the connection once this answer is out.
  response.shouldKeepAlive = false;
}

function closeAfter(response: ServerResponse): void {
  if (!response.headersSent) response.shouldKeepAlive = false;
  // Its head went out with keep-alive: Node's own flag for "end the connection after this answer".
  else (response as ServerResponse & { _last: boolean })._last = true;
}

/**
 * The answers of the connections busy with a request now. Node keeps them in a list of its own (the one its
 * closeIdleConnections reads), not in the public API; without it (another Node) none are found, and such a
 * connection ends at the keep-alive timeout instead.
 */
function answersInFlight(server: HttpServer): ServerResponse[] {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
  const list = key === undefined ? undefined : (server as unknown as Record<symbol, { all?: () => Array<{ socket?: { _httpMessage?: unknown } }> }>)[key];
  if (typeof list?.all !== 'function') return [];
  const answers: ServerResponse[] = [];
  // Every connection (its "active" ones are those still receiving a request); a busy one has its answer attached.
  for (const parser of list.all()) {
    const answer = parser.socket?._httpMessage;
    if (answer && typeof answer === 'object' && 'shouldKeepAlive' in answer && !(answer as ServerResponse).writableEnded) answers.push(answer as ServerResponse);
  }
  return answers;
}

/**
 * A listener to drain: its HTTP server, and how it closes (Fastify's close: the listener stops accepting at once,
 * idle connections close, and it resolves once the requests in flight are done).
 */
export interface Drainable {
  readonly server: HttpServer;
  close(): Promise<unknown>;
}

export interface DrainLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface DrainOptions {
  kind: DrainKind;
  /** What it was (SIGTERM, a rolling restart), for the log. */
  reason: string;
  settings: RestartConfig;
  /** Skip drain_delay (SIGINT from a terminal: no load balancer is waiting to notice). */
  skipDelay?: boolean;
  /** Called once the listeners are closed (a rolling restart then moves on to the next worker). */
  onListenersClosed?: () => void;
}

/**
 * Drains `app` (and its ops listener, closed with it) as described above. Resolves true when every request
 * finished within drain_timeout, false when some connections had to be cut.
 */
export async function drain(app: Drainable, ops: Drainable | undefined, state: DrainState, options: DrainOptions, log: DrainLog): Promise<boolean> {
  const { settings } = options;
  const servers = [app.server, ...(ops ? [ops.server] : [])];
  state.begin(options.kind, servers);
  const delay = options.skipDelay ? 0 : settings.drainDelaySeconds;
  const what = options.kind === 'shutdown' ? 'readiness now 503; ' : '';
  log.info(`${options.reason}: ${what}serving with "Connection: close" for ${delay} s (drain_delay), then closing the listeners and draining in-flight requests for up to ${settings.drainTimeoutSeconds} s (drain_timeout)`);
  if (delay > 0) await sleep(delay * 1000);

  let cut = false;
  const timer = setTimeout(() => {
    cut = true;
    log.warn(`${options.reason}: requests still in flight after drain_timeout (${settings.drainTimeoutSeconds} s): closing their connections`);
    for (const server of servers) server.closeAllConnections();
  }, settings.drainTimeoutSeconds * 1000);
  // Fastify's close stops the listeners at once (the ops listener's with the app's), closes idle
  // connections and waits for the others.
  const closed = app.close();
  if (options.onListenersClosed) waitUntilNotListening(servers).then(options.onListenersClosed, () => {});
  try {
    await closed;
  } finally {
    clearTimeout(timer);
  }
  return !cut;
}

async function waitUntilNotListening(servers: readonly HttpServer[]): Promise<void> {
  while (servers.some((server) => server.listening)) await sleep(10);
}
