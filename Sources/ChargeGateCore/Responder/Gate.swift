/// A validated config compiled for the request path: the routing trie, every route with what
/// a decision needs, and the key space. Immutable, so worker threads share it freely; a reload
/// builds a new one.
public final class Gate: Sendable {
    /// The config it was built from.
    public let config: GateConfig
    /// The route matcher; its answers index `routes`.
    public let router: Router
    /// Every store key, built in one place.
    public let keys: KeySpace
    /// The routes, compiled, in config order.
    public let routes: [Route]
    /// `keyPrefix + poolId`, per pool.
    public let poolKeys: [String]
    /// The event stream key, or nil when the event log is off.
    public let eventsKey: String?
    /// The streams the event log is read from: the one written, then the one earlier versions
    /// wrote (`KeySpace.legacyEvents`); empty when the event log is off.
    public let eventStreams: [String]
    /// The CGI param carrying the idempotency header.
    public let idempotencyParam: String
    /// The pools as each plan sets them, `planPools[plan][pool]`; one list, the config's own
    /// pools, without plans.
    public let planPools: [[PoolConfig]]
    /// Per pool: whether some plan sets it (its states record their cap, SPEC §7).
    public let tracksLimit: [Bool]
    /// Per pool: the largest cap any plan (or, without plans, the pool itself) gives it; nil
    /// when none caps it (`SpendItem.largestMax`).
    public let largestMax: [Int64?]
    /// Per pool: the longest recharge interval any plan (or the pool itself) gives it; nil
    /// when it never refills (`SpendItem.slowestIntervalMs`).
    public let slowestIntervalMs: [Int64?]
    /// Every plan's id, in config order.
    public let planIDs: [String]
    /// Per plan, what a deny-cache key of a request nginx names that plan for ends with.
    public let planCacheSuffixes: [String]

    /// Compiles `config`.
    public init(config: GateConfig) {
        self.config = config
        self.router = Router(routes: config.routes)
        let keys = KeySpace(prefix: config.keyPrefix)
        self.keys = keys
        let planPools =
            config.plans.isEmpty
            ? [config.pools]
            : config.plans.map { plan in config.pools.enumerated().map { plan.apply(to: $0.element, index: $0.offset) } }
        self.planPools = planPools
        self.tracksLimit = config.pools.indices.map { index in
            config.pools[index].scope == .subject && config.plans.contains { $0.overrides[index]?.capacity != nil }
        }
        self.largestMax = config.pools.indices.map { index in planPools.compactMap { $0[index].maxCharges }.max() }
        self.slowestIntervalMs = config.pools.indices.map { index in planPools.compactMap { $0[index].intervalMs }.max() }
        self.planIDs = config.plans.map(\.id)
        self.planCacheSuffixes = config.plans.indices.map { "\n" + String($0) }
        self.routes = config.routes.enumerated().map {
            Route(index: $0.offset, config: $0.element, planPools: planPools, mode: config.mode, plans: config.plans)
        }
        self.poolKeys = config.pools.map { keys.bucket(pool: $0.id) }
        self.eventsKey = config.eventsMaxLen > 0 ? keys.events : nil
        let legacy = keys.legacyEvents(poolIds: config.pools.map(\.id))
        self.eventStreams = config.eventsMaxLen > 0 ? [keys.events] + (legacy.map { [$0] } ?? []) : []
        self.idempotencyParam = config.idempotencyParam
    }

    /// The route a request for `path` with `method` is charged on, nil when none matches.
    public func route(path: String, method: String) -> Route? {
        router.match(path: path, method: method).map { routes[$0] }
    }

    /// The store key of pool `index` for `subject` (already in key form; ignored for global pools).
    public func key(pool index: Int, subject: String) -> String {
        let pool = config.pools[index]
        return pool.scope == .subject ? keys.bucket(pool: pool.id, subject: subject) : poolKeys[index]
    }

    /// Pool `index` as plan `plan` sets it (the config's own without plans).
    public func pool(_ index: Int, plan: Int) -> PoolConfig {
        planPools[planPools.indices.contains(plan) ? plan : 0][index]
    }

    /// The spend item for pool `index` at `cost` for `subject` under plan `plan` (0 without
    /// plans), with the period `anchor` of the subject's stored plan.
    public func item(pool index: Int, cost: Int64, subject: String, plan: Int = 0, anchor: Int64? = nil) -> SpendItem {
        let pool = self.pool(index, plan: plan)
        let perSubject = pool.scope == .subject
        return SpendItem(
            poolId: pool.id, key: key(pool: index, subject: subject), max: pool.maxCharges,
            intervalMs: pool.intervalMs, cost: cost, expires: perSubject, period: pool.period,
            anchor: perSubject && pool.period != nil ? anchor : nil, tracksLimit: tracksLimit[index],
            baseMax: config.pools[index].maxCharges, largestMax: largestMax[index], slowestIntervalMs: slowestIntervalMs[index])
    }

    /// What a request on `route` by `subject` spends under plan `plan`: one item per pool of the route.
    public func items(_ route: Route, subject: String, plan: Int = 0) -> [SpendItem] {
        route.charges.map { item(pool: $0.poolIndex, cost: $0.cost, subject: subject, plan: plan) }
    }

    /// The plan lookup a spend on `route` by `subject` makes in the store; nil without plans
    /// or when no pool of the route is per subject. `fallback` is the plan when none is stored.
    public func planChoice(_ route: Route, subject: String, fallback: Int) -> PlanChoice? {
        guard !route.planLimits.isEmpty, let defaultPlan = config.defaultPlan else { return nil }
        return PlanChoice(
            recordKey: keys.plan(subject: subject), ids: planIDs, limits: route.planLimits, fallback: fallback, defaultPlan: defaultPlan,
            table: route.planTable)
    }

    /// The plan nginx names (`$charge_gate_plan`, as sent) when it is one, else the default:
    /// its index, whether nginx's counted, and the name when it was not a plan (worth logging).
    public func nginxPlan(_ name: String?) -> (index: Int, fromNginx: Bool, unknown: String?) {
        let defaultPlan = config.defaultPlan ?? 0
        guard let name, !name.isEmpty else { return (defaultPlan, false, nil) }
        if let index = config.planIndex(id: name) { return (index, true, nil) }
        return (defaultPlan, false, name)
    }

    /// The `RateLimit-Policy` field value (IETF httpapi ratelimit headers) of `items`: one
    /// `"POOL";q=maxCharges;w=SECONDS` item per limited pool, `w` being the time to refill fully
    /// (a period pool: the length of its period at `now`, left out without `now`; no `w` for
    /// credits); unlimited pools are not listed.
    public static func policy(_ items: [SpendItem], now: Int64?) -> String {
        var fields: [String] = []
        for item in items {
            guard let max = item.max else { continue }
            if item.period != nil {
                guard let now, let window = item.window(at: now) else { continue }
                fields.append("\"\(item.poolId)\";q=\(max);w=\(seconds(window.end - window.start))")
            } else if let interval = item.intervalMs {
                fields.append("\"\(item.poolId)\";q=\(max);w=\(seconds(max * interval))")
            } else {
                fields.append("\"\(item.poolId)\";q=\(max)")
            }
        }
        return fields.joined(separator: ", ")
    }

    /// The idempotency check for a request on `route` (which must be idempotent) by `subject`
    /// with the client key `clientKey` (as sent), the method, the charged URI and the query as
    /// the client sent it (`URIPath.query(ofRequestURI:)`: the app sees it, so it is part of
    /// the request).
    public func idempotencyCheck(
        _ route: Route, subject: String, clientKey: String, method: String, uri: String, query: some StringProtocol
    ) -> IdempotencyCheck {
        IdempotencyCheck(
            key: keys.idempotency(subject: subject, clientKey: clientKey),
            fingerprint: route.fingerprint(method: method, uri: uri, query: query),
            ttlMs: Int64(config.idempotencyTtlSeconds) * 1000,
            maxRepeats: Int64(config.idempotencyMaxRepeats),
            quotaKey: keys.idempotencyQuota(subject: subject),
            maxRecords: Int64(config.idempotencyMaxKeysPerSubject))
    }

    /// Whole seconds, rounded up, of `ms` (never negative, never overflowing).
    public static func seconds(_ ms: Int64) -> Int64 {
        ms <= 0 ? 0 : ms / 1000 + (ms % 1000 == 0 ? 0 : 1)
    }
}
