/**
 * The Redis ledger's server-side scripts (redis.ts says what each key holds). Every script of the ledger first
 * checks the generation it is sent with: the value of `<prefix>gen`, which is "<random>@<replid>", the
 * replication id of the Redis that started it. A script that finds another value fails with GEN; a step that
 * decides (a check, a reservation, a reading's sequence number: gen_ok) also fails with GEN on a Redis whose
 * replication id is not the generation's. The proxy then joins the generation this Redis has (JOIN):
 *
 * - a Redis that lost its data has no generation: JOIN starts one;
 * - a replica promoted to primary (Sentinel's failover, REPLICAOF NO ONE) takes a new replication id, so the
 *   generation it copied from the old primary no longer holds there: JOIN starts a new one. The promoted replica
 *   may have missed the old primary's last writes (finished writes, reservations, pins, readings): nothing written
 *   in the old generation is trusted for a check (readings are read from Swift again, the stored newest reading
 *   of a key counts only in the generation that recorded it) and each proxy puts back what it holds;
 * - a primary restarted from its RDB/AOF file also takes a new replication id: it may have lost the writes of its
 *   last second, and is treated the same way.
 *
 * Redis's INFO costs about 9 microseconds of Redis's time inside a script; it is what makes the check hold
 * whichever primary a command reaches, with no window between a failover and a proxy noticing it. The steps that
 * only add to what a check counts (a commit, a release, a renewal, a reading recorded, an invalidation) skip it
 * (gen_is): run on a promoted replica before anyone joined its new generation, they count more, never less, and
 * what they wrote is of the old generation, which the new one does not trust.
 */
import { PINS_LUA } from './redis-pins-scripts.js';

/** Shared by the scripts: the generation check, Redis's clock, and the projection of a key. */
const PRELUDE = `
local function replid()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
end
local function gen_is(gen_key, gen)
  return redis.call('GET', gen_key) == gen
end
local function gen_ok(gen_key, gen)
  return gen_is(gen_key, gen) and string.match(gen, '@(%w+)$') == replid()
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
-- A key's newest reading (n) counts only in the generation that recorded it (a promoted replica keeps older ones).
local function newest_of(nk, gen)
  local n = redis.call('HMGET', nk, 'seq', 'count', 'bytes', 'inv', 'fcount', 'fbytes', 'gen')
  if n[7] ~= gen then return n, nil end
  return n, tonumber(n[1])
end
local function project(gen, nk, fk, rk, base_seq, base_count, base_bytes, target, except)
  local n, newest = newest_of(nk, gen)
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
return project(ARGV[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6])
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
local p = project(ARGV[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], '')
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
local p = project(ARGV[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6])
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
if not gen_is(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
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
if not gen_is(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
return redis.call('HDEL', KEYS[2], ARGV[2])
`;

/** KEYS: gen, seq, n. ARGV: gen, key ttl ms. */
const INVALIDATE = `${PRELUDE}
if not gen_is(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
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
if not gen_is(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
local seq = tonumber(ARGV[2])
local n = redis.call('HMGET', KEYS[2], 'seq', 'inv', 'gen')
local same = n[3] == ARGV[1]
if same and n[1] and tonumber(n[1]) >= seq then return 0 end
redis.call('HSET', KEYS[2], 'seq', seq, 'count', ARGV[3], 'bytes', ARGV[4], 'gen', ARGV[1])
if n[2] and (tonumber(n[2]) < seq or not same) then redis.call('HDEL', KEYS[2], 'inv') end
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
local n, newest = newest_of(KEYS[2], ARGV[1])
if not newest or (tonumber(n[4]) or -1) > newest then return { 0, 0, 0, 0, 0 } end
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

/**
 * KEYS: gen. ARGV: a new random id. The generation of this Redis: the one it has if this Redis started it or
 * took it over by replication without being promoted since, else a new one (see the header).
 */
const JOIN = `${PRELUDE}
local id = replid()
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '@(%w+)$') == id then return current end
local gen = ARGV[1] .. '@' .. id
redis.call('SET', KEYS[1], gen)
return gen
`;

/**
 * KEYS: gen, r. ARGV: gen, id, "count:bytes:target" of the reservation, lease ms, key ttl ms, "1" to put it back
 * (a new generation) or "0" to renew it only if it is there (one settled meanwhile stays settled).
 */
const RENEW = `${PRELUDE}
if not gen_is(KEYS[1], ARGV[1]) then return redis.error_reply('GEN') end
if ARGV[6] ~= '1' and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
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

export type Arg = string | number;

/** The scripts, as ioredis's defineCommand adds them. */
export interface LedgerScripts {
  ledgerJoin(...args: Arg[]): Promise<string>;
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

export const SCRIPTS = {
  ledgerJoin: [1, JOIN],
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
