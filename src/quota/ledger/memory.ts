/**
 * The usage ledger of one process (the default: no service needed). Exact for the traffic of this process:
 * a check and its reservation happen in one tick of its event loop.
 */
import { LRUCache } from 'lru-cache';
import type { Usage } from '../decide.js';
import {
  fits,
  type GrowRequest,
  type Projection,
  type Reservation,
  type Reserved,
  type ReserveRequest,
  type Settled,
  type Snapshot,
  type SnapshotData,
  type UsageLedger,
} from './ledger.js';
import { SnapshotReader, type ReadSource } from './snapshot-reader.js';
import { SnapshotStore } from './snapshot-store.js';

interface TargetHold {
  count: number;
  /** Bytes of the writes whose versions Swift does not keep (only they replace each other's bytes). */
  bytes: number;
  open: number;
}

interface KeyLedger {
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

export interface MemoryLedgerOptions {
  ttlMs: number;
  maxEntries: number;
  read(key: string): Promise<SnapshotData>;
  onRead?(key: string, source: ReadSource): void;
  /** After a reservation is made (`opened`) or given back: how many this process holds, and which one changed. */
  onReservationsChanged?(open: number, reservation: Reservation, opened: boolean): void;
}

const ZERO: Usage = Object.freeze({ count: 0, bytes: 0 });

export class MemoryLedger implements UsageLedger {
  private seq = 0;
  private nextId = 0;
  private readonly reader: SnapshotReader;
  /** Ledgers with writes in flight: never dropped, bounded by the requests in flight. */
  private readonly busy = new Map<string, KeyLedger>();
  /**
   * Ledgers with only finished writes, waiting for a read that includes them. Bounded: one pushed out is
   * forgotten together with every reading of its key, so the next check reads Swift afresh (which includes
   * those writes) instead of counting them on top of an older reading.
   */
  private readonly idle: LRUCache<string, KeyLedger>;
  /**
   * The newest snapshot read of each key (the reader's cache: the same entries), kept after its ledger went
   * idle: a check that still holds an older snapshot (across an await) is projected from it, as the finished
   * writes the older one lacks were pruned when it arrived. A key whose usage went down by an unknown amount
   * (a delete) after its newest reading was sent is marked stale there.
   */
  private readonly newest: SnapshotStore;
  private open = 0;

  constructor(private readonly options: MemoryLedgerOptions) {
    this.newest = new SnapshotStore(options.maxEntries);
    this.reader = new SnapshotReader({
      ttlMs: options.ttlMs,
      maxEntries: options.maxEntries,
      read: options.read,
      tick: () => ++this.seq,
      store: this.newest,
      recorded: (key, snapshot, _outdated, newest) => {
        if (newest) this.record(key, snapshot);
      },
      ...(options.onRead ? { onRead: options.onRead } : {}),
    });
    this.idle = new LRUCache({
      max: options.maxEntries,
      dispose: (_ledger, key, reason) => {
        if (reason === 'evict') this.invalidate(key);
      },
    });
  }

  get openReservations(): number {
    return this.open;
  }

  /** How many keys have writes in flight (busy) or finished writes still to be counted (idle). */
  get ledgerCounts(): { busy: number; idle: number } {
    return { busy: this.busy.size, idle: this.idle.size };
  }

  private ledgerOf(key: string): KeyLedger | undefined {
    return this.busy.get(key) ?? this.idle.peek(key);
  }

  now(): number {
    return this.seq;
  }

  read(key: string, notBefore = 0): Promise<Snapshot> {
    return this.reader.read(key, notBefore);
  }

  /** The key's newest reading arrived: finished writes it includes are no longer counted on top of it. */
  private record(key: string, snapshot: Snapshot): void {
    const ledger = this.ledgerOf(key);
    if (ledger) {
      ledger.finished = ledger.finished.filter((write) => write.seq > snapshot.seq);
      ledger.finishedCount = ledger.finished.reduce((sum, write) => sum + write.count, 0);
      ledger.finishedBytes = ledger.finished.reduce((sum, write) => sum + write.bytes, 0);
      this.dropIfIdle(key, ledger);
    }
  }

  // ---- the contract (synchronous inside: one tick is atomic) --------------------------------------------

  async project(key: string, snapshot: Snapshot, target?: string, except?: Reservation, keepsVersions = false): Promise<Projection> {
    return this.projection(key, snapshot, target, keepsVersions, except);
  }

  async settled(key: string): Promise<Settled | undefined> {
    const usage = this.settledUsage(key);
    if (!usage) return undefined;
    const ledger = this.busy.get(key);
    return { usage, inFlight: ledger ? { count: usage.count + ledger.reservedCount, bytes: usage.bytes + ledger.reservedBytes } : usage };
  }

  async reserve({ key, snapshot, add, credit, target, keepsVersions = false, rules }: ReserveRequest): Promise<Reserved> {
    const projection = this.projection(key, snapshot, target, keepsVersions);
    const requested = { count: add.count - credit.count - projection.held.count, bytes: add.bytes - credit.bytes - projection.held.bytes };
    if (!fits(rules, projection.used, requested)) return { ok: false, projection };
    return { ok: true, reservation: this.hold(key, add, target, keepsVersions) };
  }

  async grow({ reservation, snapshot, bytes, creditBytes, rules }: GrowRequest): Promise<Reserved> {
    const projection = this.projection(reservation.key, snapshot, reservation.target, reservation.keepsVersions, reservation);
    const used = { count: projection.used.count, bytes: projection.used.bytes - projection.held.bytes - creditBytes };
    if (!fits(rules, used, { count: 0, bytes })) return { ok: false, projection };
    this.adjust(reservation, { count: 0, bytes });
    return { ok: true, reservation };
  }

  private projection(key: string, snapshot: Snapshot, target: string | undefined, keepsVersions: boolean, except?: Reservation): Projection {
    return {
      used: this.projected(key, snapshot),
      held: target === undefined ? ZERO : this.heldFor(key, target, keepsVersions, except),
      settled: this.settledUsage(key),
      writesSince: this.hasWritesSince(key, snapshot),
    };
  }

  // ---- the parts ------------------------------------------------------------------------------------------

  /** Snapshot + writes finished since it was asked for + writes in flight. */
  projected(key: string, snapshot: Snapshot): Usage {
    // A newer snapshot may have pruned finished writes this older one does not include.
    const newest = this.newest.newest(key);
    const base = newest && newest.seq > snapshot.seq ? newest : snapshot;
    const ledger = this.ledgerOf(key);
    if (!ledger) return { count: base.count, bytes: base.bytes };
    const finished = this.finishedSince(ledger, base, newest);
    return { count: base.count + ledger.reservedCount + finished.count, bytes: base.bytes + ledger.reservedBytes + finished.bytes };
  }

  /** Writes finished after `base` was asked for: the running totals when `base` is the newest read. */
  private finishedSince(ledger: KeyLedger, base: Snapshot, newest: Snapshot | undefined): Usage {
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
  settledUsage(key: string): Usage | undefined {
    const newest = this.newest.newest(key);
    if (!newest || this.newest.isStale(key)) return undefined;
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
  private busyLedger(key: string): KeyLedger {
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
  private dropIfIdle(key: string, ledger: KeyLedger): void {
    if (ledger.open > 0) return;
    if (this.busy.get(key) === ledger) this.busy.delete(key);
    if (ledger.finished.length === 0) this.idle.delete(key);
    else if (this.idle.peek(key) !== ledger) this.idle.set(key, ledger);
  }

  /** Holds quota for an admitted write. Must be called in the same tick as the decision that admitted it. */
  hold(key: string, add: Usage, target?: string, keepsVersions = false): Reservation {
    const ledger = this.busyLedger(key);
    ledger.reservedCount += add.count;
    ledger.reservedBytes += add.bytes;
    ledger.open++;
    if (target !== undefined) {
      const hold = ledger.targets.get(target) ?? { count: 0, bytes: 0, open: 0 };
      hold.count += add.count;
      if (!keepsVersions) hold.bytes += add.bytes;
      hold.open++;
      ledger.targets.set(target, hold);
    }
    this.open++;
    const reservation: Reservation = { id: String(++this.nextId), key, target, keepsVersions, count: add.count, bytes: add.bytes, settled: false };
    this.options.onReservationsChanged?.(this.open, reservation, true);
    return reservation;
  }

  /**
   * What other writes in flight hold for the same target: of several writes of one object (or container), only
   * one remains, so a write need not find room for the others' holds on its target as well as its own. Where
   * Swift keeps every write of it as a version (`keepsVersions`, this write's or theirs), only the count is shared.
   */
  heldFor(key: string, target: string, keepsVersions: boolean, except?: Reservation): Usage {
    const hold = this.busy.get(key)?.targets.get(target);
    if (!hold) return { count: 0, bytes: 0 };
    const own = except && !except.settled && except.key === key && except.target === target ? except : undefined;
    const count = hold.count - (own?.count ?? 0);
    if (keepsVersions) return { count, bytes: 0 };
    return { count, bytes: hold.bytes - (own && !own.keepsVersions ? own.bytes : 0) };
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
      if (!reservation.keepsVersions) hold.bytes += change.bytes;
    }
    reservation.count += change.count;
    reservation.bytes += change.bytes;
  }

  /** The write finished in Swift: its usage becomes a finished write, counted until a newer read covers it. */
  commit(reservation: Reservation, actual: Usage = reservation): void {
    if (reservation.settled) return;
    if (reservation.linked) this.commit(reservation.linked);
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
    if (reservation.linked) this.release(reservation.linked);
    reservation.settled = true;
    const ledger = this.busyLedger(reservation.key);
    ledger.reservedCount -= reservation.count;
    ledger.reservedBytes -= reservation.bytes;
    ledger.open--;
    const hold = reservation.target === undefined ? undefined : ledger.targets.get(reservation.target);
    if (hold) {
      hold.count -= reservation.count;
      if (!reservation.keepsVersions) hold.bytes -= reservation.bytes;
      if (--hold.open === 0) ledger.targets.delete(reservation.target!);
    }
    this.open--;
    this.options.onReservationsChanged?.(this.open, reservation, false);
    this.dropIfIdle(reservation.key, ledger);
  }

  /** Usage went down by an amount we do not know (a delete): the next check reads Swift again. */
  invalidate(key: string): void {
    ++this.seq;
    this.reader.forget(key);
  }

  /** One process: its own reading is all there is to forget. */
  forgetEverywhere(key: string): void {
    this.reader.forget(key);
  }

  async close(): Promise<void> {}
}
