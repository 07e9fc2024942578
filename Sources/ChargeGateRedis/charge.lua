-- ChargeGate bucket script: the twin of Bucket.plan / Bucket.topOff / Bucket.rebased and
-- PlanChoice.resolve (Swift), after period.lua (BillingPeriod.window). Keys and arguments of each
-- operation: Sources/ChargeGateRedis/RedisStore+Script.swift.
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

-- nil: missing; false: corrupt; else {current, lastUpdatedAt, max or nil}
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

local function store(key, current, last, ttl, limit)
  local value = '{"current":' .. int(current) .. ',"lastUpdatedAt":' .. int(last)
  if limit ~= nil then value = value .. ',"max":' .. int(limit) end
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

-- Bucket.level: available (below 0 when owed), lastUpdatedAt, isFull
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

-- Bucket.level in a period window: a state written before it began is a full pool
local function period_level(s, max, wstart)
  if s == nil or s[2] < wstart then return max, wstart, true end
  if s[1] >= max then return max, s[2], true end
  return s[1], s[2], false
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
local function rebase(s, item)
  if s == nil or not item.tracks then return s end
  local from = s[3]
  if from == nil then from = item.baseMax or UNLIMITED end
  local to = item.max or UNLIMITED
  if from == to then return s end
  local spent = s[1]
  if from ~= UNLIMITED then spent = from - s[1] end
  if item.largest ~= nil and spent > item.largest then spent = item.largest end
  local cur
  if to == UNLIMITED then
    cur = spent
    if cur < 0 then cur = 0 end
  else
    cur = to - spent
  end
  return {cur, s[2], to}
end

-- The cap a write records, or nil
local function limit_of(item)
  if not item.tracks then return nil end
  return item.max or UNLIMITED
end

-- One item's 11 arguments from ARGV[o + 1]: pool, max, interval, cost, expires, period,
-- anchor, tracks, baseMax, largest max, slowest interval ("" for none)
local function read_item(o)
  local period = ARGV[o + 6]
  if period == '' then period = nil end
  return {
    pool = ARGV[o + 1], max = tonumber(ARGV[o + 2]), interval = tonumber(ARGV[o + 3]),
    cost = tonumber(ARGV[o + 4]), expires = ARGV[o + 5] == '1', period = period,
    anchor = tonumber(ARGV[o + 7]), tracks = ARGV[o + 8] == '1', baseMax = tonumber(ARGV[o + 9]),
    largest = tonumber(ARGV[o + 10]), slowest = tonumber(ARGV[o + 11])
  }
end

-- SpendItem.expiryIntervalMs: the interval a key's TTL counts in (the slowest of any plan)
local function expiry_interval(item)
  if item.interval == nil then return nil end
  if item.slowest ~= nil and item.slowest > item.interval then return item.slowest end
  return item.interval
end

-- The item's current period: start, end (nil, nil for a bucket)
local function window(item)
  if item.period == nil then return nil, nil end
  return period_window(item.period, item.anchor, now)
end

-- PlanRecord(text:): the stored plan's id ("" when unreadable) and anchor
local function read_plan(raw)
  local ok, v = pcall(cjson.decode, raw)
  if not ok or type(v) ~= 'table' or type(v['plan']) ~= 'string' then return '', nil end
  local a = v['periodAnchor']
  if a == nil or a == cjson.null then return v['plan'], nil end
  if not exact(a) or a < 0 then return '', nil end
  return v['plan'], a
end

local op = ARGV[1]

if op == 'peek' then
  local out = {now}
  for i = 1, #KEYS do
    local s = load(KEYS[i])
    if s == false then return corrupt(KEYS[i]) end
    if s == nil then out[i + 1] = false else out[i + 1] = {s[1], s[2], s[3] or false} end
  end
  return out
end

if op == 'topoff' then
  local key = KEYS[1]
  local item = read_item(1)
  local amount = tonumber(ARGV[13])
  local s = load(key)
  if s == false then return corrupt(key) end
  -- Bucket.topOffItem: counted in the cap the state recorded (the plan it was spent under)
  if item.tracks and s ~= nil then
    local recorded = s[3]
    if recorded == nil then recorded = item.baseMax or UNLIMITED end
    if recorded ~= UNLIMITED then item.max = recorded end
  end
  local max = item.max or 0
  s = rebase(s, item)
  local wstart, wend = window(item)
  local avail, last
  if wstart ~= nil then
    avail, last = period_level(s, max, wstart)
  else
    avail, last = level(s, max, item.interval)
  end
  -- Bucket.topOff: an owed balance counts as 0
  if avail < 0 then avail = 0 end
  local cur, upd = max, now
  if amount ~= nil and avail + amount < max then
    cur, upd = avail + amount, last
  end
  local limit = limit_of(item)
  local every = expiry_interval(item)
  if item.expires and wend ~= nil then
    store(key, cur, upd, math.max(1, wend - now), limit)
  elseif item.expires and every ~= nil then
    local ttl = until_(span(max - cur, every), upd)
    if ttl <= 0 then
      redis.call('DEL', key)
    else
      store(key, cur, upd, ttl, limit)
    end
  else
    store(key, cur, upd, nil, limit)
  end
  return {now, cur, upd, limit or false}
end

if op ~= 'spend' then
  return redis.error_reply('CHARGEGATE unknown op')
end

local n = tonumber(ARGV[2])
local hasIdem = ARGV[3] == '1'
local idemTtl = tonumber(ARGV[4])
local maxLen = tonumber(ARGV[5])
local itemBase = 16

-- The plan table (PlanChoice.table): a line per plan, `ID` then each item's max and interval,
-- tab-separated ("" for none); rows[p + 1] is plan p's fields
local function split(text, sep)
  local out, from = {}, 1
  while true do
    local at = string.find(text, sep, from, true)
    if not at then
      out[#out + 1] = string.sub(text, from)
      return out
    end
    out[#out + 1] = string.sub(text, from, at - 1)
    from = at + 1
  end
end
local rows = {}
if ARGV[14] ~= '' then
  for _, line in ipairs(split(ARGV[14], '\n')) do rows[#rows + 1] = split(line, '\t') end
end
local plans = #rows

local idemKey, quotaKey, planKey, eventsKey
local nextKey = n + 1
if hasIdem then
  idemKey, quotaKey = KEYS[nextKey], KEYS[nextKey + 1]
  nextKey = nextKey + 2
end
if plans > 0 then
  planKey = KEYS[nextKey]
  nextKey = nextKey + 1
end
if maxLen > 0 then eventsKey = KEYS[nextKey] end

-- PlanChoice.resolve: the stored plan when known, the default when not, else the fallback
local plan, planStored, planUnknown, planAnchor = -1, 0, false, nil
if plans > 0 then
  plan = tonumber(ARGV[15])
  local raw = redis.call('GET', planKey)
  if raw then
    local name, anchor = read_plan(raw)
    planAnchor = anchor
    local found
    for p = 0, plans - 1 do
      if rows[p + 1][1] == name then found = p break end
    end
    if found ~= nil then
      plan, planStored = found, 1
    else
      plan, planUnknown = tonumber(ARGV[16]), name
    end
  end
end
-- {tag, now}; with plans then code = plan * 4 + stored * 2 + more, and when more = 1 (an
-- unknown stored plan or a stored anchor) {unknown, anchor}; then the tag's own values. Every
-- reply object is one more for hiredis to build: the common cases carry one plan field.
local function reply(tag, ...)
  local out = {tag, now}
  if plans > 0 then
    local more = 0
    if planUnknown ~= false or planAnchor ~= nil then more = 1 end
    out[3] = plan * 4 + planStored * 2 + more
    if more == 1 then
      local anchor = planAnchor
      if anchor == nil then anchor = -1 end
      out[4], out[5] = planUnknown, anchor
    end
  end
  for _, v in ipairs({...}) do out[#out + 1] = v end
  return out
end

local freshKey = false
if hasIdem then
  local raw = redis.call('GET', idemKey)
  if raw then
    local fp, reps = string.match(raw, '^(%x+):(%d+)$')
    if fp == nil then
      return redis.error_reply('CHARGEGATE corrupt idempotency record at key ' .. idemKey)
    end
    if fp ~= ARGV[11] then return reply('reused') end
    reps = tonumber(reps)
    if reps < tonumber(ARGV[12]) then
      redis.call('SET', idemKey, fp .. ':' .. int(reps + 1), 'KEEPTTL')
      return reply('repeated')
    end
  else
    freshKey = true
  end
end

local items = {}
local credits, longest, longestWait
for i = 1, n do
  local item = read_item(itemBase + (i - 1) * 11)
  if plans > 0 then
    -- PlanChoice.apply: the plan's caps and intervals, the stored anchor on period pools
    local row = rows[plan + 1]
    item.max, item.interval = tonumber(row[2 * i]), tonumber(row[2 * i + 1])
    if item.expires and item.period ~= nil then item.anchor = planAnchor end
  end
  local s = load(KEYS[i])
  if s == false then return corrupt(KEYS[i]) end
  s = rebase(s, item)
  item.wstart, item.wend = window(item)
  if item.max == nil then
    item.avail = used(s, item.wstart)
    item.last = now
    item.full = false
  else
    if item.wstart ~= nil then
      item.avail, item.last, item.full = period_level(s, item.max, item.wstart)
    else
      item.avail, item.last, item.full = level(s, item.max, item.interval)
    end
    if item.avail < item.cost then
      local wait
      if item.wstart ~= nil then
        if item.cost <= item.max then wait = math.max(0, item.wend - now) end
      elseif item.interval ~= nil and item.interval > 0 and item.cost <= item.max then
        wait = until_(span(item.cost - item.avail, item.interval), item.last)
      end
      if wait ~= nil then
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
  local avail = item.avail
  if avail < 0 then avail = 0 end
  return reply('credits', credits - 1, avail, item.cost)
end
if longest ~= nil then
  return reply('out', longest - 1, longestWait)
end

local remaining, fullAt = {}, {}
for i = 1, n do
  local item = items[i]
  local limit = limit_of(item)
  if item.max == nil then
    local count = item.avail + item.cost
    local ttl = nil
    if item.expires and item.wend ~= nil then ttl = math.max(1, item.wend - now) end
    store(KEYS[i], count, now, ttl, limit)
    remaining[i], fullAt[i] = count, -1
  elseif item.wstart ~= nil then
    local cur = item.avail - item.cost
    local ttl = nil
    if item.expires then ttl = math.max(1, item.wend - now) end
    store(KEYS[i], cur, now, ttl, limit)
    remaining[i], fullAt[i] = cur, item.wend
  else
    local cur = item.avail - item.cost
    local last = item.last
    if item.full then last = now end
    local ttl = nil
    local every = expiry_interval(item)
    if item.expires and every ~= nil then
      -- until full again under every plan: a missing key is a full pool
      ttl = until_(span(item.max - cur, every), last)
      if ttl < 1 then ttl = 1 end
    end
    store(KEYS[i], cur, last, ttl, limit)
    remaining[i] = cur
    if item.interval ~= nil then
      fullAt[i] = last + (item.max - cur) * item.interval
    else
      fullAt[i] = -1
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
    if plans > 0 then
      redis.call('XADD', eventsKey, 'MAXLEN', '~', int(maxLen), '*',
        'pool', item.pool, 'subject', ARGV[6], 'amount', int(item.cost),
        'route', ARGV[7], 'method', ARGV[8], 'uri', ARGV[9],
        'idem', ARGV[10], 'time', int(now), 'plan', rows[plan + 1][1])
    else
      redis.call('XADD', eventsKey, 'MAXLEN', '~', int(maxLen), '*',
        'pool', item.pool, 'subject', ARGV[6], 'amount', int(item.cost),
        'route', ARGV[7], 'method', ARGV[8], 'uri', ARGV[9],
        'idem', ARGV[10], 'time', int(now))
    end
  end
end

local out = reply('allowed')
for i = 1, n do out[#out + 1] = remaining[i] end
for i = 1, n do out[#out + 1] = fullAt[i] end
return out
