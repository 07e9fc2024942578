/// The one Lua script that runs the bucket arithmetic inside Redis: the twin of `Bucket.plan`
/// (spend), `Bucket.topOff` (top-off) and, for reads, the same state decoder (peek).
///
/// Layout (`n` = number of bucket keys; every number is a decimal integer string):
///
/// `op = "spend"`
/// - `KEYS[1...n]`: the bucket keys, in route order; then, when `ARGV[3] == "1"`, the
///   idempotency record and the subject's record counter; then the events stream when
///   `ARGV[5] > 0`.
/// - `ARGV[1]` `"spend"`, `ARGV[2]` n, `ARGV[3]` idempotency flag (`"1"`/`"0"`), `ARGV[4]`
///   idempotency TTL ms, `ARGV[5]` events MAXLEN (`"0"`: no event), `ARGV[6...10]` the event's
///   subject, route, method, uri, idempotency key, `ARGV[11...13]` the request's fingerprint,
///   the free repeats allowed, the records one subject may create per TTL window (`""` without
///   a record); then five per item i (at `13 + 5(i-1)`): pool id, max (`""`: unlimited),
///   interval ms (`""`: never refills), cost, expires (`"1"`/`"0"`).
/// - The idempotency record is `FINGERPRINT:REPEATS` (`IdempotencyRecord`): another
///   fingerprint answers `reused`; fewer repeats than allowed answers `repeated` and counts one
///   (the TTL kept); otherwise the spend is decided afresh. A fresh key that is spent is
///   recorded with 0 repeats when the counter (`INCR`, expiring with the first record of the
///   window) is within the bound.
/// - Returns `{"allowed", now, remaining..., fullAt...}` (fullAt `-1`: never refills, or
///   unlimited), `{"repeated", now}`, `{"reused", now}`,
///   `{"out", item0, retryAfterMs}` or `{"credits", item0, available, required}` (item0 is the
///   0-based item index).
///
/// `op = "topoff"`: `KEYS[1]` the bucket; `ARGV[2]` max (`""`: unlimited, treated as 0),
/// `ARGV[3]` interval ms (`""`: none), `ARGV[4]` expires, `ARGV[5]` amount (`""`: fill).
/// Returns `{now, current, lastUpdatedAt}`.
///
/// `op = "peek"` (writes nothing): `KEYS` the buckets. Returns `{now, state...}` where a state
/// is `{current, lastUpdatedAt}` or nil for a missing key.
///
/// A key whose value is not `{"current":N,"lastUpdatedAt":MS}` with integers (|N| < 2^53)
/// makes the script answer the error `CHARGEGATE corrupt bucket state at key K` without writing.
/// The clock is Redis `TIME`.
public enum ChargeScript {
    /// The Lua source.
    public static let source: String = #"""
        -- ChargeGate bucket script: the twin of Bucket.plan / Bucket.topOff (Swift).
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
        """#

    /// The SHA-1 of `source` in lowercase hex: the name `EVALSHA` knows it by.
    public static let sha1: String = SHA1.hex(Array(source.utf8))
}

/// A minimal SHA-1 (FIPS 180-4), used only to name the script for `EVALSHA`.
enum SHA1 {
    /// Lowercase hex digest of `message`.
    static func hex(_ message: [UInt8]) -> String {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var data = message
        let bitLength = UInt64(message.count) &* 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) {
            data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let b = chunk + i * 4
                w[i] = UInt32(data[b]) << 24 | UInt32(data[b + 1]) << 16 | UInt32(data[b + 2]) << 8 | UInt32(data[b + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4]
            for i in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch i {
                case 0..<20: f = (b & c) | (~b & d); k = 0x5A82_7999
                case 20..<40: f = b ^ c ^ d; k = 0x6ED9_EBA1
                case 40..<60: f = (b & c) | (b & d) | (c & d); k = 0x8F1B_BCDC
                default: f = b ^ c ^ d; k = 0xCA62_C1D6
                }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = b << 30 | b >> 2
                b = a
                a = temp
            }
            h[0] = h[0] &+ a
            h[1] = h[1] &+ b
            h[2] = h[2] &+ c
            h[3] = h[3] &+ d
            h[4] = h[4] &+ e
        }
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(40)
        for word in h {
            for shift in stride(from: 28, through: 0, by: -4) {
                out.append(digits[Int((word >> UInt32(shift)) & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
