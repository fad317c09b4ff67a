/**
 * The adversarial suite's setting: a proxy (cached or precise mode) in front of the shared test Swift, and
 * tenants (adv1..adv400, one set of accounts per test file and mode) whose every outcome is checked on Swift
 * directly, never through the proxy. Limits as in the issue that found the holes: 3 containers per account,
 * 5 objects and 10000 bytes per container.
 */
import assert from 'node:assert/strict';
import { startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login, type Answer } from '../helpers/http.js';

export const LIMITS = { containers: 3, objects: 5, bytes: 10_000 } as const;

export const ADVERSARIAL_QUOTA = {
  container_count: { default: LIMITS.containers, roomy: 1000, manifests: 10 },
  object_count: { default: LIMITS.objects, roomy: 100_000, manifests: 1000 },
  container_usage: { default: LIMITS.bytes, roomy: 10 ** 12, manifests: LIMITS.bytes },
};

export const MODES = [
  { name: 'cached mode', precise: false },
  { name: 'precise mode', precise: true },
] as const;

export interface Tenant {
  readonly account: string;
  /** AUTH_<account> */
  readonly swiftAccount: string;
  readonly token: string;
  readonly readerToken: string;
  /** A URL of this tenant's account through the proxy (path starts with "/" or "?"). */
  viaProxy(path?: string): string;
  /** The same URL straight to Swift, for checking outcomes. */
  direct(path?: string): string;
  /** Its S3 key where it is not its tempauth admin's (a Keystone EC2 credential). */
  readonly s3?: { readonly access: string; readonly secret: string };
}

export interface Arena {
  readonly swift: string;
  readonly proxy: RunningProxy;
  readonly resellerToken: string;
  /** A fresh tenant, at `level` if given (set straight in Swift before the proxy sees the account). */
  tenant(level?: string): Promise<Tenant>;
  /** Objects and bytes of a container, as Swift has them (HEAD straight to Swift, as the reseller). */
  usage(tenant: Tenant, container: string): Promise<{ objects: number; bytes: number }>;
  /** Containers of an account, as Swift has them. */
  containers(tenant: Tenant): Promise<number>;
  /** Object names of a container, as Swift lists them. */
  listing(tenant: Tenant, container: string): Promise<string[]>;
  /** Another proxy with the same settings (a restart, or a second replica). */
  another(): Promise<RunningProxy>;
  /** The proxy's own state metadata on an account or container, as Swift has it. */
  proxyMetadata(tenant: Tenant, container?: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * An arena for one mode: `accounts` are the adv<N> numbers this file may use in this mode (each test takes
 * fresh ones, so no test sees another's state).
 */
export async function openArena(mode: { precise: boolean }, accounts: number[], options: Partial<ProxyOptions> = {}): Promise<Arena> {
  const swift = await swiftUrl();
  const settings: ProxyOptions = { upstream: swift, quota: ADVERSARIAL_QUOTA, preciseMode: mode.precise, cacheTimeout: 30, ...options };
  const proxy = await startProxy(settings);
  const reseller = await login(swift, 'reseller:reseller', 'reseller');
  const free = [...accounts];
  const asReseller = { 'x-auth-token': reseller.token };

  const arena: Arena = {
    swift,
    proxy,
    resellerToken: reseller.token,
    async tenant(level?: string) {
      const number = free.shift();
      assert.ok(number !== undefined, 'the test file ran out of adversarial accounts');
      const account = `adv${number}`;
      if (level) assert.equal((await call('POST', `${accountUrl(swift, account)}`, { ...asReseller, 'x-account-meta-quota': level })).status, 204);
      const admin = await login(swift, `${account}:admin`, `${account}pass`);
      const reader = await login(swift, `${account}:reader`, `${account}read`);
      return {
        account,
        swiftAccount: `AUTH_${account}`,
        token: admin.token,
        readerToken: reader.token,
        viaProxy: (path = '') => `${accountUrl(proxy.url, account)}${path}`,
        direct: (path = '') => `${accountUrl(swift, account)}${path}`,
      };
    },
    ...swiftReads(asReseller),
    another: () => startProxy(settings),
    close: () => proxy.close(),
  };
  return arena;
}

/** What an arena reads of its tenants straight from Swift, with `asReseller`'s token (never through the proxy). */
export function swiftReads(asReseller: Record<string, string>): Pick<Arena, 'usage' | 'containers' | 'listing' | 'proxyMetadata'> {
  return {
    async usage(tenant, container) {
      const head = await call('HEAD', tenant.direct(`/${encodeURIComponent(container)}`), asReseller);
      if (head.status === 404) return { objects: 0, bytes: 0 };
      assert.equal(head.status, 204, `HEAD ${container} on Swift`);
      return { objects: Number(head.headers['x-container-object-count']), bytes: Number(head.headers['x-container-bytes-used']) };
    },
    async containers(tenant) {
      const listing = await call('GET', tenant.direct('?format=json'), asReseller);
      return listing.status === 204 ? 0 : (JSON.parse(listing.body) as unknown[]).length;
    },
    async listing(tenant, container) {
      const listing = await call('GET', tenant.direct(`/${encodeURIComponent(container)}?format=json`), asReseller);
      return listing.status === 204 || listing.status === 404 ? [] : (JSON.parse(listing.body) as Array<{ name: string }>).map((o) => o.name);
    },
    async proxyMetadata(tenant, container) {
      const head = await call('HEAD', tenant.direct(container === undefined ? '' : `/${encodeURIComponent(container)}`), asReseller);
      return Object.fromEntries(Object.entries(head.headers).filter(([name]) => /^x-(account|container)-meta-quota-proxy-/.test(name)));
    },
  };
}

/** Makes a container straight in Swift (set-up, not an attack). */
export async function makeContainer(tenant: Tenant, container: string, headers: Record<string, string> = {}): Promise<void> {
  const answer = await call('PUT', tenant.direct(`/${encodeURIComponent(container)}`), { 'x-auth-token': tenant.token, ...headers });
  assert.ok(answer.status === 201 || answer.status === 202, `PUT container ${container}: ${answer.status}`);
}

/** Stores an object straight in Swift (set-up, not an attack). */
export async function putDirect(tenant: Tenant, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<void> {
  const answer = await call('PUT', tenant.direct(path), { 'x-auth-token': tenant.token, ...headers }, body);
  assert.equal(answer.status, 201, `PUT ${path} on Swift: ${answer.status} ${answer.body}`);
}

/** Statuses as a compact string for assertion messages. */
export function statuses(answers: Answer[]): string {
  return answers.map((a) => a.status).join(' ');
}

/** No quota detail in an answer: nothing for a caller Swift would not authorise. */
export function assertNoQuotaDetail(answer: { headers: Record<string, string>; body: string }, what: string): void {
  for (const name of Object.keys(answer.headers)) assert.doesNotMatch(name, /quota/i, `${what}: header ${name}`);
  assert.doesNotMatch(answer.body, /quota|limit|level/i, `${what}: body`);
}
