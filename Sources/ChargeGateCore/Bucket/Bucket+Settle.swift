extension Bucket {
    /// What a settlement writes to one pool's key: the state, its time to live, or the key's
    /// removal (a per-subject bucket full again).
    public struct Settle: Sendable, Equatable {
        /// The state after the settlement.
        public var state: BucketState
        /// The key's time to live in ms; nil: kept forever (or removed).
        public var ttlMs: Int64?
        /// Whether the key is removed instead (a missing key is a full pool).
        public var removesKey: Bool
    }

    /// The settlement of one pool stored as `state` (nil: missing) at `now`: `difference`
    /// charges spent on top (> 0: the pool may go below zero, it then owes them) or given back
    /// (< 0: never above the cap, as a top-off; an unlimited pool's use never below 0). A
    /// give-back on a period pool counts only while the period the hold was spent in
    /// (`periodStart`) is the current one: a closed period's use stands. nil: nothing to
    /// write. The Lua settle script's `settle_item` is its twin.
    public static func settle(_ item: SpendItem, state: BucketState?, difference: Int64, periodStart: Int64?, now: Int64) -> Settle? {
        guard difference != 0 else { return nil }
        let window = item.window(at: now)
        if difference < 0, let window, periodStart != window.start { return nil }
        let stored = rebased(state, for: item)
        let limit = item.limitToRecord
        guard let max = item.max else {
            let used = Swift.min(exactLimit - 1, Swift.max(0, Bucket.used(stored, window: window).saturatingAdding(difference)))
            let ttl = item.expires ? window.map { Swift.max(1, $0.end - now) } : nil
            return Settle(state: BucketState(current: used, lastUpdatedAt: now, limit: limit), ttlMs: ttl, removesKey: false)
        }
        let level = Bucket.level(stored, max: max, intervalMs: item.intervalMs, window: window, now: now)
        var after: BucketState
        let sum = Swift.max(1 - exactLimit, level.available.saturatingSubtracting(difference))
        if sum >= max {
            after = BucketState(current: max, lastUpdatedAt: now, limit: limit)
        } else if window != nil || (difference > 0 && level.isFull) {
            after = BucketState(current: sum, lastUpdatedAt: now, limit: limit)
        } else {
            after = BucketState(current: sum, lastUpdatedAt: level.lastUpdatedAt, limit: limit)
        }
        if item.expires, let window {
            return Settle(state: after, ttlMs: Swift.max(1, window.end - now), removesKey: false)
        }
        if item.expires, let interval = item.expiryIntervalMs {
            let ttl = until(span(max - after.current, interval), from: after.lastUpdatedAt, now: now)
            return Settle(state: after, ttlMs: ttl > 0 ? ttl : nil, removesKey: ttl <= 0)
        }
        return Settle(state: after, ttlMs: nil, removesKey: false)
    }
}
