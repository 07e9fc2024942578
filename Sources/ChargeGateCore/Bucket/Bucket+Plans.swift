extension Bucket {
    /// How `BucketState.limit` records an unlimited cap.
    public static let unlimitedMark: Int64 = -1

    /// `state` counted against `item`'s cap when the state recorded another (a change of
    /// plan): what was used stays used, whatever sequence of plans comes. used = recorded cap −
    /// `current` (a count, under an unlimited cap), at most `item.largestMax`; then `current` =
    /// new cap − used, below 0 when the new cap is below what was used: the pool owes the
    /// difference, and refills (at the new plan's interval) pay it back before anything can be
    /// spent, so a later return to a larger cap still sees every use. Under an unlimited cap,
    /// `current` is the count (never below 0). `lastUpdatedAt` is kept. A state without a
    /// recorded cap counts against the pool's own (`baseMax`). Unchanged when the item does
    /// not track its cap. The Lua script's `rebased` is its twin.
    public static func rebased(_ state: BucketState?, for item: SpendItem) -> BucketState? {
        guard item.tracksLimit, var state else { return state }
        let from = state.limit ?? item.baseMax ?? unlimitedMark
        let to = item.max ?? unlimitedMark
        guard from != to else { return state }
        // `current` holds what is left under a cap, and what was used under none.
        var used = from == unlimitedMark ? state.current : from - state.current
        if let ceiling = item.largestMax { used = Swift.min(used, ceiling) }
        state.current = to == unlimitedMark ? Swift.max(0, used) : to - used
        state.limit = to
        return state
    }

    /// The item a top-off counts in: a state that recorded a cap is topped off in that cap
    /// (the plan it was last spent under), so that the amount adds exactly that many charges
    /// whatever plan reads the pool next. An admin's top-off cannot know the plan nginx names
    /// for the subject; counting in another cap would first rebase what was used into it.
    /// The Lua script's `top_off_item` is its twin.
    public static func topOffItem(_ item: SpendItem, state: BucketState?) -> SpendItem {
        guard item.tracksLimit, let state else { return item }
        let recorded = state.limit ?? item.baseMax ?? unlimitedMark
        guard recorded != unlimitedMark else { return item }
        var counted = item
        counted.max = recorded
        return counted
    }

    /// A period pool brought to `now` in `window`: a state written before the window began
    /// (or none) is a full pool; nothing comes back within the window (an owed balance stays
    /// owed until the window ends). The script's `period_level`.
    public static func level(_ state: BucketState?, max: Int64, window: BillingPeriod.Window) -> Level {
        guard let state, state.lastUpdatedAt >= window.start else {
            return Level(available: max, lastUpdatedAt: window.start, isFull: true)
        }
        if state.current >= max { return Level(available: max, lastUpdatedAt: state.lastUpdatedAt, isFull: true) }
        return Level(available: state.current, lastUpdatedAt: state.lastUpdatedAt, isFull: false)
    }

    /// `state` brought to `now` under `max`: within `window` for a period pool (nil: by its
    /// recharge interval, as a bucket). The script's `level_in`.
    public static func level(_ state: BucketState?, max: Int64, intervalMs: Int64?, window: BillingPeriod.Window?, now: Int64) -> Level {
        guard let window else { return level(state, max: max, intervalMs: intervalMs, now: now) }
        return level(state, max: max, window: window)
    }

    /// What an unlimited pool has counted: every use, or this period's for a period pool. The
    /// script's `used`.
    public static func used(_ state: BucketState?, window: BillingPeriod.Window?) -> Int64 {
        guard let state else { return 0 }
        if let window, state.lastUpdatedAt < window.start { return 0 }
        return Swift.max(0, state.current)
    }

    /// One pool as a reader sees it at `now` (usage JSON, the page, `status`, RateLimit): the
    /// stored state counted under `item`'s limits. An owed balance (below zero: a settlement
    /// charged past the hold, or a plan's cap lowered below what was used) reads as 0
    /// available (all of the cap used) and the charges owed, with the times at which it is paid
    /// back.
    public static func reading(_ stored: BucketState?, item: SpendItem, now: Int64) -> Reading {
        let state = rebased(stored, for: item)
        let window = item.window(at: now)
        guard let max = item.max else {
            return Reading(available: nil, used: used(state, window: window), max: nil, nextRechargeAt: nil, fullAt: nil, window: window)
        }
        if let window {
            let level = level(state, max: max, window: window)
            let resets = level.isFull ? nil : window.end
            let available = Swift.max(0, level.available)
            return Reading(
                available: available, used: max - available, max: max, nextRechargeAt: resets, fullAt: resets, window: window,
                owed: owed(level))
        }
        let level = level(state, max: max, intervalMs: item.intervalMs, now: now)
        let available = Swift.max(0, level.available)
        return Reading(
            available: available, used: max - available, max: max,
            nextRechargeAt: nextRechargeAt(level, intervalMs: item.intervalMs),
            fullAt: fullAt(level, max: max, intervalMs: item.intervalMs), window: nil, owed: owed(level))
    }

    /// The charges `level` is below zero by (0 when it is not).
    static func owed(_ level: Level) -> Int64 {
        level.available < 0 ? Int64(0).saturatingSubtracting(level.available) : 0
    }

    /// A pool's state for readers.
    public struct Reading: Sendable, Equatable {
        /// Charges available now; nil for an unlimited pool.
        public var available: Int64?
        /// Charges used: `max - available`, or what an unlimited pool counted.
        public var used: Int64
        /// The cap; nil: unlimited.
        public var max: Int64?
        /// When the next charge comes back (a period pool: the period's end); nil when full or never.
        public var nextRechargeAt: Int64?
        /// When the pool is full again; nil when full or never.
        public var fullAt: Int64?
        /// The current period of a period pool.
        public var window: BillingPeriod.Window?
        /// Charges owed: how far below zero the pool is (0 when it is not, and for an
        /// unlimited pool). `available` is 0 then.
        public var owed: Int64 = 0
    }
}
