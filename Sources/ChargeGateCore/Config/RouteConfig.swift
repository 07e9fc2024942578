/// A URI prefix and the pools a request under it spends from.
public struct RouteConfig: Sendable, Equatable {
    /// One pool a route spends from, and how much.
    public struct Charge: Sendable, Equatable {
        /// Index of the pool in `GateConfig.pools`.
        public var poolIndex: Int
        /// Charges spent per request (>= 1).
        public var cost: Int64

        /// Creates a charge.
        public init(poolIndex: Int, cost: Int64) {
            self.poolIndex = poolIndex
            self.cost = cost
        }
    }

    /// Normalised path prefix, matched per segment (`/api/generate` matches `/api/generate/x`,
    /// never `/api/generated`).
    public var prefix: String
    /// The pools, in config order.
    public var charges: [Charge]
    /// Upper-case HTTP methods the route applies to; nil means every method.
    public var methods: Set<String>?
    /// Whether a retry carrying the idempotency header may be answered without spending again
    /// (for apps that deduplicate on the same header); false: the header is ignored.
    public var idempotent: Bool
    /// This route's `mode`; nil follows the top-level one.
    public var mode: GateMode?

    /// Creates a route.
    public init(prefix: String, charges: [Charge], methods: Set<String>? = nil, idempotent: Bool = false, mode: GateMode? = nil) {
        self.prefix = prefix
        self.charges = charges
        self.methods = methods
        self.idempotent = idempotent
        self.mode = mode
    }
}
