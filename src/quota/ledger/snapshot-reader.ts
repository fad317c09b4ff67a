/**
 * This process's readings of Swift's usage: the newest of each key kept in a bounded store and served for
 * `cache_timeout`, and one HEAD shared by every caller that needs a reading of a key at the same time. Each
 * ledger has one; what is shared between proxies is in the ledger itself.
 */
import type { Snapshot, SnapshotData } from './ledger.js';
import { SnapshotStore } from './snapshot-store.js';

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
  /**
   * A reading arrived (`outdated`: a delete finished while it was under way; `newest`: no newer reading of
   * the key had arrived before it).
   */
  recorded?(key: string, snapshot: Snapshot, outdated: boolean, newest: boolean): void;
  /** Where the readings are kept (the ledger's own store, when it reads them too). */
  store?: SnapshotStore;
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
  readonly store: SnapshotStore;
  private readonly inFlight = new Map<string, InFlightRead>();

  constructor(private readonly options: SnapshotReaderOptions) {
    this.store = options.store ?? new SnapshotStore(options.maxEntries);
  }

  /** A snapshot whose read was sent at or after `notBefore` (a send number). */
  async read(key: string, notBefore = 0): Promise<Snapshot> {
    // cache_timeout = 0 means "never serve from cache".
    const cached = this.options.ttlMs > 0 ? this.store.fresh(key, this.options.ttlMs) : undefined;
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
        const newest = this.store.record(key, snapshot, read.outdated);
        this.options.recorded?.(key, snapshot, read.outdated, newest);
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

  /** Usage went down (a delete): the cached reading is not served, and a read under way is neither joined nor served. */
  forget(key: string): void {
    this.store.markStale(key);
    const running = this.inFlight.get(key);
    if (running) running.outdated = true;
  }

  /** Every reading goes (the ledger lost its data: their sequence numbers mean nothing now). */
  forgetAll(): void {
    this.store.markAllStale();
    for (const running of this.inFlight.values()) running.outdated = true;
  }
}
