/**
 * [quota-proxy]'s restart settings: how a proxy stops (drain_delay, drain_timeout) and whether its ports can be
 * shared with another instance during an upgrade (reuse_port). Defaults and reasons in docs/configuration.md.
 */

export interface RestartConfig {
  /**
   * drain_delay: seconds between SIGTERM and closing the listeners. Meanwhile /readyz answers 503 (a load balancer
   * takes the proxy out) and every request is still served, each answer with `Connection: close`.
   */
  readonly drainDelaySeconds: number;
  /** drain_timeout: seconds the requests in flight then have to finish before their connections are cut. */
  readonly drainTimeoutSeconds: number;
  /** reuse_port: listen with SO_REUSEPORT, so that a new instance (or worker) can bind the port of a running one. */
  readonly reusePort: boolean;
}

/** Two probe intervals of a typical load balancer (HAProxy's default inter is 2 s), and at least Node's 5 s keep-alive. */
export const DEFAULT_DRAIN_DELAY = 5;
/** Swift's client_timeout: a client that sends nothing for that long is dropped by Swift too. */
export const DEFAULT_DRAIN_TIMEOUT = 60;

export const RESTART_KEYS = ['drain_delay', 'drain_timeout', 'reuse_port'] as const;

/** What this module needs of load.ts's section reader (errors there name file, line and key). */
export interface RestartSectionReader {
  number(key: string, fallback: number, min: number, max: number): number;
  boolean(key: string, fallback: boolean): boolean;
}

export const DEFAULT_RESTART_CONFIG: RestartConfig = Object.freeze({
  drainDelaySeconds: DEFAULT_DRAIN_DELAY,
  drainTimeoutSeconds: DEFAULT_DRAIN_TIMEOUT,
  // SO_REUSEPORT exists on Linux (and the BSDs); Node refuses it elsewhere.
  reusePort: process.platform === 'linux',
});

export function parseRestart(proxy: RestartSectionReader | undefined): RestartConfig {
  const d = DEFAULT_RESTART_CONFIG;
  if (!proxy) return d;
  return Object.freeze({
    drainDelaySeconds: proxy.number('drain_delay', d.drainDelaySeconds, 0, 3600),
    drainTimeoutSeconds: proxy.number('drain_timeout', d.drainTimeoutSeconds, 0, 86_400),
    reusePort: proxy.boolean('reuse_port', d.reusePort),
  });
}
