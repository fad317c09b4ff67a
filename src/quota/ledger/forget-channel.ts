/**
 * What a proxy learns has changed in Swift's metadata (a level, an override, container_quotas' numbers, the
 * proxy's own state) is forgotten by every process sharing its Redis ledger at once, not after their cached
 * reading of it ages out (cache_timeout): the key goes out on a Redis channel, and each process drops its reading.
 * A message missed while Redis is away is covered by cache_timeout, as before.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../config/load.js';
import { connectRedis } from './redis-connection.js';

export const forgetChannel = (prefix: string) => `${prefix}forget`;

/** Subscribes a connection of its own (a subscribed one takes no other command) and calls `forget` per key. */
export function listenForForgets(redis: Redis, prefix: string, forget: (key: string) => void, onError: (error: Error) => void): Redis {
  const subscriber = redis.duplicate();
  subscriber.on('error', onError);
  subscriber.on('message', (channel: string, key: string) => {
    if (channel === forgetChannel(prefix)) forget(key);
  });
  // ioredis subscribes again by itself after a reconnection (autoResubscribe).
  subscriber.connect().then(() => subscriber.subscribe(forgetChannel(prefix)), onError);
  return subscriber;
}

/**
 * From outside a running proxy (the `accounts` command): tells the proxies of `config`'s Redis ledger to forget
 * `keys`. Nothing with the memory ledger (its one proxy reads the change within cache_timeout).
 */
export async function announceForgets(config: Config, keys: readonly string[]): Promise<void> {
  if (config.ledger.kind !== 'redis' || keys.length === 0) return;
  const { url, sentinel, prefix } = config.ledger;
  const redis = connectRedis({ url, ...(sentinel ? { sentinel } : {}) }, 2_000);
  try {
    await redis.connect();
    for (const key of keys) await redis.publish(forgetChannel(prefix), key);
  } finally {
    redis.disconnect();
  }
}
