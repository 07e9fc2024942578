/// Every store key ChargeGate writes, built in one place so that no two kinds can meet.
///
/// Two namespaces under `keyPrefix`:
/// - **Buckets**: `prefix + poolId` for a global pool (next-charge's key, shared with apps that
///   still use the library) and `prefix + poolId + ":" + subject` for a per-subject pool. A pool
///   id is `[A-Za-z0-9._-]{1,64}` and never holds `:`, so the first `:` after the prefix ends
///   the pool id, and two buckets share a key only when pool and subject are the same.
/// - **Internal**: `prefix + "#" + kind + ...`: idempotency records, their per-subject quota,
///   the usage-event stream, and whatever is added later. `#` is neither in the pool id charset
///   nor allowed first in a bucket key, so no pool id, subject or crafted header can name an
///   internal key, whatever the pool is called (`events`, `idem`, `plan` ...).
///
/// Subjects arrive in key form (`SafeToken.key(for:)`): `[A-Za-z0-9._:@-]{1,64}`, never `#`.
public struct KeySpace: Sendable, Equatable {
    /// The config's `keyPrefix`.
    public let prefix: String
    /// `prefix + "#plan:"`, joined once (it starts a key on every spend with plans).
    private let planPrefix: String

    /// Creates the key space under `prefix`.
    public init(prefix: String) {
        self.prefix = prefix
        self.planPrefix = prefix + "#plan:"
    }

    /// The first byte after the prefix of every internal key.
    public static let internalMark = "#"

    /// The bucket of a global pool: next-charge's `prefix + poolId`.
    public func bucket(pool id: String) -> String {
        prefix + id
    }

    /// The bucket of a per-subject pool for `subject` (in key form).
    public func bucket(pool id: String, subject: String) -> String {
        prefix + id + ":" + subject
    }

    /// The usage-event stream.
    public var events: String { prefix + "#events" }

    /// Where versions before 0.3 kept the stream (`prefix + "events"`): read, never written, so
    /// that events recorded before an upgrade stay exportable. nil when a global pool is named
    /// `events` (that key is then its bucket, not a stream).
    public func legacyEvents(poolIds: [String]) -> String? {
        poolIds.contains("events") ? nil : prefix + "events"
    }

    /// The idempotency record of one client key for one subject (both in key form). The
    /// record itself holds the request it belongs to; a 32-hex digest keeps the key short
    /// whatever the client sent.
    public func idempotency(subject: String, clientKey: String) -> String {
        prefix + "#idem:" + SHA256.hex(subject + "\n" + clientKey).prefix(32)
    }

    /// The plan record of `subject` (in key form): `PlanRecord`, no expiry.
    public func plan(subject: String) -> String {
        planPrefix + subject
    }

    /// The counter of idempotency records one subject created in the current TTL window.
    public func idempotencyQuota(subject: String) -> String {
        prefix + "#idemq:" + subject
    }

    /// The hold of one settled request (`HoldRecord`), by its id (nginx's `$request_id`,
    /// `[A-Za-z0-9_-]{1,64}`: `Gate.holdID`).
    public func hold(id: String) -> String {
        prefix + "#hold:" + id
    }

    /// What every hold key starts with (`charge-gate status` lists the open ones).
    public var holdPrefix: String { prefix + "#hold:" }
}
