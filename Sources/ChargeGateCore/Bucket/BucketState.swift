/// The stored state of one bucket: the reference library's `{"current":N,"lastUpdatedAt":MS}`,
/// with `"max":M` added for pools whose cap a plan may change. For an unlimited pool, `current`
/// counts the charges used so far (in the current period, for a period pool).
public struct BucketState: Sendable, Equatable {
    /// Charges held at `lastUpdatedAt` (for an unlimited pool: charges used).
    public var current: Int64
    /// Epoch milliseconds of the last recharge step or spend from full (a period pool: of the
    /// last write; the state counts only while that is within the current period).
    public var lastUpdatedAt: Int64
    /// The cap `current` was counted against (`Bucket.unlimitedMark` for an unlimited one), so
    /// that a change of plan keeps what was used; nil when not recorded (pools no plan changes,
    /// and every state written by next-charge or before plans).
    public var limit: Int64?

    /// Creates a state.
    public init(current: Int64, lastUpdatedAt: Int64, limit: Int64? = nil) {
        self.current = current
        self.lastUpdatedAt = lastUpdatedAt
        self.limit = limit
    }
}
