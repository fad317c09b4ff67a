/**
 * This process's readings of Swift's usage: an LRU cache kept for `cache_timeout`, and one HEAD shared by
 * every caller that needs a reading of a key at the same time. Each ledger has one; what is shared between
 * proxies is in the ledger itself.
 */
import { LRUCache } from 'lru-cache';
import type { Snapshot, SnapshotData } from './ledger.js';

export type ReadSource = 'hit' | 'miss' | 'coalesced';

/** The ledger's order for a read about to be sent. */
export interface Stamp {
  readonly seq: number;
  readonly gen: string;
}

export interface SnapshotReaderOptions {
  ttlMs: number;
  maxEntries: number;
  /** The usage read (a HEAD of the account or container). */
  read(key: string): Promise<SnapshotData>;
  /** This process's next send number (also the ledger's sequence number when the ledger is this process). */
  tick(): number;
  /** The ledger's sequence number for a read sent now, when the ledger is elsewhere (else `tick()`'s). */
  stamp?(key: string): Promise<Stamp>;
  /** A reading arrived (`outdated`: a delete finished while it was under way). */
  recorded?(key: string, snapshot: Snapshot, outdated: boolean): void;
  onRead?(key: string, source: ReadSource): void;
}

interface InFlightRead {
  sent: number;
  promise: Promise<Snapshot>;
  /** A delete finished while the read was under way: its answer may predate it, so it is not cached. */
  outdated: boolean;
  /** The read that goes out when this one ends, shared by every caller that needs a later one meanwhile. */
  next?: Promise<Snapshot>;
  nextNotBefore: number;
}

const LOCAL_GEN = 'local';

export class SnapshotReader {
  private readonly cache: LRUCache<string, Snapshot>;
  private readonly inFlight = new Map<string, InFlightRead>();

  constructor(private readonly options: SnapshotReaderOptions) {
    // ttl 0 would mean "no TTL" to lru-cache; cache_timeout = 0 means "never serve from cache".
    this.cache = new LRUCache({ max: options.maxEntries, ttl: Math.max(options.ttlMs, 1), ttlAutopurge: false });
  }

  /** A snapshot whose read was sent at or after `notBefore` (a send number). */
  async read(key: string, notBefore = 0): Promise<Snapshot> {
    const cached = this.options.ttlMs > 0 ? this.cache.get(key) : undefined;
    if (cached && cached.sent >= notBefore) {
      this.options.onRead?.(key, 'hit');
      return cached;
    }
    const running = this.inFlight.get(key);
    // A read made outdated by forget() is not joined: its answer may predate the change.
    if (running && !running.outdated) {
      this.options.onRead?.(key, 'coalesced');
      if (running.sent >= notBefore) return running.promise;
      // The read under way was sent too early for this caller. Rather than one HEAD per caller (precise
      // mode under load), every caller arriving meanwhile shares the one sent when it ends: sent after all
      // of them arrived, it is fresh enough for each.
      running.nextNotBefore = Math.max(running.nextNotBefore, notBefore);
      running.next ??= running.promise.then(
        () => this.read(key, running.nextNotBefore),
        () => this.read(key, running.nextNotBefore),
      );
      return running.next;
    }
    this.options.onRead?.(key, 'miss');
    const sent = this.options.tick();
    const read: InFlightRead = { sent, outdated: false, nextNotBefore: 0, promise: undefined as unknown as Promise<Snapshot> };
    read.promise = this.send(key, sent).then(
      (snapshot) => {
        if (this.inFlight.get(key) === read) this.inFlight.delete(key);
        if (!read.outdated) {
          const cached = this.cache.get(key);
          if (!cached || cached.sent < snapshot.sent) this.cache.set(key, snapshot);
        }
        this.options.recorded?.(key, snapshot, read.outdated);
        return snapshot;
      },
      (error: unknown) => {
        if (this.inFlight.get(key) === read) this.inFlight.delete(key);
        throw error;
      },
    );
    this.inFlight.set(key, read);
    return read.promise;
  }

  private async send(key: string, sent: number): Promise<Snapshot> {
    const stamp = this.options.stamp ? await this.options.stamp(key) : { seq: sent, gen: LOCAL_GEN };
    const data = await this.options.read(key);
    return Object.freeze({ ...data, seq: stamp.seq, gen: stamp.gen, sent });
  }

  /** Usage went down (a delete): the cached reading goes, and a read under way is neither joined nor cached. */
  forget(key: string): void {
    this.cache.delete(key);
    const running = this.inFlight.get(key);
    if (running) running.outdated = true;
  }

  /** Every reading goes (the ledger lost its data: their sequence numbers mean nothing now). */
  forgetAll(): void {
    this.cache.clear();
    for (const running of this.inFlight.values()) running.outdated = true;
  }
}
