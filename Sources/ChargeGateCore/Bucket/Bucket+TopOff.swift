extension Bucket {
    /// What a top-off does to one pool's key: the state it answers, and whether that state is
    /// written (with its time to live) or the key removed.
    public struct TopOff: Sendable, Equatable {
        /// The state after the top-off (answered either way).
        public var state: BucketState
        /// The key's time to live in ms; nil: kept forever (or removed).
        public var ttlMs: Int64?
        /// Whether the key is removed instead: a per-subject bucket full again (a missing key
        /// is a full pool).
        public var removesKey: Bool
    }

    /// The whole top-off of `item`'s pool stored as `state` (nil: missing) at `now`: counted in
    /// the cap the state recorded (`topOffItem`; an unlimited pool's cap counts as 0), rebased
    /// into it, brought forward (within the period for a period pool), `amount` added (nil:
    /// filled; `topOff(_:amount:max:now:)`), the cap recorded when the item tracks it. A
    /// per-subject period pool's key lives until its period ends; a per-subject bucket's
    /// until it is full again under every plan, removed when it already is. The memory store
    /// runs it; the Lua script's `top_off` is its twin.
    public static func topOff(_ item: SpendItem, state: BucketState?, amount: Int64?, now: Int64) -> TopOff {
        let item = topOffItem(item, state: state)
        let max = item.max ?? 0
        let window = item.window(at: now)
        let current = level(rebased(state, for: item), max: max, intervalMs: item.intervalMs, window: window, now: now)
        var after = topOff(current, amount: amount, max: max, now: now)
        after.limit = item.limitToRecord
        if item.expires, let window {
            return TopOff(state: after, ttlMs: Swift.max(1, window.end - now), removesKey: false)
        }
        if item.expires, let interval = item.expiryIntervalMs {
            let ttl = until(span(max - after.current, interval), from: after.lastUpdatedAt, now: now)
            return TopOff(state: after, ttlMs: ttl > 0 ? ttl : nil, removesKey: ttl <= 0)
        }
        return TopOff(state: after, ttlMs: nil, removesKey: false)
    }
}
