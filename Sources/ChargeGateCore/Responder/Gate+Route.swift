extension Gate {
    /// One route compiled for the request path: what `Responder.authorize` reads, computed once
    /// per config.
    public struct Route: Sendable {
        /// Its index in the config's routes (and the router's answers).
        public let index: Int
        /// The normalised prefix.
        public let prefix: String
        /// The pools with their cost, in config order.
        public let charges: [RouteConfig.Charge]
        /// Whether the idempotency header counts here (`idempotent: true`).
        public let idempotent: Bool
        /// Whether any of its pools is per subject (its decisions differ by subject).
        public let hasSubjectPools: Bool
        /// Whether its 429s may be answered from a worker's memory. Not when a pool of the route
        /// never refills: its balance can run out meanwhile, and a 402 must win.
        public let denialsCacheable: Bool
        /// Its `RateLimit-Policy` field value per plan (one value when no plans are configured),
        /// for routes without period pools (theirs depends on the period: `Gate.policy`).
        public let policies: [String]
        /// Whether a pool of the route has a billing period.
        public let hasPeriods: Bool
        /// Whether it is in shadow mode (its own `mode`, else the top-level one).
        public let shadow: Bool
        /// The items' limits under each plan, in plan order (empty without plans, or when no
        /// pool of the route is per subject: no plan changes anything there).
        public let planLimits: [[PlanChoice.Limit]]
        /// `planLimits` with the plans' ids as the script reads them (`PlanChoice.table`).
        public let planTable: String
        /// What names the route itself in an idempotency fingerprint: its prefix and its methods
        /// (two routes may share a prefix with other methods).
        public let identity: String

        /// Compiles route `index` of a config whose pools are `planPools[plan]` under each plan
        /// (one list, the config's own pools, without plans).
        init(index: Int, config route: RouteConfig, planPools: [[PoolConfig]], mode: GateMode, plans: [PlanConfig]) {
            let pools = planPools[0]
            self.index = index
            self.prefix = route.prefix
            self.charges = route.charges
            self.idempotent = route.idempotent
            self.hasSubjectPools = route.charges.contains { pools[$0.poolIndex].scope == .subject }
            // A credits pool can run out meanwhile, and its 402 must win; a plan may make any
            // pool credits.
            self.denialsCacheable = !planPools.contains { pools in route.charges.contains { pools[$0.poolIndex].isCredits } }
            self.hasPeriods = route.charges.contains { pools[$0.poolIndex].period != nil }
            self.shadow = (route.mode ?? mode) == .shadow
            self.policies = planPools.map { pools in
                Gate.policy(
                    route.charges.map { charge in
                        let pool = pools[charge.poolIndex]
                        return SpendItem(
                            poolId: pool.id, key: "", max: pool.maxCharges, intervalMs: pool.intervalMs, cost: charge.cost, expires: false,
                            period: pool.period)
                    }, now: nil)
            }
            self.planLimits =
                !plans.isEmpty && hasSubjectPools
                ? planPools.map { pools in
                    route.charges.map { PlanChoice.Limit(max: pools[$0.poolIndex].maxCharges, intervalMs: pools[$0.poolIndex].intervalMs) }
                } : []
            self.planTable = planLimits.isEmpty ? "" : PlanChoice.table(ids: plans.map(\.id), limits: planLimits)
            self.identity = route.prefix + " " + (route.methods.map { $0.sorted().joined(separator: ",") } ?? "*")
        }

        /// The key of this route's remembered denials in a worker's deny cache: the route itself
        /// (never only its prefix: routes may share one with other methods and pools), and the
        /// subject when a pool of the route is per subject.
        public func denialKey(subject: String) -> String {
            hasSubjectPools ? String(index) + "\n" + subject : String(index)
        }

        /// 32 hex digits naming one request on this route: the route, the method, the URI and,
        /// when not empty, the query as the client sent it, each prefixed with its length in
        /// bytes, so that no field's text can move into another (a decoded URI may hold a
        /// newline; found by fuzz-params). A request without a query has the fingerprint it had
        /// before the query counted (three fields never read as four: records stay valid).
        public func fingerprint(method: String, uri: String, query: some StringProtocol) -> String {
            var text = ""
            func append(_ field: some StringProtocol) {
                text += String(field.utf8.count)
                text += ":"
                text.append(contentsOf: field)
            }
            append(identity)
            append(method)
            append(uri)
            if !query.isEmpty { append(query) }
            return String(SHA256.hex(text).prefix(32))
        }
    }
}
