/// One plan (docs/config.md, plans): a name a subject can be given, and the limits it sets on per-subject
/// pools. A pool the plan does not list keeps its own settings.
public struct PlanConfig: Sendable, Equatable {
    /// What a plan changes on one pool; nil fields keep the pool's own.
    public struct Override: Sendable, Equatable {
        /// The cap under this plan.
        public var capacity: PoolConfig.Capacity?
        /// The recharge interval under this plan (bucket pools only), in ms and as configured.
        public var interval: (ms: Int64, hours: Double)?

        /// Creates an override.
        public init(capacity: PoolConfig.Capacity? = nil, interval: (ms: Int64, hours: Double)? = nil) {
            self.capacity = capacity
            self.interval = interval
        }

        public static func == (a: Override, b: Override) -> Bool {
            a.capacity == b.capacity && a.interval?.ms == b.interval?.ms && a.interval?.hours == b.interval?.hours
        }
    }

    /// Plan identifier, `[A-Za-z0-9._-]{1,64}`.
    public var id: String
    /// Human-readable label; defaults to `id`.
    public var label: String
    /// The overrides, by index in `GateConfig.pools`.
    public var overrides: [Int: Override]
    /// Where this plan's subjects upgrade (Free points at Pro); nil: the top-level `upgradeUrl`.
    public var upgradeUrl: String?

    /// Creates a plan.
    public init(id: String, label: String? = nil, overrides: [Int: Override] = [:], upgradeUrl: String? = nil) {
        self.id = id
        self.label = label ?? id
        self.overrides = overrides
        self.upgradeUrl = upgradeUrl
    }

    /// `pool` (at `index` in the config) as this plan sets it.
    public func apply(to pool: PoolConfig, index: Int) -> PoolConfig {
        guard let override = overrides[index] else { return pool }
        var result = pool
        if let capacity = override.capacity { result.capacity = capacity }
        if let interval = override.interval {
            result.recharge = .every(intervalMs: interval.ms)
            result.rechargeIntervalHours = interval.hours
        }
        if result.capacity == .unlimited, pool.period == nil {
            // An unlimited pool only counts use; a period pool keeps its period for the count.
            result.recharge = .none
            result.rechargeIntervalHours = nil
        }
        return result
    }
}
