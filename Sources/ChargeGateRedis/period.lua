-- ChargeGate billing periods (`period: day | week | month`): the twin of BillingPeriod.window
-- (Swift), put before bucket.lua in both scripts (charge.lua, settle.lua) so that they can
-- call period_window. Times are epoch ms, UTC. Lua 5.1 numbers are doubles: only math.floor
-- and + - * on integers below 2^53, so every value is exact (floor(a / b) is exact for
-- |a| < 2^53): now and anchor in 0 .. 2^53 - 1, results exact while finish <= 2^53 (every now
-- but the last period before 2^53 ms, in the year 287,396). Calendar math after Howard
-- Hinnant's days_from_civil / civil_from_days. Local functions only: Redis forbids globals.

-- a / b rounded toward negative infinity (b > 0)
local function period_fdiv(a, b) return math.floor(a / b) end

-- a - b * floor(a / b): 0 <= result < b (b > 0)
local function period_fmod(a, b) return a - math.floor(a / b) * b end

-- days since 1970-01-01 of y-m-d (m 1..12, d 1..31)
local function period_days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = period_fdiv(y, 400)
  local yoe = y - era * 400
  local mp = m + 9
  if m > 2 then mp = m - 3 end
  local doy = period_fdiv(153 * mp + 2, 5) + d - 1
  local doe = yoe * 365 + period_fdiv(yoe, 4) - period_fdiv(yoe, 100) + doy
  return era * 146097 + doe - 719468
end

-- y, m, d of the day z days since 1970-01-01
local function period_civil_from_days(z)
  z = z + 719468
  local era = period_fdiv(z, 146097)
  local doe = z - era * 146097
  local yoe = period_fdiv(doe - period_fdiv(doe, 1460) + period_fdiv(doe, 36524) - period_fdiv(doe, 146096), 365)
  local doy = doe - (365 * yoe + period_fdiv(yoe, 4) - period_fdiv(yoe, 100))
  local mp = period_fdiv(5 * doy + 2, 153)
  local d = doy - period_fdiv(153 * mp + 2, 5) + 1
  local m = mp - 9
  if mp < 10 then m = mp + 3 end
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

-- the last day (28..31) of month m of year y
local function period_last_day(y, m)
  if m == 2 then
    if period_fmod(y, 4) == 0 and (period_fmod(y, 100) ~= 0 or period_fmod(y, 400) == 0) then return 29 end
    return 28
  end
  if m == 4 or m == 6 or m == 9 or m == 11 then return 30 end
  return 31
end

-- the month boundary in month m of year y: day d clamped to the month's last day, tod ms
-- after 00:00
local function period_month_boundary(y, m, d, tod)
  local last = period_last_day(y, m)
  if d > last then d = last end
  return period_days_from_civil(y, m, d) * 86400000 + tod
end

-- period_window(kind, anchor, now) -> start, finish   (kind 'day'|'week'|'month'; anchor number or nil)
local function period_window(kind, anchor, now)
  if kind == 'day' or kind == 'week' then
    -- starts at anchor + k lengths; calendar days from 1970-01-01, weeks from Monday 1970-01-05
    local len = 86400000
    if kind == 'week' then len = 604800000 end
    if anchor == nil then
      anchor = 0
      if kind == 'week' then anchor = 345600000 end
    end
    local start = anchor + period_fdiv(now - anchor, len) * len
    return start, start + len
  end
  if kind ~= 'month' then error('CHARGEGATE unknown period ' .. tostring(kind)) end
  -- one boundary per month: now is after its month's boundary, or before it
  local d, tod = 1, 0
  if anchor ~= nil then
    local adays = period_fdiv(anchor, 86400000)
    tod = anchor - adays * 86400000
    local _, _, ad = period_civil_from_days(adays)
    d = ad
  end
  local y, m = period_civil_from_days(period_fdiv(now, 86400000))
  local b = period_month_boundary(y, m, d, tod)
  if now >= b then
    if m == 12 then return b, period_month_boundary(y + 1, 1, d, tod) end
    return b, period_month_boundary(y, m + 1, d, tod)
  end
  if m == 1 then return period_month_boundary(y - 1, 12, d, tod), b end
  return period_month_boundary(y, m - 1, d, tod), b
end
