extension Gate {
    /// One pool compiled for the request path: the config's pool, its store key, and what the
    /// plans make of it. A route's charges point at these; built once per config.
    public final class Pool: Sendable {
        /// Its index in the config's pools.
        public let index: Int
        /// The pool as the config gives it (what the plans change).
        public let config: PoolConfig
        /// The store key of a global pool (`keyPrefix + id`, `KeySpace.bucket(pool:)`).
        public let key: String
        /// The pool as each plan sets it, in plan order; one, the config's own, without plans.
        public let byPlan: [PoolConfig]
        /// Whether some plan sets its cap: its states record their cap and are counted again when
        /// it changes (`SpendItem.tracksLimit`).
        public let tracksLimit: Bool
        /// The largest cap any plan (or, without plans, the pool itself) gives it; nil when none
        /// caps it (`SpendItem.largestMax`).
        public let largestMax: Int64?
        /// The longest recharge interval any plan (or the pool itself) gives it; nil when it
        /// never refills (`SpendItem.slowestIntervalMs`).
        public let slowestIntervalMs: Int64?

        /// Compiles pool `index` of `config`, its keys under `keys`.
        init(index: Int, config: GateConfig, keys: KeySpace) {
            let pool = config.pools[index]
            let byPlan = config.plans.isEmpty ? [pool] : config.plans.map { $0.apply(to: pool, index: index) }
            self.index = index
            self.config = pool
            self.key = keys.bucket(pool: pool.id)
            self.byPlan = byPlan
            self.tracksLimit = pool.scope == .subject && config.plans.contains { $0.overrides[index]?.capacity != nil }
            self.largestMax = byPlan.compactMap(\.maxCharges).max()
            self.slowestIntervalMs = byPlan.compactMap(\.intervalMs).max()
        }

        /// Whether each subject has its own bucket.
        public var perSubject: Bool { config.scope == .subject }

        /// The pool as plan `plan` sets it (the config's own when `plan` is none of the plans).
        public func under(plan: Int) -> PoolConfig {
            byPlan[byPlan.indices.contains(plan) ? plan : 0]
        }

        /// Its store key for `subject` (already in key form; ignored for a global pool).
        public func key(subject: String, keys: KeySpace) -> String {
            perSubject ? keys.bucket(pool: config.id, subject: subject) : key
        }

        /// The spend item at `cost` for `subject` under plan `plan`, with the period `anchor` of
        /// the subject's stored plan.
        public func item(cost: Int64, subject: String, plan: Int, anchor: Int64?, keys: KeySpace) -> SpendItem {
            let pool = under(plan: plan)
            let perSubject = self.perSubject
            return SpendItem(
                poolId: pool.id, key: perSubject ? keys.bucket(pool: config.id, subject: subject) : key, max: pool.maxCharges,
                intervalMs: pool.intervalMs, cost: cost, expires: perSubject, period: pool.period,
                anchor: perSubject && pool.period != nil ? anchor : nil, tracksLimit: tracksLimit, baseMax: config.maxCharges,
                largestMax: largestMax, slowestIntervalMs: slowestIntervalMs)
        }
    }
}
