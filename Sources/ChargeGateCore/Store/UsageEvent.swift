/// One recorded spend.
public struct UsageEvent: Sendable, Equatable {
    /// Stream id (`ms-seq`), increasing.
    public var id: String
    /// Epoch milliseconds.
    public var time: Int64
    /// Pool id.
    public var pool: String
    /// Charges spent.
    public var amount: Int64
    /// Route, subject, method, URI, idempotency key.
    public var context: EventContext

    /// Creates an event.
    public init(id: String, time: Int64, pool: String, amount: Int64, context: EventContext) {
        self.id = id
        self.time = time
        self.pool = pool
        self.amount = amount
        self.context = context
    }
}
