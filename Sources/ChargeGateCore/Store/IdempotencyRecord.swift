/// What an idempotency record holds: the request it belongs to and how often it was repeated.
/// The memory store keeps this value; in Redis the script keeps it as the text
/// `FINGERPRINT:REPEATS` (docs/redis.md).
public struct IdempotencyRecord: Sendable, Equatable {
    /// `IdempotencyCheck.fingerprint` of the request that created the record.
    public var fingerprint: String
    /// Free repeats given so far.
    public var repeats: Int64

    /// Creates a record.
    public init(fingerprint: String, repeats: Int64) {
        self.fingerprint = fingerprint
        self.repeats = repeats
    }

    /// What a request does with the record found for its key (nil: none), before any spend.
    public enum Decision: Sendable, Equatable {
        /// No record: decide the spend, and record it when allowed.
        case fresh
        /// The key belongs to another request: 422, nothing spent.
        case reused
        /// A repeat within `maxRepeats`: allowed free, the record now holds `record`.
        case repeated(IdempotencyRecord)
        /// Repeats used up: decide the spend afresh, keep the record as it is.
        case exhausted
    }

    /// The decision for `check` given the live record `record`. The Lua script is its twin.
    public static func decide(_ record: IdempotencyRecord?, for check: IdempotencyCheck) -> Decision {
        guard let record else { return .fresh }
        guard record.fingerprint == check.fingerprint else { return .reused }
        guard record.repeats < check.maxRepeats else { return .exhausted }
        return .repeated(IdempotencyRecord(fingerprint: record.fingerprint, repeats: record.repeats + 1))
    }
}
