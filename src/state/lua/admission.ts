// Flow control's shared admission count in Redis (the Redis side of
// src/state/admission.ts). One key under the pool prefix P:
//   adm   ZSET   chargeId of a pick let through and not yet committed, by expiry (epoch ms)
// A chargeId is `<owner>.<n>` (the Director's per-instance prefix), so a
// replica's own reservations are told apart by prefix. COMMIT_LUA removes the
// pick's member in the same script that charges it; a pick not admitted
// removes it with ZREM. Times come from the Redis server clock, as in
// lua/scripts.ts.

/**
 * reserve. KEYS[1] = pool prefix. ARGV: chargeId, owner, ttlMs. Drops lapsed
 * reservations, counts the live ones of other owners, adds this one; returns
 * that count. Sent right before the snapshot script on the same connection,
 * so one round trip carries both.
 */
export const ADMISSION_RESERVE_LUA = `
local key = KEYS[1] .. 'adm'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
if not ttl or ttl <= 0 then return redis.error_reply('ERR hermes state: admission ttlMs must be > 0') end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local own = ARGV[2] .. '.'
local others = 0
-- Reservations live from a snapshot to its commit: a handful at any time.
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  if string.sub(m, 1, #own) ~= own then others = others + 1 end
end
redis.call('ZADD', key, now + ttl, ARGV[1])
redis.call('PEXPIRE', key, ttl * 2)
return others
`;
