/**
 * `ledger` and its settings in [quota-proxy]: where usage, reservations and finished writes are kept.
 */
import { ConfigError } from './errors.js';
import { CLUSTER_REFUSAL, isClusterUrl, isSentinelUrl, parseSentinelUrl, type SentinelTarget } from './ledger-sentinel.js';
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
      /** The primary found through Redis Sentinel (`redis+sentinel://`, config/ledger-sentinel.ts), when so. */
      readonly sentinel?: SentinelTarget;
    };

export const DEFAULT_LEDGER_LEASE = 30; // seconds
export const DEFAULT_LEDGER_PREFIX = 'swift-quota-proxy:';

/** `ledger = memory | redis://... | rediss://... | redis+sentinel://...` and its settings in [quota-proxy]. */
export function parseLedger(proxy: SectionReader | undefined, override: string | undefined): LedgerConfig {
  const text = override?.trim() ?? proxy?.string('ledger', 'memory').trim() ?? 'memory';
  const bad = (reason: string): never => {
    if (override === undefined && proxy) return proxy.fail('ledger', reason);
    throw new ConfigError('SWIFT_QUOTA_PROXY_LEDGER', undefined, undefined, undefined, reason);
  };
  if (text === 'memory') return Object.freeze({ kind: 'memory' });
  if (isClusterUrl(text)) return bad(CLUSTER_REFUSAL);
  const sentinel = isSentinelUrl(text) ? parseSentinelUrl(text, bad) : undefined;
  let url: URL;
  try {
    url = new URL(sentinel ? 'redis://sentinel' : text); // the Sentinel URL is read above
  } catch {
    return bad(`must be "memory" or a redis://[user:password@]host:port[/db] (or rediss://, or redis+sentinel://) URL, got "${text}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return bad(`must be "memory" or a redis://, rediss:// or redis+sentinel:// URL, got "${text}"`);
  if (!url.hostname) return bad(`needs a host, got "${text}"`);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) return bad(`the path names a database number (/0, /1, ...), got "${url.pathname}"`);
  return Object.freeze({
    kind: 'redis',
    url: text,
    leaseSeconds: proxy?.integer('ledger_lease', DEFAULT_LEDGER_LEASE, 1, 86_400, 'seconds') ?? DEFAULT_LEDGER_LEASE,
    prefix: proxy?.string('ledger_prefix', DEFAULT_LEDGER_PREFIX) ?? DEFAULT_LEDGER_PREFIX,
    ...(sentinel ? { sentinel } : {}),
  });
}
