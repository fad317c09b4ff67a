/**
 * `ledger` and its settings in [quota-proxy]: where usage, reservations and finished writes are kept.
 */
import { ConfigError } from './errors.js';
import type { SectionReader } from './section-reader.js';

export type LedgerConfig =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'redis';
      /** `redis://[user:pass@]host:port[/db]` or `rediss://` (TLS). */
      readonly url: string;
      /** How long a reservation outlives the proxy that held it (it renews it while alive). */
      readonly leaseSeconds: number;
      /** Prefix of every Redis key: proxies sharing a prefix share quotas. */
      readonly prefix: string;
    };

export const DEFAULT_LEDGER_LEASE = 30; // seconds
export const DEFAULT_LEDGER_PREFIX = 'swift-quota-proxy:';

/** `ledger = memory | redis://... | rediss://...` and its settings in [quota-proxy]. */
export function parseLedger(proxy: SectionReader | undefined, override: string | undefined): LedgerConfig {
  const text = override?.trim() ?? proxy?.string('ledger', 'memory').trim() ?? 'memory';
  const bad = (reason: string): never => {
    if (override === undefined && proxy) return proxy.fail('ledger', reason);
    throw new ConfigError('SWIFT_QUOTA_PROXY_LEDGER', undefined, undefined, undefined, reason);
  };
  if (text === 'memory') return Object.freeze({ kind: 'memory' });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad(`must be "memory" or a redis://[user:password@]host:port[/db] (or rediss://) URL, got "${text}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return bad(`must be "memory" or a redis:// or rediss:// URL, got "${text}"`);
  if (!url.hostname) return bad(`needs a host, got "${text}"`);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) return bad(`the path names a database number (/0, /1, ...), got "${url.pathname}"`);
  return Object.freeze({
    kind: 'redis',
    url: text,
    leaseSeconds: proxy?.integer('ledger_lease', DEFAULT_LEDGER_LEASE, 1, 86_400, 'seconds') ?? DEFAULT_LEDGER_LEASE,
    prefix: proxy?.string('ledger_prefix', DEFAULT_LEDGER_PREFIX) ?? DEFAULT_LEDGER_PREFIX,
  });
}
