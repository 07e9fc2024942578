/// One pool's part of a spend: which key, which rules, how much.
public struct SpendItem: Sendable, Equatable {
    /// The pool's id (for events and denials).
    public var poolId: String
    /// The full store key (`keyPrefix + poolId [+ ":" + subject]`).
    public var key: String
    /// The cap; nil for an unlimited pool (never denies, counts use).
    public var max: Int64?
    /// Recharge interval; nil when the pool never refills by itself.
    public var intervalMs: Int64?
    /// Charges to spend.
    public var cost: Int64
    /// Whether the key should expire when the pool would be full again (per-subject pools).
    public var expires: Bool

    /// Creates an item.
    public init(poolId: String, key: String, max: Int64?, intervalMs: Int64?, cost: Int64, expires: Bool) {
        self.poolId = poolId
        self.key = key
        self.max = max
        self.intervalMs = intervalMs
        self.cost = cost
        self.expires = expires
    }
}
