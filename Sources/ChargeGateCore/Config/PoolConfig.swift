/// One charge pool: a token bucket, a credit balance or a meter.
public struct PoolConfig: Sendable, Equatable {
    /// How many charges a pool holds at most.
    public enum Capacity: Sendable, Equatable {
        /// At most this many charges (a whole number >= 1).
        case limited(Int64)
        /// Never denies; use is only counted and recorded (a meter).
        case unlimited
    }

    /// How charges come back.
    public enum Recharge: Sendable, Equatable {
        /// One charge every `intervalMs` milliseconds, passively.
        case every(intervalMs: Int64)
        /// Never by itself: only a top-off adds charges (prepaid credits).
        case none
        /// The whole allowance at each start of a billing period, nothing in between.
        case period(BillingPeriod)
    }

    /// Whose bucket a request spends from.
    public enum Scope: String, Sendable, Equatable {
        /// One bucket for everybody.
        case global
        /// One bucket per subject (client address, API key, user id).
        case subject
    }

    /// Pool identifier, `[A-Za-z0-9._-]{1,64}`.
    public var id: String
    /// The cap.
    public var capacity: Capacity
    /// The refill rule.
    public var recharge: Recharge
    /// The interval as configured, in hours (kept for the usage JSON).
    public var rechargeIntervalHours: Double?
    /// Human-readable label; defaults to `id`.
    public var label: String
    /// Dashboard section; defaults to "".
    public var group: String
    /// Global or per subject.
    public var scope: Scope

    /// Creates a pool.
    public init(
        id: String, capacity: Capacity, recharge: Recharge, rechargeIntervalHours: Double? = nil,
        label: String? = nil, group: String = "", scope: Scope = .global
    ) {
        self.id = id
        self.capacity = capacity
        self.recharge = recharge
        self.rechargeIntervalHours = rechargeIntervalHours
        self.label = label ?? id
        self.group = group
        self.scope = scope
    }

    /// The cap as a number, or nil for an unlimited pool.
    public var maxCharges: Int64? {
        if case .limited(let max) = capacity { return max }
        return nil
    }

    /// The recharge interval in milliseconds, or nil when the pool has none (credits, a
    /// period pool, an unlimited pool).
    public var intervalMs: Int64? {
        if case .every(let ms) = recharge { return ms }
        return nil
    }

    /// The billing period, or nil for a pool that is not reset by period.
    public var period: BillingPeriod? {
        if case .period(let period) = recharge { return period }
        return nil
    }

    /// Whether the pool is prepaid credits: limited, and only a top-off adds charges (a
    /// denial is a 402, waiting would not help).
    public var isCredits: Bool {
        maxCharges != nil && recharge == .none
    }
}
