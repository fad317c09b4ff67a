/**
 * The server-side scripts of the pins shared through a Redis ledger (redis-pins.ts says what each key holds).
 * Every entry is a lease, "<deadline>:<rest>", its deadline Redis's clock in ms.
 */

/**
 * Lua shared with the ledger's RESERVE (redis-scripts.ts): whether another process pins an object, and whether the
 * container's versioning changed since a reading. `now` is Redis's clock in ms.
 */
export const PINS_LUA = `
local function proc_of(id)
  return string.match(id, '^(.*):[^:]*$')
end
local function lease_parts(v)
  local deadline, rest = string.match(v, '^(%d+):(.*)$')
  return tonumber(deadline), rest
end
local function pinned_by_other(pk, proc, name, now)
  local pins = redis.call('HGETALL', pk)
  for i = 1, #pins, 2 do
    local deadline, rest = lease_parts(pins[i + 1])
    if deadline < now then
      redis.call('HDEL', pk, pins[i])
    elseif proc_of(pins[i]) ~= proc then
      local kind, pinned = string.sub(rest, 1, 1), string.sub(rest, 2)
      if (kind == 'x' and pinned == name) or (kind == 'p' and string.sub(name, 1, #pinned) == pinned) then return true end
    end
  end
  return false
end
-- A change under way, or one that ended after the reading sent at vseq. A change whose proxy died (its lease
-- ran out) ends now.
local function versioning_moved(vk, nk, seqk, vseq, now)
  local live = false
  local changes = redis.call('HGETALL', vk)
  for i = 1, #changes, 2 do
    local deadline = lease_parts(changes[i + 1])
    if deadline < now then
      redis.call('HDEL', vk, changes[i])
      redis.call('HSET', nk, 'vchg', redis.call('INCR', seqk))
    else
      live = true
    end
  end
  if live then return true end
  local last = tonumber(redis.call('HGET', nk, 'vchg'))
  return last ~= nil and last > vseq
end
`;

const NOW = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** KEYS: hash. ARGV: lease ms, key ttl ms, then id, rest pairs. Sets leases. */
const HOLD = `${NOW}
local deadline = now_ms() + tonumber(ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], deadline .. ':' .. ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`;

/**
 * KEYS: hash. ARGV: lease ms, key ttl ms, then id, rest pairs. Renews the leases still there (one released
 * while the renewal was on its way stays released).
 */
const RENEW = `${NOW}
local deadline = now_ms() + tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then redis.call('HSET', KEYS[1], ARGV[i], deadline .. ':' .. ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`;

/**
 * KEYS: p, the hash to add to (p for a turn, m for a write on its way). ARGV: process, object, id, rest, lease
 * ms, key ttl ms. Adds the entry unless another process pins the object: 1 added, 0 not.
 */
const HOLD_IF_FREE = `${NOW}${PINS_LUA}
local now = now_ms()
if pinned_by_other(KEYS[1], ARGV[1], ARGV[2], now) then return 0 end
redis.call('HSET', KEYS[2], ARGV[3], (now + tonumber(ARGV[5])) .. ':' .. ARGV[4])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))
return 1
`;

/**
 * KEYS: r (the ledger's reservations), m. ARGV: process, objects... 1 when another process has a write to one
 * of them on its way (a reservation or a mark).
 */
const BUSY = `${NOW}${PINS_LUA}
local now, proc, names = now_ms(), ARGV[1], {}
for i = 2, #ARGV do names[ARGV[i]] = true end
local res = redis.call('HGETALL', KEYS[1])
for i = 1, #res, 2 do
  local deadline, t = string.match(res[i + 1], '^%-?%d+:%-?%d+:(%d+):(.*)$')
  if tonumber(deadline) >= now and proc_of(res[i]) ~= proc and t ~= '' and names[string.sub(t, 2)] then return 1 end
end
local marks = redis.call('HGETALL', KEYS[2])
for i = 1, #marks, 2 do
  local deadline, name = lease_parts(marks[i + 1])
  if deadline >= now and proc_of(marks[i]) ~= proc and names[name] then return 1 end
end
return 0
`;

/**
 * KEYS: r, d. 1 when a write into the container on its way holds a reservation that frees what it replaces, or a
 * delete (decided on the versioning as it is) is on its way.
 */
const VERSIONING_BUSY = `${NOW}${PINS_LUA}
local now = now_ms()
local res = redis.call('HGETALL', KEYS[1])
for i = 1, #res, 2 do
  local deadline, t = string.match(res[i + 1], '^%-?%d+:%-?%d+:(%d+):(.*)$')
  if tonumber(deadline) >= now and string.sub(t, 1, 1) ~= '+' then return 1 end
end
local deletes = redis.call('HGETALL', KEYS[2])
for i = 1, #deletes, 2 do
  if lease_parts(deletes[i + 1]) >= now then return 1 end
end
return 0
`;

/**
 * KEYS: v, d. ARGV: id, lease ms, key ttl ms. Marks a delete on its way into the container unless a change of its
 * versioning is under way (then 0: the delete waits for it, and reads the versioning it leaves).
 */
const DELETE_MARK = `${NOW}${PINS_LUA}
local now = now_ms()
local changes = redis.call('HGETALL', KEYS[1])
for i = 1, #changes, 2 do
  if lease_parts(changes[i + 1]) >= now then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[1], (now + tonumber(ARGV[2])) .. ':')
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
`;

/** KEYS: v, n, seq. ARGV: id, lease ms (empty: the change ends), key ttl ms. Begins or ends a versioning change. */
const VERSIONING_MARK = `${NOW}
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], (now_ms() + tonumber(ARGV[2])) .. ':') end
redis.call('HSET', KEYS[2], 'vchg', redis.call('INCR', KEYS[3]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return 1
`;

type Arg = string | number;

/** The scripts, as ioredis's defineCommand adds them. */
export interface PinScripts {
  pinsHold(...args: Arg[]): Promise<number>;
  pinsRenew(...args: Arg[]): Promise<number>;
  pinsHoldIfFree(...args: Arg[]): Promise<number>;
  pinsBusy(...args: Arg[]): Promise<number>;
  pinsVersioningBusy(...args: Arg[]): Promise<number>;
  pinsVersioningMark(...args: Arg[]): Promise<number>;
  pinsDeleteMark(...args: Arg[]): Promise<number>;
}

export const PIN_SCRIPTS = {
  pinsHold: [1, HOLD],
  pinsRenew: [1, RENEW],
  pinsHoldIfFree: [2, HOLD_IF_FREE],
  pinsBusy: [2, BUSY],
  pinsVersioningBusy: [2, VERSIONING_BUSY],
  pinsDeleteMark: [2, DELETE_MARK],
  pinsVersioningMark: [3, VERSIONING_MARK],
} as const;
