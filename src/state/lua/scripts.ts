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
//   picks          HASH    chargeId -> "chargedAtEvent\nendpoint\nendpoint..."
//   leases         ZSET    chargeId by lease expiry (epoch ms)
//   load           HASH    endpoint -> "short long atEvent"
//   event          INT     pool event counter (one per bucket charge)
//   pft            HASH    endpoint -> prefill tokens charged, not yet released by a first token
//   pfp            HASH    chargeId -> "endpoint tokens\nendpoint tokens..." (its open prefill charge)
//   pxb            HASH    prompt block key (8 bytes) -> holder bitmap (TTL): bit s set = the
//                          endpoint in slot s holds the block; trailing zero bytes trimmed
//   pxl:<ep>       ZSET    block keys of one endpoint by recency (TTL)
//   pxid           HASH    endpoint -> slot and '#<slot>' -> endpoint ('-' = retired slot) (TTL)
//   pxseq          INT     recency sequence
// The prefix index is one hash (not a set per block) so that matching N blocks
// is one HMGET and a record one HMGET + one multi-field HSET. Holder sets are
// bitmaps over small per-endpoint slots: the same set is the same (interned)
// Lua string, so a match only intersects where the holder set changes along the
// prompt (a shared prefix is one comparison per block). Its size is bounded by
// the per-endpoint LRU, and the whole index expires when the pool goes idle.
//   ix:<key>       STRING  cached cache-indexer answer (TTL)
//   lease:<name>   STRING  holder of a background-work lease (TTL)
//   decisions      LIST    recent decisions, newest first (bounded)
//   adm            ZSET    flow control's admission reservations (lua/admission.ts)

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
-- unpack() is bounded by the Lua C stack: long lists go in slices (of 500,
-- an even number, so field/value pairs are never split). Returns the
-- concatenated array replies, or the sum of integer replies.
local function unpackCall(cmd, key, list, from, to)
  to = to or #list
  if to - from < 500 then
    -- One slice (the usual case): no copy of the reply.
    local r = redis.call(cmd, key, unpack(list, from, to))
    if type(r) == 'table' then return r, 0 end
    return {}, r
  end
  local out, sum = {}, 0
  for s = from, to, 500 do
    local r = redis.call(cmd, key, unpack(list, s, math.min(s + 499, to)))
    if type(r) == 'table' then for _, v in ipairs(r) do out[#out + 1] = v end
    elseif type(r) == 'number' then sum = sum + r end
  end
  return out, sum
end
-- Validate before writing: Redis does not roll a script back, so a call that
-- failed half-way (a corrupt counter making HINCRBY or INCR fail) would keep
-- the writes before the failure -- in-flight charges nobody releases. Every
-- value a script increments or parses is checked first; a corrupt one fails
-- the whole call with nothing written.
local function corrupt(what)
  error({err = 'ERR hermes state: ' .. what .. ' is corrupt; nothing was written'})
end
local function isInt(v)
  return (not v) or string.match(v, '^%-?%d+$') ~= nil
end
local function wantInt(v, what)
  if not isInt(v) then corrupt(what) end
end
local function wantInts(hash, fields, what)
  if #fields == 0 then return end
  local vals = unpackCall('HMGET', P .. hash, fields, 1)
  for j = 1, #fields do
    if not isInt(vals[j]) then corrupt(what .. ' ' .. fields[j]) end
  end
end
local function wantLoad(raw, what)
  if not raw then return end
  local s, l, e = parseLoad(raw)
  if not (s and l and e) then corrupt(what) end
end
local function argNum(v, what)
  local n = tonumber(v)
  if not n then error({err = 'ERR hermes state: argument ' .. what .. ' is not a number'}) end
  return n
end
-- The prefill entries of a pick's record ("endpoint tokens" lines), checked.
local function prefillParts(rid)
  local rec = redis.call('HGET', P .. 'pfp', rid)
  local eps, toks = {}, {}
  if rec then
    for ep, n in string.gmatch(rec, '(%S+) (%S+)') do
      eps[#eps + 1] = ep
      toks[#toks + 1] = tonumber(n) or corrupt('prefill record of ' .. rid)
    end
    wantInts('pft', eps, 'pending prefill tokens of')
  end
  return rec, eps, toks
end
local function subtractPrefill(rid, eps, toks)
  for j = 1, #eps do
    local left = redis.call('HINCRBY', P .. 'pft', eps[j], -toks[j])
    if left <= 0 then redis.call('HDEL', P .. 'pft', eps[j]) end
  end
  redis.call('HDEL', P .. 'pfp', rid)
end
local function dropPrefill(rid)
  local rec, eps, toks = prefillParts(rid)
  if rec then subtractPrefill(rid, eps, toks) end
end
local function dropPick(rid)
  local pf, eps, toks = prefillParts(rid)
  local rec = redis.call('HGET', P .. 'picks', rid)
  local ids, first = {}, true
  if rec then
    for id in string.gmatch(rec, '[^\\n]+') do
      if first then first = false else ids[#ids + 1] = id end
    end
    wantInts('inf', ids, 'in-flight count of')
  end
  if pf then subtractPrefill(rid, eps, toks) end
  if rec then
    for _, id in ipairs(ids) do
      local n = redis.call('HINCRBY', P .. 'inf', id, -1)
      if n <= 0 then redis.call('HDEL', P .. 'inf', id) end
    end
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
-- Holder bitmaps: byte j (1-based), bit b is slot (j - 1) * 8 + b. Trailing
-- zero bytes are trimmed, so equal holder sets are equal strings and an empty
-- set is ''.
local ZERO = string.char(0)
local function trimZeros(s)
  local n = #s
  while n > 0 and string.byte(s, n) == 0 do n = n - 1 end
  if n == #s then return s end
  return string.sub(s, 1, n)
end
local function setBit(s, slot)
  local j, mask = math.floor(slot / 8) + 1, 2 ^ (slot % 8)
  if #s < j then s = s .. string.rep(ZERO, j - #s) end
  local b = string.byte(s, j)
  if bit.band(b, mask) ~= 0 then return s end
  return string.sub(s, 1, j - 1) .. string.char(bit.bor(b, mask)) .. string.sub(s, j + 1)
end
local function clearBit(s, slot)
  local j, mask = math.floor(slot / 8) + 1, 2 ^ (slot % 8)
  if #s < j then return s end
  local b = string.byte(s, j)
  if bit.band(b, mask) == 0 then return s end
  return trimZeros(string.sub(s, 1, j - 1) .. string.char(bit.band(b, 255 - mask)) .. string.sub(s, j + 1))
end
local function andBits(a, b)
  local n = math.min(#a, #b)
  local out = {}
  for j = 1, n do out[j] = bit.band(string.byte(a, j), string.byte(b, j)) end
  -- string.char(unpack(out)): n is at most a few hundred bytes (8 slots each).
  return trimZeros(string.char(unpack(out)))
end
-- Calls fn(slot) for every bit set in a and not in b (b = '' for all of a).
local function eachMissing(a, b, fn)
  for j = 1, #a do
    local x = string.byte(a, j)
    if j <= #b then x = bit.band(x, 255 - string.byte(b, j)) end
    if x ~= 0 then
      for k = 0, 7 do
        if bit.band(x, 2 ^ k) ~= 0 then fn((j - 1) * 8 + k) end
      end
    end
  end
end
-- Clears one slot's bit on the given blocks (batched: one HMGET, one HSET, one HDEL).
local function unindexMany(hashes, slot)
  if #hashes == 0 then return end
  local cur = unpackCall('HMGET', P .. 'pxb', hashes, 1)
  local upd, del, memo = {}, {}, {}
  for j = 1, #hashes do
    local v = cur[j]
    if v then
      -- Blocks recorded together share one holder set: compute each change once.
      local nv = memo[v]
      if not nv then nv = clearBit(v, slot); memo[v] = nv end
      if nv == '' then del[#del + 1] = hashes[j]
      elseif nv ~= v then upd[#upd + 1] = hashes[j]; upd[#upd + 1] = nv end
    end
  end
  if #upd > 0 then unpackCall('HSET', P .. 'pxb', upd, 1) end
  if #del > 0 then unpackCall('HDEL', P .. 'pxb', del, 1) end
end
-- Block keys arrive as one argument, 8 bytes each (redis-store.ts keysBlob).
local function blockKeys(blob)
  local out = {}
  if not blob then return out end
  if #blob % 8 ~= 0 then error({err = 'ERR hermes state: block keys must be 8 bytes each'}) end
  for j = 1, #blob / 8 do out[j] = string.sub(blob, 8 * j - 7, 8 * j) end
  return out
end
local function dropPrefixes(ep)
  local lru = P .. 'pxl:' .. ep
  local slot = redis.call('HGET', P .. 'pxid', ep)
  if slot then
    unindexMany(redis.call('ZRANGE', lru, 0, -1), tonumber(slot))
    redis.call('HDEL', P .. 'pxid', ep, '#' .. slot)
  end
  redis.call('DEL', lru)
end
`;

/**
 * readSnapshot. ARGV: knownEndpointsVersion, wantLoads (0|1), indexerKey ('' =
 * none), prompt block keys (8 bytes each, '' = none). Returns {version, endpointsJson|nil (when the
 * caller's version is current), signals[], inFlight[], loads[], event,
 * prefixMatches[], indexerAnswer|nil, pendingPrefill[]}; arrays are flat
 * field/value lists.
 */
export const SNAPSHOT_LUA = `${COMMON}
local now = nowMs()
prune(now)
local ver = redis.call('GET', P .. 'epver') or '0'
local eps = false
if ver ~= ARGV[1] then eps = redis.call('GET', P .. 'eps') or false end
local loads = {}
if ARGV[2] == '1' then loads = redis.call('HGETALL', P .. 'load') end
local flat = {}
local blob = ARGV[4]
if #blob % 8 ~= 0 then error({err = 'ERR hermes state: block keys must be 8 bytes each'}) end
local nh = #blob / 8
if nh > 0 then
  -- Holder sets are nested along a prompt: a record stamps a prompt's
  -- leading blocks newest, so an endpoint's LRU gives up a prompt's tail
  -- before its head, and whoever holds block j holds every block before it.
  -- An endpoint's match is then the last block whose set still has its bit:
  -- bisecting between blocks whose sets differ finds every such edge with
  -- O(edges x log n) lookups instead of one per block.
  local pxb = P .. 'pxb'
  local function holdersAt(j)
    return redis.call('HGET', pxb, string.sub(blob, 8 * j - 7, 8 * j)) or ''
  end
  local done = {}
  local function edges(lo, vlo, hi, vhi)
    if hi == lo + 1 then
      eachMissing(vlo, vhi, function(s) done[s] = lo end)
      return
    end
    local mid = math.floor((lo + hi) / 2)
    local vm = holdersAt(mid)
    if vm ~= vlo then edges(lo, vlo, mid, vm) end
    if vm ~= vhi then edges(mid, vm, hi, vhi) end
  end
  local first = holdersAt(1)
  if first ~= '' then
    local last = first
    if nh > 1 then last = holdersAt(nh) end
    if last ~= first then edges(1, first, nh, last) end
    eachMissing(last, '', function(s) done[s] = nh end)
  end
  local slots, counts = {}, {}
  for s, m in pairs(done) do slots[#slots + 1] = '#' .. s; counts[#counts + 1] = m end
  if #slots > 0 then
    local names = unpackCall('HMGET', P .. 'pxid', slots, 1)
    for j = 1, #slots do
      local ep = names[j]
      if ep and ep ~= '-' then flat[#flat + 1] = ep; flat[#flat + 1] = counts[j] end
    end
  end
end
local ix = false
if ARGV[3] ~= '' then ix = redis.call('GET', P .. 'ix:' .. ARGV[3]) or false end
return {ver, eps, redis.call('HGETALL', P .. 'sig'), redis.call('HGETALL', P .. 'inf'), loads,
  redis.call('GET', P .. 'event') or '0', flat, ix, redis.call('HGETALL', P .. 'pft')}
`;

/**
 * commitPick (mode 'commit') and resync of an open pick (mode 'restore':
 * if the pick is still stored only its lease is renewed, else it is charged;
 * no prefix record or decision). ARGV, in order: mode, chargeId, leaseMs,
 * stateTtlMs, n, n in-flight endpoint ids, decayFactor ('' = no bucket), m,
 * m x (endpoint, 'short'|'long', amount), p, p x (endpoint, prefill tokens),
 * decisionJson, decisionsLimit. Returns the pool event the charge was made at.
 * (The pick's prefix record is RECORD_LUA, sent right after.)
 */
export const COMMIT_LUA = `${COMMON}
local i = 1
local function arg() local v = ARGV[i]; i = i + 1; return v end
local mode, rid = arg(), arg()
local leaseMs, stateTtl = argNum(arg(), 'leaseMs'), argNum(arg(), 'stateTtlMs')
local now = nowMs()
if mode == 'restore' then
  local rec = redis.call('HGET', P .. 'picks', rid)
  if rec then
    redis.call('ZADD', P .. 'leases', now + leaseMs, rid)
    return tonumber(string.match(rec, '^[^\\n]+'))
  end
end
-- 1. Arguments, then every stored value this script will increment or parse.
local n = argNum(arg(), 'n')
local ids = {}
for j = 1, n do ids[j] = arg() end
local d = arg()
local m = argNum(arg(), 'm')
local items = {}
for j = 1, m do
  local ep, bucket = arg(), arg()
  items[j] = {ep = ep, bucket = bucket, amount = argNum(arg(), 'amount')}
end
local np = argNum(arg(), 'p')
local pfEps, pfToks = {}, {}
for j = 1, np do
  pfEps[j] = arg()
  pfToks[j] = argNum(arg(), 'prefill tokens')
end
local withBucket = d ~= '' and m > 0
if withBucket then d = argNum(d, 'decayFactor') end
local decision, limit = nil, 0
if mode ~= 'restore' then decision, limit = arg(), argNum(arg(), 'decisionsLimit') end
local eventRaw = redis.call('GET', P .. 'event')
wantInt(eventRaw, 'pool event counter')
wantInts('inf', ids, 'in-flight count of')
wantInts('pft', pfEps, 'pending prefill tokens of')
if withBucket then
  for j = 1, m do
    wantLoad(redis.call('HGET', P .. 'load', items[j].ep), 'bucket load of ' .. items[j].ep)
  end
end
-- 2. Writes: nothing below can fail on stored data.
for j = 1, n do redis.call('HINCRBY', P .. 'inf', ids[j], 1) end
local event = tonumber(eventRaw or '0')
if withBucket then
  event = redis.call('INCR', P .. 'event')
  for j = 1, m do
    local it = items[j]
    local raw = redis.call('HGET', P .. 'load', it.ep)
    local s, l, at = 0, 0, event
    if raw then s, l, at = parseLoad(raw) end
    s = decayed(s, at, event, d)
    l = decayed(l, at, event, d)
    if it.bucket == 'short' then s = s + it.amount else l = l + it.amount end
    redis.call('HSET', P .. 'load', it.ep, fmtLoad(s, l, event))
  end
end
if np > 0 then
  local parts = {}
  for j = 1, np do
    redis.call('HINCRBY', P .. 'pft', pfEps[j], pfToks[j])
    parts[j] = pfEps[j] .. ' ' .. pfToks[j]
  end
  redis.call('HSET', P .. 'pfp', rid, table.concat(parts, '\\n'))
end
redis.call('HSET', P .. 'picks', rid, event .. '\\n' .. table.concat(ids, '\\n'))
redis.call('ZADD', P .. 'leases', now + leaseMs, rid)
-- Flow control's reservation of this pick (lua/admission.ts) becomes its charge in this same step.
redis.call('ZREM', P .. 'adm', rid)
-- Leases are uniform per EPP, so refreshing to lease + margin never cuts a live pick short.
for _, k in ipairs({'inf', 'picks', 'leases', 'pft', 'pfp'}) do redis.call('PEXPIRE', P .. k, leaseMs + stateTtl) end
if mode == 'restore' then return event end
redis.call('LPUSH', P .. 'decisions', decision)
redis.call('LTRIM', P .. 'decisions', 0, limit - 1)
return event
`;

/**
 * The approximate prefix record of a pick: `keys` become the endpoint's
 * newest blocks (its LRU, by the pool's recency sequence), then its oldest
 * beyond `capacity` are evicted. Sent right after the commit, whose reply
 * the request waits for; this one it does not (the same connection keeps
 * the order, so this replica's next snapshot sees it). ARGV: endpoint,
 * capacity, prefixTtlMs, block keys (8 bytes each).
 */
export const RECORD_LUA = `${COMMON}
local pep = ARGV[1]
local capacity, pxTtl = argNum(ARGV[2], 'capacity'), argNum(ARGV[3], 'prefixTtlMs')
local keys = blockKeys(ARGV[4])
local k = #keys
if pep == '' or k == 0 then return 0 end
wantInt(redis.call('GET', P .. 'pxseq'), 'prefix recency sequence')
wantInt(redis.call('HGET', P .. 'pxid', pep), 'prefix slot of ' .. pep)
local lru, ids, pxb = P .. 'pxl:' .. pep, P .. 'pxid', P .. 'pxb'
local slot = redis.call('HGET', ids, pep)
if slot and redis.call('EXISTS', lru) == 0 then
  -- Its LRU expired (idle past the TTL): which blocks still carry the
  -- slot's bit is unknown, so the slot is retired (never reused while the
  -- index lives; matches on it are ignored) and a new one assigned.
  redis.call('HSET', ids, '#' .. slot, '-')
  redis.call('HDEL', ids, pep)
  slot = false
end
if not slot then
  -- Lowest free slot: keeps the bitmaps short.
  local s = 0
  while redis.call('HEXISTS', ids, '#' .. s) == 1 do s = s + 1 end
  redis.call('HSET', ids, pep, s, '#' .. s, pep)
  slot = s
end
slot = tonumber(slot)
local seq = redis.call('INCRBY', P .. 'pxseq', k) - k
local zargs = {}
-- The prompt's first block gets the newest stamp: the LRU evicts a
-- prompt's tail first (as vLLM frees a finished request's blocks), which
-- keeps holder sets nested along a prompt (the snapshot's match relies on it).
-- (Pairs go last block first: a block a prompt repeats keeps its first,
-- newest stamp, the one ZADD applies last.)
for j = 1, k do
  local at = k + 1 - j
  zargs[2 * j - 1] = seq + j
  zargs[2 * j] = keys[at]
end
local _, added = unpackCall('ZADD', lru, zargs, 1)
-- A block already in the endpoint's LRU already has its bit: the common
-- case (a prompt sent again) only moves the LRU stamps.
if added > 0 then
  local sets = unpackCall('HMGET', pxb, keys, 1)
  local upd, memo = {}, {}
  for j = 1, k do
    local v = sets[j] or ''
    local nv = memo[v]
    if not nv then nv = setBit(v, slot); memo[v] = nv end
    if nv ~= v then upd[#upd + 1] = keys[j]; upd[#upd + 1] = nv end
  end
  if #upd > 0 then unpackCall('HSET', pxb, upd, 1) end
end
local over = redis.call('ZCARD', lru) - capacity
if over > 0 then
  local old = redis.call('ZPOPMIN', lru, over)
  local gone = {}
  for j = 1, #old, 2 do gone[#gone + 1] = old[j] end
  unindexMany(gone, slot)
end
for _, key in ipairs({lru, pxb, ids}) do redis.call('PEXPIRE', key, pxTtl) end
return k
`;

/**
 * release. ARGV: chargeId, chargedAtEvent, decayFactor ('' = no bucket), m,
 * m x (endpoint, bucket, amount). The in-flight part is undone only if the
 * pick is still stored (an expired lease already undid it); the bucket part
 * subtracts the charge decayed to the current event.
 */
export const RELEASE_LUA = `${COMMON}
local withBucket = ARGV[3] ~= ''
local charged, d, m, now = 0, 0, 0, 0
if withBucket then
  charged, d, m = argNum(ARGV[2], 'chargedAtEvent'), argNum(ARGV[3], 'decayFactor'), argNum(ARGV[4], 'm')
  local eventRaw = redis.call('GET', P .. 'event')
  wantInt(eventRaw, 'pool event counter')
  now = tonumber(eventRaw or '0')
  for j = 0, m - 1 do
    argNum(ARGV[7 + j * 3], 'amount')
    wantLoad(redis.call('HGET', P .. 'load', ARGV[5 + j * 3]), 'bucket load of ' .. ARGV[5 + j * 3])
  end
end
dropPick(ARGV[1])
if not withBucket then return 0 end
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

/** releasePrefill (first token). ARGV: chargeId. Undoes the pick's prefill-token charge, once. */
export const PREFILL_DONE_LUA = `${COMMON}
dropPrefill(ARGV[1])
return 1
`;

/** renewLeases. ARGV: leaseMs, chargeIds... Only leases still stored are extended. */
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
local known = redis.call('HGETALL', P .. 'pxid')
for j = 1, #known, 2 do
  local ep = known[j]
  if string.sub(ep, 1, 1) ~= '#' and not live[ep] then dropPrefixes(ep) end
end
redis.call('SET', P .. 'eps', ARGV[1])
return redis.call('INCR', P .. 'epver')
`;
