extension Gate {
    /// One route compiled for the request path: what `Responder.decide` reads, computed once
    /// per config. A class: the router's answer and a decision hold it by reference.
    public final class Route: Sendable {
        /// Its index in the config's routes (and the router's answers).
        public let index: Int
        /// The normalised prefix.
        public let prefix: String
        /// The pools it spends from, compiled, with their cost, in config order.
        public let charges: [Charge]
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
        /// The plan lookup a spend on this route makes, but for the subject's record key and the
        /// fallback plan (`Gate.planChoice` fills them in): every plan's limits for the route's
        /// items and their script form, built once. nil without plans, or when no pool of the
        /// route is per subject: no plan changes anything there.
        public let planChoice: PlanChoice?
        /// What names the route itself in an idempotency fingerprint: its prefix and its methods
        /// (two routes may share a prefix with other methods).
        public let identity: String
        /// Its `settle:`; nil when what the auth request spends is final.
        public let settle: SettlePolicy?
        /// Per pool, whether a settlement charges it the amount (its cost is the route's, the
        /// hold) rather than its own cost per call.
        public let metered: [Bool]

        /// One pool a route spends from, and how much.
        public struct Charge: Sendable {
            /// The pool, compiled.
            public let pool: Pool
            /// Charges spent per request (>= 1).
            public let cost: Int64
        }

        /// Compiles route `index` of config `gate`, whose pools are `pools`.
        init(index: Int, config route: RouteConfig, pools: [Pool], gate: GateConfig) {
            let charges = route.charges.map { Charge(pool: pools[$0.poolIndex], cost: $0.cost) }
            let plans = max(1, gate.plans.count)
            self.index = index
            self.prefix = route.prefix
            self.charges = charges
            self.idempotent = route.idempotent
            self.hasSubjectPools = charges.contains { $0.pool.perSubject }
            // A credits pool can run out meanwhile, and its 402 must win; a plan may make any
            // pool credits.
            self.denialsCacheable = !charges.contains { $0.pool.byPlan.contains(where: \.isCredits) }
            self.hasPeriods = charges.contains { $0.pool.under(plan: 0).period != nil }
            self.shadow = (route.mode ?? gate.mode) == .shadow
            self.policies = (0..<plans).map { plan in
                Gate.policy(
                    charges.map { charge in
                        let pool = charge.pool.under(plan: plan)
                        return SpendItem(
                            poolId: pool.id, key: "", max: pool.maxCharges, intervalMs: pool.intervalMs, cost: charge.cost, expires: false,
                            period: pool.period)
                    }, now: nil)
            }
            if !gate.plans.isEmpty, hasSubjectPools, let defaultPlan = gate.defaultPlan {
                let limits = (0..<plans).map { plan in
                    charges.map { charge in
                        let pool = charge.pool.under(plan: plan)
                        return PlanChoice.Limit(max: pool.maxCharges, intervalMs: pool.intervalMs)
                    }
                }
                self.planChoice = PlanChoice(
                    recordKey: "", ids: gate.plans.map(\.id), limits: limits, fallback: defaultPlan, defaultPlan: defaultPlan)
            } else {
                self.planChoice = nil
            }
            self.identity = route.prefix + " " + (route.methods.map { $0.sorted().joined(separator: ",") } ?? "*")
            self.settle = route.settle
            self.metered = route.charges.map { $0.cost == route.cost }
        }

        /// Its `RateLimit-Policy` under plan `plan` as compiled (the config's own when `plan` is
        /// none of the plans); a route with a period pool has its own per period (`Gate.policy`).
        public func policy(plan: Int) -> String {
            policies[policies.indices.contains(plan) ? plan : 0]
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
