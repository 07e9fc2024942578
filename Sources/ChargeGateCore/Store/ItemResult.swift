/// One item of an allowed spend, as the store left it.
public struct ItemResult: Sendable, Equatable {
    /// What the pool holds afterwards (for an unlimited pool: its use).
    public var remaining: Int64
    /// When it is full again (epoch ms): the end of the period for a period pool; nil when it
    /// never refills or is unlimited.
    public var fullAt: Int64?

    /// Creates a result.
    public init(remaining: Int64, fullAt: Int64?) {
        self.remaining = remaining
        self.fullAt = fullAt
    }
}
