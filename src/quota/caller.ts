/**
 * Who Swift takes a write from, and the reads the proxy makes on that caller's behalf. Swift's tempurl middleware
 * takes over any request carrying tempurl parameters: its signature is checked here as Swift checks it, with the
 * keys read now. Anyone else is asked of Swift (auth/authority.ts). Reads made for a caller use the caller's own
 * rights: they learn nothing the caller could not read itself.
 */
import { callerCredentials, type Credentials, type SwiftAnswer, type Verdict } from '../auth/authority.js';
import { checkTempUrl, tempUrlParams } from '../auth/signatures.js';
import type { SwiftView } from '../proxy/swift-view.js';
import { encodePath } from '../swift/path.js';
import { countHeader, UpstreamUnavailableError } from '../swift/client.js';
import { accountKey, containerKey, type Versioning } from './ledger/ledger.js';
import { overwriteCredit } from './versioning.js';
import type { Usage } from './decide.js';
import type { ObjectRef } from './intent.js';
import type { QuotaCore } from './core.js';

/** How the caller of a write is authorised, as far as the proxy's own lookups for it go. */
export type Caller =
  | { readonly kind: 'credentials'; readonly credentials: Credentials }
  /** A tempurl signature Swift will accept: it authorises the whole account, or one container. */
  | { readonly kind: 'tempurl'; readonly account: string; readonly container?: string };

/** Swift's tempurl answer to a signature it does not accept. */
const TEMPURL_INVALID: SwiftAnswer = Object.freeze({
  status: 401,
  headers: { 'content-type': 'text/plain; charset=UTF-8' },
  body: Buffer.from('401 Unauthorized: Temp URL invalid\n'),
});

type Where = { account: string; container: string; object?: string };
type Read = { status: number; headers: Record<string, string>; body?: Buffer };

/** Who Swift will take the write for, and whether it will. */
export async function authorise(core: QuotaCore, view: SwiftView, account: string, container: string | undefined, object: string | undefined): Promise<{ verdict: Verdict; caller: Caller }> {
  const capabilities = core.capabilities();
  const params = capabilities.has('tempurl') && view.method !== 'OPTIONS' ? tempUrlParams(view.path!.query) : undefined;
  if (!params) {
    const credentials = callerCredentials(view.headers, view.s3);
    return { verdict: await core.authority.mayWrite(credentials, account, container), caller: { kind: 'credentials', credentials } };
  }
  const denied = { verdict: { allowed: false, answer: TEMPURL_INVALID } as Verdict, caller: { kind: 'tempurl', account } as Caller };
  // tempurl signs object requests only (a container request with its parameters is refused).
  if (container === undefined || object === undefined) return denied;
  const result = await withKeysReadNow(core, account, container, (keys) =>
    checkTempUrl({
      method: view.method,
      version: view.path!.version,
      account,
      container,
      object,
      params,
      keys,
      methods: capabilities.tempurlMethods,
      digests: capabilities.tempurlDigests,
      nowSeconds: Date.now() / 1000,
    }),
  (result) => result.valid);
  if (!result.valid) return denied;
  return { verdict: { allowed: true }, caller: { kind: 'tempurl', account, ...(result.scope === 'container' ? { container } : {}) } };
}

/**
 * Checks a signature (tempurl, formpost) with the account's and container's keys. Keys may have changed since
 * they were read: a signature is refused only on keys read just now.
 */
export async function withKeysReadNow<T>(core: QuotaCore, account: string, container: string, check: (keys: { account: readonly string[]; container: readonly string[] }) => T, passes: (result: T) => boolean): Promise<T> {
  const attempt = async (fresh: boolean) => {
    const notBefore = fresh ? core.ledger.now() + 1 : 0;
    const [accountUsage, containerUsage] = await Promise.all([core.ledger.read(accountKey(account), notBefore), core.ledger.read(containerKey(account, container), notBefore)]);
    return check({ account: accountUsage.tempUrlKeys ?? [], container: containerUsage.tempUrlKeys ?? [] });
  };
  const first = await attempt(false);
  return passes(first) ? first : attempt(true);
}

/** A HEAD on the caller's behalf, with its own rights. */
export function headFor(core: QuotaCore, caller: Caller, ref: Where, query: string, version = 'v1'): Promise<Read> {
  return readFor(core, caller, 'HEAD', ref, query, version);
}

/** A HEAD or GET on the caller's behalf (a GET's body up to `maxBody` bytes, the rest left unread). */
export function readFor(core: QuotaCore, caller: Caller, method: 'HEAD' | 'GET', ref: Where, query: string, version = 'v1', maxBody = 0, headers: Record<string, string> = {}): Promise<Read> {
  const path = encodePath(version, ref.account, ref.container, ref.object) + (query ? `?${query}` : '');
  const target = ref.object === undefined ? 'container' : 'object';
  if (caller.kind === 'credentials') return core.swift.asCaller(method, path, { ...caller.credentials.headers, ...headers }, target, maxBody, true);
  // A tempurl signature lets Swift read within its scope (the account, or the one container).
  const inScope = ref.account === caller.account && (caller.container === undefined || caller.container === ref.container);
  if (!inScope) return Promise.resolve({ status: 401, headers: {} });
  return method === 'HEAD' ? core.swift.head(path, target) : core.swift.getAsService(path, target, maxBody, headers);
}

/** The object a write replaces, as stored (a manifest or symlink itself, not what it points to). */
export async function replacedObject(core: QuotaCore, caller: Caller, target: ObjectRef): Promise<Usage | undefined> {
  const { status, headers } = await headFor(core, caller, target, 'multipart-manifest=get&symlink=get');
  if (status < 200 || status >= 300) return undefined;
  return { count: 1, bytes: countHeader(headers['content-length']) };
}

/**
 * What an object write frees by replacing its target, by the versioning decided on (looked up only when the
 * decision needs it); `current`: the object as read already.
 */
export function creditOf(core: QuotaCore, caller: Caller, target: ObjectRef, versioning: Versioning | undefined, read?: { current: Usage | undefined }): () => Promise<Usage | undefined> {
  return async () => overwriteCredit(versioning, read ? read.current : await replacedObject(core, caller, target));
}

/**
 * Every entry of a container listing under `prefix`, page by page (`page` reads one, from `marker`). A missing
 * container lists nothing; any other failure is Swift's.
 */
export async function listAll<T extends { name: string }>(prefix: string, what: string, page: (query: string) => Promise<Read>): Promise<T[]> {
  const entries: T[] = [];
  for (let marker = ''; ; ) {
    const read = await page(`format=json&prefix=${encodeURIComponent(prefix)}&marker=${encodeURIComponent(marker)}`);
    if (read.status === 204 || read.status === 404 || !read.body) return entries;
    if (read.status >= 300) throw new UpstreamUnavailableError(`Swift answered ${read.status} to listing ${what}`);
    const items = JSON.parse(read.body.toString('utf8')) as T[];
    if (items.length === 0) return entries;
    entries.push(...items);
    marker = items[items.length - 1]!.name;
  }
}
