/// What one worker learned from the store about routes that are out of charge: "this route,
/// for this subject, is denied until T". Under a flood of requests to an empty pool, the worker
/// answers the 429 from here instead of asking Redis each time.
///
/// Only denials are remembered, never allowances: an entry can make a request wait (at most
/// `maxAgeMs` longer after a top-off on another node), never let one through. Each entry lives
/// until the pool has charges again or `maxAgeMs`, whichever is first. Not thread-safe: one per
/// worker thread, like the store connection.
public final class DenyCache {
    private struct Entry {
        var until: Int64
        var expires: Int64
        var poolId: String
        var policy: String
        var upgradeUrl: String?
        var answered: Int
    }

    /// How long an entry is trusted at most: a top-off or a config reload on another worker or
    /// node shows within this time.
    public let maxAgeMs: Int64
    /// How many entries at most (distinct routes × subjects being denied right now).
    public let capacity: Int
    private var entries: [String: Entry] = [:]
    private var gate: ObjectIdentifier?
    private let epoch: DenyEpoch
    private var seenEpoch: UInt64 = 0

    /// Creates an empty cache; `epoch` is shared by the caches of one process.
    public init(maxAgeMs: Int64 = 1000, capacity: Int = 65_536, epoch: DenyEpoch = DenyEpoch()) {
        self.maxAgeMs = maxAgeMs
        self.capacity = capacity
        self.epoch = epoch
    }

    /// The remembered denial for `key` at `now`: the pool, the wait left, the route's
    /// `RateLimit-Policy` and the `upgradeUrl` as they were answered; nil when none holds. Each
    /// answer given from memory is counted for the next `remember`.
    public func denial(for key: String, now: Int64) -> (poolId: String, retryAfterMs: Int64, policy: String, upgradeUrl: String?)? {
        guard let entry = entries[key], now < entry.expires, now < entry.until else { return nil }
        entries[key]?.answered += 1
        return (entry.poolId, entry.until - now, entry.policy, entry.upgradeUrl)
    }

    /// Remembers that `key` is denied by `poolId` until `now + retryAfterMs` (held at
    /// `Int64.max`: a wait from the store never overflows here), answered with `policy` and
    /// `upgradeUrl`; returns how many requests the previous entry for `key` answered from memory
    /// (for the log line).
    @discardableResult
    public func remember(
        _ key: String, poolId: String, retryAfterMs: Int64, now: Int64, policy: String = "", upgradeUrl: String? = nil
    ) -> Int {
        let answered = entries[key]?.answered ?? 0
        guard retryAfterMs > 0 else {
            entries[key] = nil
            return answered
        }
        if entries.count >= capacity {
            entries = entries.filter { now < $0.value.expires && now < $0.value.until }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        }
        entries[key] = Entry(
            until: now.saturatingAdding(retryAfterMs), expires: now.saturatingAdding(maxAgeMs), poolId: poolId, policy: policy,
            upgradeUrl: upgradeUrl, answered: 0)
        return answered
    }

    /// Forgets everything learned under another config (after a reload) or before a top-off.
    public func use(_ gate: Gate) {
        let id = ObjectIdentifier(gate)
        let now = epoch.current
        if id != self.gate || now != seenEpoch {
            if !entries.isEmpty { entries.removeAll() }
            self.gate = id
            seenEpoch = now
        }
    }

    /// Tells every cache of this process that a bucket was topped off.
    public func invalidateAll() {
        epoch.bump()
    }
}
