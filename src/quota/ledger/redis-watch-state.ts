/**
 * The quota watch's state shared by the proxies of one Redis ledger (shared-watch.ts), beside the ledger's keys:
 *
 *   <prefix>w:<key>      a scope's soft and hard-hit state per kind (field), moved by compare-and-set (TRANSITION)
 *   <prefix>lock:<key>   a token: the proxy writing the scope's state to Swift metadata, one at a time
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { kindStateText, parseKindState, type SharedWatchState } from '../shared-watch.js';
import type { LedgerScripts } from './redis-scripts.js';

/** How long the shared watch state of a scope outlives its last change (Swift's metadata keeps it anyway). */
const WATCH_STATE_TTL_MS = 7 * 86_400_000;
/** Longest a metadata write of one scope may hold its lock (a proxy that died holding it). */
const WATCH_LOCK_MS = 30_000;

export function redisWatchState(redis: Redis, scripts: LedgerScripts, prefix: string): SharedWatchState {
  const hash = (key: string) => `${prefix}w:${key}`;
  return {
    transition: async (key, kind, expected, next) => {
      const current = await scripts.watchTransition(hash(key), kind, kindStateText(expected), kindStateText(next), WATCH_STATE_TTL_MS);
      return current === null ? undefined : parseKindState(current);
    },
    exclusive: async (key, write) => {
      const lock = `${prefix}lock:${key}`;
      const token = randomBytes(8).toString('hex');
      if ((await redis.set(lock, token, 'PX', WATCH_LOCK_MS, 'NX')) !== 'OK') return false;
      try {
        await write();
      } finally {
        await scripts.watchUnlock(lock, token).catch(() => undefined); // it expires anyway
      }
      return true;
    },
  };
}
