/**
 * Usage as Swift reports it: a HEAD of the account (its containers, and its quota level) or of the container
 * (its objects and bytes), as the service identity, with the metadata the proxy's checks need alongside.
 */
import { countHeader, UpstreamUnavailableError, type SwiftClient } from './client.js';
import { encodePath } from './path.js';
import { readPersistedState } from './quota-metadata.js';
import { strictUtf8, swiftTrue, unquoteName } from './request.js';
import type { SnapshotData, Versioning } from '../quota/ledger/ledger.js';
import { ACCOUNT_OVERRIDES, CONTAINER_OVERRIDES, LEVEL_HEADER, limitsFrom, OWNER_LIMITS } from './quota-metadata.js';

/** The tempurl/formpost keys, as the text tempurl signs with: header values arrive one character per byte. */
function tempUrlKeys(headers: Readonly<Record<string, string>>, type: 'account' | 'container'): readonly string[] {
  return [headers[`x-${type}-meta-temp-url-key`], headers[`x-${type}-meta-temp-url-key-2`]]
    .filter((key): key is string => key !== undefined)
    .map((key) => strictUtf8(Buffer.from(key, 'latin1')) ?? key);
}

/**
 * A container's versioning as versioned_writes reads its sysmeta: a location is a quoted container name (what
 * follows a "/" is ignored), history mode wins when both are set; object_versioning's flag is reported as
 * `X-Versions-Enabled` once it was ever set (turned off, the versions it kept still count).
 */
export function versioningOf(headers: Readonly<Record<string, string>>): Versioning | undefined {
  const enabled = headers['x-versions-enabled'];
  if (swiftTrue(enabled)) return { kind: 'object', enabled: true };
  for (const [header, mode] of [['x-history-location', 'history'], ['x-versions-location', 'stack']] as const) {
    const value = headers[header];
    if (!value) continue;
    const location = unquoteName(value)?.split('/')[0];
    if (location) return { kind: 'archive', mode, location };
  }
  return enabled === undefined ? undefined : { kind: 'object', enabled: false };
}

function optional<K extends string, V>(name: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [name]: value } as Record<K, V>);
}

/** Usage of an account (`container` undefined) or a container; `exists: false` when Swift has none. */
export async function readUsage(swift: SwiftClient, account: string, container?: string): Promise<SnapshotData> {
  const target = container === undefined ? 'account' : 'container';
  const { status, headers } = await swift.head(encodePath('v1', account, container), target);
  if (status === 404 || status === 410) return { exists: false, count: 0, bytes: 0 };
  if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to the usage read of ${target} ${account}${container === undefined ? '' : `/${container}`}`);
  if (container === undefined) {
    const level = headers[LEVEL_HEADER]?.trim();
    return {
      exists: true,
      count: countHeader(headers['x-account-container-count']),
      bytes: countHeader(headers['x-account-bytes-used']),
      persisted: readPersistedState('account', headers),
      tempUrlKeys: tempUrlKeys(headers, 'account'),
      ...(level ? { level } : {}),
      ...optional('overrides', limitsFrom(ACCOUNT_OVERRIDES, headers)),
    };
  }
  const versioning = versioningOf(headers);
  const policy = headers['x-storage-policy']?.trim().toLowerCase();
  return {
    exists: true,
    count: countHeader(headers['x-container-object-count']),
    bytes: countHeader(headers['x-container-bytes-used']),
    persisted: readPersistedState('container', headers),
    tempUrlKeys: tempUrlKeys(headers, 'container'),
    ...(versioning ? { versioning } : {}),
    ...optional('overrides', limitsFrom(CONTAINER_OVERRIDES, headers)),
    ...optional('ownerLimits', limitsFrom(OWNER_LIMITS, headers)),
    ...(policy ? { policy } : {}),
  };
}

/** Containers of an account listed per page, and container HEADs in flight at once, while reading its total. */
const LISTING_PAGE = 1000;
const HEADS_AT_ONCE = 8;

/**
 * An account's total (objects and bytes across its containers), as the sum of its containers' HEADs: the
 * account's own X-Account-Object-Count and -Bytes-Used lag by up to the container-updater's interval (300 s),
 * while a container's usage is updated before Swift answers an object write. Every HEAD is sent after the
 * read began, so the sum includes every write that finished before it (what the ledger's order rests on).
 * Like object_count, the objects are those the container HEADs count (object_versioning's versions are in the
 * bytes only, as Swift reports them). With `policy` (lower case), only the containers of that storage policy.
 */
export async function readAccountTotal(swift: SwiftClient, account: string, policy?: string): Promise<SnapshotData> {
  const total = { count: 0, bytes: 0 };
  let exists = true;
  for (let marker = ''; ; ) {
    const path = `${encodePath('v1', account)}?format=json&limit=${LISTING_PAGE}&marker=${encodeURIComponent(marker)}`;
    const { status, body } = await swift.getAsService(path, 'listing', 16 * 1024 * 1024);
    if (status === 404 || status === 410) exists = false;
    if (status === 404 || status === 410 || status === 204 || !body) break;
    if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to the container listing of account ${account}`);
    const names = (JSON.parse(body.toString('utf8')) as Array<{ name: string }>).map((entry) => entry.name);
    if (names.length === 0) break;
    for (let i = 0; i < names.length; i += HEADS_AT_ONCE) {
      const usages = await Promise.all(names.slice(i, i + HEADS_AT_ONCE).map((name) => readUsage(swift, account, name)));
      for (const usage of usages) {
        if (policy !== undefined && usage.policy !== policy) continue;
        total.count += usage.count;
        total.bytes += usage.bytes;
      }
    }
    marker = names[names.length - 1]!;
  }
  return { exists, ...total };
}

/**
 * Whether an account HEAD's 2xx answer is of an account Swift has. With account_autocreate, Swift's proxy answers
 * a HEAD of a missing account with a made-up empty one (X-Backend-Fake-Account-Listing, which gatekeeper keeps
 * from clients): no containers, no metadata, and created (X-Timestamp) at the moment of the answer (Date). An
 * account that real and that empty, made in the last two seconds, is taken for one that does not exist yet.
 */
export function accountExists(headers: Readonly<Record<string, string>>): boolean {
  if (countHeader(headers['x-account-container-count']) > 0 || Object.keys(headers).some((name) => name.startsWith('x-account-meta-'))) return true;
  const created = Number(headers['x-timestamp']) * 1000;
  const answered = Date.parse(headers.date ?? '');
  return !(Number.isFinite(created) && Number.isFinite(answered) && Math.abs(created - answered) < 2_000);
}
