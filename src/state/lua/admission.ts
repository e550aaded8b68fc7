// Flow control's shared admission count in Redis (the Redis side of
// src/state/admission.ts). Keys under the pool prefix P:
//   adm    ZSET   chargeId of a pick let through and not yet committed, by expiry (epoch ms)
//   heads  HASH   owner -> its queue heads (cross-replica fair dispatch,
//                 src/flow/fair-share.ts): '<expiresAt>;<priority>,<enqueuedAt>,<seq>;...'
//                 (times in ms on the Redis clock; a replica sends ages)
//   wake   channel  PUBLISH <owner> when a replica yields the pool's room (no key)
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
 *
 * With the queue heads (ARGV: ..., headsTtlMs, n, then n x priority, ageMs,
 * seq) it also replaces this owner's heads (n = 0 removes them; a head
 * published before keeps its stored enqueue time), drops lapsed ones, and
 * returns {count, then per live head, other owners' first, this owner's
 * last: owner, priority, ageMs, seq, expiresInMs}. One HGETALL over a field
 * per replica.
 */
export const ADMISSION_RESERVE_LUA = `
local key = KEYS[1] .. 'adm'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
if not ttl or ttl <= 0 then return redis.error_reply('ERR hermes state: admission ttlMs must be > 0') end
local httl, n
if ARGV[4] then
  httl = tonumber(ARGV[4])
  n = tonumber(ARGV[5])
  if not httl or httl <= 0 or not n or #ARGV ~= 5 + 3 * n then
    return redis.error_reply('ERR hermes state: bad queue heads; nothing was written')
  end
  for j = 0, n - 1 do
    local b = 6 + j * 3
    if not tonumber(ARGV[b]) or not tonumber(ARGV[b + 1]) or not tonumber(ARGV[b + 2]) then
      return redis.error_reply('ERR hermes state: bad queue head; nothing was written')
    end
  end
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local own = ARGV[2] .. '.'
local others = 0
-- Reservations live from a snapshot to its commit: a handful at any time.
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  if string.sub(m, 1, #own) ~= own then others = others + 1 end
end
redis.call('ZADD', key, now + ttl, ARGV[1])
redis.call('PEXPIRE', key, ttl * 2)
if not ARGV[4] then return others end
local hk = KEYS[1] .. 'heads'
local out = {others}
local all = redis.call('HGETALL', hk)
-- A head published again keeps the enqueue time stored at its first publication:
-- every replica then compares the same stored times (no two yield to each other).
local kept = {}
for i = 1, #all, 2 do
  local o, v = all[i], all[i + 1]
  local sep = string.find(v, ';', 1, true)
  local exp = tonumber(string.sub(v, 1, (sep or 0) - 1))
  if not exp or exp <= now then
    redis.call('HDEL', hk, o)
  else
    for p, enq, seq in string.gmatch(string.sub(v, sep + 1), '([^,;]+),([^,;]+),([^,;]+)') do
      if o == ARGV[2] then
        kept[seq] = enq
      else
        out[#out + 1] = o
        out[#out + 1] = tonumber(p)
        out[#out + 1] = now - tonumber(enq)
        out[#out + 1] = tonumber(seq)
        out[#out + 1] = exp - now
      end
    end
  end
end
if n == 0 then
  redis.call('HDEL', hk, ARGV[2])
else
  local parts = {tostring(now + httl)}
  for j = 0, n - 1 do
    local b = 6 + j * 3
    local enq = kept[ARGV[b + 2]] or tostring(now - tonumber(ARGV[b + 1]))
    parts[#parts + 1] = ARGV[b] .. ',' .. enq .. ',' .. ARGV[b + 2]
    out[#out + 1] = ARGV[2]
    out[#out + 1] = tonumber(ARGV[b])
    out[#out + 1] = now - tonumber(enq)
    out[#out + 1] = tonumber(ARGV[b + 2])
    out[#out + 1] = httl
  end
  redis.call('HSET', hk, ARGV[2], table.concat(parts, ';'))
  redis.call('PEXPIRE', hk, httl * 2)
end
return out
`;
