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
    /// This route's `settle:`; nil: what the auth request spends is final.
    public var settle: SettlePolicy?
    /// The route's `cost` (the hold on a settled route): the pools whose cost it is are settled
    /// to the amount.
    public var cost: Int64

    /// Creates a route.
    public init(
        prefix: String, charges: [Charge], methods: Set<String>? = nil, idempotent: Bool = false, mode: GateMode? = nil,
        settle: SettlePolicy? = nil, cost: Int64 = 1
    ) {
        self.prefix = prefix
        self.charges = charges
        self.methods = methods
        self.idempotent = idempotent
        self.mode = mode
        self.settle = settle
        self.cost = cost
    }
}
