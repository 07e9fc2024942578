/// The store's decision on a spend (its clock is `SpendResult.now`).
public enum SpendOutcome: Sendable, Equatable {
    /// Spent: what each item holds afterwards, in item order.
    case allowed([ItemResult])
    /// An idempotent repeat of an allowed request: allowed, nothing spent.
    case repeated
    /// The idempotency key was first used for another request (route, method or URI): refused,
    /// nothing spent, nothing recorded.
    case keyReused
    /// The request's hold id was voided (`SettleOutcome.voided`): nginx already settled this
    /// request as one whose client left before the gate answered. Refused, nothing spent.
    case holdVoided
    /// Item `item` (a recharging pool) lacks charges; the longest wait over every such pool.
    case outOfCharge(item: Int, retryAfterMs: Int64)
    /// Item `item` (a pool that never refills) lacks charges: waiting would not help.
    case insufficientCredits(item: Int, available: Int64, required: Int64)
}
