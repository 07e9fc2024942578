-- ChargeGate's bucket rules in Lua, shared by the two scripts Redis runs (charge.lua, the
-- spend, top-off and peek; settle.lua, the settlement of a hold), each after period.lua and
-- before its own file. Each function is the twin of the Swift named beside it (Bucket,
-- SpendItem), checked against it on a real Redis. An item is a table named by SpendLayout's
-- item fields (ITEM: pool, max, interval, cost, expires, period, anchor, tracksLimit, baseMax,
-- largestMax, slowestInterval). Local functions only: Redis forbids globals.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local LIMIT = 9007199254740992
local UNLIMITED = -1

local function int(x) return string.format('%d', x) end

local function exact(x)
  return type(x) == 'number' and x == math.floor(x) and x < LIMIT and x > -LIMIT
end

local function corrupt(key)
  return redis.error_reply('CHARGEGATE corrupt bucket state at key ' .. key)
end

-- A bucket state (BucketState): nil when missing; false when corrupt; else
-- {current, lastUpdatedAt, max or nil}
local function load(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok or type(v) ~= 'table' then return false end
  local c, l, m = v['current'], v['lastUpdatedAt'], v['max']
  if not exact(c) or not exact(l) then return false end
  if m == nil then return {c, l, nil} end
  if not exact(m) then return false end
  return {c, l, m}
end

-- Writes state s ({current, lastUpdatedAt, max or nil}) with a TTL in ms (nil: none)
local function store(key, s, ttl)
  local value = '{"current":' .. int(s[1]) .. ',"lastUpdatedAt":' .. int(s[2])
  if s[3] ~= nil then value = value .. ',"max":' .. int(s[3]) end
  value = value .. '}'
  if ttl then
    redis.call('SET', key, value, 'PX', int(ttl))
  else
    redis.call('SET', key, value)
  end
end

-- Bucket.span: count intervals in ms, at most 2^53
local function span(count, interval)
  local ms = count * interval
  if ms > LIMIT then ms = LIMIT end
  return ms
end

-- Bucket.until: ms from now until ms after start, within 0 .. 2^53
local function until_(ms, start)
  local left = ms - (now - start)
  if left < 0 then left = 0 end
  if left > LIMIT then left = LIMIT end
  return left
end

-- Bucket.level(_:max:intervalMs:now:): available (below 0 when owed), lastUpdatedAt, isFull
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
  return avail, last, false
end

-- Bucket.level(_:max:window:): a state written before the window began is a full pool
local function period_level(s, max, wstart)
  if s == nil or s[2] < wstart then return max, wstart, true end
  if s[1] >= max then return max, s[2], true end
  return s[1], s[2], false
end

-- Bucket.level(_:max:intervalMs:window:now:): in the item's window (item.wstart) when it has
-- one, else by its interval
local function level_in(s, max, item)
  if item.wstart ~= nil then return period_level(s, max, item.wstart) end
  return level(s, max, item.interval)
end

-- Bucket.used: what an unlimited pool counted (this period's, for a period pool)
local function used(s, wstart)
  if s == nil then return 0 end
  if wstart ~= nil and s[2] < wstart then return 0 end
  if s[1] < 0 then return 0 end
  return s[1]
end

-- Bucket.rebased: the state counted against the item's cap when it recorded another; what
-- was used (at most the largest cap) stays used: below 0 under a cap lower than that (owed)
local function rebased(s, item)
  if s == nil or not item.tracksLimit then return s end
  local from = s[3]
  if from == nil then from = item.baseMax or UNLIMITED end
  local to = item.max or UNLIMITED
  if from == to then return s end
  local spent = s[1]
  if from ~= UNLIMITED then spent = from - s[1] end
  if item.largestMax ~= nil and spent > item.largestMax then spent = item.largestMax end
  local cur
  if to == UNLIMITED then
    cur = spent
    if cur < 0 then cur = 0 end
  else
    cur = to - spent
  end
  return {cur, s[2], to}
end

-- SpendItem.limitToRecord: the cap a write records, or nil
local function limit_to_record(item)
  if not item.tracksLimit then return nil end
  return item.max or UNLIMITED
end

-- SpendItem.expiryIntervalMs: the interval a key's TTL counts in (the slowest of any plan)
local function expiry_interval(item)
  if item.interval == nil then return nil end
  if item.slowestInterval ~= nil and item.slowestInterval > item.interval then return item.slowestInterval end
  return item.interval
end

-- SpendItem.window(at:): the item's current period: start, end (nil, nil for a bucket)
local function window(item)
  if item.period == nil then return nil, nil end
  return period_window(item.period, item.anchor, now)
end
