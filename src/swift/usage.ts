/**
 * Usage as Swift reports it: a HEAD of the account (its containers, and its quota level) or of the container
 * (its objects and bytes), as the service identity, with the metadata the proxy's checks need alongside.
 */
import { countHeader, UpstreamUnavailableError, type SwiftClient } from './client.js';
import { encodePath } from './path.js';
import { readPersistedState } from './quota-metadata.js';
import { strictUtf8, swiftTrue, unquoteName } from './request.js';
import type { SnapshotData, Versioning } from '../quota/ledger/ledger.js';
import { LEVEL_HEADER } from './quota-metadata.js';

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
    };
  }
  const versioning = versioningOf(headers);
  return {
    exists: true,
    count: countHeader(headers['x-container-object-count']),
    bytes: countHeader(headers['x-container-bytes-used']),
    persisted: readPersistedState('container', headers),
    tempUrlKeys: tempUrlKeys(headers, 'container'),
    ...(versioning ? { versioning } : {}),
  };
}
