/**
 * Whether Swift will let a request's caller do the write the proxy is about to count: asked of Swift itself,
 * before anything is reserved, refused or recorded, so that a caller Swift would turn away never holds quota,
 * learns about it, or makes the proxy write its state.
 *
 * The question is a request Swift authorises exactly as the write, with the caller's own credentials, that
 * changes nothing: a POST to an object (or container) name that does not exist. Swift authorises object POSTs
 * with the container's write ACL as it does PUTs, and container POSTs as container PUTs; an authorised caller
 * gets 404, any other Swift's own 401 or 403, which is then the caller's answer. Grants are kept for a few
 * seconds per credentials and container, so a burst of uploads costs one question; refusals are not kept.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { SwiftHeaders } from '../swift/request.js';
import { encodePath } from '../swift/path.js';
import type { SwiftClient } from '../swift/client.js';

/** Request headers by which Swift (tempauth, keystoneauth, container sync) recognises a caller. */
const CREDENTIAL_HEADERS = ['x-auth-token', 'x-storage-token', 'x-service-token', 'x-container-sync-key'] as const;

export interface Credentials {
  /** The caller's credential headers, replayed on the question to Swift. */
  readonly headers: Readonly<Record<string, string>>;
  /** Identifies the credentials in the verdict cache. */
  readonly key: string;
}

export function callerCredentials(headers: SwiftHeaders, s3?: { credentials: Credentials }): Credentials {
  if (s3) return s3.credentials;
  const out: Record<string, string> = {};
  for (const name of CREDENTIAL_HEADERS) {
    const value = headers.get(name);
    if (value !== undefined) out[name] = value;
  }
  // Container sync authenticates with the key and the timestamp together.
  const timestamp = headers.get('x-timestamp');
  if (out['x-container-sync-key'] !== undefined && timestamp !== undefined) out['x-timestamp'] = timestamp;
  return { headers: out, key: JSON.stringify(out) };
}

/** The token a request carries, as Swift reads it (X-Auth-Token, else X-Storage-Token; any spelling). */
export function callerToken(headers: SwiftHeaders): string | undefined {
  return headers.get('x-auth-token') ?? headers.get('x-storage-token');
}

/** Swift's answer to a caller it does not authorise. */
export interface SwiftAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** What the verdict cache asks Swift, when it must. */
interface Question {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

export type Verdict = { readonly allowed: true } | { readonly allowed: false; readonly answer: SwiftAnswer };

const ALLOWED: Verdict = Object.freeze({ allowed: true });
// Long enough that a burst of writes costs one question, short enough that a revoked token or ACL stops counting.
const VERDICT_TTL_MS = 10_000;
const MAX_VERDICTS = 20_000;
/** Response headers of Swift's refusal worth passing on to the caller. */
const ANSWER_HEADERS = ['content-type', 'www-authenticate', 'x-trans-id', 'x-openstack-request-id'];

export class Authority {
  private readonly verdicts: LRUCache<string, Verdict, Question>;
  private readonly readers: LRUCache<string, boolean>;

  /** `now`: the clock kept answers age by, in ms (default: the cache's own, performance.now()); tests fake it. */
  constructor(
    private readonly swift: SwiftClient,
    now?: () => number,
  ) {
    const clock = now ? { perf: { now } } : {};
    this.verdicts = new LRUCache<string, Verdict, Question>({
      max: MAX_VERDICTS,
      ttl: VERDICT_TTL_MS,
      ...clock,
      fetchMethod: async (_cacheKey, _stale, { options, context }) => {
        const verdict = await this.ask(context.path, context.headers);
        // Only a grant is kept: a caller Swift refused may be granted the next moment (an ACL set, a token
        // issued), and must not be refused by the proxy after Swift would take it. Concurrent asks still share one question.
        if (!verdict.allowed) options.ttl = 1;
        return verdict;
      },
    });
    this.readers = new LRUCache<string, boolean>({
      max: MAX_VERDICTS,
      ttl: VERDICT_TTL_MS,
      ...clock,
      // Both answers are kept: a caller refused here only goes without quota headers for a few seconds.
      fetchMethod: async (cacheKey) => {
        const { path, headers } = JSON.parse(cacheKey) as { path: string; headers: Record<string, string> };
        const { status } = await this.swift.asCaller('HEAD', path, headers, 'auth');
        return status >= 200 && status < 300;
      },
    });
  }

  /**
   * Whether Swift lets the caller write objects into `account/container` (`container` given) or create
   * containers in `account`. Throws UpstreamUnavailableError when Swift cannot be asked.
   */
  async mayWrite(credentials: Credentials, account: string, container?: string): Promise<Verdict> {
    const path = container === undefined ? encodePath('v1', account) : encodePath('v1', account, container);
    // The path has no newline; credentials.key is JSON, which has none either.
    const cacheKey = `${path}\n${credentials.key}`;
    // A grant kept from earlier (nearly every write of a burst): no fetch, no promise of the cache's own.
    const kept = this.verdicts.get(cacheKey);
    if (kept) return kept;
    const verdict = await this.verdicts.fetch(cacheKey, { context: { path, headers: credentials.headers } });
    return verdict ?? ALLOWED;
  }

  /** Asks Swift now, whatever was kept; the answer is kept as any other (a refusal is not). */
  async mayWriteNow(credentials: Credentials, account: string, container?: string): Promise<Verdict> {
    const path = container === undefined ? encodePath('v1', account) : encodePath('v1', account, container);
    const verdict = await this.verdicts.fetch(`${path}\n${credentials.key}`, { forceRefresh: true, context: { path, headers: credentials.headers } });
    return verdict ?? ALLOWED;
  }

  /** Forgets a kept grant (Swift has just refused a write made on it). */
  forget(credentials: Credentials, account: string, container?: string): void {
    const path = container === undefined ? encodePath('v1', account) : encodePath('v1', account, container);
    this.verdicts.delete(`${path}\n${credentials.key}`);
  }

  /** Whether Swift lets the caller read the account (a HEAD with its credentials succeeds). */
  async mayReadAccount(credentials: Credentials, account: string): Promise<boolean> {
    if (Object.keys(credentials.headers).length === 0) return false;
    return (await this.readers.fetch(JSON.stringify({ path: encodePath('v1', account), headers: credentials.headers }))) === true;
  }

  private async ask(scope: string, credentials: Record<string, string>): Promise<Verdict> {
    // A name nobody has written: the POST finds nothing to change (404) once Swift has authorised it.
    const probe = `${scope}/quota-proxy-probe-${randomBytes(12).toString('hex')}`;
    const answer = await this.swift.asCaller('POST', probe, credentials, 'auth');
    if (answer.status === 404 || (answer.status >= 200 && answer.status < 300)) return ALLOWED;
    const headers: Record<string, string> = {};
    for (const name of ANSWER_HEADERS) if (answer.headers[name] !== undefined) headers[name] = answer.headers[name];
    return Object.freeze({ allowed: false, answer: { status: answer.status, headers, body: answer.body ?? Buffer.alloc(0) } });
  }
}
