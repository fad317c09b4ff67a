/**
 * Who a token belongs to, as far as this proxy can tell without asking Swift: tempauth logins pass through
 * the proxy (`GET /auth/v1.0` with X-Auth-User), and the answer carries the token. Remembered until the token
 * expires, so quota events can name the caller; a token obtained elsewhere stays anonymous.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { LRUCache } from 'lru-cache';

const MAX_TOKENS = 100_000;
const AUTH_PATHS = new Set(['/auth/v1.0', '/auth/v1.0/', '/v1.0', '/v1.0/', '/auth/v1', '/auth/v1/']);

/** The token a request carries (Swift takes X-Auth-Token, or X-Storage-Token as its older name). */
export function requestToken(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['x-auth-token'] ?? headers['x-storage-token'];
  return Array.isArray(value) ? value[0] : value;
}

export function isLoginPath(path: string): boolean {
  const end = path.indexOf('?');
  return AUTH_PATHS.has(end < 0 ? path : path.slice(0, end));
}

export class TokenIdentities {
  private readonly byToken = new LRUCache<string, string>({ max: MAX_TOKENS, ttl: 86_400_000 });

  /** A login answered: `user` is what the client sent as X-Auth-User (`account:user`). */
  remember(token: string, user: string, expiresInSeconds: number | undefined): void {
    const ttl = expiresInSeconds !== undefined && Number.isFinite(expiresInSeconds) && expiresInSeconds > 0 ? expiresInSeconds * 1000 : undefined;
    this.byToken.set(token, user, ttl === undefined ? {} : { ttl });
  }

  caller(token: string | undefined): string | undefined {
    return token === undefined ? undefined : this.byToken.get(token);
  }
}
