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
 * are kept and sent again once Redis answers, their reservations renewed meanwhile. Redis restarted without its
 * data: the scripts find no generation; each proxy starts (or joins) a new one, drops every reading it cached
 * (their sequence numbers are from the old one, and writes finished since were lost) and puts the reservations it
 * holds back; a check resting on a reading of the old generation reads Swift again. Until every proxy has put its
 * reservations back (within a third of a lease), writes then in flight may be admitted past a limit once more.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Usage } from '../decide.js';
import {
  LedgerUnavailableError,
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
import { kindStateText, parseKindState, type SharedWatchState } from '../shared-watch.js';
import { PINS_LUA, RedisPinStore, VersioningMoved, waitWhilePinned } from './redis-pins.js';

export interface RedisLedgerOptions {
  url: string;
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

// ---- the scripts ------------------------------------------------------------------------------------------

/** Shared by the scripts: the generation check, Redis's clock, and the projection of a key. */
const PRELUDE = `
local function gen_ok(gen_key, gen)
  return redis.call('GET', gen_key) == gen
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function parse_reservation(v)
  local c, b, deadline, t = string.match(v, '^(%-?%d+):(%-?%d+):(%d+):(.*)$')
  return tonumber(c), tonumber(b), tonumber(deadline), t
end
local function touch(ttl, ...)
  for _, key in ipairs({...}) do redis.call('PEXPIRE', key, ttl) end
end
-- used = base reading (or the newest, if newer) + finished writes after it + reservations (expired ones go)
-- held = reservations of the same target name, but for 'except': their count, and their bytes where both
-- sides replace each other's ('=', not '+': a write Swift keeps as a version frees no other's bytes)
local function project(nk, fk, rk, base_seq, base_count, base_bytes, target, except)
  local n = redis.call('HMGET', nk, 'seq', 'count', 'bytes', 'inv', 'fcount', 'fbytes')
  local newest = tonumber(n[1])
  local bs, bc, bb = base_seq, base_count, base_bytes
  if newest and newest >= bs then bs, bc, bb = newest, tonumber(n[2]), tonumber(n[3]) end
  local fc, fb = 0, 0
  if newest and bs == newest then
    fc, fb = tonumber(n[5] or 0), tonumber(n[6] or 0)
  else
    local fin = redis.call('ZRANGEBYSCORE', fk, '(' .. bs, '+inf')
    for _, m in ipairs(fin) do
      local c, b = string.match(m, '^%d+:(%-?%d+):(%-?%d+)$')
      fc = fc + tonumber(c)
      fb = fb + tonumber(b)
    end
  end
  local rc, rb, hc, hb = 0, 0, 0, 0
  local name, shares = string.sub(target, 2), string.sub(target, 1, 1) == '='
  local now = now_ms()
  local res = redis.call('HGETALL', rk)
  for i = 1, #res, 2 do
    local c, b, deadline, t = parse_reservation(res[i + 1])
    if deadline < now then
      redis.call('HDEL', rk, res[i])
    else
      rc = rc + c
      rb = rb + b
      if target ~= '' and t ~= '' and string.sub(t, 2) == name and res[i] ~= except then
        hc = hc + c
        if shares and string.sub(t, 1, 1) == '=' then hb = hb + b end
      end
    end
  end
  local last = redis.call('ZREVRANGE', fk, 0, 0, 'WITHSCORES')
  local since = 0
  if last[2] and tonumber(last[2]) > base_seq then since = 1 end
  local known, sc, sb = 0, 0, 0
  if newest and (tonumber(n[4]) or -1) <= newest then
    known, sc, sb = 1, tonumber(n[2]) + tonumber(n[5] or 0), tonumber(n[3]) + tonumber(n[6] or 0)
  end
  return { bc + fc + rc, bb + fb + rb, hc, hb, known, sc, sb, since }
end
local function fits_rule(limit, soft, used, requested)
  if requested <= 0 then return true end
  if soft ~= '' and used > tonumber(soft) then return false end
  return limit == '' or used + requested <= tonumber(limit)
end
`;

/** KEYS: gen, n, f, r. ARGV: gen, base seq, base count, base bytes, target, except. */
const PROJECT = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
return project(KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6])
`;

/**
 * KEYS: gen, n, f, r, and the key's pins p, versioning changes v (redis-pins.ts), seq. ARGV: gen, base seq,
 * base count, base bytes, target, id, add count, add bytes, credit count, credit bytes, count limit, count soft,
 * bytes limit, bytes soft, lease ms, key ttl ms, this process, the seq of the reading versioning was decided on.
 * Returns {1} when reserved, {2} when another process pins the target (the write waits for it), {3} when the
 * versioning decided on changed since, else {0, projection...}. A reservation of an object is its mark as on
 * its way to Swift, which a manifest resting on the object waits for (redis-pins.ts).
 */
const RESERVE = `${PRELUDE}${PINS_LUA}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
local now = now_ms()
if versioning_moved(KEYS[6], KEYS[2], KEYS[7], tonumber(ARGV[18]), now) then return { 3 } end
if ARGV[5] ~= '' and pinned_by_other(KEYS[5], ARGV[17], string.sub(ARGV[5], 2), now) then return { 2 } end
local p = project(KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], '')
local add_c, add_b = tonumber(ARGV[7]), tonumber(ARGV[8])
local req_c = add_c - tonumber(ARGV[9]) - p[3]
local req_b = add_b - tonumber(ARGV[10]) - p[4]
if not (fits_rule(ARGV[11], ARGV[12], p[1], req_c) and fits_rule(ARGV[13], ARGV[14], p[2], req_b)) then
  return { 0, unpack(p) }
end
redis.call('HSET', KEYS[4], ARGV[6], add_c .. ':' .. add_b .. ':' .. (now_ms() + tonumber(ARGV[15])) .. ':' .. ARGV[5])
touch(tonumber(ARGV[16]), KEYS[4])
return { 1 }
`;

/**
 * KEYS: gen, n, f, r. ARGV: gen, base seq, base count, base bytes, target, id, bytes, credit bytes,
 * bytes limit, bytes soft, lease ms, key ttl ms, the reservation's count, its bytes (as this proxy knows them).
 */
const GROW = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
local p = project(KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6])
local bytes = tonumber(ARGV[7])
if not fits_rule(ARGV[9], ARGV[10], p[2] - p[4] - tonumber(ARGV[8]), bytes) then
  return { 0, unpack(p) }
end
local count, held = tonumber(ARGV[13]), tonumber(ARGV[14])
redis.call('HSET', KEYS[4], ARGV[6], count .. ':' .. (held + bytes) .. ':' .. (now_ms() + tonumber(ARGV[11])) .. ':' .. ARGV[5])
touch(tonumber(ARGV[12]), KEYS[4])
return { 1 }
`;

/** KEYS: gen, seq, n, f, r. ARGV: gen, id, count, bytes, key ttl ms. A finished write takes a sequence number. */
const COMMIT = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
redis.call('HDEL', KEYS[5], ARGV[2])
local count, bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
if count ~= 0 or bytes ~= 0 then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[4], seq, seq .. ':' .. count .. ':' .. bytes)
  redis.call('HINCRBY', KEYS[3], 'fcount', count)
  redis.call('HINCRBY', KEYS[3], 'fbytes', bytes)
  touch(tonumber(ARGV[5]), KEYS[3], KEYS[4])
end
return 1
`;

/** KEYS: gen, r. ARGV: gen, id. */
const RELEASE = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
return redis.call('HDEL', KEYS[2], ARGV[2])
`;

/** KEYS: gen, seq, n. ARGV: gen, key ttl ms. */
const INVALIDATE = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
redis.call('HSET', KEYS[3], 'inv', redis.call('INCR', KEYS[2]))
touch(tonumber(ARGV[2]), KEYS[3])
return 1
`;

/** KEYS: gen, seq. ARGV: gen. The sequence number of a read about to be sent. */
const STAMP = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
return redis.call('INCR', KEYS[2])
`;

/**
 * KEYS: gen, n, f. ARGV: gen, seq, count, bytes, key ttl ms. A reading arrived: it becomes the newest if it is,
 * and the finished writes it covers go.
 */
const RECORD = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
local seq = tonumber(ARGV[2])
local n = redis.call('HMGET', KEYS[2], 'seq', 'inv')
if n[1] and tonumber(n[1]) >= seq then return 0 end
redis.call('HSET', KEYS[2], 'seq', seq, 'count', ARGV[3], 'bytes', ARGV[4])
if n[2] and tonumber(n[2]) < seq then redis.call('HDEL', KEYS[2], 'inv') end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', seq)
local fc, fb = 0, 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local c, b = string.match(m, '^%d+:(%-?%d+):(%-?%d+)$')
  fc = fc + tonumber(c)
  fb = fb + tonumber(b)
end
redis.call('HSET', KEYS[2], 'fcount', fc, 'fbytes', fb)
touch(tonumber(ARGV[5]), KEYS[2], KEYS[3])
return 1
`;

/**
 * KEYS: gen, n, r. ARGV: gen. {known, count, bytes, reserved count, reserved bytes}: the newest reading plus
 * writes finished after it, and the reservations of writes in flight.
 */
const SETTLED = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
local n = redis.call('HMGET', KEYS[2], 'seq', 'count', 'bytes', 'inv', 'fcount', 'fbytes')
if not n[1] or (tonumber(n[4]) or -1) > tonumber(n[1]) then return { 0, 0, 0, 0, 0 } end
local rc, rb, now = 0, 0, now_ms()
local res = redis.call('HGETALL', KEYS[3])
for i = 1, #res, 2 do
  local c, b, deadline = parse_reservation(res[i + 1])
  if deadline >= now then
    rc = rc + c
    rb = rb + b
  end
end
return { 1, tonumber(n[2]) + tonumber(n[5] or 0), tonumber(n[3]) + tonumber(n[6] or 0), rc, rb }
`;

/** KEYS: gen, r. ARGV: gen, id, "count:bytes:target" of the reservation, lease ms, key ttl ms. */
const RENEW = `${PRELUDE}
if not gen_ok(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
local c, b, t = string.match(ARGV[3], '^(%-?%d+):(%-?%d+):(.*)$')
redis.call('HSET', KEYS[2], ARGV[2], c .. ':' .. b .. ':' .. (now_ms() + tonumber(ARGV[4])) .. ':' .. t)
touch(tonumber(ARGV[5]), KEYS[2])
return 1
`;

/** KEYS: the scope's watch hash. ARGV: kind, expected, next, ttl ms. Nil when moved, else the current state. */
const TRANSITION = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and current ~= ARGV[2] then return current end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return false
`;

/** KEYS: the lock. ARGV: its token. Deletes it only if it is still ours. */
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

type Arg = string | number;

/** The scripts, as ioredis's defineCommand adds them. */
interface LedgerScripts {
  ledgerProject(...args: Arg[]): Promise<number[]>;
  ledgerReserve(...args: Arg[]): Promise<number[]>;
  ledgerGrow(...args: Arg[]): Promise<number[]>;
  ledgerCommit(...args: Arg[]): Promise<number>;
  ledgerRelease(...args: Arg[]): Promise<number>;
  ledgerInvalidate(...args: Arg[]): Promise<number>;
  ledgerStamp(...args: Arg[]): Promise<number>;
  ledgerRecord(...args: Arg[]): Promise<number>;
  ledgerSettled(...args: Arg[]): Promise<number[]>;
  ledgerRenew(...args: Arg[]): Promise<number>;
  watchTransition(...args: Arg[]): Promise<string | null>;
  watchUnlock(...args: Arg[]): Promise<number>;
}

const SCRIPTS = {
  ledgerProject: [4, PROJECT],
  ledgerReserve: [7, RESERVE],
  ledgerGrow: [4, GROW],
  ledgerCommit: [5, COMMIT],
  ledgerRelease: [2, RELEASE],
  ledgerInvalidate: [3, INVALIDATE],
  ledgerStamp: [2, STAMP],
  ledgerRecord: [3, RECORD],
  ledgerSettled: [3, SETTLED],
  ledgerRenew: [2, RENEW],
  watchTransition: [1, TRANSITION],
  watchUnlock: [1, UNLOCK],
} as const;

/** How long the shared watch state of a scope outlives its last change (Swift's metadata keeps it anyway). */
const WATCH_STATE_TTL_MS = 7 * 86_400_000;
/** Longest a metadata write of one scope may hold its lock (a proxy that died holding it). */
const WATCH_LOCK_MS = 30_000;

// ---- the ledger -------------------------------------------------------------------------------------------

/**
 * A target as the scripts compare it: "" for none (no object or container name is empty), "=" before a name
 * whose writes replace each other, "+" where Swift keeps each write as a version.
 */
const targetArg = (target: string | undefined, keepsVersions = false) => (target === undefined ? '' : `${keepsVersions ? '+' : '='}${target}`);
const ruleArgs = (rules: Rules) => [rules.count.limit ?? '', rules.count.soft ?? '', rules.bytes.limit ?? '', rules.bytes.soft ?? ''];

/** A settle (commit, release) or invalidation Redis has not acknowledged yet. */
type Outgoing = { readonly run: () => Promise<unknown>; readonly reservation?: Reservation };

export class RedisLedger implements UsageLedger {
  private readonly redis: Redis;
  private readonly scripts: LedgerScripts;
  private readonly reader: SnapshotReader;
  private readonly keys: { gen: string; seq: string };
  private readonly leaseMs: number;
  /** Keys outlive every reading a process may still hold (cache_timeout) and every lease. */
  private readonly keyTtlMs: number;
  private gen: string | undefined;
  private joining: Promise<string> | undefined;
  private sent = 0;
  private nextId = 0;
  private readonly idPrefix = randomBytes(6).toString('hex');
  /** Reservations Redis holds for this process: renewed until their settle is acknowledged. */
  private readonly held = new Map<string, Reservation>();
  private open = 0;
  private outbox: Outgoing[] = [];
  private readonly renewTimer: NodeJS.Timeout;
  private closed = false;
  private pins: RedisPinStore | undefined;

  constructor(private readonly options: RedisLedgerOptions) {
    this.leaseMs = options.leaseSeconds * 1000;
    this.keyTtlMs = Math.max(2 * options.ttlMs, 2 * this.leaseMs) + 60_000;
    this.keys = { gen: `${options.prefix}gen`, seq: `${options.prefix}seq` };
    this.redis = new Redis(options.url, {
      // A check waits for Redis, never for a queue of commands sent while it was away.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 2_000,
      lazyConnect: true,
      retryStrategy: (times) => Math.min(times * 100, 2_000),
    });
    this.redis.on('error', (error) => options.onError?.(error, 'connection'));
    for (const [name, [numberOfKeys, lua]] of Object.entries(SCRIPTS)) this.redis.defineCommand(name, { numberOfKeys, lua });
    this.scripts = this.redis as unknown as LedgerScripts;
    this.reader = new SnapshotReader({
      ttlMs: options.ttlMs,
      maxEntries: options.maxEntries,
      read: options.read,
      tick: () => ++this.sent,
      stamp: (key) => this.stamp(key),
      recorded: (key, snapshot, outdated) => this.record(key, snapshot, outdated),
      ...(options.onRead ? { onRead: options.onRead } : {}),
    });
    this.renewTimer = setInterval(() => void this.maintain(), Math.max(this.leaseMs / 3, 100));
    this.renewTimer.unref();
  }

  /** Connects and joins the ledger's generation; fails (and keeps trying in the background) while Redis is away. */
  async connect(): Promise<void> {
    await this.redis.connect();
    await this.currentGen();
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
    return this.open;
  }

  private k(kind: 'n' | 'f' | 'r' | 'p' | 'v', key: string): string {
    return `${this.options.prefix}${kind}:${key}`;
  }

  // ---- generations ----------------------------------------------------------------------------------------

  private currentGen(): Promise<string> {
    if (this.gen !== undefined) return Promise.resolve(this.gen);
    this.joining ??= this.join().finally(() => {
      this.joining = undefined;
    });
    return this.joining;
  }

  /** Starts a generation if Redis has none, and adopts whichever it has. */
  private async join(): Promise<string> {
    const candidate = randomBytes(8).toString('hex');
    await this.redis.set(this.keys.gen, candidate, 'NX');
    const gen = await this.redis.get(this.keys.gen);
    if (gen === null) throw new LedgerUnavailableError('the ledger has no generation');
    const previous = this.gen;
    this.gen = gen;
    if (previous !== undefined && previous !== gen) this.options.onError?.(new Error('the ledger lost its data: starting again from Swift'), 'generation');
    return gen;
  }

  /** Redis has another generation than ours (it lost its data): readings go, our reservations go back. */
  private async rejoin(stale: string): Promise<string> {
    if (this.gen === stale) {
      this.gen = undefined;
      this.reader.forgetAll();
    }
    const gen = await this.currentGen();
    await Promise.all([...this.held.values()].map((reservation) => this.renew(reservation, gen).catch(() => undefined)));
    return gen;
  }

  /** Runs a script with the current generation, joining a new one once if Redis lost its data. */
  private async run<T>(call: (gen: string) => Promise<T>): Promise<T> {
    let gen: string;
    try {
      gen = await this.currentGen();
    } catch (error) {
      throw unavailable(error);
    }
    try {
      return await call(gen);
    } catch (error) {
      if (!isGenError(error)) throw unavailable(error);
    }
    try {
      return await call(await this.rejoin(gen));
    } catch (error) {
      throw unavailable(error);
    }
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
    const seq = await this.run((current) => {
      gen = current;
      return this.scripts.ledgerStamp(this.keys.gen, this.keys.seq, current);
    });
    return { seq, gen };
  }

  private record(key: string, snapshot: Snapshot, _outdated: boolean): void {
    if (snapshot.gen !== this.gen) return;
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
    const reply = await this.run(async (gen) =>
      this.scripts.ledgerProject(this.keys.gen, this.k('n', key), this.k('f', key), this.k('r', key), gen, ...(await this.base(key, snapshot, gen)), targetArg(target, keepsVersions), except?.id ?? ''),
    );
    return projection(reply);
  }

  async settled(key: string): Promise<Settled | undefined> {
    const [known, count, bytes, reservedCount, reservedBytes] = (await this.run((gen) => this.scripts.ledgerSettled(this.keys.gen, this.k('n', key), this.k('r', key), gen))) as number[];
    if (known !== 1) return undefined;
    return { usage: { count: count!, bytes: bytes! }, inFlight: { count: count! + reservedCount!, bytes: bytes! + reservedBytes! } };
  }

  async reserve({ key, snapshot, add, credit, target, keepsVersions = false, rules, versioningRead }: ReserveRequest): Promise<Reserved> {
    const id = `${this.idPrefix}:${++this.nextId}`;
    const attempt = () =>
      this.run(async (gen) => {
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
    this.held.set(id, reservation);
    this.open++;
    this.options.onReservationsChanged?.(this.open, reservation, true);
    return { ok: true, reservation };
  }

  async grow({ reservation, snapshot, bytes, creditBytes, rules }: GrowRequest): Promise<Reserved> {
    const { key } = reservation;
    const reply = await this.run(async (gen) =>
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

  /** The quota watch's state, shared by the proxies of this ledger (shared-watch.ts). */
  watchState(): SharedWatchState {
    const hash = (key: string) => `${this.options.prefix}w:${key}`;
    return {
      transition: async (key, kind, expected, next) => {
        const current = await this.scripts.watchTransition(hash(key), kind, kindStateText(expected), kindStateText(next), WATCH_STATE_TTL_MS);
        return current === null ? undefined : parseKindState(current);
      },
      exclusive: async (key, write) => {
        const lock = `${this.options.prefix}lock:${key}`;
        const token = randomBytes(8).toString('hex');
        if ((await this.redis.set(lock, token, 'PX', WATCH_LOCK_MS, 'NX')) !== 'OK') return false;
        try {
          await write();
        } finally {
          await this.scripts.watchUnlock(lock, token).catch(() => undefined); // it expires anyway
        }
        return true;
      },
    };
  }

  // ---- settling -------------------------------------------------------------------------------------------

  commit(reservation: Reservation, actual: Usage = reservation): void {
    if (reservation.settled) return;
    this.settleLocally(reservation);
    const { key, id } = reservation;
    const { count, bytes } = actual;
    this.send({
      reservation,
      run: () => this.run((gen) => this.scripts.ledgerCommit(this.keys.gen, this.keys.seq, this.k('n', key), this.k('f', key), this.k('r', key), gen, id, count, bytes, this.keyTtlMs)),
    });
  }

  release(reservation: Reservation): void {
    if (reservation.settled) return;
    this.settleLocally(reservation);
    const { key, id } = reservation;
    this.send({ reservation, run: () => this.run((gen) => this.scripts.ledgerRelease(this.keys.gen, this.k('r', key), gen, id)) });
  }

  invalidate(key: string): void {
    this.reader.forget(key);
    this.send({ run: () => this.run((gen) => this.scripts.ledgerInvalidate(this.keys.gen, this.keys.seq, this.k('n', key), gen, this.keyTtlMs)) });
  }

  private settleLocally(reservation: Reservation): void {
    reservation.settled = true;
    this.open--;
    this.options.onReservationsChanged?.(this.open, reservation, false);
  }

  /** Sends a settle; one Redis did not take is kept (its reservation renewed) and sent again later. */
  private send(outgoing: Outgoing): void {
    outgoing.run().then(
      () => {
        if (outgoing.reservation) this.held.delete(outgoing.reservation.id);
      },
      (error: unknown) => {
        this.options.onError?.(error, 'settle');
        if (!this.closed) this.outbox.push(outgoing);
      },
    );
  }

  private renew(reservation: Reservation, gen: string): Promise<number> {
    return this.scripts.ledgerRenew(
      this.keys.gen, this.k('r', reservation.key),
      gen, reservation.id, `${reservation.count}:${reservation.bytes}:${targetArg(reservation.target, reservation.keepsVersions)}`, this.leaseMs, this.keyTtlMs,
    );
  }

  /** Every third of a lease: settles Redis missed go again, and the reservations still held are renewed. */
  private async maintain(): Promise<void> {
    const retry = this.outbox;
    this.outbox = [];
    for (const outgoing of retry) this.send(outgoing);
    const pending = [...this.held.values()];
    if (pending.length === 0) return;
    try {
      await this.run((gen) => Promise.all(pending.filter((r) => this.held.has(r.id)).map((r) => this.renew(r, gen))));
    } catch (error) {
      this.options.onError?.(error, 'renew');
    }
  }

  /** Sends what is still owed (a short while at most) and disconnects. */
  async close(): Promise<void> {
    clearInterval(this.renewTimer);
    this.pins?.close();
    const retry = this.outbox;
    this.outbox = [];
    await Promise.allSettled(retry.map((outgoing) => outgoing.run()));
    this.closed = true;
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

function isGenError(error: unknown): boolean {
  return error instanceof Error && /\bGEN$/.test(error.message);
}

function unavailable(error: unknown): Error {
  if (error instanceof LedgerUnavailableError) return error;
  return new LedgerUnavailableError(`the usage ledger (Redis) did not answer: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
