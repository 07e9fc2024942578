/// The token-bucket arithmetic of docs/redis.md ("The bucket"), in pure Swift: the memory store runs it, and the
/// Lua script in the Redis store is its twin (both are run against the same test tables).
public enum Bucket {
    /// A bucket brought forward to `now`: the charges it holds and when it last advanced.
    public struct Level: Sendable, Equatable {
        /// Charges available now.
        public var available: Int64
        /// `lastUpdatedAt` after crediting the charges earned.
        public var lastUpdatedAt: Int64
        /// Whether the pool is at its cap.
        public var isFull: Bool
    }

    /// Brings `state` (nil: missing key, a full pool) forward to `now`.
    public static func level(_ state: BucketState?, max: Int64, intervalMs: Int64?, now: Int64) -> Level {
        guard let state else { return Level(available: max, lastUpdatedAt: now, isFull: true) }
        var last = state.lastUpdatedAt
        var available = state.current
        if let interval = intervalMs, interval > 0 {
            let elapsed = Swift.max(0, now &- last)
            let earned = elapsed / interval
            if earned > 0 {
                available = available.addingReportingOverflow(earned).overflow ? max : available + earned
                last += earned * interval
            }
        }
        if available >= max {
            return Level(available: max, lastUpdatedAt: last, isFull: true)
        }
        return Level(available: Swift.max(0, available), lastUpdatedAt: last, isFull: false)
    }

    /// Milliseconds until `cost` charges are available (0 when they are now); nil when they
    /// never will be (a pool that does not refill, or a cost above the cap).
    public static func wait(for cost: Int64, level: Level, max: Int64, intervalMs: Int64?, now: Int64) -> Int64? {
        if level.available >= cost { return 0 }
        guard let interval = intervalMs, interval > 0, cost <= max else { return nil }
        let missing = cost - level.available
        return Swift.max(0, level.lastUpdatedAt + missing * interval - now)
    }

    /// The state written after spending `cost` from `level` (which must hold at least `cost`).
    public static func spend(_ cost: Int64, from level: Level, now: Int64) -> BucketState {
        BucketState(current: level.available - cost, lastUpdatedAt: level.isFull ? now : level.lastUpdatedAt)
    }

    /// The level a spend left behind, from what the store answered: `remaining` charges, full
    /// again at `fullAt` (so the last step was `fullAt - (max - remaining) * interval`).
    /// `remaining` is held within 0...max first (a pool at or past its cap is full: its last
    /// step does not matter), so a store's answer cannot overflow the product, which the
    /// config bounds (`max × interval` ≤ 2^53).
    public static func level(remaining: Int64, fullAt: Int64, max: Int64, intervalMs: Int64) -> Level {
        let held = Swift.min(Swift.max(0, remaining), max)
        return Level(available: remaining, lastUpdatedAt: fullAt.saturatingSubtracting((max - held) * intervalMs), isFull: remaining >= max)
    }

    /// Epoch ms at which the next charge arrives, nil when full or never: the one place both the
    /// `RateLimit` header (`t`) and the usage answer (`nextRechargeAt`) take it from.
    public static func nextRechargeAt(_ level: Level, intervalMs: Int64?) -> Int64? {
        guard !level.isFull, let interval = intervalMs, interval > 0 else { return nil }
        return level.lastUpdatedAt + interval
    }

    /// Epoch ms at which the pool is full again, nil when full or never.
    public static func fullAt(_ level: Level, max: Int64, intervalMs: Int64?) -> Int64? {
        guard !level.isFull, let interval = intervalMs, interval > 0 else { return nil }
        return level.lastUpdatedAt + (max - level.available) * interval
    }

    /// The state after a top-off: `amount` nil fills the pool; otherwise adds, capped at `max`.
    public static func topOff(_ level: Level, amount: Int64?, max: Int64, now: Int64) -> BucketState {
        guard let amount else { return BucketState(current: max, lastUpdatedAt: now) }
        let sum = level.available.addingReportingOverflow(amount)
        if sum.overflow || sum.partialValue >= max { return BucketState(current: max, lastUpdatedAt: now) }
        return BucketState(current: sum.partialValue, lastUpdatedAt: level.lastUpdatedAt)
    }
}
