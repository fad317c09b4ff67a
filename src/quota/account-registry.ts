/**
 * The accounts whose level was set through the proxy (a reseller admin's POST), or level or overrides by `accounts set`,
 * with the level last given, and the accounts the proxy admitted writes for (`record_accounts`, no level): an empty object per account in the service identity's container
 * `quota-proxy-accounts`, the level in its content type. `accounts list` finds accounts there, and the check of
 * dropped levels (admin/dropped.ts) reads their levels from one listing page per 10,000 accounts.
 */
import { UpstreamUnavailableError, type SwiftClient } from '../swift/client.js';
import { encodePath } from '../swift/path.js';

export const ACCOUNTS_CONTAINER = 'quota-proxy-accounts';

/** The registry's content type; `;level=L` names the level the account was last given through the proxy or this command. */
const REGISTRY_TYPE = 'application/x-swift-quota-proxy-account';

export interface Registered {
  readonly account: string;
  readonly level: string | undefined;
}

/**
 * The registered accounts (level set through the proxy, or anything by `accounts set`), with the level last set: one
 * listing page per 10,000 accounts (the level rides in each entry's content type), no HEAD.
 */
export async function readRegistry(swift: SwiftClient): Promise<Registered[]> {
  const entries: Registered[] = [];
  const base = encodePath('v1', await swift.serviceAccount(), ACCOUNTS_CONTAINER);
  for (let marker = ''; ; ) {
    const page = await swift.getJson<{ name: string; content_type?: string }>(`${base}?format=json&marker=${encodeURIComponent(marker)}`);
    if (!page || page.items.length === 0) break;
    for (const item of page.items) entries.push({ account: item.name, level: /;\s*level=([^;]+)/.exec(item.content_type ?? '')?.[1] });
    marker = page.items[page.items.length - 1]!.name;
  }
  return entries;
}

/** Records accounts in the registry with the level they hold now (an empty object each, in ACCOUNTS_CONTAINER). */
export async function registerAccounts(swift: SwiftClient, entries: readonly Registered[]): Promise<void> {
  const base = encodePath('v1', await swift.serviceAccount(), ACCOUNTS_CONTAINER);
  const put = async ({ account, level }: Registered) => {
    const path = `${base}/${encodeURIComponent(account)}`;
    const type = level === undefined || /[;\s]/.test(level) ? REGISTRY_TYPE : `${REGISTRY_TYPE};level=${level}`;
    let { status } = await swift.putAsService(path, Buffer.alloc(0), { 'content-type': type });
    if (status === 404) {
      await swift.putAsService(base, Buffer.alloc(0));
      ({ status } = await swift.putAsService(path, Buffer.alloc(0), { 'content-type': type }));
    }
    if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to recording account ${account}`);
  };
  await inBatches(entries, put);
}

/**
 * Records `account` as seen (no level), unless the registry has it already: Swift's `If-None-Match: *` makes the
 * PUT create only, so a level recorded earlier is never overwritten.
 */
export async function registerSeen(swift: SwiftClient, account: string): Promise<void> {
  const base = encodePath('v1', await swift.serviceAccount(), ACCOUNTS_CONTAINER);
  const path = `${base}/${encodeURIComponent(account)}`;
  const put = () => swift.putAsService(path, Buffer.alloc(0), { 'content-type': REGISTRY_TYPE, 'if-none-match': '*' });
  let { status } = await put();
  if (status === 404) {
    await swift.putAsService(base, Buffer.alloc(0));
    ({ status } = await put());
  }
  if (status >= 300 && status !== 412) throw new UpstreamUnavailableError(`Swift answered ${status} to recording account ${account}`);
}

/** Runs `each` over `items`, 16 at a time. */
export async function inBatches<T, R>(items: readonly T[], each: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 16) out.push(...(await Promise.all(items.slice(i, i + 16).map(each))));
  return out;
}
