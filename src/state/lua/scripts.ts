// Lua scripts of the Redis StateStore, kept as TS string constants so the
// build ships them without copying files. Every script takes ONE key, the
// pool prefix `hermes:{<pool>}:` (its hash tag pins all pool keys to one
// Cluster slot), and derives the other key names from it. Times come from
// the Redis server clock (TIME), so replicas with skewed clocks agree on
// lease expiry. Numbers are written with %.17g so doubles round-trip exactly
// (Lua's tostring keeps only 14 digits).
//
// Key layout under the prefix P (see docs/state.md):
//   eps            STRING  JSON array of endpoints      epver  INT  its version
//   sig            HASH    endpoint -> "waiting,running,kv,updatedAtMs" (key TTL)
//   inf            HASH    endpoint -> unexpired in-flight count
//   picks          HASH    requestId -> "chargedAtEvent\nendpoint\nendpoint..."
//   leases         ZSET    requestId by lease expiry (epoch ms)
//   load           HASH    endpoint -> "short long atEvent"
//   event          INT     pool event counter (one per bucket charge)
//   px             HASH    prompt block hash -> endpoints holding it, ' '-separated (TTL)
//   pxlru:<ep>     ZSET    block hashes of one endpoint by recency (TTL)
//   pxseq          INT     recency sequence    pxeps  SET  endpoints with a pxlru
// The prefix index is one hash (not a set per block) so that matching N blocks
// is one HMGET and recording a known block is one HGET; its size is bounded by
// the per-endpoint LRU, and the whole index expires when the pool goes idle.
//   ix:<key>       STRING  cached cache-indexer answer (TTL)
//   lease:<name>   STRING  holder of a background-work lease (TTL)
//   decisions      LIST    recent decisions, newest first (bounded)

const COMMON = `
local P = KEYS[1]
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function decayed(v, from, to, d)
  local steps = to - from
  if steps <= 0 then return v end
  return v * (d ^ steps)
end
local function fmtLoad(s, l, e)
  return string.format('%.17g %.17g %d', s, l, e)
end
local function parseLoad(raw)
  local s, l, e = string.match(raw, '^(%S+) (%S+) (%S+)$')
  return tonumber(s), tonumber(l), tonumber(e)
end
local function uncount(rec)
  local first = true
  for id in string.gmatch(rec, '[^\\n]+') do
    if first then first = false
    else
      local n = redis.call('HINCRBY', P .. 'inf', id, -1)
      if n <= 0 then redis.call('HDEL', P .. 'inf', id) end
    end
  end
end
local function dropPick(rid)
  local rec = redis.call('HGET', P .. 'picks', rid)
  if rec then
    uncount(rec)
    redis.call('HDEL', P .. 'picks', rid)
  end
  redis.call('ZREM', P .. 'leases', rid)
  return rec
end
-- Expired in-flight leases vanish here: nobody has to release them.
local function prune(now)
  local expired = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, 1000)
  for _, rid in ipairs(expired) do dropPick(rid) end
end
-- unpack() is bounded by the Lua C stack: long prompts go in slices.
local function unpackCall(cmd, key, list, from)
  local out = {}
  for s = from, #list, 500 do
    local r = redis.call(cmd, key, unpack(list, s, math.min(s + 499, #list)))
    if type(r) == 'table' then for _, v in ipairs(r) do out[#out + 1] = v end end
  end
  return out
end
local function hasWord(list, w)
  return (' ' .. list .. ' '):find(' ' .. w .. ' ', 1, true) ~= nil
end
local function unindex(h, ep)
  local list = redis.call('HGET', P .. 'px', h)
  if not list then return end
  local rest = {}
  for w in string.gmatch(list, '%S+') do if w ~= ep then rest[#rest + 1] = w end end
  if #rest == 0 then redis.call('HDEL', P .. 'px', h) else redis.call('HSET', P .. 'px', h, table.concat(rest, ' ')) end
end
local function dropPrefixes(ep)
  local lru = P .. 'pxlru:' .. ep
  for _, h in ipairs(redis.call('ZRANGE', lru, 0, -1)) do unindex(h, ep) end
  redis.call('DEL', lru)
  redis.call('SREM', P .. 'pxeps', ep)
end
`;

/**
 * readSnapshot. ARGV: knownEndpointsVersion, wantLoads (0|1), indexerKey ('' =
 * none), prefix hashes... Returns {version, endpointsJson|nil (when the
 * caller's version is current), signals[], inFlight[], loads[], event,
 * prefixMatches[], indexerAnswer|nil}; arrays are flat field/value lists.
 */
export const SNAPSHOT_LUA = `${COMMON}
local now = nowMs()
prune(now)
local ver = redis.call('GET', P .. 'epver') or '0'
local eps = false
if ver ~= ARGV[1] then eps = redis.call('GET', P .. 'eps') or false end
local loads = {}
if ARGV[2] == '1' then loads = redis.call('HGETALL', P .. 'load') end
local matches = {}
if #ARGV >= 4 then
  local lists = unpackCall('HMGET', P .. 'px', ARGV, 4)
  local alive = nil
  for i = 1, #ARGV - 3 do
    local list = lists[i]
    if not list then break end
    local nxt, n = {}, 0
    for ep in string.gmatch(list, '%S+') do
      if alive == nil or alive[ep] then nxt[ep] = true; n = n + 1 end
    end
    if n == 0 then break end
    for ep in pairs(nxt) do matches[ep] = i end
    alive = nxt
  end
end
local flat = {}
for ep, m in pairs(matches) do flat[#flat + 1] = ep; flat[#flat + 1] = m end
local ix = false
if ARGV[3] ~= '' then ix = redis.call('GET', P .. 'ix:' .. ARGV[3]) or false end
return {ver, eps, redis.call('HGETALL', P .. 'sig'), redis.call('HGETALL', P .. 'inf'), loads,
  redis.call('GET', P .. 'event') or '0', flat, ix}
`;

/**
 * commitPick (mode 'commit') and resync of an open pick (mode 'restore':
 * if the pick is still stored only its lease is renewed, else it is charged;
 * no prefix record or decision). ARGV, in order: mode, requestId, leaseMs,
 * stateTtlMs, n, n in-flight endpoint ids, decayFactor ('' = no bucket), m,
 * m x (endpoint, 'short'|'long', amount), prefixEndpoint ('' = none),
 * capacity, prefixTtlMs, k, k hashes, decisionJson, decisionsLimit.
 * Returns the pool event the charge was made at.
 */
export const COMMIT_LUA = `${COMMON}
local i = 1
local function arg() local v = ARGV[i]; i = i + 1; return v end
local mode, rid = arg(), arg()
local leaseMs, stateTtl = tonumber(arg()), tonumber(arg())
local now = nowMs()
if mode == 'restore' then
  local rec = redis.call('HGET', P .. 'picks', rid)
  if rec then
    redis.call('ZADD', P .. 'leases', now + leaseMs, rid)
    return tonumber(string.match(rec, '^[^\\n]+'))
  end
end
local n = tonumber(arg())
local ids = {}
for j = 1, n do
  local id = arg()
  ids[j] = id
  redis.call('HINCRBY', P .. 'inf', id, 1)
end
local d = arg()
local m = tonumber(arg())
local event = tonumber(redis.call('GET', P .. 'event') or '0')
if d ~= '' and m > 0 then
  d = tonumber(d)
  event = redis.call('INCR', P .. 'event')
  for _ = 1, m do
    local ep, bucket, amount = arg(), arg(), tonumber(arg())
    local raw = redis.call('HGET', P .. 'load', ep)
    local s, l, at = 0, 0, event
    if raw then s, l, at = parseLoad(raw) end
    s = decayed(s, at, event, d)
    l = decayed(l, at, event, d)
    if bucket == 'short' then s = s + amount else l = l + amount end
    redis.call('HSET', P .. 'load', ep, fmtLoad(s, l, event))
  end
else
  i = i + m * 3
end
redis.call('HSET', P .. 'picks', rid, event .. '\\n' .. table.concat(ids, '\\n'))
redis.call('ZADD', P .. 'leases', now + leaseMs, rid)
-- Leases are uniform per EPP, so refreshing to lease + margin never cuts a live pick short.
for _, k in ipairs({'inf', 'picks', 'leases'}) do redis.call('PEXPIRE', P .. k, leaseMs + stateTtl) end
if mode == 'restore' then return event end
local pep = arg()
local capacity, pxTtl = tonumber(arg()), tonumber(arg())
local k = tonumber(arg())
if pep ~= '' and k > 0 then
  local lru = P .. 'pxlru:' .. pep
  local seq = redis.call('INCRBY', P .. 'pxseq', k) - k
  local zargs = {}
  for j = 1, k do
    local h = arg()
    zargs[2 * j - 1] = seq + j
    zargs[2 * j] = h
    local list = redis.call('HGET', P .. 'px', h)
    if not list then redis.call('HSET', P .. 'px', h, pep)
    elseif not hasWord(list, pep) then redis.call('HSET', P .. 'px', h, list .. ' ' .. pep) end
  end
  unpackCall('ZADD', lru, zargs, 1)
  local over = redis.call('ZCARD', lru) - capacity
  if over > 0 then
    local old = redis.call('ZPOPMIN', lru, over)
    for j = 1, #old, 2 do unindex(old[j], pep) end
  end
  redis.call('PEXPIRE', lru, pxTtl)
  redis.call('PEXPIRE', P .. 'px', pxTtl)
  redis.call('SADD', P .. 'pxeps', pep)
  redis.call('PEXPIRE', P .. 'pxeps', pxTtl)
else
  i = i + k
end
local decision, limit = arg(), tonumber(arg())
redis.call('LPUSH', P .. 'decisions', decision)
redis.call('LTRIM', P .. 'decisions', 0, limit - 1)
return event
`;

/**
 * release. ARGV: requestId, chargedAtEvent, decayFactor ('' = no bucket), m,
 * m x (endpoint, bucket, amount). The in-flight part is undone only if the
 * pick is still stored (an expired lease already undid it); the bucket part
 * subtracts the charge decayed to the current event.
 */
export const RELEASE_LUA = `${COMMON}
dropPick(ARGV[1])
if ARGV[3] == '' then return 0 end
local charged, d, m = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(redis.call('GET', P .. 'event') or '0')
for j = 0, m - 1 do
  local ep, bucket, amount = ARGV[5 + j * 3], ARGV[6 + j * 3], tonumber(ARGV[7 + j * 3])
  local raw = redis.call('HGET', P .. 'load', ep)
  if raw then
    local s, l, at = parseLoad(raw)
    s = decayed(s, at, now, d)
    l = decayed(l, at, now, d)
    local sub = decayed(amount, charged, now, d)
    if bucket == 'short' then s = math.max(0, s - sub) else l = math.max(0, l - sub) end
    redis.call('HSET', P .. 'load', ep, fmtLoad(s, l, now))
  end
end
return 1
`;

/** renewLeases. ARGV: leaseMs, requestIds... Only leases still stored are extended. */
export const RENEW_LUA = `${COMMON}
local exp = nowMs() + tonumber(ARGV[1])
local n = 0
for j = 2, #ARGV do
  if redis.call('ZSCORE', P .. 'leases', ARGV[j]) then
    redis.call('ZADD', P .. 'leases', exp, ARGV[j])
    n = n + 1
  end
end
return n
`;

/** tryAcquireLease. ARGV: name, holder, ttlMs. 1 when holder now holds it. */
export const LEASE_LUA = `${COMMON}
local key = P .. 'lease:' .. ARGV[1]
local cur = redis.call('GET', key)
if cur and cur ~= ARGV[2] then return 0 end
redis.call('SET', key, ARGV[2], 'PX', ARGV[3])
return 1
`;

/**
 * replaceEndpoints. ARGV: endpointsJson, ids of the new set... Drops the
 * signals, bucket loads and prefix entries of endpoints no longer present.
 */
export const ENDPOINTS_LUA = `${COMMON}
local live = {}
for j = 2, #ARGV do live[ARGV[j]] = true end
for _, h in ipairs({'sig', 'load'}) do
  for _, ep in ipairs(redis.call('HKEYS', P .. h)) do
    if not live[ep] then redis.call('HDEL', P .. h, ep) end
  end
end
for _, ep in ipairs(redis.call('SMEMBERS', P .. 'pxeps')) do
  if not live[ep] then dropPrefixes(ep) end
end
redis.call('SET', P .. 'eps', ARGV[1])
return redis.call('INCR', P .. 'epver')
`;
