/**
 * Keeps the quota watch's state (watch.ts) in Swift metadata, in the background: soft and hard-hit records as
 * they change, refusal counters in batches (every `hit_flush_interval`, so that a client hammering a full
 * container does not turn each refusal into a write). Where Swift refuses the state as metadata (its owner filled
 * the metadata), it goes to the fallback store (state-store.ts) instead.
 */
import type { Log } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SwiftClient } from '../swift/client.js';
import { encodePath } from '../swift/path.js';
import { formatSoftRecord, hardHitHeader, hitsHeader, kindsOf, metadataOf, readPersistedState, removeHeader, softSinceHeader } from '../swift/quota-metadata.js';
import type { SharedWatchState } from './shared-watch.js';
import type { FallbackStateStore, StoredState } from './state-store.js';
import type { ScopeState } from './watch-scope.js';

export interface WatchWriterOptions {
  swift: SwiftClient;
  /** Where the state goes when Swift refuses it as metadata. */
  fallback: FallbackStateStore;
  metrics: Metrics;
  log: Log;
  /** With a shared ledger: the lock that keeps proxies adding to one counter from losing each other's updates. */
  shared?: SharedWatchState;
  /** How many states may wait to be written (cache_max_entries, read at each use: a reload may change it). */
  maxWaiting(): number;
  /** The scope's container (or account) is gone, and its metadata with it. */
  onGone(key: string): void;
}

export class WatchWriter {
  /** States with something not yet written to Swift: kept here even if the watch's LRU lets them go. */
  private readonly dirty = new Map<string, ScopeState>();

  constructor(private readonly options: WatchWriterOptions) {}

  /** The state of `key` if it waits to be written. */
  waiting(key: string): ScopeState | undefined {
    return this.dirty.get(key);
  }

  isWaiting(key: string): boolean {
    return this.dirty.has(key);
  }

  waitingStates(): IterableIterator<ScopeState> {
    return this.dirty.values();
  }

  /** A refusal in the state's scope: added to its counter in Swift at the next flush. */
  countHit(state: ScopeState): void {
    state.hitsPending++;
    this.options.metrics.hitsPending.inc();
    this.markDirty(state);
  }

  /** The state's soft or hard-hit records changed: written now. */
  stateChanged(state: ScopeState): void {
    state.stateDirty = true;
    this.markDirty(state);
    void this.write(state);
  }

  /** The scope is gone: what waited to be written goes with it. */
  drop(key: string): void {
    const dirty = this.dirty.get(key);
    if (!dirty) return;
    this.options.metrics.hitsPending.dec(dirty.hitsPending);
    this.dirty.delete(key);
  }

  /** Writes every pending hit counter and soft state. */
  async flush(): Promise<void> {
    await Promise.all([...this.dirty.values()].map((state) => this.write(state)));
  }

  /**
   * States waiting to be written stay in memory whatever the LRU does, but not without bound: past
   * `cache_max_entries` (Swift unreachable for long, under many refusals), the oldest counts are given up.
   */
  private markDirty(state: ScopeState): void {
    this.dirty.set(state.scope.key, state);
    if (this.dirty.size <= this.options.maxWaiting()) return;
    const [oldestKey, oldest] = this.dirty.entries().next().value as [string, ScopeState];
    this.dirty.delete(oldestKey);
    this.options.metrics.hitsPending.dec(oldest.hitsPending);
    this.options.log.warn({ account: oldest.scope.account, container: oldest.scope.container, hits: oldest.hitsPending }, 'too many quota states waiting to be written to Swift: the oldest refusal counts are dropped');
  }

  /** Writes a scope's state to Swift after the writes already queued for it. */
  private write(state: ScopeState): Promise<void> {
    state.writing = state.writing.then(() => this.writeNow(state));
    return state.writing;
  }

  private async writeNow(state: ScopeState): Promise<void> {
    if (state.hitsPending === 0 && !state.stateDirty) return;
    const shared = this.options.shared;
    if (!shared) return this.writeState(state);
    // Other proxies add to the same counter: one at a time reads and writes it, or an update would be lost.
    try {
      if (!(await shared.exclusive(state.scope.key, () => this.writeState(state)))) return; // the next flush tries again
    } catch (error) {
      this.options.log.warn({ err: error, account: state.scope.account, container: state.scope.container }, 'cannot take the shared lock to write quota state; will retry');
    }
  }

  private async writeState(state: ScopeState): Promise<void> {
    const { scope } = state;
    const hits = state.hitsPending;
    const stateChanged = state.stateDirty;
    if (hits === 0 && !stateChanged) return;
    const path = encodePath('v1', scope.account, scope.container);
    const headers: Record<string, string> = stateChanged ? stateHeaders(state) : {};
    state.stateDirty = false;
    try {
      if (hits > 0) {
        // Added to the counter as Swift has it now, not as it was when this proxy first read it: other proxies
        // (or a reseller resetting it) may have written it since.
        const current = await this.options.swift.head(path, metadataOf(scope.type));
        if (current.status === 404 || current.status === 410) return this.options.onGone(scope.key);
        if (current.status >= 300) throw new Error(`Swift answered ${current.status} to reading the counter`);
        headers[hitsHeader(metadataOf(scope.type))] = String(readPersistedState(metadataOf(scope.type), current.headers).hits + hits);
      }
      const { status } = await this.options.swift.post(path, headers);
      if (status === 404 || status === 410) return this.options.onGone(scope.key); // deleted: its metadata went with it
      if (status === 400) {
        // Swift refuses metadata past its per-account/container limits, which the owner can fill: the state
        // goes where no owner reaches instead.
        await this.saveFallback(state, hits);
        this.markWritten(state, hits);
        return;
      }
      if (status >= 300) throw new Error(`Swift answered ${status}`);
      if (state.inFallback && stateChanged) {
        // The metadata holds the state again: the fallback's copy would be stale.
        await this.options.fallback.remove(scope.key);
        state.inFallback = false;
      }
      this.markWritten(state, hits);
    } catch (error) {
      state.stateDirty ||= stateChanged; // tried again at the next flush
      this.options.log.warn({ err: error, account: scope.account, container: scope.container }, 'cannot write quota state to Swift metadata; will retry');
    }
  }

  private async saveFallback(state: ScopeState, hits: number): Promise<void> {
    const soft: StoredState['soft'] = {};
    const hardHits: StoredState['hardHits'] = {};
    for (const kind of kindsOf(state.scope.type)) {
      const record = state.kinds[kind];
      if (record?.soft) soft[kind] = record.soft;
      if (record?.hardHitAt !== undefined) hardHits[kind] = record.hardHitAt;
    }
    await this.options.fallback.save(state.scope.key, { soft, hardHits, hits: state.fallbackHits + hits });
    state.fallbackHits += hits;
    if (!state.inFallback) this.options.log.warn({ account: state.scope.account, container: state.scope.container }, 'Swift refused the quota state as metadata (its owner filled the metadata): kept in the service account instead');
    state.inFallback = true;
  }

  private markWritten(state: ScopeState, hits: number): void {
    state.hitsPending -= hits;
    this.options.metrics.hitsPending.dec(hits);
    if (state.hitsPending === 0 && !state.stateDirty) this.dirty.delete(state.scope.key);
  }
}

/** The metadata that records a scope's soft and hard-hit state (a kind with none: its header removed). */
function stateHeaders(state: ScopeState): Record<string, string> {
  const { scope } = state;
  const headers: Record<string, string> = {};
  for (const kind of kindsOf(scope.type)) {
    const { soft: record, hardHitAt } = state.kinds[kind] ?? {};
    const soft = softSinceHeader(scope.type, kind);
    if (record) headers[soft] = formatSoftRecord(record);
    else headers[removeHeader(soft)] = 'x';
    const hard = hardHitHeader(scope.type, kind);
    if (hardHitAt !== undefined) headers[hard] = String(hardHitAt);
    else headers[removeHeader(hard)] = 'x';
  }
  return headers;
}
