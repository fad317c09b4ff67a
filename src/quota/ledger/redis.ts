/**
 * The usage ledger shared by any number of proxies through one Redis. What a check needs from other proxies
 * is kept there per ledger key, and every step that reads and changes it is one server-side Lua script
 * (atomic in Redis):
 *
 *   <prefix>seq          the sequence number: taken by every usage read as it is sent and every finished write
 *   <prefix>gen          the generation: a Redis that lost its data has none, and the proxies start a new one
 *   <prefix>n:<key>      the newest reading (seq, count, bytes), the totals of finished writes after it, and the
 *                        sequence number of the last delete (inv)
 *   <prefix>f:<key>      finished writes not yet covered by the newest reading (sorted set by seq)
 *   <prefix>r:<key>      reservations: id -> "count:bytes:deadline:target", each with a lease; the target is
 *                        "" (none), "=<name>" (writes of it replace each other) or "+<name>" (Swift keeps each
 *                        as a version: they replace each other's count, not their bytes)
 *   <prefix>p|m|v:<key>  the pins shared by the proxies (redis-pins.ts): a reservation is made only once no
 *                        other proxy pins its target, and not on a versioning changed since it was read
 *
 * Readings themselves are cached in each process (SnapshotReader), as with the memory ledger.
 *
 * Leases: a reservation's deadline is Redis's clock plus `ledger_lease`; the proxy holding it renews it every
 * third of that while the write is in flight, so the reservations of a proxy that died are dropped within one
 * lease. Redis unreachable: checks fail with LedgerUnavailableError (fail_mode decides); commits and releases
 * are kept and sent again once Redis answers, their reservations renewed meanwhile (redis-held.ts).
 *
 * The generation rule (the scripts' gen_ok, redis-scripts.ts): a generation belongs to one Redis primary's history,
 * named by its replication id. A Redis restarted without its data has none; a replica promoted by a failover
 * (Sentinel) or a primary restarted from its file has a new replication id and may have missed the last writes.
 * Either way the scripts refuse the old generation; each proxy starts (or joins) a new one (redis-generation.ts),
 * drops every reading it cached (their sequence numbers are from the old one, and writes finished since may be
 * lost), puts the reservations and pins it holds back, and a check resting on a reading of the old generation reads
 * Swift again. A proxy does so on its first command to the new primary, and at once when its connection comes back.
 * Until every proxy has put its reservations back, writes then in flight through another proxy may be admitted past
 * a limit once more. A reservation whose settle the old primary took without passing it on is released again by its
 * proxy as it joins (settledRecently); one of a proxy that died meanwhile counts until its lease ends.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Usage } from '../decide.js';
import {
  type GrowRequest,
  type Projection,
  type Reservation,
  type Reserved,
  type ReserveRequest,
  type Rules,
  type Settled,
  type Snapshot,
  type SnapshotData,
  type UsageLedger,
} from './ledger.js';
import { SnapshotReader, type ReadSource, type Stamp } from './snapshot-reader.js';
import type { SharedWatchState } from '../shared-watch.js';
import { RedisPinStore, VersioningMoved, waitWhilePinned } from './redis-pins.js';
import { SCRIPTS, type LedgerScripts } from './redis-scripts.js';
import { connectRedis, type RedisTarget } from './redis-connection.js';
import { forgetChannel, listenForForgets } from './forget-channel.js';
import { isGenError, LedgerGeneration } from './redis-generation.js';
import { HeldReservations } from './redis-held.js';
import { redisWatchState } from './redis-watch-state.js';

export interface RedisLedgerOptions extends RedisTarget {
  prefix: string;
  leaseSeconds: number;
  /** How long a check waits for Redis before the ledger counts as unavailable. */
  commandTimeoutMs?: number;
  /** Readings cached in this process. */
  ttlMs: number;
  maxEntries: number;
  read(key: string): Promise<SnapshotData>;
  onRead?(key: string, source: ReadSource): void;
  /** After a reservation is made (`opened`) or given back: how many this process holds, and which one changed. */
  onReservationsChanged?(open: number, reservation: Reservation, opened: boolean): void;
  onError?(error: unknown, what: string): void;
  /** Longest a write waits for another process's pin on its object before it is refused (503). */
  pinWaitMs?: number;
}

/** `upstream_timeout`'s default: how long a request on its way to Swift may hold a pin (see pinWaitMs). */
const DEFAULT_PIN_WAIT_MS = 60_000;

// ---- the ledger -------------------------------------------------------------------------------------------

/**
 * A target as the scripts compare it: "" for none (no object or container name is empty), "=" before a name
 * whose writes replace each other, "+" where Swift keeps each write as a version.
 */
const targetArg = (target: string | undefined, keepsVersions = false) => (target === undefined ? '' : `${keepsVersions ? '+' : '='}${target}`);
const ruleArgs = (rules: Rules) => [rules.count.limit ?? '', rules.count.soft ?? '', rules.bytes.limit ?? '', rules.bytes.soft ?? ''];

export class RedisLedger implements UsageLedger {
  private readonly redis: Redis;
  private readonly scripts: LedgerScripts;
  private readonly reader: SnapshotReader;
  private readonly keys: { gen: string; seq: string };
  private readonly leaseMs: number;
  /** Keys outlive every reading a process may still hold (cache_timeout) and every lease. */
  private readonly keyTtlMs: number;
  private readonly generation: LedgerGeneration;
  private sent = 0;
  private nextId = 0;
  private readonly idPrefix = randomBytes(6).toString('hex');
  /** What this process holds in Redis and still owes it (redis-held.ts). */
  private readonly holding: HeldReservations;
  private pins: RedisPinStore | undefined;
  /** The connection that hears what other processes forget (forget-channel.ts). */
  private subscriber: Redis | undefined;

  constructor(private readonly options: RedisLedgerOptions) {
    this.leaseMs = options.leaseSeconds * 1000;
    this.keyTtlMs = Math.max(2 * options.ttlMs, 2 * this.leaseMs) + 60_000;
    this.keys = { gen: `${options.prefix}gen`, seq: `${options.prefix}seq` };
    this.redis = connectRedis(options, options.commandTimeoutMs ?? 2_000);
    this.redis.on('error', (error) => options.onError?.(error, 'connection'));
    this.redis.on('ready', () => void this.recheck());
    for (const [name, [numberOfKeys, lua]] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { numberOfKeys, lua });
    this.scripts = this.redis as unknown as LedgerScripts;
    this.generation = new LedgerGeneration({
      scripts: this.scripts,
      genKey: this.keys.gen,
      onLeft: () => this.reader.forgetAll(),
      putBack: (gen) => this.putBack(gen),
      ...(options.onError ? { onError: options.onError } : {}),
    });
    this.reader = new SnapshotReader({
      ttlMs: options.ttlMs,
      maxEntries: options.maxEntries,
      read: options.read,
      tick: () => ++this.sent,
      stamp: (key) => this.stamp(key),
      recorded: (key, snapshot, outdated) => this.record(key, snapshot, outdated),
      ...(options.onRead ? { onRead: options.onRead } : {}),
    });
    this.holding = new HeldReservations({
      leaseMs: this.leaseMs,
      run: (call) => this.generation.run(call),
      renew: (reservation, gen, putBack) => this.renew(reservation, gen, putBack),
      release: (key, id, gen) => this.scripts.ledgerRelease(this.keys.gen, this.k('r', key), gen, id),
      ...(options.onReservationsChanged ? { onReservationsChanged: options.onReservationsChanged } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  /** Connects and joins the ledger's generation; fails (and keeps trying in the background) while Redis is away. */
  async connect(): Promise<void> {
    this.subscriber ??= listenForForgets(this.redis, this.options.prefix, (key) => this.reader.forget(key), (error) => this.options.onError?.(error, 'forget channel'));
    await this.redis.connect();
    await this.generation.current();
  }

  /** Whether Redis answers now (for /readyz). */
  async ready(): Promise<boolean> {
    try {
      await this.redis.ping();
      return true;
    } catch {
      return false;
    }
  }

  get openReservations(): number {
    return this.holding.openCount;
  }

  private k(kind: 'n' | 'f' | 'r' | 'p' | 'v', key: string): string {
    return `${this.options.prefix}${kind}:${key}`;
  }

  // ---- generations ----------------------------------------------------------------------------------------

  /** A new generation: the reservations (redis-held.ts) and pins this process holds go back. */
  private async putBack(gen: string): Promise<void> {
    await Promise.all([this.holding.putBack(gen), this.pins?.restore().catch(() => undefined)]);
  }

  /**
   * Connected again after a failure, perhaps to another primary: the generation is checked at once (one step of
   * the ledger), so that if it changed the reservations and pins this process holds go back now rather than at
   * its next write or renewal; then what Redis missed is sent.
   */
  private async recheck(): Promise<void> {
    try {
      await this.generation.run((gen) => this.scripts.ledgerStamp(this.keys.gen, this.keys.seq, gen));
    } catch (error) {
      this.options.onError?.(error, 'generation check');
    }
    await this.holding.maintain();
  }

  // ---- readings -------------------------------------------------------------------------------------------

  now(): number {
    return this.sent;
  }

  read(key: string, notBefore = 0): Promise<Snapshot> {
    return this.reader.read(key, notBefore);
  }

  private async stamp(_key: string): Promise<Stamp> {
    let gen = '';
    const seq = await this.generation.run((current) => {
      gen = current;
      return this.scripts.ledgerStamp(this.keys.gen, this.keys.seq, current);
    });
    return { seq, gen };
  }

  private record(key: string, snapshot: Snapshot, _outdated: boolean): void {
    if (snapshot.gen !== this.generation.joined) return;
    this.scripts
      .ledgerRecord(this.keys.gen, this.k('n', key), this.k('f', key), snapshot.gen, snapshot.seq, snapshot.count, snapshot.bytes, this.keyTtlMs)
      .catch((error: unknown) => {
        // Only an optimisation (pruning, the newest reading for other proxies): a check never rests on it.
        if (!isGenError(error)) this.options.onError?.(error, 'record');
      });
  }

  /**
   * The reading a check rests on, as the scripts take it. One from an older generation is not trusted (writes
   * that finished after it were lost with the data): a reading sent in this generation replaces it.
   */
  private async base(key: string, snapshot: Snapshot, gen: string): Promise<[number, number, number]> {
    const current = snapshot.gen === gen ? snapshot : await this.reader.read(key);
    return [current.seq, current.count, current.bytes];
  }

  // ---- checks ---------------------------------------------------------------------------------------------

  async project(key: string, snapshot: Snapshot, target?: string, except?: Reservation, keepsVersions = false): Promise<Projection> {
    const reply = await this.generation.run(async (gen) =>
      this.scripts.ledgerProject(this.keys.gen, this.k('n', key), this.k('f', key), this.k('r', key), gen, ...(await this.base(key, snapshot, gen)), targetArg(target, keepsVersions), except?.id ?? ''),
    );
    return projection(reply);
  }

  async settled(key: string): Promise<Settled | undefined> {
    const [known, count, bytes, reservedCount, reservedBytes] = (await this.generation.run((gen) => this.scripts.ledgerSettled(this.keys.gen, this.k('n', key), this.k('r', key), gen))) as number[];
    if (known !== 1) return undefined;
    return { usage: { count: count!, bytes: bytes! }, inFlight: { count: count! + reservedCount!, bytes: bytes! + reservedBytes! } };
  }

  async reserve({ key, snapshot, add, credit, target, keepsVersions = false, rules, versioningRead }: ReserveRequest): Promise<Reserved> {
    const id = `${this.idPrefix}:${++this.nextId}`;
    const attempt = () =>
      this.generation.run(async (gen) => {
        const base = await this.base(key, snapshot, gen);
        // The reading the decision's versioning came from: the older of the two (one of another generation: none).
        const decidedOn = versioningRead === undefined ? base[0] : versioningRead.gen === gen ? Math.min(versioningRead.seq, base[0]) : 0;
        return this.scripts.ledgerReserve(
          this.keys.gen, this.k('n', key), this.k('f', key), this.k('r', key), this.k('p', key), this.k('v', key), this.keys.seq,
          gen, ...base, targetArg(target, keepsVersions), id, add.count, add.bytes, credit.count, credit.bytes, ...ruleArgs(rules), this.leaseMs, this.keyTtlMs,
          this.idPrefix, decidedOn,
        );
      });
    const reply = await waitWhilePinned(attempt, this.options.pinWaitMs ?? DEFAULT_PIN_WAIT_MS);
    if (reply[0] === 3) {
      // Decided on a versioning that changed (through any proxy) since it was read: the next write reads it again.
      this.reader.forget(key);
      throw new VersioningMoved();
    }
    if (reply[0] !== 1) return { ok: false, projection: projection(reply.slice(1)) };
    const reservation: Reservation = { id, key, target, keepsVersions, count: add.count, bytes: add.bytes, settled: false };
    this.holding.add(reservation);
    return { ok: true, reservation };
  }

  async grow({ reservation, snapshot, bytes, creditBytes, rules }: GrowRequest): Promise<Reserved> {
    const { key } = reservation;
    const reply = await this.generation.run(async (gen) =>
      this.scripts.ledgerGrow(
        this.keys.gen, this.k('n', key), this.k('f', key), this.k('r', key),
        gen, ...(await this.base(key, snapshot, gen)), targetArg(reservation.target, reservation.keepsVersions), reservation.id, bytes, creditBytes, rules.bytes.limit ?? '', rules.bytes.soft ?? '',
        this.leaseMs, this.keyTtlMs, reservation.count, reservation.bytes,
      ),
    );
    if (reply[0] !== 1) return { ok: false, projection: projection(reply.slice(1)) };
    reservation.bytes += bytes;
    return { ok: true, reservation };
  }

  // ---- pins ------------------------------------------------------------------------------------------------

  /** The pins of the proxies sharing this ledger (redis-pins.ts), on its connection, with its process id. */
  pinStore(): RedisPinStore {
    this.pins ??= new RedisPinStore({
      redis: this.redis,
      prefix: this.options.prefix,
      process: this.idPrefix,
      leaseMs: this.leaseMs,
      keyTtlMs: this.keyTtlMs,
      ...(this.options.onError ? { onError: this.options.onError } : {}),
    });
    return this.pins;
  }

  // ---- the quota watch's shared state ----------------------------------------------------------------------

  /** The quota watch's state, shared by the proxies of this ledger (redis-watch-state.ts). */
  watchState(): SharedWatchState {
    return redisWatchState(this.redis, this.scripts, this.options.prefix);
  }

  // ---- settling -------------------------------------------------------------------------------------------

  commit(reservation: Reservation, actual: Usage = reservation): void {
    if (reservation.settled) return;
    if (reservation.linked) this.commit(reservation.linked);
    const { key, id } = reservation;
    const { count, bytes } = actual;
    this.holding.settle(reservation, () =>
      this.generation.run((gen) => this.scripts.ledgerCommit(this.keys.gen, this.keys.seq, this.k('n', key), this.k('f', key), this.k('r', key), gen, id, count, bytes, this.keyTtlMs)),
    );
  }

  release(reservation: Reservation): void {
    if (reservation.settled) return;
    if (reservation.linked) this.release(reservation.linked);
    const { key, id } = reservation;
    this.holding.settle(reservation, () => this.generation.run((gen) => this.scripts.ledgerRelease(this.keys.gen, this.k('r', key), gen, id)));
  }

  forgetEverywhere(key: string): void {
    this.reader.forget(key);
    this.redis.publish(forgetChannel(this.options.prefix), key).catch((error: Error) => this.options.onError?.(error, 'forget'));
  }

  invalidate(key: string): void {
    this.reader.forget(key);
    this.holding.sendUntilTaken(() => this.generation.run((gen) => this.scripts.ledgerInvalidate(this.keys.gen, this.keys.seq, this.k('n', key), gen, this.keyTtlMs)));
  }

  /** Holds a reservation for another lease; `putBack` sets it even if Redis lacks it (a new generation). */
  private renew(reservation: Reservation, gen: string, putBack = false): Promise<number> {
    return this.scripts.ledgerRenew(
      this.keys.gen, this.k('r', reservation.key),
      gen, reservation.id, `${reservation.count}:${reservation.bytes}:${targetArg(reservation.target, reservation.keepsVersions)}`, this.leaseMs, this.keyTtlMs,
      putBack ? '1' : '0',
    );
  }

  /** Sends what is still owed (a short while at most) and disconnects. */
  async close(): Promise<void> {
    this.pins?.close();
    await this.holding.close();
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }
}

function projection(reply: number[]): Projection {
  const [usedCount, usedBytes, heldCount, heldBytes, known, settledCount, settledBytes, since] = reply as [number, number, number, number, number, number, number, number];
  return {
    used: { count: usedCount, bytes: usedBytes },
    held: { count: heldCount, bytes: heldBytes },
    settled: known === 1 ? { count: settledCount, bytes: settledBytes } : undefined,
    writesSince: since === 1,
  };
}
