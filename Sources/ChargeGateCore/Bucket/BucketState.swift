/// The stored state of one bucket: the reference library's `{"current":N,"lastUpdatedAt":MS}`.
/// For an unlimited pool, `current` counts the charges used so far.
public struct BucketState: Sendable, Equatable {
    /// Charges held at `lastUpdatedAt` (for an unlimited pool: charges used).
    public var current: Int64
    /// Epoch milliseconds of the last recharge step or spend from full.
    public var lastUpdatedAt: Int64

    /// Creates a state.
    public init(current: Int64, lastUpdatedAt: Int64) {
        self.current = current
        self.lastUpdatedAt = lastUpdatedAt
    }
}
