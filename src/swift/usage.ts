/**
 * Usage as Swift reports it: a HEAD of the account (its containers, and its quota level) or of the container
 * (its objects and bytes), as the service identity, with the metadata the proxy's checks need alongside.
 */
import { countHeader, UpstreamUnavailableError, type SwiftClient } from './client.js';
import { encodePath } from './path.js';
import { readPersistedState } from './quota-metadata.js';
import { swiftTrue } from './request.js';
import type { SnapshotData } from '../quota/ledger/ledger.js';
import { LEVEL_HEADER } from '../quota/intent.js';

function tempUrlKeys(headers: Readonly<Record<string, string>>, type: 'account' | 'container'): readonly string[] {
  return [headers[`x-${type}-meta-temp-url-key`], headers[`x-${type}-meta-temp-url-key-2`]].filter((key): key is string => key !== undefined);
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
  const versioned =
    Boolean(headers['x-versions-location']) || Boolean(headers['x-history-location']) || swiftTrue(headers['x-versions-enabled']);
  return {
    exists: true,
    count: countHeader(headers['x-container-object-count']),
    bytes: countHeader(headers['x-container-bytes-used']),
    persisted: readPersistedState('container', headers),
    tempUrlKeys: tempUrlKeys(headers, 'container'),
    ...(versioned ? { versioned } : {}),
  };
}
