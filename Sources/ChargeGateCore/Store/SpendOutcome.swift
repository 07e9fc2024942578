/// The store's decision on a spend.
public enum SpendOutcome: Sendable, Equatable {
    /// Spent. `remaining[i]` is what item i holds afterwards (for an unlimited pool: its use);
    /// `fullAt[i]` is when it is full again (epoch ms; nil when it never refills or is unlimited).
    case allowed(now: Int64, remaining: [Int64], fullAt: [Int64?])
    /// An idempotent repeat of an allowed request: allowed, nothing spent.
    case repeated(now: Int64)
    /// The idempotency key was first used for another request (route, method or URI): refused,
    /// nothing spent, nothing recorded.
    case keyReused(now: Int64)
    /// Item `item` (a recharging pool) lacks charges; the longest wait over every such pool.
    case outOfCharge(item: Int, retryAfterMs: Int64)
    /// Item `item` (a pool that never refills) lacks charges: waiting would not help.
    case insufficientCredits(item: Int, available: Int64, required: Int64)
}
