/// One pool's part of a spend: which key, which rules, how much.
public struct SpendItem: Sendable, Equatable {
    /// The pool's id (for events and denials).
    public var poolId: String
    /// The full store key (`keyPrefix + poolId [+ ":" + subject]`).
    public var key: String
    /// The cap; nil for an unlimited pool (never denies, counts use).
    public var max: Int64?
    /// Recharge interval; nil when the pool never refills by itself (credits, a period pool).
    public var intervalMs: Int64?
    /// Charges to spend.
    public var cost: Int64
    /// Whether the key should expire when the pool would be full again (per-subject pools).
    public var expires: Bool
    /// The billing period: the whole allowance at each period start; nil for a bucket.
    public var period: BillingPeriod?
    /// The period anchor (epoch ms); nil: calendar periods in UTC. For a spend with a plan
    /// choice, the store takes it from the subject's stored plan.
    public var anchor: Int64?
    /// Whether the state records its cap (`BucketState.limit`) and is counted again when the
    /// cap changes (a pool some plan sets): what was used stays used.
    public var tracksLimit: Bool
    /// The cap a state without a recorded one was counted against: the pool's own (nil:
    /// unlimited). Used only when `tracksLimit`.
    public var baseMax: Int64?
    /// The largest cap any plan gives the pool (nil: none caps it, or no ceiling): what a
    /// rebased state counts as used at most (a count made under an unlimited plan enters a cap
    /// as at most this much used). Used only when `tracksLimit`.
    public var largestMax: Int64?
    /// The longest recharge interval any plan gives the pool (nil: `intervalMs`): a per-subject
    /// bucket's key lives until the pool would be full again under that interval, so that a
    /// missing key is a full pool whatever plan reads it next.
    public var slowestIntervalMs: Int64?

    /// Creates an item.
    public init(
        poolId: String, key: String, max: Int64?, intervalMs: Int64?, cost: Int64, expires: Bool,
        period: BillingPeriod? = nil, anchor: Int64? = nil, tracksLimit: Bool = false, baseMax: Int64? = nil,
        largestMax: Int64? = nil, slowestIntervalMs: Int64? = nil
    ) {
        self.poolId = poolId
        self.key = key
        self.max = max
        self.intervalMs = intervalMs
        self.cost = cost
        self.expires = expires
        self.period = period
        self.anchor = anchor
        self.tracksLimit = tracksLimit
        self.baseMax = baseMax
        self.largestMax = largestMax
        self.slowestIntervalMs = slowestIntervalMs
    }

    /// The interval a per-subject bucket's time to live counts in: the slowest of any plan,
    /// never shorter than the item's own; nil when the pool does not refill.
    public var expiryIntervalMs: Int64? {
        guard let intervalMs else { return nil }
        return Swift.max(intervalMs, slowestIntervalMs ?? intervalMs)
    }

    /// The cap a write records in the state (`BucketState.limit`: `Bucket.unlimitedMark` for
    /// none); nil when the item does not track its cap.
    public var limitToRecord: Int64? {
        tracksLimit ? max ?? Bucket.unlimitedMark : nil
    }

    /// The current period when this item has one, from the store's `now`.
    public func window(at now: Int64) -> BillingPeriod.Window? {
        period?.window(at: now, anchor: anchor)
    }
}
