/// The hold an allowed spend on a settled route records, in the same atomic step
/// (`SpendRequest.hold`). A class (immutable): a spend without a hold, every route without
/// `settle:`, then carries one nil reference instead of an optional struct copied and destroyed
/// field by field each time the request is passed on.
public final class HoldRequest: Sendable, Equatable {
    /// Store key of the hold (`KeySpace.hold(id:)`).
    public let key: String
    /// The hold's id: nginx's `$request_id`.
    public let id: String
    /// How it settles (the route's `settle:` when the hold was made).
    public let policy: SettlePolicy
    /// Per item: whether it is metered (its cost is the route's: settled to the amount).
    public let metered: [Bool]
    /// How long it may be settled, in ms (`settleWindowSeconds`).
    public let windowMs: Int64

    /// Creates a request.
    public init(key: String, id: String, policy: SettlePolicy, metered: [Bool], windowMs: Int64) {
        self.key = key
        self.id = id
        self.policy = policy
        self.metered = metered
        self.windowMs = windowMs
    }

    /// How long the record outlives its window, so that a late settlement is told apart from
    /// an unknown one (counted as expired, not unknown): one more window.
    public var keyTtlMs: Int64 { Self.keyTtlMs(windowMs: windowMs) }

    /// How long a hold's key lives for a settlement window of `windowMs`: two windows.
    public static func keyTtlMs(windowMs: Int64) -> Int64 { windowMs.saturatingAdding(windowMs) }

    /// Equal when every field is (a value's equality: two requests made alike are equal).
    public static func == (a: HoldRequest, b: HoldRequest) -> Bool {
        a.key == b.key && a.id == b.id && a.policy == b.policy && a.metered == b.metered && a.windowMs == b.windowMs
    }
}
