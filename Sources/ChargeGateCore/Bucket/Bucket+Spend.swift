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
    /// pool with the longest wait (429). This is the reference for the Lua script.
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
            var wait: Int64?
            if let window {
                // The whole allowance comes back when the period ends.
                if item.cost <= max { wait = Swift.max(0, window.end - now) }
            } else {
                wait = Bucket.wait(for: item.cost, level: level, max: max, intervalMs: item.intervalMs, now: now)
            }
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
            let limit = item.tracksLimit ? item.max ?? unlimitedMark : nil
            guard let max = item.max else {
                let used = levels[i].available + item.cost
                let ttl = item.expires ? windows[i].map { Swift.max(1, $0.end - now) } : nil
                writes.append((BucketState(current: used, lastUpdatedAt: now, limit: limit), ttl))
                results.append(ItemResult(remaining: used, fullAt: nil))
                continue
            }
            if let window = windows[i] {
                let after = BucketState(current: levels[i].available - item.cost, lastUpdatedAt: now, limit: limit)
                writes.append((after, item.expires ? Swift.max(1, window.end - now) : nil))
                results.append(ItemResult(remaining: after.current, fullAt: window.end))
                continue
            }
            var after = Bucket.spend(item.cost, from: levels[i], now: now)
            after.limit = limit
            var ttl: Int64?
            if item.expires, let interval = item.expiryIntervalMs {
                // Until full again under every plan: a missing key is a full pool.
                ttl = Swift.max(1, until(span(max - after.current, interval), from: after.lastUpdatedAt, now: now))
            }
            writes.append((after, ttl))
            results.append(
                ItemResult(remaining: after.current, fullAt: item.intervalMs.map { after.lastUpdatedAt + (max - after.current) * $0 }))
        }
        return SpendPlan(outcome: .allowed(results), writes: writes)
    }
}
