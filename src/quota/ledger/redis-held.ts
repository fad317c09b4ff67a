/**
 * What this process holds in the Redis ledger and still owes it (redis.ts, "Leases"): its reservations, renewed
 * every third of a lease until Redis acknowledges their settle; the settles and invalidations Redis did not take,
 * sent again; and the settles acknowledged within the last lease, released again in a new generation (a replica
 * promoted may not have had them passed on).
 */
import type { Reservation } from './ledger.js';

/** A settle (commit, release) or invalidation Redis has not acknowledged yet. */
type Outgoing = { readonly run: () => Promise<unknown>; readonly reservation?: Reservation };

export interface HeldReservationsOptions {
  leaseMs: number;
  /** Runs a script in the ledger's current generation (redis-generation.ts). */
  run<T>(call: (gen: string) => Promise<T>): Promise<T>;
  /** Holds a reservation for another lease; `putBack` sets it even if Redis lacks it (a new generation). */
  renew(reservation: Reservation, gen: string, putBack?: boolean): Promise<unknown>;
  /** Releases a reservation of `key` in generation `gen`. */
  release(key: string, id: string, gen: string): Promise<unknown>;
  /** After a reservation is made (`opened`) or given back: how many this process holds, and which one changed. */
  onReservationsChanged?(open: number, reservation: Reservation, opened: boolean): void;
  onError?(error: unknown, what: string): void;
}

export class HeldReservations {
  /** Reservations Redis holds for this process: renewed until their settle is acknowledged. */
  private readonly held = new Map<string, Reservation>();
  /**
   * Reservations whose settle Redis acknowledged within the last lease, oldest first: a replica promoted may not
   * have had it passed on, so a new generation gets them released again (else each would count for a lease).
   */
  private settledRecently: Array<{ readonly key: string; readonly id: string; readonly at: number }> = [];
  private open = 0;
  private outbox: Outgoing[] = [];
  private readonly renewTimer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: HeldReservationsOptions) {
    this.renewTimer = setInterval(() => void this.maintain(), Math.max(options.leaseMs / 3, 100));
    this.renewTimer.unref();
  }

  /** How many reservations this process holds and has not settled. */
  get openCount(): number {
    return this.open;
  }

  /** A reservation Redis just made for this process. */
  add(reservation: Reservation): void {
    this.held.set(reservation.id, reservation);
    this.open++;
    this.options.onReservationsChanged?.(this.open, reservation, true);
  }

  /** Settles a reservation here at once, and in Redis by `run` (sent again until Redis takes it). */
  settle(reservation: Reservation, run: () => Promise<unknown>): void {
    reservation.settled = true;
    this.open--;
    this.options.onReservationsChanged?.(this.open, reservation, false);
    this.send({ reservation, run });
  }

  /** Sends a step that holds no reservation (an invalidation), again until Redis takes it. */
  sendUntilTaken(run: () => Promise<unknown>): void {
    this.send({ run });
  }

  /**
   * In a new generation: the reservations still held go back (those settled already go with their settle, still
   * to be sent: put back, one could come after it), and those settled lately are released again.
   */
  async putBack(gen: string): Promise<void> {
    await Promise.all([
      ...[...this.held.values()].filter((reservation) => !reservation.settled).map((reservation) => this.options.renew(reservation, gen, true).catch(() => undefined)),
      ...this.settledRecently.map(({ key, id }) => this.options.release(key, id, gen).catch(() => undefined)),
    ]);
  }

  /** Every third of a lease: settles Redis missed go again, and the reservations still held are renewed. */
  async maintain(): Promise<void> {
    const since = Date.now() - this.options.leaseMs;
    const stale = this.settledRecently.findIndex((settled) => settled.at >= since);
    this.settledRecently = stale === -1 ? [] : this.settledRecently.slice(stale);
    const retry = this.outbox;
    this.outbox = [];
    for (const outgoing of retry) this.send(outgoing);
    const pending = [...this.held.values()];
    if (pending.length === 0) return;
    try {
      await this.options.run((gen) => Promise.all(pending.filter((r) => this.held.has(r.id)).map((r) => this.options.renew(r, gen))));
    } catch (error) {
      this.options.onError?.(error, 'renew');
    }
  }

  /** Stops renewing and sends what is still owed, once (a short while at most). */
  async close(): Promise<void> {
    clearInterval(this.renewTimer);
    const retry = this.outbox;
    this.outbox = [];
    await Promise.allSettled(retry.map((outgoing) => outgoing.run()));
    this.closed = true;
  }

  /** Sends a settle; one Redis did not take is kept (its reservation renewed) and sent again later. */
  private send(outgoing: Outgoing): void {
    outgoing.run().then(
      () => {
        if (!outgoing.reservation) return;
        this.held.delete(outgoing.reservation.id);
        this.settledRecently.push({ key: outgoing.reservation.key, id: outgoing.reservation.id, at: Date.now() });
      },
      (error: unknown) => {
        this.options.onError?.(error, 'settle');
        if (!this.closed) this.outbox.push(outgoing);
      },
    );
  }
}
