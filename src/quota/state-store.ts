/**
 * Where the proxy keeps a scope's quota state when Swift refuses it as metadata: an account or container
 * owner can fill its metadata up to Swift's limits (90 items, 4096 bytes), and then the proxy's own keys no
 * longer fit. The state then goes into an object of the service identity's account (container
 * `quota-proxy-state`, one object per account or container), which no tenant can fill or change, so a soft
 * limit's grace period still runs, and ends, across restarts.
 */
import { UpstreamUnavailableError, type SwiftClient } from '../swift/client.js';
import { encodePath } from '../swift/path.js';
import type { QuotaKind } from '../config/quota-levels.js';
import type { SoftRecord } from '../swift/quota-metadata.js';

export const STATE_CONTAINER = 'quota-proxy-state';

export interface StoredState {
  readonly soft: Partial<Record<QuotaKind, SoftRecord>>;
  readonly hardHits: Partial<Record<QuotaKind, number>>;
  /** Refusals that could not be added to the metadata counter. */
  readonly hits: number;
}

export class FallbackStateStore {
  constructor(
    private readonly swift: SwiftClient,
    /**
     * The service identity's own account (AUTH_<account>; with Keystone, AUTH_<project id>, known once a token
     * is issued).
     */
    private readonly account: () => Promise<string>,
  ) {}

  private async path(key: string): Promise<string> {
    return encodePath('v1', await this.account(), STATE_CONTAINER, key);
  }

  async load(key: string): Promise<StoredState | undefined> {
    const { status, body } = await this.swift.getAsService(await this.path(key), 'metadata', 64 * 1024);
    if (status === 404 || status === 410) return undefined;
    if (status >= 300 || body === undefined) throw new UpstreamUnavailableError(`Swift answered ${status} to reading quota state ${key}`);
    try {
      return JSON.parse(body.toString('utf8')) as StoredState;
    } catch {
      return undefined; // not ours to read: start afresh
    }
  }

  async save(key: string, state: StoredState): Promise<void> {
    const body = Buffer.from(JSON.stringify(state));
    const path = await this.path(key);
    let { status } = await this.swift.putAsService(path, body);
    if (status === 404) {
      await this.swift.putAsService(encodePath('v1', await this.account(), STATE_CONTAINER), Buffer.alloc(0));
      ({ status } = await this.swift.putAsService(path, body));
    }
    if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to storing quota state ${key}`);
  }

  async remove(key: string): Promise<void> {
    const { status } = await this.swift.delete(await this.path(key));
    if (status >= 300 && status !== 404) throw new UpstreamUnavailableError(`Swift answered ${status} to removing quota state ${key}`);
  }
}
