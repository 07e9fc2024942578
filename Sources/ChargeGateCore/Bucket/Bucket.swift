/// The token-bucket arithmetic of docs/redis.md ("The bucket"), in pure Swift: the memory store runs it, and the
/// Lua script in the Redis store is its twin (both are run against the same test tables).
public enum Bucket {
    /// A bucket brought forward to `now`: the charges it holds and when it last advanced.
    public struct Level: Sendable, Equatable {
        /// Charges available now; below 0 when the pool owes charges (a plan's cap was lowered
        /// below what was used): refills pay that back before any can be spent. Readers show
        /// `Swift.max(0, available)`.
        public var available: Int64
        /// `lastUpdatedAt` after crediting the charges earned.
        public var lastUpdatedAt: Int64
        /// Whether the pool is at its cap.
        public var isFull: Bool
    }

    /// 2^53: the integers a Lua double holds exactly. Waits and times to live that an owed
    /// balance could push past it stop there (about 285,000 years), in the script as here.
    public static let exactLimit: Int64 = 1 << 53

    /// `count` (≥ 0) intervals of `intervalMs` in ms, at most `exactLimit`: the script's `span`.
    public static func span(_ count: Int64, _ intervalMs: Int64) -> Int64 {
        let product = count.multipliedReportingOverflow(by: intervalMs)
        return product.overflow ? exactLimit : Swift.min(product.partialValue, exactLimit)
    }

    /// Brings `state` (nil: missing key, a full pool) forward to `now`. A negative `current`
    /// (owed: see `rebased`) stays negative until refills pay it back. The script's `level`.
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
        return Level(available: available, lastUpdatedAt: last, isFull: false)
    }

    /// Milliseconds until `cost` charges are available (0 when they are now), owed charges
    /// paid back first; nil when they never will be (a pool that does not refill, or a cost
    /// above the cap). At most `exactLimit`. The script's `wait_for`.
    public static func wait(for cost: Int64, level: Level, max: Int64, intervalMs: Int64?, now: Int64) -> Int64? {
        if level.available >= cost { return 0 }
        guard let interval = intervalMs, interval > 0, cost <= max else { return nil }
        return until(span(cost - level.available, interval), from: level.lastUpdatedAt, now: now)
    }

    /// `spanMs` after `start`, counted from `now`, within 0 ... `exactLimit`: the script's
    /// `span - (now - start)`.
    static func until(_ spanMs: Int64, from start: Int64, now: Int64) -> Int64 {
        Swift.min(exactLimit, Swift.max(0, spanMs - (now - start)))
    }

    /// The state written after spending `cost` from `level` (which must hold at least `cost`):
    /// the script's `spend`.
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

    /// Epoch ms at which the next charge arrives (the next one that can be spent, when the pool
    /// owes charges), nil when full or never: the one place both the `RateLimit` header (`t`)
    /// and the usage answer (`nextRechargeAt`) take it from.
    public static func nextRechargeAt(_ level: Level, intervalMs: Int64?) -> Int64? {
        guard !level.isFull, let interval = intervalMs, interval > 0 else { return nil }
        // Saturating: a level read back from a store's answer may sit at the ends of Int64.
        return level.lastUpdatedAt.saturatingAdding(span(Int64(1).saturatingSubtracting(Swift.min(0, level.available)), interval))
    }

    /// Epoch ms at which the pool is full again (owed charges paid back first), nil when full
    /// or never.
    public static func fullAt(_ level: Level, max: Int64, intervalMs: Int64?) -> Int64? {
        guard !level.isFull, let interval = intervalMs, interval > 0 else { return nil }
        return level.lastUpdatedAt.saturatingAdding(span(max.saturatingSubtracting(level.available), interval))
    }

    /// The state after a top-off: `amount` nil fills the pool; otherwise adds, capped at `max`,
    /// to what is available. An owed balance (a settlement charged past the hold: a top-off
    /// counts in the cap the state recorded, so a plan's lowered cap owes nothing here) is paid
    /// back first: metered usage is never written off. The script's `top_off_level`.
    public static func topOff(_ level: Level, amount: Int64?, max: Int64, now: Int64) -> BucketState {
        guard let amount else { return BucketState(current: max, lastUpdatedAt: now) }
        let sum = level.available.addingReportingOverflow(amount)
        if sum.overflow || sum.partialValue >= max { return BucketState(current: max, lastUpdatedAt: now) }
        return BucketState(current: sum.partialValue, lastUpdatedAt: level.lastUpdatedAt)
    }
}
