/**
 * What the proxy knows about usage, per account and per container: the last snapshot read from Swift (kept
 * in an LRU cache for `cache_timeout`), writes this proxy finished since that snapshot was asked for, and
 * writes admitted but not finished (reservations). Their sum is what a check compares with a limit, so
 * neither a stale cache nor concurrent uploads let this proxy pass a limit.
 *
 * Ordering uses a sequence number, not the clock: every usage read takes one when it is *sent*, every
 * finished write takes one when Swift has *answered* it. Swift updates container and account usage before
 * it answers an object or container PUT, so a read sent after a write finished includes that write; a write
 * finished after the read was sent may or may not be included and is counted on top (never under-counted).
 */
import { LRUCache } from 'lru-cache';
import type { Usage } from './decide.js';
import type { PersistedQuotaState } from '../swift/quota-metadata.js';

/** Keys of the book: an account's usage (its containers) and a container's (objects and bytes). */
export const accountKey = (account: string) => `a/${account}`;
export const containerKey = (account: string, container: string) => `c/${account}/${container}`;
export const scopeKey = (account: string, container?: string) => (container === undefined ? accountKey(account) : containerKey(account, container));

export interface Snapshot extends Usage {
  readonly exists: boolean;
  /** Account metadata the gate needs (the quota level), when the key is an account. */
  readonly level?: string;
  /** The proxy's own quota state kept in the account's or container's metadata. */
  readonly persisted?: PersistedQuotaState;
  /** The account's or container's tempurl/formpost keys (X-*-Meta-Temp-URL-Key, -Key-2). */
  readonly tempUrlKeys?: readonly string[];
  /** The container has object versioning on: its overwrites and deletes write archive copies elsewhere. */
  readonly versioned?: boolean;
  /** Sequence number taken when the read was sent. */
  readonly seq: number;
}

export type SnapshotData = Omit<Snapshot, 'seq'>;

export interface Reservation {
  readonly key: string;
  /** The object (or container) the write creates or replaces; writes of one target replace each other. */
  readonly target: string | undefined;
  count: number;
  bytes: number;
  settled: boolean;
}

interface TargetHold {
  count: number;
  bytes: number;
  open: number;
}

interface Ledger {
  reservedCount: number;
  reservedBytes: number;
  open: number;
  /** Open reservations by target: only one write of a target survives, whichever Swift finishes last. */
  targets: Map<string, TargetHold>;
  /** Writes finished after the newest snapshot was asked for, and their totals (read on every check). */
  finished: { seq: number; count: number; bytes: number }[];
  finishedCount: number;
  finishedBytes: number;
}

interface InFlightRead {
  seq: number;
  promise: Promise<Snapshot>;
  /** A delete finished while the read was under way: its answer may predate it, so it is not cached. */
  outdated: boolean;
  /** The read that goes out when this one ends, shared by every caller that needs a later one meanwhile. */
  next?: Promise<Snapshot>;
  nextNotBefore: number;
}

export type ReadSource = 'hit' | 'miss' | 'coalesced';

export interface UsageBookOptions {
  ttlMs: number;
  maxEntries: number;
  read(key: string): Promise<SnapshotData>;
  onRead?(key: string, source: ReadSource): void;
  onReservationsChanged?(open: number): void;
}

export class UsageBook {
  private seq = 0;
  private readonly cache: LRUCache<string, Snapshot>;
  private readonly inFlight = new Map<string, InFlightRead>();
  /** Ledgers with writes in flight: never dropped, bounded by the requests in flight. */
  private readonly busy = new Map<string, Ledger>();
  /**
   * Ledgers with only finished writes, waiting for a read that includes them. Bounded: one pushed out is
   * forgotten together with every reading of its key, so the next check reads Swift afresh (which includes
   * those writes) instead of counting them on top of an older reading.
   */
  private readonly idle: LRUCache<string, Ledger>;
  /**
   * The newest snapshot read of each key, cached or not, kept after its ledger went idle: a check that still
   * holds an older snapshot (across an await) is projected from it, as the finished writes the older one
   * lacks were pruned when it arrived.
   */
  private readonly newest: LRUCache<string, Snapshot>;
  private openReservations = 0;
  /** Keys whose usage went down by an unknown amount (a delete) after their newest snapshot was read. */
  private readonly invalidatedAt: LRUCache<string, number>;

  constructor(private readonly options: UsageBookOptions) {
    // ttl 0 would mean "no TTL" to lru-cache; cache_timeout = 0 means "never serve from cache".
    this.cache = new LRUCache({ max: options.maxEntries, ttl: Math.max(options.ttlMs, 1), ttlAutopurge: false });
    this.newest = new LRUCache({ max: options.maxEntries });
    this.invalidatedAt = new LRUCache({ max: options.maxEntries });
    this.idle = new LRUCache({
      max: options.maxEntries,
      dispose: (_ledger, key, reason) => {
        if (reason === 'evict') this.invalidate(key);
      },
    });
  }

  /** How many keys have writes in flight (busy) or finished writes still to be counted (idle). */
  get ledgerCounts(): { busy: number; idle: number } {
    return { busy: this.busy.size, idle: this.idle.size };
  }

  private ledgerOf(key: string): Ledger | undefined {
    return this.busy.get(key) ?? this.idle.peek(key);
  }

  /** The current sequence number: a read with `notBefore` above it is sent after everything known now. */
  now(): number {
    return this.seq;
  }

  /**
   * A snapshot whose read was sent at or after `notBefore`: from the cache when it is fresh enough, else by
   * joining a read already under way, else by a new HEAD. Concurrent callers share one HEAD.
   */
  async read(key: string, notBefore = 0): Promise<Snapshot> {
    const cached = this.options.ttlMs > 0 ? this.cache.get(key) : undefined;
    if (cached && cached.seq >= notBefore) {
      this.options.onRead?.(key, 'hit');
      return cached;
    }
    const running = this.inFlight.get(key);
    // A read made outdated by invalidate() is not joined: its answer may predate the change.
    if (running && !running.outdated) {
      this.options.onRead?.(key, 'coalesced');
      if (running.seq >= notBefore) return running.promise;
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
    const seq = ++this.seq;
    const read: InFlightRead = { seq, outdated: false, nextNotBefore: 0, promise: undefined as unknown as Promise<Snapshot> };
    read.promise = this.options.read(key).then(
      (data) => {
        const snapshot: Snapshot = Object.freeze({ ...data, seq });
        if (this.inFlight.get(key) === read) this.inFlight.delete(key);
        this.record(key, snapshot, read.outdated);
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

  private record(key: string, snapshot: Snapshot, outdated: boolean): void {
    if (!outdated) {
      const cached = this.cache.get(key);
      if (!cached || cached.seq < snapshot.seq) this.cache.set(key, snapshot);
    }
    const newest = this.newest.peek(key);
    if (newest && newest.seq >= snapshot.seq) return;
    this.newest.set(key, snapshot);
    if ((this.invalidatedAt.peek(key) ?? Infinity) < snapshot.seq) this.invalidatedAt.delete(key);
    const ledger = this.ledgerOf(key);
    if (ledger) {
      ledger.finished = ledger.finished.filter((write) => write.seq > snapshot.seq);
      ledger.finishedCount = ledger.finished.reduce((sum, write) => sum + write.count, 0);
      ledger.finishedBytes = ledger.finished.reduce((sum, write) => sum + write.bytes, 0);
      this.dropIfIdle(key, ledger);
    }
  }

  /** Snapshot + writes finished since it was asked for + writes in flight. */
  projected(key: string, snapshot: Snapshot): Usage {
    // A newer snapshot may have pruned finished writes this older one does not include.
    const newest = this.newest.peek(key);
    const base = newest && newest.seq > snapshot.seq ? newest : snapshot;
    const ledger = this.ledgerOf(key);
    if (!ledger) return { count: base.count, bytes: base.bytes };
    const finished = this.finishedSince(ledger, base, newest);
    return { count: base.count + ledger.reservedCount + finished.count, bytes: base.bytes + ledger.reservedBytes + finished.bytes };
  }

  /** Writes finished after `base` was asked for: the running totals when `base` is the newest read. */
  private finishedSince(ledger: Ledger, base: Snapshot, newest: Snapshot | undefined): Usage {
    // Every write still listed finished after the newest read was sent (record() prunes the others).
    if (newest && base.seq >= newest.seq) return { count: ledger.finishedCount, bytes: ledger.finishedBytes };
    let count = 0;
    let bytes = 0;
    for (const write of ledger.finished) {
      if (write.seq > base.seq) {
        count += write.count;
        bytes += write.bytes;
      }
    }
    return { count, bytes };
  }

  /**
   * Usage as far as finished requests go: the newest reading plus writes finished since (no reservations).
   * Undefined when nothing was read yet or a delete since made the reading unknown.
   */
  settled(key: string): Usage | undefined {
    const newest = this.newest.peek(key);
    if (!newest || (this.invalidatedAt.peek(key) ?? -1) > newest.seq) return undefined;
    const ledger = this.ledgerOf(key);
    if (!ledger) return { count: newest.count, bytes: newest.bytes };
    return { count: newest.count + ledger.finishedCount, bytes: newest.bytes + ledger.finishedBytes };
  }

  /** Whether writes finished after this snapshot was asked for (it may or may not include them). */
  hasWritesSince(key: string, snapshot: Snapshot): boolean {
    const ledger = this.ledgerOf(key);
    if (!ledger || ledger.finished.length === 0) return false;
    return ledger.finished[ledger.finished.length - 1]!.seq > snapshot.seq;
  }

  /** The ledger of a key that is about to hold a write in flight. */
  private busyLedger(key: string): Ledger {
    let ledger = this.busy.get(key);
    if (!ledger) {
      ledger = this.idle.peek(key);
      if (ledger) this.idle.delete(key);
      else ledger = { reservedCount: 0, reservedBytes: 0, open: 0, targets: new Map(), finished: [], finishedCount: 0, finishedBytes: 0 };
      this.busy.set(key, ledger);
    }
    return ledger;
  }

  /** A ledger whose last write in flight ended: kept while it has finished writes to count, else dropped. */
  private dropIfIdle(key: string, ledger: Ledger): void {
    if (ledger.open > 0) return;
    if (this.busy.get(key) === ledger) this.busy.delete(key);
    if (ledger.finished.length === 0) this.idle.delete(key);
    else if (this.idle.peek(key) !== ledger) this.idle.set(key, ledger);
  }

  /** Holds quota for an admitted write. Must be called in the same tick as the decision that admitted it. */
  reserve(key: string, add: Usage, target?: string): Reservation {
    const ledger = this.busyLedger(key);
    ledger.reservedCount += add.count;
    ledger.reservedBytes += add.bytes;
    ledger.open++;
    if (target !== undefined) {
      const hold = ledger.targets.get(target) ?? { count: 0, bytes: 0, open: 0 };
      hold.count += add.count;
      hold.bytes += add.bytes;
      hold.open++;
      ledger.targets.set(target, hold);
    }
    this.openReservations++;
    this.options.onReservationsChanged?.(this.openReservations);
    return { key, target, count: add.count, bytes: add.bytes, settled: false };
  }

  /**
   * What other writes in flight hold for the same target: of several writes of one object (or container), only
   * one version remains, so a write need not find room for the others' holds on its target as well as its own.
   */
  heldFor(key: string, target: string, except?: Reservation): Usage {
    const hold = this.busy.get(key)?.targets.get(target);
    if (!hold) return { count: 0, bytes: 0 };
    const own = except && !except.settled && except.key === key && except.target === target ? except : { count: 0, bytes: 0 };
    return { count: hold.count - own.count, bytes: hold.bytes - own.bytes };
  }

  /** Changes a reservation in flight: bytes of an upload streaming in now. */
  adjust(reservation: Reservation, change: Usage): void {
    if (reservation.settled) return;
    const ledger = this.busyLedger(reservation.key);
    ledger.reservedCount += change.count;
    ledger.reservedBytes += change.bytes;
    const hold = reservation.target === undefined ? undefined : ledger.targets.get(reservation.target);
    if (hold) {
      hold.count += change.count;
      hold.bytes += change.bytes;
    }
    reservation.count += change.count;
    reservation.bytes += change.bytes;
  }

  /** The write finished in Swift: its usage becomes a finished write, counted until a newer read covers it. */
  commit(reservation: Reservation, actual: Usage = reservation): void {
    if (reservation.settled) return;
    const ledger = this.busyLedger(reservation.key);
    if (actual.count !== 0 || actual.bytes !== 0) {
      ledger.finished.push({ seq: ++this.seq, count: actual.count, bytes: actual.bytes });
      ledger.finishedCount += actual.count;
      ledger.finishedBytes += actual.bytes;
    }
    this.release(reservation);
  }

  /** The write did not happen (refused, failed, aborted): give its quota back. */
  release(reservation: Reservation): void {
    if (reservation.settled) return;
    reservation.settled = true;
    const ledger = this.busyLedger(reservation.key);
    ledger.reservedCount -= reservation.count;
    ledger.reservedBytes -= reservation.bytes;
    ledger.open--;
    const hold = reservation.target === undefined ? undefined : ledger.targets.get(reservation.target);
    if (hold) {
      hold.count -= reservation.count;
      hold.bytes -= reservation.bytes;
      if (--hold.open === 0) ledger.targets.delete(reservation.target!);
    }
    this.openReservations--;
    this.options.onReservationsChanged?.(this.openReservations);
    this.dropIfIdle(reservation.key, ledger);
  }

  /** Usage went down by an amount we do not know (a delete): the next check reads Swift again. */
  invalidate(key: string): void {
    this.invalidatedAt.set(key, ++this.seq);
    this.cache.delete(key);
    const running = this.inFlight.get(key);
    if (running) running.outdated = true;
  }
}
