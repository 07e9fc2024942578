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
        /// Its `RateLimit-Policy` field value (IETF httpapi ratelimit headers): one
        /// `"POOL";q=maxCharges;w=SECONDS` item per limited pool, `w` being the time to refill
        /// fully (no `w` for a pool that never refills); unlimited pools are not listed.
        public let rateLimitPolicy: String
        /// What names the route itself in an idempotency fingerprint: its prefix and its methods
        /// (two routes may share a prefix with other methods).
        public let identity: String

        /// Compiles route `index` of a config with `pools`.
        init(index: Int, config route: RouteConfig, pools: [PoolConfig]) {
            self.index = index
            self.prefix = route.prefix
            self.charges = route.charges
            self.idempotent = route.idempotent
            self.hasSubjectPools = route.charges.contains { pools[$0.poolIndex].scope == .subject }
            self.denialsCacheable = !route.charges.contains { charge in
                let pool = pools[charge.poolIndex]
                return pool.maxCharges != nil && pool.intervalMs == nil
            }
            self.rateLimitPolicy = route.charges.compactMap { charge -> String? in
                let pool = pools[charge.poolIndex]
                guard let max = pool.maxCharges else { return nil }
                guard let interval = pool.intervalMs else { return "\"\(pool.id)\";q=\(max)" }
                return "\"\(pool.id)\";q=\(max);w=\(Gate.seconds(max * interval))"
            }.joined(separator: ", ")
            self.identity = route.prefix + " " + (route.methods.map { $0.sorted().joined(separator: ",") } ?? "*")
        }

        /// The key of this route's remembered denials in a worker's deny cache: the route itself
        /// (never only its prefix: routes may share one with other methods and pools), and the
        /// subject when a pool of the route is per subject.
        public func denialKey(subject: String) -> String {
            hasSubjectPools ? String(index) + "\n" + subject : String(index)
        }

        /// 32 hex digits naming one request on this route: the route, the method and the URI,
        /// each prefixed with its length in bytes, so that no field's text can move into
        /// another (a decoded URI may hold a newline; found by fuzz-params).
        public func fingerprint(method: String, uri: String) -> String {
            var text = ""
            for field in [identity, method, uri] {
                text += String(field.utf8.count)
                text += ":"
                text += field
            }
            return String(SHA256.hex(text).prefix(32))
        }
    }
}
