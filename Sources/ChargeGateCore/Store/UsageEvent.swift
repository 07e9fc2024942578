/// One recorded spend, or one pool's settlement of a hold.
public struct UsageEvent: Sendable, Equatable {
    /// What an event records.
    public enum Kind: String, Sendable, Equatable {
        /// Charges spent (a hold's too: `context.hold` names it).
        case spend
        /// A hold settled: `amount` is the signed difference to what was held.
        case settle
    }

    /// Stream id (`ms-seq`), increasing.
    public var id: String
    /// Epoch milliseconds.
    public var time: Int64
    /// Pool id.
    public var pool: String
    /// Charges spent; for a settlement, the signed difference to the hold (< 0: given back).
    public var amount: Int64
    /// Route, subject, method, URI, idempotency key, plan, hold.
    public var context: EventContext
    /// Spend or settle.
    public var kind: Kind
    /// For a settlement, the response status nginx logged; nil for a spend or the app's call.
    public var status: Int?

    /// Creates an event.
    public init(id: String, time: Int64, pool: String, amount: Int64, context: EventContext, kind: Kind = .spend, status: Int? = nil) {
        self.id = id
        self.time = time
        self.pool = pool
        self.amount = amount
        self.context = context
        self.kind = kind
        self.status = status
    }
}
