extension Bucket {
    /// The result of deciding a spend on known states: the outcome and, when allowed, the
    /// states to write with their time to live (nil: keep forever).
    public struct SpendPlan: Sendable, Equatable {
        /// The decision.
        public var outcome: SpendOutcome
        /// New state per item, with its TTL in ms (nil: no expiry); empty unless allowed.
        public var writes: [(state: BucketState, ttlMs: Int64?)]

        public static func == (a: SpendPlan, b: SpendPlan) -> Bool {
            a.outcome == b.outcome && a.writes.map(\.state) == b.writes.map(\.state)
                && a.writes.map(\.ttlMs) == b.writes.map(\.ttlMs)
        }
    }

    /// Decides a spend of every item or none (docs/redis.md, "The bucket"). `states[i]` is item i's stored
    /// state (nil: missing). Denial: a pool that never refills wins (402); otherwise the
    /// pool with the longest wait (429). This is the reference for the Lua script: its `plan` is
    /// the twin.
    public static func plan(_ items: [SpendItem], states: [BucketState?], now: Int64) -> SpendPlan {
        var levels: [Level] = []
        levels.reserveCapacity(items.count)
        var windows: [BillingPeriod.Window?] = []
        windows.reserveCapacity(items.count)
        var credits: (item: Int, available: Int64, required: Int64)?
        var longest: (item: Int, wait: Int64)?
        for (i, item) in items.enumerated() {
            let state = rebased(states[i], for: item)
            let window = item.window(at: now)
            windows.append(window)
            guard let max = item.max else {
                levels.append(Level(available: used(state, window: window), lastUpdatedAt: now, isFull: false))
                continue
            }
            let level = Bucket.level(state, max: max, intervalMs: item.intervalMs, window: window, now: now)
            levels.append(level)
            guard level.available < item.cost else { continue }
            let wait = Bucket.wait(for: item.cost, level: level, max: max, intervalMs: item.intervalMs, window: window, now: now)
            if let wait {
                if wait > (longest?.wait ?? -1) { longest = (i, wait) }
            } else if credits == nil {
                credits = (i, Swift.max(0, level.available), item.cost)
            }
        }
        if let credits {
            return SpendPlan(
                outcome: .insufficientCredits(item: credits.item, available: credits.available, required: credits.required), writes: [])
        }
        if let longest {
            return SpendPlan(outcome: .outOfCharge(item: longest.item, retryAfterMs: longest.wait), writes: [])
        }
        var writes: [(state: BucketState, ttlMs: Int64?)] = []
        var results: [ItemResult] = []
        results.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            let spent = Bucket.spent(item, from: levels[i], window: windows[i], now: now)
            writes.append((spent.state, spent.ttlMs))
            results.append(ItemResult(remaining: spent.state.current, fullAt: spent.fullAt))
        }
        return SpendPlan(outcome: .allowed(results), writes: writes)
    }

    /// What a spend writes for one item: the state, its time to live and when the pool is full
    /// again.
    public struct Spent: Sendable, Equatable {
        /// The state written.
        public var state: BucketState
        /// Its time to live in ms; nil: kept forever.
        public var ttlMs: Int64?
        /// When the pool is full again (a period pool: the period's end); nil when it never
        /// refills or is unlimited.
        public var fullAt: Int64?
    }

    /// What spending `item.cost` from `level` (in `window`, for a period pool) writes: what an
    /// unlimited pool counted plus the cost, or the level less the cost, with the cap the item
    /// records. A per-subject key lives until the pool is full again under every plan (a
    /// missing key is a full pool), a period pool's until its period ends. The Lua script's
    /// `spent` is its twin.
    public static func spent(_ item: SpendItem, from level: Level, window: BillingPeriod.Window?, now: Int64) -> Spent {
        let limit = item.limitToRecord
        guard let max = item.max else {
            let ttl = item.expires ? window.map { Swift.max(1, $0.end - now) } : nil
            return Spent(
                state: BucketState(current: level.available + item.cost, lastUpdatedAt: now, limit: limit), ttlMs: ttl, fullAt: nil)
        }
        if let window {
            let after = BucketState(current: level.available - item.cost, lastUpdatedAt: now, limit: limit)
            return Spent(state: after, ttlMs: item.expires ? Swift.max(1, window.end - now) : nil, fullAt: window.end)
        }
        var after = Bucket.spend(item.cost, from: level, now: now)
        after.limit = limit
        var ttl: Int64?
        if item.expires, let interval = item.expiryIntervalMs {
            ttl = Swift.max(1, until(span(max - after.current, interval), from: after.lastUpdatedAt, now: now))
        }
        return Spent(state: after, ttlMs: ttl, fullAt: item.intervalMs.map { after.lastUpdatedAt + (max - after.current) * $0 })
    }

    /// Milliseconds until `cost` charges are available (0 when they are now): in `window` for a
    /// period pool, whose whole allowance comes back when the window ends (nil when the cost is
    /// above the cap); else as `wait(for:level:max:intervalMs:now:)`. The Lua script's
    /// `wait_in` is its twin.
    public static func wait(
        for cost: Int64, level: Level, max: Int64, intervalMs: Int64?, window: BillingPeriod.Window?, now: Int64
    ) -> Int64? {
        guard let window else { return wait(for: cost, level: level, max: max, intervalMs: intervalMs, now: now) }
        if level.available >= cost { return 0 }
        return cost <= max ? Swift.max(0, window.end - now) : nil
    }
}
