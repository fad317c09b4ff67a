/**
 * The proxy's own requests to Swift: HEADs that read usage, made with a service identity (a reseller admin:
 * a tempauth user, or a Keystone identity with the reseller admin role) so that a quota check never depends on
 * what the caller may read.
 */
import type { Dispatcher } from 'undici';
import { LRUCache } from 'lru-cache';
import type { ServiceIdentity, TempauthUser } from '../config/load.js';
import type { Metrics } from '../metrics.js';
import { issueToken, listProjects } from '../auth/keystone.js';
import { BodyTooLargeError, readBody } from './response-body.js';

export type HeadTarget = 'account' | 'container' | 'object' | 'auth' | 'metadata' | 'listing';

export interface HeadResult {
  status: number;
  headers: Record<string, string>;
}

/** Swift could not be asked (unreachable, timed out, 5xx). Writes that need a check fail closed on it. */
export class UpstreamUnavailableError extends Error {
  readonly code = 'SQP_ERR_USAGE_UNAVAILABLE';
}

export const LOOKUP_TIMEOUT_MS = 10_000;

/** A count or size header of Swift's (X-Container-Object-Count, Content-Length, ...); 0 when absent or bad. */
export function countHeader(value: string | undefined): number {
  const n = Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}
// Renew the service token this long before Swift says it expires.
const TOKEN_RENEW_MARGIN_MS = 60_000;

export interface SwiftClientOptions {
  upstream: URL;
  dispatcher: Dispatcher;
  service: ServiceIdentity;
  metrics: Metrics;
}

interface HeldToken {
  value: string;
  renewAt: number;
  /** The account the token acts on as its own (where the proxy keeps its state). */
  account: string;
}

/** When to ask for a new token: a minute before it expires, or half-way through a shorter life. */
function renewAt(lifetimeMs: number): number {
  return Date.now() + Math.max(lifetimeMs - TOKEN_RENEW_MARGIN_MS, lifetimeMs / 2);
}

function flatten(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

interface SendOptions {
  /** Read the answer's body: of successful answers only ('ok'), or of every answer ('always'). */
  keepBody?: 'ok' | 'always' | false;
  maxBody?: number;
  /** Past `maxBody`, keep the first `maxBody` bytes instead of failing. */
  truncate?: boolean;
  body?: Buffer;
}

export class SwiftClient {
  private token: HeldToken | undefined;
  private readonly userTokens = new LRUCache<string, { value: string; renewAt: number }>({ max: 10_000 });
  private tokenRequest: Promise<HeldToken> | undefined;

  constructor(private readonly options: SwiftClientOptions) {}

  private async send(
    method: Method,
    path: string,
    headers: Record<string, string>,
    target: HeadTarget,
    { keepBody = false, maxBody = Infinity, truncate = false, body: requestBody }: SendOptions = {},
  ): Promise<HeadResult & { body?: Buffer }> {
    const { metrics } = this.options;
    const stopTimer = metrics.lookupSeconds.startTimer({ target });
    try {
      const response = await this.options.dispatcher.request({
        origin: this.options.upstream.origin,
        path,
        method,
        headers: { host: this.options.upstream.host, ...headers },
        ...(requestBody !== undefined ? { body: requestBody } : {}),
        signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
        // undici closes the connection after every HEAD unless told not to (for servers that send a body
        // with one); Swift does not, and a new connection per usage read costs both sides.
        reset: false,
      });
      const wanted = keepBody === 'always' || (keepBody === 'ok' && response.statusCode < 300);
      const body = wanted ? await readBody(response.body, maxBody, truncate) : (await response.body.dump(), undefined);
      const outcome = response.statusCode >= 500 ? 'error' : response.statusCode === 404 ? 'not_found' : 'ok';
      metrics.lookups.inc({ target, outcome });
      if (response.statusCode >= 500) {
        throw new UpstreamUnavailableError(`Swift answered ${response.statusCode} to ${method} ${path}`);
      }
      return { status: response.statusCode, headers: flatten(response.headers), ...(body !== undefined ? { body } : {}) };
    } catch (error) {
      if (error instanceof UpstreamUnavailableError || error instanceof BodyTooLargeError) throw error;
      metrics.lookups.inc({ target, outcome: 'error' });
      throw new UpstreamUnavailableError(`cannot reach Swift for ${method} ${path}: ${(error as Error).message}`, { cause: error });
    } finally {
      stopTimer();
    }
  }

  /**
   * A request with the caller's own credentials (or none): Swift decides what the caller may see or do,
   * and its answer (status, headers, body) is what the caller would have got.
   */
  asCaller(method: 'GET' | 'HEAD' | 'POST', path: string, credentials: Readonly<Record<string, string>>, target: HeadTarget, maxBody = 64 * 1024, truncate = false): Promise<HeadResult & { body?: Buffer }> {
    return this.send(method, path, { ...credentials }, target, { keepBody: method === 'HEAD' ? false : 'always', maxBody, truncate });
  }

  /** A GET as the service identity, reading at most `maxBody` bytes of a successful answer. */
  async getAsService(path: string, target: HeadTarget, maxBody: number, headers: Record<string, string> = {}): Promise<HeadResult & { body?: Buffer }> {
    const send = async () => this.send('GET', path, { ...headers, 'x-auth-token': await this.serviceToken() }, target, { keepBody: 'ok', maxBody, truncate: true });
    const result = await send();
    if (result.status !== 401) return result;
    this.token = undefined;
    return send();
  }

  /** A HEAD with the caller's own token (or none): Swift decides what the caller may see. */
  headAs(path: string, target: HeadTarget, token: string | undefined): Promise<HeadResult> {
    return this.send('HEAD', path, token ? { 'x-auth-token': token } : {}, target);
  }

  /** A HEAD as the service identity; renews the token once if Swift no longer accepts it. */
  head(path: string, target: HeadTarget): Promise<HeadResult> {
    return this.asService('HEAD', path, {}, target);
  }

  /** A request as the service identity, renewing its token once if Swift no longer accepts it. */
  private async asService(method: Method, path: string, headers: Record<string, string>, target: HeadTarget, options: SendOptions = {}) {
    const result = await this.send(method, path, { ...headers, 'x-auth-token': await this.serviceToken() }, target, options);
    if (result.status !== 401) return result;
    this.token = undefined;
    return this.send(method, path, { ...headers, 'x-auth-token': await this.serviceToken() }, target, options);
  }

  /** Deletes an object as the service identity (what remains of an upload the proxy cut). */
  async delete(path: string): Promise<HeadResult> {
    return this.asService('DELETE', path, {}, 'metadata');
  }

  /** Stores an object (or makes a container) as the service identity: the proxy's own state. */
  async putAsService(path: string, body: Buffer, headers: Record<string, string> = {}): Promise<HeadResult> {
    return this.asService('PUT', path, { ...headers, 'content-length': String(body.length) }, 'metadata', { body });
  }

  /** Sets or removes metadata (the proxy's own quota state) on an account or container. */
  async post(path: string, headers: Record<string, string>): Promise<HeadResult> {
    return this.asService('POST', path, headers, 'metadata');
  }

  /** A JSON listing (account: containers, container: objects); undefined when it does not exist. */
  async getJson<T>(path: string): Promise<{ headers: Record<string, string>; items: T[] } | undefined> {
    const result = await this.asService('GET', path, { accept: 'application/json' }, 'listing', { keepBody: 'ok' });
    // Not there, or no name Swift takes (400, 412): nothing to list.
    if (result.status >= 400 && result.status < 500) return undefined;
    if (result.status >= 300) throw new UpstreamUnavailableError(`Swift answered ${result.status} to GET ${path}`);
    return { headers: result.headers, items: result.status === 204 || !result.body ? [] : (JSON.parse(result.body.toString('utf8')) as T[]) };
  }

  /**
   * A token of a tempauth user (an S3 caller: the proxy asks Swift with that user's own rights), logged in
   * with the user's key and kept until it is about to expire.
   */
  async userToken(user: TempauthUser): Promise<string> {
    const name = `${user.account}:${user.user}`;
    const cached = this.userTokens.get(name);
    if (cached && Date.now() < cached.renewAt) return cached.value;
    const result = await this.send('GET', '/auth/v1.0', { 'x-auth-user': name, 'x-auth-key': user.key }, 'auth');
    const token = result.headers['x-auth-token'];
    if (result.status >= 300 || !token) throw new UpstreamUnavailableError(`Swift refused the tempauth user ${name} (status ${result.status})`);
    const expiresInMs = Number(result.headers['x-auth-token-expires'] ?? 3600) * 1000;
    this.userTokens.set(name, { value: token, renewAt: renewAt(expiresInMs) });
    return token;
  }

  /**
   * The service identity's own account, where the proxy keeps state no tenant may change: the tempauth user's, or
   * keystoneauth's reseller prefix and the Keystone token's project id (known once a token is issued).
   */
  async serviceAccount(): Promise<string> {
    return (await this.heldToken()).account;
  }

  /**
   * The Keystone projects the service identity may list (`GET /v3/projects`), with keystoneauth's reseller prefix:
   * the accounts of a Keystone cloud. Undefined when the identity is tempauth's, or Keystone does not let it list.
   */
  async keystoneAccounts(): Promise<string[] | undefined> {
    const { service } = this.options;
    if (service.kind !== 'keystone') return undefined;
    const ids = await listProjects(service.keystone, await this.serviceToken(), this.options.dispatcher);
    return ids?.map((id) => `${service.keystone.resellerPrefix}${id}`);
  }

  /** The service identity's Keystone token, for Keystone's own APIs (auth/ec2.ts); its Swift token otherwise. */
  keystoneToken(): Promise<string> {
    return this.serviceToken();
  }

  private async serviceToken(): Promise<string> {
    return (await this.heldToken()).value;
  }

  private heldToken(): Promise<HeldToken> {
    if (this.token && Date.now() < this.token.renewAt) return Promise.resolve(this.token);
    // Concurrent checks share one auth request.
    this.tokenRequest ??= this.authenticate().finally(() => {
      this.tokenRequest = undefined;
    });
    return this.tokenRequest;
  }

  private async authenticate(): Promise<HeldToken> {
    const { service } = this.options;
    if (service.kind === 'keystone') {
      let issued;
      try {
        issued = await issueToken(service.keystone, this.options.dispatcher);
      } catch (error) {
        // To the quota checks it is the same as Swift being unreachable: usage cannot be read (fail_mode decides).
        throw new UpstreamUnavailableError((error as Error).message, { cause: error });
      }
      this.token = { value: issued.value, renewAt: renewAt(issued.lifetimeMs), account: `${service.keystone.resellerPrefix}${issued.projectId}` };
      return this.token;
    }
    const { account, user, key } = service.user;
    const result = await this.send('GET', '/auth/v1.0', { 'x-auth-user': `${account}:${user}`, 'x-auth-key': key }, 'auth');
    const token = result.headers['x-auth-token'];
    if (result.status >= 300 || !token) {
      throw new UpstreamUnavailableError(`Swift refused the service identity ${account}:${user} (status ${result.status})`);
    }
    const expiresInMs = Number(result.headers['x-auth-token-expires'] ?? 3600) * 1000;
    this.token = { value: token, renewAt: renewAt(expiresInMs), account: service.account };
    return this.token;
  }
}
