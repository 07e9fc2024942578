/// The idempotency record a spend checks and writes (a route with `idempotent: true`, a
/// request carrying the key header). It binds the request: a key used again for another route,
/// method, URI or query is refused, and an allowed request is repeated free at most `maxRepeats` times.
public struct IdempotencyCheck: Sendable, Equatable {
    /// Store key of the record (`KeySpace.idempotency`).
    public var key: String
    /// 32 hex digits naming the request: the route itself (prefix and methods), the method,
    /// the normalised URI and the raw query (`Gate.Route.fingerprint`).
    public var fingerprint: String
    /// How long a record lives, in ms.
    public var ttlMs: Int64
    /// Free repeats of one allowed request within the TTL; later ones are decided afresh.
    public var maxRepeats: Int64
    /// Store key of the subject's record counter (`KeySpace.idempotencyQuota`).
    public var quotaKey: String
    /// Records one subject may create per TTL window; past it a request is charged as if it
    /// carried no key (its retries are charged again: never a free pass).
    public var maxRecords: Int64

    /// Creates a check.
    public init(key: String, fingerprint: String, ttlMs: Int64, maxRepeats: Int64, quotaKey: String, maxRecords: Int64) {
        self.key = key
        self.fingerprint = fingerprint
        self.ttlMs = ttlMs
        self.maxRepeats = maxRepeats
        self.quotaKey = quotaKey
        self.maxRecords = maxRecords
    }
}
