/// What the store did with one settlement.
public enum SettleOutcome: Sendable, Equatable {
    /// Settled (the hold may stand as held): see `Settled`. Boxed (indirect): a `Response`
    /// carries an optional outcome on every answer, which stays one reference wide and is
    /// copied and destroyed as cheaply as nil on the auth path.
    indirect case settled(Settled)
    /// No such hold: never made, or long gone.
    case unknown
    /// No such hold yet, and nginx's line says nothing was delivered (the client left before
    /// the gate answered): the id is voided, so a spend that comes later under it is refused
    /// (`SpendOutcome.holdVoided`) and nothing is charged.
    case voided
    /// The hold's window ended: it stays charged as held.
    case expired
    /// Already settled: ignored.
    case duplicate
    /// nginx's line for a route the app settles: ignored, the hold stays open.
    case ignored

    /// A hold settled.
    public struct Settled: Sendable, Equatable {
        /// How.
        public var resolution: Settlement.Resolution
        /// Per pool, the signed difference to the hold that was charged (0 where the hold
        /// stands): what the settle events record.
        public var differences: [Int64]
        /// Each pool afterwards; empty when the request did not ask for them
        /// (`SettleRequest.reportsPools`) and the store left them out.
        public var pools: [PoolState]
        /// The store's clock at the settlement (epoch ms), for reading `pools` as the usage
        /// answer does; nil when the store does not say (the reader then uses its own clock).
        public var now: Int64?

        /// Creates a settlement.
        public init(resolution: Settlement.Resolution, differences: [Int64], pools: [PoolState], now: Int64? = nil) {
            self.resolution = resolution
            self.differences = differences
            self.pools = pools
            self.now = now
        }
    }

    /// One pool after a settlement.
    public struct PoolState: Sendable, Equatable {
        /// The pool's id.
        public var poolId: String
        /// Its rules and key, as held.
        public var item: SpendItem
        /// What it holds now; nil when its key is gone (a full per-subject bucket).
        public var state: BucketState?

        /// Creates a pool state.
        public init(poolId: String, item: SpendItem, state: BucketState?) {
            self.poolId = poolId
            self.item = item
            self.state = state
        }
    }

    /// The metric label: `refund`, `amount`, `overage` (charged past the hold on a pool),
    /// `stands`, `bad_amount`, `unknown`, `voided`, `expired`, `duplicate`, `ignored`.
    public var label: String {
        switch self {
        case .settled(let settled):
            switch settled.resolution {
            case .refund: return "refund"
            case .amount: return settled.differences.contains { $0 > 0 } ? "overage" : "amount"
            case .stands: return "stands"
            case .badAmount: return "bad_amount"
            case .ignored: return "ignored"
            }
        case .unknown: return "unknown"
        case .voided: return "voided"
        case .expired: return "expired"
        case .duplicate: return "duplicate"
        case .ignored: return "ignored"
        }
    }
}
