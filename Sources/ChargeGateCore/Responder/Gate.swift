/// A validated config compiled for the request path: the routing trie and every key prefix
/// computed once. Immutable, so worker threads share it freely; a reload builds a new one.
public final class Gate: Sendable {
    /// The config it was built from.
    public let config: GateConfig
    /// The route matcher.
    public let router: Router
    /// Every store key, built in one place.
    public let keys: KeySpace
    /// `keyPrefix + poolId`, per pool.
    public let poolKeys: [String]
    /// The event stream key, or nil when the event log is off.
    public let eventsKey: String?
    /// The streams the event log is read from: the one written, then the one earlier versions
    /// wrote (`KeySpace.legacyEvents`); empty when the event log is off.
    public let eventStreams: [String]
    /// The CGI param carrying the idempotency header.
    public let idempotencyParam: String
    /// Per route: whether any of its pools is per subject (its decisions differ by subject).
    public let routeHasSubjectPools: [Bool]
    /// Per route: its `RateLimit-Policy` field value (IETF httpapi ratelimit headers): one
    /// `"POOL";q=maxCharges;w=SECONDS` item per limited pool, `w` being the time to refill
    /// fully (no `w` for a pool that never refills); unlimited pools are not listed.
    public let routeRateLimitPolicy: [String]
    /// Per route: whether its 429s may be answered from a worker's memory. Not when a pool of
    /// the route never refills: its balance can run out meanwhile, and a 402 must win.
    public let routeDenialsCacheable: [Bool]
    /// Per route: what names the route itself in an idempotency fingerprint: its prefix and
    /// its methods (two routes may share a prefix with different methods).
    public let routeIdentity: [String]

    /// Compiles `config`.
    public init(config: GateConfig) {
        self.config = config
        self.router = Router(routes: config.routes)
        let keys = KeySpace(prefix: config.keyPrefix)
        self.keys = keys
        self.poolKeys = config.pools.map { keys.bucket(pool: $0.id) }
        self.eventsKey = config.eventsMaxLen > 0 ? keys.events : nil
        self.eventStreams = config.eventsMaxLen > 0 ? [keys.events] + [keys.legacyEvents(poolIds: config.pools.map(\.id))].compactMap { $0 } : []
        self.idempotencyParam = config.idempotencyParam
        self.routeHasSubjectPools = config.routes.map { route in
            route.charges.contains { config.pools[$0.poolIndex].scope == .subject }
        }
        self.routeRateLimitPolicy = config.routes.map { route in
            route.charges.compactMap { charge -> String? in
                let pool = config.pools[charge.poolIndex]
                guard let max = pool.maxCharges else { return nil }
                guard let interval = pool.intervalMs else { return "\"\(pool.id)\";q=\(max)" }
                return "\"\(pool.id)\";q=\(max);w=\(Gate.seconds(max * interval))"
            }.joined(separator: ", ")
        }
        self.routeDenialsCacheable = config.routes.map { route in
            !route.charges.contains { charge in
                let pool = config.pools[charge.poolIndex]
                return pool.maxCharges != nil && pool.intervalMs == nil
            }
        }
        self.routeIdentity = config.routes.map { route in
            route.prefix + " " + (route.methods.map { $0.sorted().joined(separator: ",") } ?? "*")
        }
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

    /// Whole seconds, rounded up, of `ms` (never negative).
    public static func seconds(_ ms: Int64) -> Int64 {
        ms <= 0 ? 0 : (ms + 999) / 1000
    }

    /// The key of route `index`'s remembered denials in a worker's deny cache: the route itself
    /// (never only its prefix: routes may share one with other methods and pools), and the
    /// subject when a pool of the route is per subject.
    public func denialKey(route index: Int, subject: String) -> String {
        routeHasSubjectPools[index] ? String(index) + "\n" + subject : String(index)
    }

    /// The idempotency check for a request on route `index` (which must be `idempotent`) by
    /// `subject` with the client key `clientKey` (both in key form).
    public func idempotencyCheck(route index: Int, subject: String, clientKey: String, method: String, uri: String) -> IdempotencyCheck {
        IdempotencyCheck(
            key: keys.idempotency(subject: subject, clientKey: clientKey),
            fingerprint: String(SHA256.hex(routeIdentity[index] + "\n" + method + "\n" + uri).prefix(32)),
            ttlMs: Int64(config.idempotencyTtlSeconds) * 1000,
            maxRepeats: Int64(config.idempotencyMaxRepeats),
            quotaKey: keys.idempotencyQuota(subject: subject),
            maxRecords: Int64(config.idempotencyMaxKeysPerSubject))
    }
}
