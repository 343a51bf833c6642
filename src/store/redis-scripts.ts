/**
 * Lua run atomically inside Redis. Each touches exactly one key (KEYS[1]), so each works on a
 * Cluster, and each reads Redis's own clock (TIME), so replicas with skewed clocks agree.
 */

/**
 * GCRA, as gcra.ts computes it: whole microseconds (exact in Lua's doubles). ARGV: period in
 * ms, requests, cost. Returns 0 when allowed, else the milliseconds to wait (at least 1).
 */
export const CONSUME_RATE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1]) * 1000
local interval = math.floor(period / tonumber(ARGV[2]))
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * tonumber(ARGV[3])
local allow_at = new_tat - period
if allow_at > now then return math.ceil((allow_at - now) / 1000) end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
return 0`;

/** ZADD NX scored by arrival (oldest first across replicas), refresh the TTL, return the size. ARGV: member, TTL ms. */
export const ADD_TO_INDEX = `
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'NX', tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])`;

/**
 * A single-use id in its owner's sorted set, scored by when it expires (ms, Redis's clock), so
 * one key per owner and nothing else of the store's. Drops a bounded number of expired ids, adds
 * this one (NX: an id still there is a replay), and takes it back out past the owner's bound;
 * the set lives as long as its longest-lived id (PEXPIRE to the highest score: a shorter window
 * must not end a longer one's record early). Uses only commands the documented ACL grants.
 * ARGV: id, TTL ms, ids one owner may hold. Returns 0 recorded, 1 seen, 2 owner full.
 */
export const RECORD_ONCE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, 64)
if #expired > 0 then redis.call('ZREM', KEYS[1], unpack(expired)) end
if redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[2]), ARGV[1]) == 0 then return 1 end
if redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[3]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 2
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
return 0`;
