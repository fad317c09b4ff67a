/**
 * S3 requests signed with Keystone EC2 credentials (`openstack ec2 credentials create`), checked as Swift's
 * s3token checks them, so that the proxy knows whose they are before it counts them:
 *
 * - The request's signature goes to Keystone's `/v3/s3tokens` (s3api's string to sign, the client's signature),
 *   as s3token sends it: Keystone says whether the credential's secret gives that signature, and whose it is
 *   (user, project). The account is s3token's: `reseller_prefix` + the project id, or the tenant an access key
 *   `KEY:tenant` names.
 * - The proxy asks Swift whether the caller may write as it does for every caller, with the caller's own token: a
 *   token of the credential's user in its project, from Keystone's `/v3/ec2tokens` (which gives one for a
 *   request signed with the secret; the proxy reads the secret with its service identity and signs one itself).
 *   Kept until shortly before it expires.
 * - No secret is kept to check signatures here (s3token's `secret_cache_duration` is Swift's alone): a credential
 *   made again in another project would be counted in its old one for as long as a kept secret lasted, while
 *   Swift writes in the new one. A deleted or moved credential is known at its next request.
 *
 * Keystone round trips per S3 write: one (s3tokens); a token (a credential read and an ec2tokens) once per user
 * and project per token lifetime.
 */
import { createHmac } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Dispatcher } from 'undici';
import type { S3TokenConfig } from '../config/swift-filters.js';
import type { S3SignedString } from '../s3/signature.js';
import { UpstreamUnavailableError } from '../swift/client.js';
import { readBody } from '../swift/response-body.js';

/**
 * Whether s3token leaves the Swift path of a write with this access key as the proxy counts it,
 * `/v1/<reseller_prefix><tenant>/<container>/<object>`. s3api makes the path `/v1/<access key>/<container>/<object>`
 * (the whole key, `KEY:tenant` too) and s3token replaces *every* occurrence of that path's account in it
 * (`PATH_INFO.replace(account, ...)`): a `/` in the key moves the account's end (`KEY:project/c` writes in the
 * container c), and a container or object name holding the key is renamed (a bucket named after the access key
 * lands in the container `AUTH_<project>`). Such writes are refused rather than counted where they do not land; keys
 * other than printable ASCII too (s3api decodes the key as UTF-8 but the names as WSGI bytes: they would not compare).
 */
export function s3tokenKeepsPath(accessKey: string, names: readonly string[]): boolean {
  if (!/^[\x21-\x7e]+$/.test(accessKey) || accessKey.includes('/')) return false;
  return names.every((name) => !name.includes(accessKey));
}

/** Who an EC2 credential's request comes from, and the token the proxy asks Swift with on its behalf. */
export interface Ec2Caller {
  readonly access: string;
  readonly userId: string;
  readonly projectId: string;
  /** The account the request writes in: s3token's reseller prefix and the project (or the tenant the key names). */
  readonly account: string;
  readonly token: string;
}

interface Known {
  readonly userId: string;
  readonly projectId: string;
  token?: { value: string; until: number };
}

export type KeystoneApi = 's3tokens' | 'credential' | 'ec2tokens';

const MAX_ANSWER_BYTES = 1024 * 1024;
/** A user token is used until this long before Keystone says it expires. */
const TOKEN_MARGIN_MS = 60_000;

export class Ec2Credentials {
  private readonly known = new LRUCache<string, Known>({ max: 10_000 });

  constructor(
    private readonly config: S3TokenConfig,
    private readonly dispatcher: Dispatcher,
    /** The proxy's service identity's Keystone token. */
    private readonly serviceToken: () => Promise<string>,
    /** Each request to Keystone, for the metrics: which API, and whether Keystone said yes, no, or nothing. */
    private readonly counted: (api: KeystoneApi, result: 'ok' | 'refused' | 'failed') => void = () => {},
  ) {}

  /**
   * The caller of a request whose access key is `accessKey` and whose signature is `signed`; undefined when
   * Keystone does not accept the signature. Keystone unreachable: UpstreamUnavailableError.
   */
  async caller(accessKey: string, signed: S3SignedString): Promise<Ec2Caller | undefined> {
    // s3token's `access, force_tenant = access.split(':')`: more than one colon fails there (never authorised).
    const [access, tenant, ...more] = accessKey.split(':');
    if (more.length > 0 || access === undefined) return undefined;
    // Every request is checked by Keystone, never with a kept secret: a credential deleted and made again (same
    // key and secret) in another project would be counted in its old project for as long as a secret were kept,
    // while Swift's s3token writes in the new one (test/integration/keystone-ec2-attacks.ts).
    const owner = await this.s3tokens(access, signed);
    // A refusal leaves what is known of the key alone: anyone can send a wrong signature with someone's key.
    if (!owner) return undefined;
    let known = this.known.get(access);
    if (!known || known.userId !== owner.userId || known.projectId !== owner.projectId) {
      known = { ...owner };
      this.known.set(access, known);
    }
    const token = await this.tokenOf(access, known, Date.now());
    return { access, userId: known.userId, projectId: known.projectId, account: this.accountOf(tenant, known.projectId), token };
  }

  /** The project an access key was last seen to belong to (for deletes, which are not checked): undefined if never. */
  projectOf(accessKey: string): string | undefined {
    const [access, tenant] = accessKey.split(':');
    const known = access === undefined ? undefined : this.known.peek(access);
    return known && this.accountOf(tenant, known.projectId);
  }

  /** s3token's `force_tenant or tenant['id']`: an empty tenant (`KEY:`) is the credential's project, as no tenant is. */
  private accountOf(tenant: string | undefined, projectId: string): string {
    return `${this.config.resellerPrefix}${tenant || projectId}`;
  }

  /** Keystone's check of the signature (`POST /v3/s3tokens`, as s3token sends it): the credential's owner, or undefined. */
  private async s3tokens(access: string, signed: S3SignedString): Promise<{ userId: string; projectId: string } | undefined> {
    const token = signed.stringToSign.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    const answer = await this.keystone('s3tokens', 'POST', '/s3tokens', { credentials: { access, token, signature: signed.signature } });
    if (answer.status < 200 || answer.status >= 300) return undefined;
    const body = answer.json as { token?: { user?: { id?: unknown }; project?: { id?: unknown } } } | undefined;
    const userId = body?.token?.user?.id;
    const projectId = body?.token?.project?.id;
    return typeof userId === 'string' && typeof projectId === 'string' ? { userId, projectId } : undefined;
  }

  /** A token of the credential's user in its project, kept until shortly before it expires. */
  private async tokenOf(access: string, known: Known, now: number): Promise<string> {
    if (known.token && known.token.until > now) return known.token.value;
    const secret = await this.secretOf(access, known.userId);
    // An EC2 request (signature version 1) signed with the secret: Keystone answers it with a token.
    const params: Record<string, string> = { AWSAccessKeyId: access, SignatureVersion: '1', Timestamp: new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z') };
    const signing = createHmac('sha1', Buffer.from(secret, 'utf8'));
    for (const key of Object.keys(params).sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1))) signing.update(key, 'utf8').update(params[key]!, 'utf8');
    const signature = signing.digest('base64');
    const answer = await this.keystone('ec2tokens', 'POST', '/ec2tokens', { credentials: { access, host: '', verb: 'POST', path: '/', params, signature } });
    const subject = answer.headers['x-subject-token'];
    const value = Array.isArray(subject) ? subject[0] : subject;
    if (answer.status !== 200 || !value) throw new UpstreamUnavailableError(`Keystone answered ${answer.status} to the token of EC2 credential ${access}`);
    const expires = Date.parse((answer.json as { token?: { expires_at?: string } } | undefined)?.token?.expires_at ?? '');
    known.token = { value, until: Number.isFinite(expires) ? expires - TOKEN_MARGIN_MS : now + TOKEN_MARGIN_MS };
    return value;
  }

  /** The credential's secret, read with the service identity (Keystone's `identity:ec2_get_credential`). */
  private async secretOf(access: string, userId: string): Promise<string> {
    const answer = await this.keystone('credential', 'GET', `/users/${encodeURIComponent(userId)}/credentials/OS-EC2/${encodeURIComponent(access)}`);
    const secret = (answer.json as { credential?: { secret?: unknown } } | undefined)?.credential?.secret;
    if (answer.status !== 200 || typeof secret !== 'string') {
      throw new UpstreamUnavailableError(`Keystone answered ${answer.status} to reading EC2 credential ${access} as the service identity (it needs Keystone's admin role to read users' credentials)`);
    }
    return secret;
  }

  private async keystone(api: KeystoneApi, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: unknown }> {
    const url = new URL(`${this.config.authUri}${path}`);
    try {
      const response = await this.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method,
        headers: { host: url.host, accept: 'application/json', 'x-auth-token': await this.serviceToken(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.config.timeoutMs),
      });
      const text = (await readBody(response.body, MAX_ANSWER_BYTES)).toString('utf8');
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      this.counted(api, response.statusCode >= 200 && response.statusCode < 300 ? 'ok' : 'refused');
      return { status: response.statusCode, headers: response.headers, json };
    } catch (error) {
      this.counted(api, 'failed');
      if (error instanceof UpstreamUnavailableError) throw error;
      throw new UpstreamUnavailableError(`cannot reach Keystone at ${url.origin} to check an EC2 credential: ${(error as Error).message}`, { cause: error });
    }
  }
}
