-- ChargeGate's settle script: one hold settled at most once, atomically across its pools, with
-- its settle events. Each function is the twin of the Swift named beside it (MemoryStore.settle,
-- Settlement, SettlePolicy, ResponseFacts, Bucket.settle, HoldRecord), checked against it on a
-- real Redis over the tables of Tests/Support/SettleTables.swift; bucket.lua (the bucket rules)
-- and period.lua come before this file. The argument and reply positions come from
-- SettleLayout, rendered before period.lua as SETTLE, SETTLED, POOLS, POOL, POOL_WIDTH and ITEM.
-- One run settles up to SETTLE_CHUNK holds, one after the other, each atomic on its own and
-- each answered in its own place of the reply: KEYS[k] is hold k (HoldRecord, written by
-- charge.lua), KEYS[n + 1] the event stream when any hold's SETTLE.eventsMaxLen > 0; hold k's
-- arguments are ARGV[(k - 1) * SETTLE_WIDTH + 1 ...], read through A. The pools' keys are the
-- record's. Local functions only: Redis forbids globals.

-- The arguments of the hold being settled (SettleLayout.Argument's positions)
local A

-- How a record starts while open, and once settled: settling rewrites the status in place
local OPEN = '{"status":"open"'
local SETTLED_MARK = '{"status":"settled"'

local function corrupt_hold(key)
  return redis.error_reply('CHARGEGATE corrupt hold record at key ' .. key)
end

local function is_flag(v) return v == true or v == false end

-- SettlePolicy read back from the record ({"refund":["5xx","404"],"amount":"bytesSent",
-- "unit":N,"by":"nginx"}): {refund = {{class = 5} or {status = 404} ...}, amount (nil,
-- 'header', 'bytesSent' or 'upstreamMs'), unit, by}; nil when it is not one
local function read_policy(v)
  if type(v) ~= 'table' or type(v.refund) ~= 'table' then return nil end
  if v.by ~= 'nginx' and v.by ~= 'app' then return nil end
  local policy = {refund = {}, amount = v.amount, unit = v.unit, by = v.by}
  for i, entry in ipairs(v.refund) do
    if type(entry) ~= 'string' then return nil end
    local class = string.match(entry, '^([1-5])xx$')
    if class ~= nil then
      policy.refund[i] = {class = tonumber(class)}
    elseif string.match(entry, '^[1-5]%d%d$') then
      policy.refund[i] = {status = tonumber(entry)}
    else
      return nil
    end
  end
  if policy.amount == nil or policy.amount == 'header' then
    policy.unit = nil
  elseif policy.amount == 'bytesSent' or policy.amount == 'upstreamMs' then
    if not exact(policy.unit) or policy.unit < 1 then return nil end
  else
    return nil
  end
  return policy
end

-- HoldRecord.Item read back: the item's fields as ITEM names them (a number where ITEM reads
-- one, a flag, text), its key, metered, periodStart; nil when it is not one
local function read_hold_item(v)
  if type(v) ~= 'table' or type(v.key) ~= 'string' or not is_flag(v.metered) then return nil end
  local item = {key = v.key, metered = v.metered}
  for k = 1, #ITEM do
    local name, reading = ITEM[k][1], ITEM[k][2]
    local x = v[name]
    if reading == 'flag' then
      if not is_flag(x) then return nil end
    elseif reading == 'number' then
      if x ~= nil and not exact(x) then return nil end
    elseif reading == 'text' then
      if type(x) ~= 'string' then return nil end
    elseif x ~= nil and type(x) ~= 'string' then
      return nil
    end
    item[name] = x
  end
  if item.cost == nil or item.cost < 0 then return nil end
  if item.period ~= nil and item.period ~= 'day' and item.period ~= 'week' and item.period ~= 'month' then return nil end
  if v.periodStart ~= nil and not exact(v.periodStart) then return nil end
  item.periodStart = v.periodStart
  return item
end

-- HoldRecord read back from raw: {status, expiresAt, policy, context, items}; nil when the
-- value is not a record charge.lua writes
local function read_hold(raw)
  if string.sub(raw, 1, #OPEN) ~= OPEN and string.sub(raw, 1, #SETTLED_MARK) ~= SETTLED_MARK then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok or type(v) ~= 'table' then return nil end
  if (v.status ~= 'open' and v.status ~= 'settled') or not exact(v.expiresAt) then return nil end
  local policy = read_policy(v.policy)
  if policy == nil or type(v.context) ~= 'table' or type(v.items) ~= 'table' then return nil end
  for _, name in ipairs({'subject', 'route', 'method', 'uri', 'idem', 'plan', 'hold'}) do
    if type(v.context[name]) ~= 'string' then return nil end
  end
  local items = {}
  for i, entry in ipairs(v.items) do
    items[i] = read_hold_item(entry)
    if items[i] == nil then return nil end
  end
  return {status = v.status, expiresAt = v.expiresAt, policy = policy, context = v.context, items = items}
end

-- SettlePolicy.refunds: whether the policy gives a response with status back in full
local function refunds(policy, status)
  for _, entry in ipairs(policy.refund) do
    if entry.class ~= nil then
      if math.floor(status / 100) == entry.class then return true end
    elseif entry.status == status then
      return true
    end
  end
  return false
end

-- ResponseFacts.nothingDelivered: the upstream never got the request, or the client left
-- before it answered (499 without an upstream status)
local function nothing_delivered(status)
  return A[SETTLE.reached] ~= '1' or (status == 499 and A[SETTLE.answered] ~= '1')
end

-- Settlement.ceilDiv: value / unit rounded up (value within 0 .. 2^53: the quotient of two
-- doubles is then floored exactly), at most 2^53
local function ceil_div(value, unit)
  if value <= 0 or unit <= 0 then return 0 end
  if value > LIMIT then value = LIMIT end
  local q = math.floor(value / unit)
  if q * unit < value then q = q + 1 end
  if q > LIMIT then q = LIMIT end
  return q
end

-- Settlement.resolve: what the report in SETTLE comes to under policy: 'refund' with its
-- reason, 'amount' with the amount, 'stands', 'bad_amount' (detail ''), or 'ignored'
local function resolve(policy)
  local amount = tonumber(A[SETTLE.amount])
  if A[SETTLE.report] == 'app' then
    if A[SETTLE.amount] == '' then return 'refund', 'app' end
    if amount == nil then return 'bad_amount', '' end
    return 'amount', amount
  end
  if policy.by == 'app' then return 'ignored', '' end
  local status = tonumber(A[SETTLE.status])
  if refunds(policy, status) then return 'refund', 'status' end
  if nothing_delivered(status) then return 'refund', 'not_delivered' end
  if policy.amount == nil then return 'stands', '' end
  if policy.amount == 'header' then
    if amount == nil then return 'bad_amount', '' end
    return 'amount', amount
  end
  if policy.amount == 'bytesSent' then return 'amount', ceil_div(tonumber(A[SETTLE.bytesSent]), policy.unit) end
  return 'amount', ceil_div(tonumber(A[SETTLE.upstreamMs]), policy.unit)
end

-- Settlement.charges: what each item is charged in the end (nothing on a refund, the amount
-- on a metered item, its held cost on the others); nil when the hold stands as held
local function charges(resolution, amount, items)
  if resolution ~= 'refund' and resolution ~= 'amount' then return nil end
  local out = {}
  for i = 1, #items do
    if resolution == 'refund' then
      out[i] = 0
    elseif items[i].metered then
      out[i] = amount
    else
      out[i] = items[i].cost
    end
  end
  return out
end

-- Bucket.settle: what settling difference charges writes to item's key stored as s: the
-- state, its TTL (nil: none) and whether the key is removed instead; nil: nothing to write
-- (no difference, or a give-back on a period pool whose period is no longer the hold's)
local function settle_item(item, s, difference, periodStart)
  if difference == 0 then return nil end
  local wstart, wend = window(item)
  if difference < 0 and wstart ~= nil and periodStart ~= wstart then return nil end
  local stored = rebased(s, item)
  local limit = limit_to_record(item)
  if item.max == nil then
    local u = used(stored, wstart) + difference
    if u < 0 then u = 0 end
    if u > LIMIT - 1 then u = LIMIT - 1 end
    local ttl = nil
    if item.expires and wend ~= nil then ttl = math.max(1, wend - now) end
    return {u, now, limit}, ttl, false
  end
  item.wstart = wstart
  local avail, last, full = level_in(stored, item.max, item)
  local sum = avail - difference
  if sum < 1 - LIMIT then sum = 1 - LIMIT end
  local after
  if sum >= item.max then
    after = {item.max, now, limit}
  elseif wstart ~= nil or (difference > 0 and full) then
    after = {sum, now, limit}
  else
    after = {sum, last, limit}
  end
  if item.expires and wstart ~= nil then return after, math.max(1, wend - now), false end
  local every = expiry_interval(item)
  if item.expires and every ~= nil then
    local ttl = until_(span(item.max - after[1], every), after[2])
    if ttl <= 0 then return after, nil, true end
    return after, ttl, false
  end
  return after, nil, false
end

-- One settle event per item (XADD ... MAXLEN ~): the signed difference, kind settle, nginx's
-- status (none for the app's call), the hold's context (its plan when it had one)
local function append_settle_events(key, hold, differences)
  local maxLen = int(tonumber(A[SETTLE.eventsMaxLen]))
  local c = hold.context
  local more = {}
  if c.plan ~= '' then
    more[#more + 1] = 'plan'
    more[#more + 1] = c.plan
  end
  more[#more + 1] = 'kind'
  more[#more + 1] = 'settle'
  if A[SETTLE.status] ~= '' then
    more[#more + 1] = 'status'
    more[#more + 1] = A[SETTLE.status]
  end
  more[#more + 1] = 'hold'
  more[#more + 1] = c.hold
  for i = 1, #hold.items do
    redis.call('XADD', key, 'MAXLEN', '~', maxLen, '*',
      'pool', hold.items[i].pool, 'subject', c.subject, 'amount', int(differences[i]),
      'route', c.route, 'method', c.method, 'uri', c.uri, 'idem', c.idem, 'time', int(now), unpack(more))
  end
end

-- A state in the reply: {current, lastUpdatedAt, max or false}, false when missing
local function state_reply(s)
  if s == nil then return false end
  return {s[1], s[2], s[3] or false}
end

-- MemoryStore.settle: the hold at key read (missing: unknown, or voided when nginx's line says
-- nothing was delivered; settled or voided: duplicate; past its window: expired), the report
-- resolved (nginx's line on a route the app settles: ignored), the hold marked settled (its TTL
-- kept), each pool's difference applied, the events appended to stream. The reply: SETTLED's
-- head, and when settled each pool's POOL fields
local function settle_op(key, stream)
  local raw = redis.call('GET', key)
  if not raw then
    -- SettleRequest.voids: nginx's line for a client that left before the gate answered can
    -- come before the spend that opens the hold; the void makes that spend refuse.
    local ttl = tonumber(A[SETTLE.voidTtlMs])
    if A[SETTLE.report] ~= 'nginx' or ttl < 1 or not nothing_delivered(tonumber(A[SETTLE.status])) then
      return {'unknown', now}
    end
    redis.call('SET', key, HOLD_VOID, 'PX', int(ttl))
    return {'voided', now}
  end
  if raw == HOLD_VOID then return {'duplicate', now} end
  local hold = read_hold(raw)
  if hold == nil then return corrupt_hold(key) end
  if hold.status ~= 'open' then return {'duplicate', now} end
  if now >= hold.expiresAt then return {'expired', now} end
  local resolution, detail = resolve(hold.policy)
  if resolution == 'ignored' then return {'ignored', now} end
  -- Every state read first: a corrupt one answers its error before anything is written.
  local states = {}
  for i = 1, #hold.items do
    local s = load(hold.items[i].key)
    if s == false then return corrupt(hold.items[i].key) end
    states[i] = s
  end
  local settled = SETTLED_MARK .. string.sub(raw, #OPEN + 1)
  redis.call('SET', key, settled, 'KEEPTTL')
  local final = charges(resolution, detail, hold.items)
  local out = {}
  out[SETTLED.tag], out[SETTLED.now], out[SETTLED.resolution] = 'settled', now, resolution
  out[SETTLED.detail], out[SETTLED.record] = detail, settled
  local differences = {}
  for i = 1, #hold.items do
    local item = hold.items[i]
    local difference = 0
    if final ~= nil then difference = final[i] - item.cost end
    differences[i] = difference
    local s = states[i]
    local after, ttl, removes = settle_item(item, s, difference, item.periodStart)
    if after ~= nil then
      if removes then
        redis.call('DEL', item.key)
        s = nil
      else
        store(item.key, after, ttl)
        s = after
      end
    end
    local at = POOLS + (i - 1) * POOL_WIDTH
    out[at + POOL.difference], out[at + POOL.state] = difference, state_reply(s)
  end
  if final ~= nil and tonumber(A[SETTLE.eventsMaxLen]) > 0 then append_settle_events(stream, hold, differences) end
  return out
end

-- Each hold of the run in turn: its reply (or its error) at its place
local n = math.floor(#ARGV / SETTLE_WIDTH)
if n < 1 or n > SETTLE_CHUNK or n * SETTLE_WIDTH ~= #ARGV or (#KEYS ~= n and #KEYS ~= n + 1) then
  return redis.error_reply('CHARGEGATE bad settle arguments')
end
local replies = {}
for k = 1, n do
  A = {unpack(ARGV, (k - 1) * SETTLE_WIDTH + 1, k * SETTLE_WIDTH)}
  replies[k] = settle_op(KEYS[k], KEYS[n + 1])
end
return replies
