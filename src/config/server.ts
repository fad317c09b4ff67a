/**
 * [quota-proxy]'s settings of the proxy as a server: where it listens, where Swift is, its own paths, its bounds on
 * clients, its log level and its worker count.
 */
import { availableParallelism } from 'node:os';
import { ConfigError } from './errors.js';
import type { LedgerConfig } from './ledger.js';
import type { SectionReader } from './section-reader.js';

export const DEFAULT_BIND_IP = '127.0.0.1';
export const DEFAULT_BIND_PORT = 8081;
export const DEFAULT_METRICS_PATH = '/metrics';
export const DEFAULT_REPORT_PATH = '/quota/report';
export const DEFAULT_UPSTREAM_TIMEOUT = 60; // seconds without a byte from Swift before 504

export interface ClientBounds {
  /** client_header_timeout: seconds to send a whole request head, then 408. */
  readonly headerTimeoutSeconds: number;
  /** client_body_timeout: seconds a body may wait to start, or go without a byte, then 408. */
  readonly bodyTimeoutSeconds: number;
  /** max_connections: client connections per process (0: no limit). */
  readonly maxConnections: number;
  /** max_connections_per_client: of those, from one address (0: no limit). */
  readonly maxConnectionsPerClient: number;
  /** pending_header_bytes: bytes of unfinished request heads, all connections together (0: no limit). */
  readonly pendingHeaderBytes: number;
  /** max_bodies_per_client: request bodies in progress from one address (0: no limit). */
  readonly maxBodiesPerClient: number;
  /** max_bodies_per_account: request bodies in progress into one account (0: no limit). */
  readonly maxBodiesPerAccount: number;
  /** body_buffer_bytes: bytes of manifests and S3 completions the proxy holds in memory at once. */
  readonly bodyBufferBytes: number;
  /** body_buffer_account_bytes: of those, for one account. */
  readonly bodyBufferAccountBytes: number;
}

export const DEFAULT_CLIENT_BOUNDS: ClientBounds = Object.freeze({
  headerTimeoutSeconds: 60,
  bodyTimeoutSeconds: 60,
  maxConnections: 8192,
  maxConnectionsPerClient: 1024,
  pendingHeaderBytes: 64 * 1024 * 1024,
  maxBodiesPerClient: 128,
  maxBodiesPerAccount: 128,
  bodyBufferBytes: 128 * 1024 * 1024,
  bodyBufferAccountBytes: 32 * 1024 * 1024,
});

/** [quota-proxy]'s bounds on clients; each key's default and reason are in docs/configuration.md. */
export function parseClientBounds(proxy: SectionReader | undefined): ClientBounds {
  const d = DEFAULT_CLIENT_BOUNDS;
  if (!proxy) return d;
  const bounds: ClientBounds = {
    // Node refuses a head timeout above its request timeout; 300 s is already five times Swift's client_timeout.
    headerTimeoutSeconds: proxy.integer('client_header_timeout', d.headerTimeoutSeconds, 1, 300, 'seconds'),
    bodyTimeoutSeconds: proxy.integer('client_body_timeout', d.bodyTimeoutSeconds, 1, 3600, 'seconds'),
    maxConnections: proxy.integer('max_connections', d.maxConnections, 0, 1_000_000),
    maxConnectionsPerClient: proxy.integer('max_connections_per_client', d.maxConnectionsPerClient, 0, 1_000_000),
    pendingHeaderBytes: proxy.size('pending_header_bytes', d.pendingHeaderBytes, 0),
    maxBodiesPerClient: proxy.integer('max_bodies_per_client', d.maxBodiesPerClient, 0, 1_000_000),
    maxBodiesPerAccount: proxy.integer('max_bodies_per_account', d.maxBodiesPerAccount, 0, 1_000_000),
    bodyBufferBytes: proxy.size('body_buffer_bytes', d.bodyBufferBytes, 1024 * 1024),
    bodyBufferAccountBytes: proxy.size('body_buffer_account_bytes', d.bodyBufferAccountBytes, 64 * 1024),
  };
  if (bounds.bodyBufferAccountBytes > bounds.bodyBufferBytes) {
    proxy.fail('body_buffer_account_bytes', `must not be more than body_buffer_bytes (${bounds.bodyBufferBytes}), got ${bounds.bodyBufferAccountBytes}`);
  }
  return Object.freeze(bounds);
}

export function parseListen(value: string, fail: (reason: string) => never): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(value.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || port < 0 || port > 65535) fail(`must be HOST:PORT, got "${value}"`);
  return { host: match[1], port };
}

export function parseUpstream(value: string, fail: (reason: string) => never): URL {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    fail(`must be the Swift proxy's base URL such as http://127.0.0.1:8080, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`must be an http:// or https:// URL, got "${value}"`);
  if (url.pathname !== '/' || url.search || url.hash) {
    fail(`must be a base URL without path or query (the proxy forwards client paths as they are), got "${value}"`);
  }
  return url;
}

export type OpsBind = { readonly host: string; readonly port: number } | undefined;

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * `ops_bind_port` turns the ops listener on, on `ops_bind_ip` (default: the client port's address, after
 * --listen, so that whoever can reach the proxy's host can scrape it; set 127.0.0.1 or a management network's
 * address to keep it closer). A port of 0 takes any free port (tests).
 */
export function parseOpsBind(proxy: SectionReader | undefined, bindIp: string, bindPort: number): OpsBind {
  if (!proxy?.has('ops_bind_port')) {
    if (proxy?.has('ops_bind_ip')) proxy.fail('ops_bind_ip', 'needs ops_bind_port (the ops listener is on only with a port)');
    return undefined;
  }
  const port = proxy.integer('ops_bind_port', 0, 0, 65535);
  const host = proxy.string('ops_bind_ip', bindIp).trim();
  if (host === '') proxy.fail('ops_bind_ip', 'must be an address to listen on, such as 127.0.0.1');
  const overlaps = host === bindIp || WILDCARD_HOSTS.has(host) || WILDCARD_HOSTS.has(bindIp);
  if (port !== 0 && port === bindPort && overlaps) {
    proxy.fail('ops_bind_port', `must differ from the client port ${bindIp}:${bindPort} (both would listen on one address and port)`);
  }
  return Object.freeze({ host, port });
}

/**
 * `workers = N | auto` (auto: one per core), in [quota-proxy] only: Swift's `workers` in [DEFAULT] is its own
 * proxy-server's (eventlet processes, often 20 or more), not a count of Node processes. More workers than cores is
 * honoured, as nginx and Swift honour it, with a warning: each worker is one event loop, so past the core count
 * they only share the cores and each holds its own caches and connections.
 */
export function parseWorkers(proxy: SectionReader | undefined, ledger: LedgerConfig, warnings: string[] = []): number {
  if (!proxy || proxy.string('workers', '1').trim() === 'auto') return proxy ? autoWorkers(ledger) : 1;
  const workers = proxy.integer('workers', 1, 1, 1024);
  if (workers > 1 && ledger.kind === 'memory') {
    proxy.fail('workers', `${workers} workers need a shared ledger: each worker is a process with its own memory, so set ledger = redis://... (or workers = 1)`);
  }
  const cores = availableParallelism();
  if (workers > cores) {
    warnings.push(`${proxy.place('workers')}: workers = ${workers} is more than this machine's ${cores} core${cores === 1 ? '' : 's'}: each worker is one event loop, so the extra ones add memory and connections, not speed (workers = auto: one per core)`);
  }
  return workers;
}

/** One per core with a shared ledger; one without (each process would be exact only for itself). */
function autoWorkers(ledger: LedgerConfig): number {
  return ledger.kind === 'memory' ? 1 : Math.max(1, availableParallelism());
}
