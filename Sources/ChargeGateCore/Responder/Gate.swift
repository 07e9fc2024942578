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

    /// Compiles `config`.
    public init(config: GateConfig) {
        self.config = config
        self.router = Router(routes: config.routes)
        let keys = KeySpace(prefix: config.keyPrefix)
        self.keys = keys
        self.routes = config.routes.enumerated().map { Route(index: $0.offset, config: $0.element, pools: config.pools) }
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

    /// The spend item for pool `index` at `cost` for `subject`.
    public func item(pool index: Int, cost: Int64, subject: String) -> SpendItem {
        let pool = config.pools[index]
        return SpendItem(
            poolId: pool.id, key: key(pool: index, subject: subject), max: pool.maxCharges,
            intervalMs: pool.intervalMs, cost: cost, expires: pool.scope == .subject)
    }

    /// What a request on `route` by `subject` spends: one item per pool of the route.
    public func items(_ route: Route, subject: String) -> [SpendItem] {
        route.charges.map { item(pool: $0.poolIndex, cost: $0.cost, subject: subject) }
    }

    /// The idempotency check for a request on `route` (which must be idempotent) by `subject`
    /// with the client key `clientKey` (as sent), the method and the charged URI.
    public func idempotencyCheck(_ route: Route, subject: String, clientKey: String, method: String, uri: String) -> IdempotencyCheck {
        IdempotencyCheck(
            key: keys.idempotency(subject: subject, clientKey: clientKey),
            fingerprint: route.fingerprint(method: method, uri: uri),
            ttlMs: Int64(config.idempotencyTtlSeconds) * 1000,
            maxRepeats: Int64(config.idempotencyMaxRepeats),
            quotaKey: keys.idempotencyQuota(subject: subject),
            maxRecords: Int64(config.idempotencyMaxKeysPerSubject))
    }

    /// Whole seconds, rounded up, of `ms` (never negative).
    public static func seconds(_ ms: Int64) -> Int64 {
        ms <= 0 ? 0 : (ms + 999) / 1000
    }
}
