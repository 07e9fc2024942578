/// A validated config compiled for the request path: the routing trie, every route with what
/// a decision needs, the pools and plans as records, and the key space. Immutable, so worker
/// threads share it freely; a reload builds a new one.
public final class Gate: Sendable {
    /// The config it was built from.
    public let config: GateConfig
    /// The route matcher; its answers index `routes` (`route(path:method:)` hands back the route).
    public let router: Router
    /// Every store key, built in one place.
    public let keys: KeySpace
    /// The routes, compiled, in config order.
    public let routes: [Route]
    /// The pools, compiled, in config order.
    public let pools: [Pool]
    /// The plans, compiled, in config order; empty without plans.
    public let plans: [Plan]
    /// The event stream key, or nil when the event log is off.
    public let eventsKey: String?
    /// The streams the event log is read from: the one written, then the one earlier versions
    /// wrote (`KeySpace.legacyEvents`); empty when the event log is off.
    public let eventStreams: [String]
    /// The CGI param carrying the idempotency header.
    public let idempotencyParam: String

    /// The longest subject an admin may name (`?subject=`, `charge-gate plan`), in bytes; the
    /// key form hashes long ones.
    public static let maxAdminSubjectBytes = 1024

    /// Compiles `config`.
    public init(config: GateConfig) {
        self.config = config
        self.router = Router(routes: config.routes)
        let keys = KeySpace(prefix: config.keyPrefix, cluster: config.redis?.isCluster ?? false)
        self.keys = keys
        let pools = config.pools.indices.map { Pool(index: $0, config: config, keys: keys) }
        self.pools = pools
        self.plans = config.plans.indices.map { Plan(index: $0, config: config) }
        self.routes = config.routes.enumerated().map { Route(index: $0.offset, config: $0.element, pools: pools, gate: config) }
        self.eventsKey = config.eventsMaxLen > 0 ? keys.events : nil
        let legacy = keys.legacyEvents(poolIds: config.pools.map(\.id))
        self.eventStreams = config.eventsMaxLen > 0 ? [keys.events] + (legacy.map { [$0] } ?? []) : []
        self.idempotencyParam = config.idempotencyParam
    }

    /// The hold a spend on `route` records for request `id` (nginx's `$request_id`); nil when
    /// the route does not settle or `id` is not a hold id (`isHoldID`).
    public func holdRequest(_ route: Route, id: String?) -> HoldRequest? {
        guard let policy = route.settle, let id, Self.isHoldID(id) else { return nil }
        return HoldRequest(
            key: keys.hold(id: id), id: id, policy: policy, metered: route.metered, windowMs: Int64(config.settleWindowSeconds) * 1000)
    }

    /// How long nginx's line voids a hold id whose spend has not come (yet)
    /// (`SettleRequest.voidTtlMs`): as long as a hold's key lives (`HoldRequest.keyTtlMs`).
    public var voidTtlMs: Int64 { HoldRequest.keyTtlMs(windowMs: Int64(config.settleWindowSeconds) * 1000) }

    /// Whether `id` can name a hold: 1-64 of `[A-Za-z0-9_-]`, starting with a letter or digit
    /// (nginx's `$request_id` is 32 hex digits; nginx logs an empty variable as `-`).
    public static func isHoldID(_ id: some StringProtocol) -> Bool {
        let bytes = id.utf8
        guard let first = bytes.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "_") else { return false }
        return bytes.count <= 64
            && bytes.allSatisfy {
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            }
    }

    /// The route a request for `path` with `method` is charged on, nil when none matches.
    public func route(path: String, method: String) -> Route? {
        router.match(path: path, method: method).map { routes[$0] }
    }

    /// The store key of pool `index` for `subject` (already in key form; ignored for global pools).
    public func key(pool index: Int, subject: String) -> String {
        pools[index].key(subject: subject, keys: keys)
    }

    /// Pool `index` as plan `plan` sets it (the config's own without plans).
    public func pool(_ index: Int, plan: Int) -> PoolConfig {
        pools[index].under(plan: plan)
    }

    /// The spend item for pool `index` at `cost` for `subject` under plan `plan` (0 without
    /// plans), with the period `anchor` of the subject's stored plan.
    public func item(pool index: Int, cost: Int64, subject: String, plan: Int = 0, anchor: Int64? = nil) -> SpendItem {
        pools[index].item(cost: cost, subject: subject, plan: plan, anchor: anchor, keys: keys)
    }

    /// What a request on `route` by `subject` spends under plan `plan`: one item per pool of the route.
    public func items(_ route: Route, subject: String, plan: Int = 0) -> [SpendItem] {
        route.charges.map { $0.pool.item(cost: $0.cost, subject: subject, plan: plan, anchor: nil, keys: keys) }
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
