/**
 * The ledger's connection to Redis: one Redis named by a URL, or the primary of a Sentinel group
 * (`redis+sentinel://`, config/ledger-sentinel.ts), found again after a failover.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { SentinelTarget } from '../../config/ledger-sentinel.js';

/** Where the ledger lives: `sentinel` when set, else `url`. */
export interface RedisTarget {
  /** `redis://` or `rediss://` (a Sentinel URL's text is kept here too, for messages; `sentinel` is what counts). */
  url: string;
  sentinel?: SentinelTarget;
}

/** Longest pause between two attempts to reach Redis (or the Sentinels) again. */
const MAX_RETRY_PAUSE_MS = 2_000;

/** A client that does not connect until asked (lazyConnect) and never queues commands while Redis is away. */
export function connectRedis(target: RedisTarget, commandTimeoutMs: number): Redis {
  const common: RedisOptions = {
    // A check waits for Redis, never for a queue of commands sent while it was away.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    lazyConnect: true,
    // Soon after a failure at first (a failover takes seconds), then every two seconds.
    retryStrategy: (times) => Math.min(times * 100, MAX_RETRY_PAUSE_MS),
    // A primary demoted to replica (a failover it lived through) answers writes with READONLY: find the new one.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
  if (!target.sentinel) return new Redis(target.url, common);
  return new Redis(sentinelOptions(target.sentinel, common));
}

function sentinelOptions(sentinel: SentinelTarget, common: RedisOptions): RedisOptions {
  const tls = sentinel.tls ? {} : undefined;
  return {
    ...common,
    sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    name: sentinel.name,
    role: 'master',
    db: sentinel.db,
    ...(sentinel.username !== undefined ? { username: sentinel.username } : {}),
    ...(sentinel.password !== undefined ? { password: sentinel.password } : {}),
    ...(sentinel.sentinelUsername !== undefined ? { sentinelUsername: sentinel.sentinelUsername } : {}),
    ...(sentinel.sentinelPassword !== undefined ? { sentinelPassword: sentinel.sentinelPassword } : {}),
    ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
    sentinelCommandTimeout: common.commandTimeout!,
    // Asks the Sentinels again at the same pace as a lost connection (the default gives up after 10 tries).
    sentinelRetryStrategy: (times) => Math.min(times * 100, MAX_RETRY_PAUSE_MS),
    // Not ioredis's failoverDetector: told of the switch after it had already found the new primary, it closed
    // that connection for good (ioredis 5.11, seen in test/integration/sentinel.test.ts). A dead primary drops the
    // connection, and a demoted one answers READONLY (reconnectOnError): either way the Sentinels are asked again.
  };
}
