-- ChargeGate's spend script (the spend, top-off and peek operations). Each function is the
-- twin of the Swift named beside it (Bucket, SpendItem, PlanChoice, PlanUse, PlanRecord,
-- IdempotencyRecord, HoldRecord), checked against it on a real Redis; bucket.lua (the bucket
-- rules) and period.lua (period_window, BillingPeriod.window's twin) come before this file.
-- The argument and reply positions come from SpendLayout, rendered before period.lua as the
-- tables ARG, ITEMS, ITEM, HOLD, TOPOFF, HEAD and REPLY; the keys of each operation are in
-- Sources/ChargeGateRedis/RedisStore+Script.swift. Local functions only: Redis forbids globals.

-- Bucket.wait(for:level:max:intervalMs:now:): ms until cost charges are available; nil: never
local function wait_for(cost, avail, last, max, interval)
  if avail >= cost then return 0 end
  if interval == nil or interval <= 0 or cost > max then return nil end
  return until_(span(cost - avail, interval), last)
end

-- Bucket.wait(for:level:max:intervalMs:window:now:): a period pool's whole allowance comes
-- back when its window ends
local function wait_in(item)
  if item.wstart == nil then return wait_for(item.cost, item.avail, item.last, item.max, item.interval) end
  if item.avail >= item.cost then return 0 end
  if item.cost > item.max then return nil end
  return math.max(0, item.wend - now)
end

-- Bucket.spend: the current and lastUpdatedAt written after spending cost from the level
local function spend(cost, avail, last, full)
  if full then last = now end
  return avail - cost, last
end

-- One item (SpendItem) from its fields at ARGV[o + 1 ...], named and read as ITEM says
local function read_item(o)
  local item = {}
  for k = 1, #ITEM do
    local name, reading, v = ITEM[k][1], ITEM[k][2], ARGV[o + k]
    if reading == 'number' then
      v = tonumber(v)
    elseif reading == 'flag' then
      v = v == '1'
    elseif reading == 'name' and v == '' then
      v = nil
    end
    item[name] = v
  end
  return item
end

-- Bucket.spent: what a spend writes for one item brought to its level (item.avail, item.last,
-- item.full, in item.wstart .. item.wend): the state, its TTL (nil: none), and when the pool
-- is full again (-1: never, or unlimited)
local function spent(item)
  local limit = limit_to_record(item)
  if item.max == nil then
    local ttl = nil
    if item.expires and item.wend ~= nil then ttl = math.max(1, item.wend - now) end
    return {item.avail + item.cost, now, limit}, ttl, -1
  end
  if item.wstart ~= nil then
    local ttl = nil
    if item.expires then ttl = math.max(1, item.wend - now) end
    return {item.avail - item.cost, now, limit}, ttl, item.wend
  end
  local cur, last = spend(item.cost, item.avail, item.last, item.full)
  local ttl = nil
  local every = expiry_interval(item)
  if item.expires and every ~= nil then
    -- until full again under every plan: a missing key is a full pool
    ttl = until_(span(item.max - cur, every), last)
    if ttl < 1 then ttl = 1 end
  end
  local full = -1
  if item.interval ~= nil then full = last + (item.max - cur) * item.interval end
  return {cur, last, limit}, ttl, full
end

-- Bucket.plan: every item (with its stored state, item.state) or none. Denied: the tag and
-- its reply fields (a pool that never refills wins, else the longest wait). Allowed:
-- 'allowed', its reply fields, and each item's write {state, ttl}.
local function plan(items)
  local credits, longest, longestWait
  for i = 1, #items do
    local item = items[i]
    local s = rebased(item.state, item)
    item.wstart, item.wend = window(item)
    if item.max == nil then
      item.avail, item.last, item.full = used(s, item.wstart), now, false
    else
      item.avail, item.last, item.full = level_in(s, item.max, item)
      if item.avail < item.cost then
        local wait = wait_in(item)
        if wait ~= nil then
          if longest == nil or wait > longestWait then longest, longestWait = i, wait end
        elseif credits == nil then
          credits = i
        end
      end
    end
  end
  if credits ~= nil then
    local item = items[credits]
    return 'credits', {item = credits - 1, available = math.max(0, item.avail), required = item.cost}
  end
  if longest ~= nil then return 'out', {item = longest - 1, retryAfterMs = longestWait} end
  local writes, remaining, fullAt = {}, {}, {}
  for i = 1, #items do
    local s, ttl, full = spent(items[i])
    writes[i] = {s, ttl}
    remaining[i], fullAt[i] = s[1], full
  end
  return 'allowed', {remaining = remaining, fullAt = fullAt}, writes
end

-- Bucket.topOffItem: a state that recorded a cap is topped off in that cap (the plan it was
-- spent under)
local function top_off_item(item, s)
  if not item.tracksLimit or s == nil then return item end
  local recorded = s[3]
  if recorded == nil then recorded = item.baseMax or UNLIMITED end
  if recorded ~= UNLIMITED then item.max = recorded end
  return item
end

-- Bucket.topOff(_:amount:max:now:): current and lastUpdatedAt after adding amount (nil: fill)
-- to the level, capped at max; an owed balance is paid back first
local function top_off_level(avail, last, amount, max)
  if amount ~= nil and avail + amount < max then return avail + amount, last end
  return max, now
end

-- Bucket.topOff(_:state:amount:now:): the state after a top-off of the item from state s,
-- its TTL (nil: none), and whether the key is removed instead (a pool full again)
local function top_off(item, s, amount)
  item = top_off_item(item, s)
  local max = item.max or 0
  s = rebased(s, item)
  item.wstart, item.wend = window(item)
  local avail, last = level_in(s, max, item)
  local cur, upd = top_off_level(avail, last, amount, max)
  local after = {cur, upd, limit_to_record(item)}
  if item.expires and item.wend ~= nil then return after, math.max(1, item.wend - now), false end
  local every = expiry_interval(item)
  if item.expires and every ~= nil then
    local ttl = until_(span(max - cur, every), upd)
    if ttl <= 0 then return after, nil, true end
    return after, ttl, false
  end
  return after, nil, false
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

-- PlanChoice.table read back: a line per plan, its id then each item's max and interval,
-- tab-separated ("" for none); rows[p + 1] is plan p's fields
local function read_plan_table(text)
  local rows = {}
  if text ~= '' then
    for _, line in ipairs(split(text, '\n')) do rows[#rows + 1] = split(line, '\t') end
  end
  return rows
end

-- PlanUse.resolve: the stored plan when known, the default when not, else the fallback, from
-- the record raw (nil: none): {plan (0-based), stored (1/0), unknown (a stored id the config
-- does not have; false: none), anchor (nil: none)}
local function resolve(rows, raw)
  if not raw then return {plan = tonumber(ARGV[ARG.fallbackPlan]), stored = 0, unknown = false} end
  local name, anchor = read_plan(raw)
  for p = 0, #rows - 1 do
    if rows[p + 1][1] == name then return {plan = p, stored = 1, unknown = false, anchor = anchor} end
  end
  return {plan = tonumber(ARGV[ARG.defaultPlan]), stored = 0, unknown = name, anchor = anchor}
end

-- PlanChoice.apply: item i under the chosen plan: its cap and interval, the stored anchor on
-- a per-subject period pool
local function apply(choice, rows, item, i)
  local row = rows[choice.plan + 1]
  item.max, item.interval = tonumber(row[2 * i]), tonumber(row[2 * i + 1])
  if item.expires and item.period ~= nil then item.anchor = choice.anchor end
end

-- IdempotencyRecord.decide: 'fresh', 'reused', 'repeated' (with the record counting one more
-- repeat) or 'exhausted'; nil when the record is corrupt
local function decide(raw)
  if not raw then return 'fresh' end
  local fp, reps = string.match(raw, '^(%x+):(%d+)$')
  if fp == nil then return nil end
  if fp ~= ARGV[ARG.fingerprint] then return 'reused' end
  reps = tonumber(reps)
  if reps < tonumber(ARGV[ARG.maxRepeats]) then return 'repeated', fp .. ':' .. int(reps + 1) end
  return 'exhausted'
end

-- A fresh key's record (FINGERPRINT:0), within the records the subject may create per window
-- (the counter at quotaKey expires with the window's first record)
local function record(idemKey, quotaKey)
  local ttl = tonumber(ARGV[ARG.idempotencyTtl])
  if ttl < 1 then ttl = 1 end
  local made = redis.call('INCR', quotaKey)
  if made == 1 then redis.call('PEXPIRE', quotaKey, int(ttl)) end
  if made <= tonumber(ARGV[ARG.maxRecords]) then
    redis.call('SET', idemKey, ARGV[ARG.fingerprint] .. ':0', 'PX', int(ttl))
  end
end

-- HoldRecord.opened: the record of the hold whose arguments (HOLD) follow the items at
-- ARGV[at + ...], for an allowed spend of items (as decided, under the plan planId: "" for
-- none), as JSON: status first (the settle script
-- rewrites it in place), every number an integer written with int (cjson's encoder keeps 14
-- digits), each item's fields named as ITEM (those that are none left out), its key, whether
-- it is metered and, for a period pool, the start of its period
local function opened(items, planId, at)
  local id, metered = ARGV[at + HOLD.id], ARGV[at + HOLD.metered]
  local out = {
    '{"status":"open","id":', cjson.encode(id), ',"createdAt":', int(now),
    ',"expiresAt":', int(now + tonumber(ARGV[at + HOLD.window])), ',"policy":', ARGV[at + HOLD.policy],
    ',"context":{"subject":', cjson.encode(ARGV[ARG.subject]), ',"route":', cjson.encode(ARGV[ARG.route]),
    ',"method":', cjson.encode(ARGV[ARG.method]), ',"uri":', cjson.encode(ARGV[ARG.uri]),
    ',"idem":', cjson.encode(ARGV[ARG.idempotencyKey]), ',"plan":', cjson.encode(planId),
    ',"hold":', cjson.encode(id), '},"items":['
  }
  for i = 1, #items do
    local item = items[i]
    if i > 1 then out[#out + 1] = ',' end
    out[#out + 1] = '{"key":' .. cjson.encode(KEYS[i])
    for k = 1, #ITEM do
      local name, reading = ITEM[k][1], ITEM[k][2]
      local v = item[name]
      if reading == 'flag' then
        out[#out + 1] = ',"' .. name .. '":' .. tostring(v == true)
      elseif v ~= nil then
        if reading == 'number' then v = int(v) else v = cjson.encode(v) end
        out[#out + 1] = ',"' .. name .. '":' .. v
      end
    end
    out[#out + 1] = ',"metered":' .. tostring(string.sub(metered, i, i) == '1')
    if item.wstart ~= nil then out[#out + 1] = ',"periodStart":' .. int(item.wstart) end
    out[#out + 1] = '}'
  end
  out[#out + 1] = ']}'
  return table.concat(out)
end

-- The hold of an allowed spend at key, its arguments at ARGV[at + HOLD...] (SET ... PX NX: a
-- live hold under the same id is kept, and the later spend is final): the hold's id when
-- recorded, else nil
local function record_hold(key, items, planId, at)
  local ttl = tonumber(ARGV[at + HOLD.ttl])
  if ttl < 1 then ttl = 1 end
  if redis.call('SET', key, opened(items, planId, at), 'PX', int(ttl), 'NX') then return ARGV[at + HOLD.id] end
  return nil
end

-- One event per item (XADD ... MAXLEN ~), with the plan's id when a plan was chosen and the
-- hold's when one was recorded
local function append_events(key, items, planId, holdId)
  local maxLen = int(tonumber(ARGV[ARG.eventsMaxLen]))
  for i = 1, #items do
    local item = items[i]
    if planId == nil and holdId == nil then
      redis.call('XADD', key, 'MAXLEN', '~', maxLen, '*',
        'pool', item.pool, 'subject', ARGV[ARG.subject], 'amount', int(item.cost),
        'route', ARGV[ARG.route], 'method', ARGV[ARG.method], 'uri', ARGV[ARG.uri],
        'idem', ARGV[ARG.idempotencyKey], 'time', int(now))
    else
      local more = {}
      if planId ~= nil then
        more[#more + 1] = 'plan'
        more[#more + 1] = planId
      end
      if holdId ~= nil then
        more[#more + 1] = 'hold'
        more[#more + 1] = holdId
      end
      redis.call('XADD', key, 'MAXLEN', '~', maxLen, '*',
        'pool', item.pool, 'subject', ARGV[ARG.subject], 'amount', int(item.cost),
        'route', ARGV[ARG.route], 'method', ARGV[ARG.method], 'uri', ARGV[ARG.uri],
        'idem', ARGV[ARG.idempotencyKey], 'time', int(now), unpack(more))
    end
  end
end

-- The spend reply: HEAD (the plan code, and when more the unknown id and anchor, only with
-- a chosen plan), then the tag's REPLY fields in order (a list field: its n values). Every
-- reply object is one more for hiredis to build: the common cases carry one plan field.
local function reply(tag, choice, fields)
  local out = {}
  out[HEAD.tag], out[HEAD.now] = tag, now
  if choice ~= nil then
    local more = 0
    if choice.unknown ~= false or choice.anchor ~= nil then more = 1 end
    out[HEAD.plan] = choice.plan * 4 + choice.stored * 2 + more
    if more == 1 then
      out[HEAD.unknownPlan], out[HEAD.anchor] = choice.unknown, choice.anchor or -1
    end
  end
  for _, name in ipairs(REPLY[tag]) do
    local v = fields[name]
    if type(v) == 'table' then
      for i = 1, #v do out[#out + 1] = v[i] end
    else
      out[#out + 1] = v
    end
  end
  return out
end

-- op 'peek': {now, state or nil per key}
local function peek_op()
  local out = {now}
  for i = 1, #KEYS do
    local s = load(KEYS[i])
    if s == false then return corrupt(KEYS[i]) end
    if s == nil then out[i + 1] = false else out[i + 1] = {s[1], s[2], s[3] or false} end
  end
  return out
end

-- op 'topoff': {now, current, lastUpdatedAt, max or nil}
local function top_off_op()
  local key = KEYS[1]
  local s = load(key)
  if s == false then return corrupt(key) end
  local after, ttl, removed = top_off(read_item(TOPOFF.item), s, tonumber(ARGV[TOPOFF.amount]))
  if removed then
    redis.call('DEL', key)
  else
    store(key, after, ttl)
  end
  return {now, after[1], after[2], after[3] or false}
end

-- op 'spend': the plan, a voided hold (nothing spent), the idempotency record, every item or
-- none, the record, the hold, the events. op 'probe' (a cluster spend across slots, before
-- its other slots spend): the plan and the idempotency decision alone; a key to decide afresh
-- answers 'fresh' with nothing written
local function spend_op(probe)
  local n = tonumber(ARGV[ARG.count])
  local rows = read_plan_table(ARGV[ARG.planTable])
  local idemKey, quotaKey, planKey, eventsKey, holdKey
  local nextKey = n + 1
  if ARGV[ARG.idempotent] == '1' then
    idemKey, quotaKey = KEYS[nextKey], KEYS[nextKey + 1]
    nextKey = nextKey + 2
  end
  if #rows > 0 then
    planKey = KEYS[nextKey]
    nextKey = nextKey + 1
  end
  if tonumber(ARGV[ARG.eventsMaxLen]) > 0 then
    eventsKey = KEYS[nextKey]
    nextKey = nextKey + 1
  end
  -- A hold's arguments follow the items, only when the spend records one.
  local holdAt = ITEMS + n * #ITEM
  if ARGV[holdAt + HOLD.id] ~= nil then holdKey = KEYS[nextKey] end

  local choice
  if planKey ~= nil then choice = resolve(rows, redis.call('GET', planKey)) end
  -- nginx's line came before this spend and voided its hold (settle.lua): the client left
  -- before the gate answered. Nothing is spent.
  if holdKey ~= nil and redis.call('GET', holdKey) == HOLD_VOID then return reply('void', choice) end

  local fresh = false
  if idemKey ~= nil then
    local decision, repeated = decide(redis.call('GET', idemKey))
    if decision == nil then
      return redis.error_reply('CHARGEGATE corrupt idempotency record at key ' .. idemKey)
    end
    if decision == 'reused' then return reply('reused', choice) end
    if decision == 'repeated' then
      redis.call('SET', idemKey, repeated, 'KEEPTTL')
      return reply('repeated', choice)
    end
    fresh = decision == 'fresh'
  end
  if probe then return reply('fresh', choice) end

  local items = {}
  for i = 1, n do
    local item = read_item(ITEMS + (i - 1) * #ITEM)
    if choice ~= nil then apply(choice, rows, item, i) end
    local s = load(KEYS[i])
    if s == false then return corrupt(KEYS[i]) end
    item.state = s
    items[i] = item
  end

  local tag, fields, writes = plan(items)
  if tag ~= 'allowed' then return reply(tag, choice, fields) end
  for i = 1, n do store(KEYS[i], writes[i][1], writes[i][2]) end
  if fresh then record(idemKey, quotaKey) end
  local planId, holdId
  if choice ~= nil then planId = rows[choice.plan + 1][1] end
  if holdKey ~= nil then holdId = record_hold(holdKey, items, planId or '', holdAt) end
  if eventsKey ~= nil then append_events(eventsKey, items, planId, holdId) end
  return reply('allowed', choice, fields)
end

local op = ARGV[ARG.op]
if op == 'spend' then return spend_op(false) end
if op == 'probe' then return spend_op(true) end
if op == 'peek' then return peek_op() end
if op == 'topoff' then return top_off_op() end
return redis.error_reply('CHARGEGATE unknown op')
