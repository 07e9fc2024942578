-- ChargeGate bucket script: the twin of Bucket.plan / Bucket.topOff (Swift). Keys and
-- arguments of each operation: Sources/ChargeGateRedis/RedisStore+Script.swift.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local LIMIT = 9007199254740992

local function int(x) return string.format('%d', x) end

local function corrupt(key)
  return redis.error_reply('CHARGEGATE corrupt bucket state at key ' .. key)
end

-- nil: missing; false: corrupt; else {current, lastUpdatedAt}
local function load(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok or type(v) ~= 'table' then return false end
  local c, l = v['current'], v['lastUpdatedAt']
  if type(c) ~= 'number' or type(l) ~= 'number' then return false end
  if c ~= math.floor(c) or l ~= math.floor(l) then return false end
  if c >= LIMIT or c <= -LIMIT or l >= LIMIT or l <= -LIMIT then return false end
  return {c, l}
end

local function store(key, current, last, ttl)
  local value = '{"current":' .. int(current) .. ',"lastUpdatedAt":' .. int(last) .. '}'
  if ttl then
    redis.call('SET', key, value, 'PX', int(ttl))
  else
    redis.call('SET', key, value)
  end
end

-- Bucket.level: available, lastUpdatedAt, isFull
local function level(s, max, interval)
  if s == nil then return max, now, true end
  local avail, last = s[1], s[2]
  if interval ~= nil and interval > 0 then
    local elapsed = now - last
    if elapsed < 0 then elapsed = 0 end
    local earned = math.floor(elapsed / interval)
    if earned > 0 then
      avail = avail + earned
      last = last + earned * interval
    end
  end
  if avail >= max then return max, last, true end
  if avail < 0 then avail = 0 end
  return avail, last, false
end

local op = ARGV[1]

if op == 'peek' then
  local out = {now}
  for i = 1, #KEYS do
    local s = load(KEYS[i])
    if s == false then return corrupt(KEYS[i]) end
    if s == nil then out[i + 1] = false else out[i + 1] = {s[1], s[2]} end
  end
  return out
end

if op == 'topoff' then
  local key = KEYS[1]
  local max = tonumber(ARGV[2]) or 0
  local interval = tonumber(ARGV[3])
  local expires = ARGV[4] == '1'
  local amount = tonumber(ARGV[5])
  local s = load(key)
  if s == false then return corrupt(key) end
  local avail, last = level(s, max, interval)
  local cur, upd = max, now
  if amount ~= nil and avail + amount < max then
    cur, upd = avail + amount, last
  end
  if expires and interval ~= nil then
    local expiresAt = upd + (max - cur) * interval
    if expiresAt <= now then
      redis.call('DEL', key)
    else
      store(key, cur, upd, expiresAt - now)
    end
  else
    store(key, cur, upd, nil)
  end
  return {now, cur, upd}
end

if op ~= 'spend' then
  return redis.error_reply('CHARGEGATE unknown op')
end

local n = tonumber(ARGV[2])
local hasIdem = ARGV[3] == '1'
local idemTtl = tonumber(ARGV[4])
local maxLen = tonumber(ARGV[5])
local idemKey, quotaKey, eventsKey
local freshKey = false
local nextKey = n + 1
if hasIdem then
  idemKey, quotaKey = KEYS[nextKey], KEYS[nextKey + 1]
  nextKey = nextKey + 2
  local raw = redis.call('GET', idemKey)
  if raw then
    local fp, reps = string.match(raw, '^(%x+):(%d+)$')
    if fp == nil then
      return redis.error_reply('CHARGEGATE corrupt idempotency record at key ' .. idemKey)
    end
    if fp ~= ARGV[11] then return {'reused', now} end
    reps = tonumber(reps)
    if reps < tonumber(ARGV[12]) then
      redis.call('SET', idemKey, fp .. ':' .. int(reps + 1), 'KEEPTTL')
      return {'repeated', now}
    end
  else
    freshKey = true
  end
end
if maxLen > 0 then eventsKey = KEYS[nextKey] end

local items = {}
local credits, longest, longestWait
for i = 1, n do
  local o = 13 + (i - 1) * 5
  local item = {
    pool = ARGV[o + 1], max = tonumber(ARGV[o + 2]), interval = tonumber(ARGV[o + 3]),
    cost = tonumber(ARGV[o + 4]), expires = ARGV[o + 5] == '1'
  }
  local s = load(KEYS[i])
  if s == false then return corrupt(KEYS[i]) end
  if item.max == nil then
    item.avail = s and s[1] or 0
    item.last = now
    item.full = false
  else
    item.avail, item.last, item.full = level(s, item.max, item.interval)
    if item.avail < item.cost then
      if item.interval ~= nil and item.interval > 0 and item.cost <= item.max then
        local wait = item.last + (item.cost - item.avail) * item.interval - now
        if wait < 0 then wait = 0 end
        if longest == nil or wait > longestWait then
          longest, longestWait = i, wait
        end
      elseif credits == nil then
        credits = i
      end
    end
  end
  items[i] = item
end

if credits ~= nil then
  local item = items[credits]
  return {'credits', credits - 1, item.avail, item.cost}
end
if longest ~= nil then
  return {'out', longest - 1, longestWait}
end

local out = {'allowed', now}
for i = 1, n do
  local item = items[i]
  if item.max == nil then
    local used = item.avail + item.cost
    store(KEYS[i], used, now, nil)
    out[i + 2] = used
    out[n + i + 2] = -1
  else
    local cur = item.avail - item.cost
    local last = item.last
    if item.full then last = now end
    local ttl = nil
    if item.expires and item.interval ~= nil then
      ttl = last + (item.max - cur) * item.interval - now
      if ttl < 1 then ttl = 1 end
    end
    store(KEYS[i], cur, last, ttl)
    out[i + 2] = cur
    if item.interval ~= nil then
      out[n + i + 2] = last + (item.max - cur) * item.interval
    else
      out[n + i + 2] = -1
    end
  end
end

if freshKey then
  local ttl = idemTtl
  if ttl < 1 then ttl = 1 end
  local made = redis.call('INCR', quotaKey)
  if made == 1 then redis.call('PEXPIRE', quotaKey, int(ttl)) end
  if made <= tonumber(ARGV[13]) then
    redis.call('SET', idemKey, ARGV[11] .. ':0', 'PX', int(ttl))
  end
end

if eventsKey ~= nil then
  for i = 1, n do
    local item = items[i]
    redis.call('XADD', eventsKey, 'MAXLEN', '~', int(maxLen), '*',
      'pool', item.pool, 'subject', ARGV[6], 'amount', int(item.cost),
      'route', ARGV[7], 'method', ARGV[8], 'uri', ARGV[9],
      'idem', ARGV[10], 'time', int(now))
  end
end

return out
