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
///
/// **Cluster layout** (a `redis-cluster://` store, SPEC §12; docs/redis.md, "Redis Cluster"):
/// one spend runs as one script in one slot, so keys carry hash tags. Every key of one subject
/// (its per-subject buckets, idempotency record and counter, plan record) has the tag
/// `{SUBJECT}` (`{#}` for the empty subject); a global pool's bucket has its own, `{POOL}`. Pool
/// ids and subjects hold no brace and `keyPrefix` may hold none (check-config), so the tag is
/// always the one meant. The kinds stay apart as above: a global bucket starts with `{`, which no
/// pool id does. The event stream and the holds, which one spend writes beside whichever slot
/// it runs in, are placed by the cluster store (`events` and `hold(id:)` are their bases).
/// next-charge's key format holds only outside cluster mode.
public struct KeySpace: Sendable, Equatable {
    /// The config's `keyPrefix`.
    public let prefix: String
    /// Whether keys are laid out for a Redis Cluster (hash tags).
    public let cluster: Bool
    /// `prefix + "#plan:"`, joined once (it starts a key on every spend with plans).
    private let planPrefix: String

    /// Creates the key space under `prefix`, laid out for a Redis Cluster when `cluster`.
    public init(prefix: String, cluster: Bool = false) {
        self.prefix = prefix
        self.cluster = cluster
        self.planPrefix = prefix + "#plan:"
    }

    /// The hash tag of `subject`'s keys in cluster mode: `{SUBJECT}`, `{#}` for the empty one
    /// (an empty tag would hash the whole key; `#` is in no subject's key form).
    public static func tag(subject: String) -> String {
        "{" + (subject.isEmpty ? "#" : subject) + "}"
    }

    /// The first byte after the prefix of every internal key.
    public static let internalMark = "#"

    /// The bucket of a global pool: next-charge's `prefix + poolId`.
    /// In cluster mode `prefix + "{" + poolId + "}"`: the pool's own slot.
    public func bucket(pool id: String) -> String {
        cluster ? prefix + "{" + id + "}" : prefix + id
    }

    /// The bucket of a per-subject pool for `subject` (in key form); in cluster mode the
    /// subject in its tag, `prefix + poolId + ":{" + subject + "}"`.
    public func bucket(pool id: String, subject: String) -> String {
        guard cluster else { return prefix + id + ":" + subject }
        // One string grown once: this key is made for every per-subject pool of every request.
        var key = prefix
        key.reserveCapacity(prefix.utf8.count + id.utf8.count + subject.utf8.count + 3)
        key += id
        key += ":{"
        key += subject.isEmpty ? "#" : subject
        key += "}"
        return key
    }

    /// The subject (key form) of a per-subject bucket `key` of pool `id`; `""` when `key` is
    /// no such bucket.
    public func subject(ofBucket key: String, pool id: String) -> String {
        let head = prefix + id + ":"
        guard key.hasPrefix(head) else { return "" }
        let rest = key.dropFirst(head.count)
        guard cluster else { return String(rest) }
        guard rest.hasPrefix("{"), rest.hasSuffix("}"), rest.count >= 2 else { return "" }
        let inner = rest.dropFirst().dropLast()
        return inner == "#" ? "" : String(inner)
    }

    /// The usage-event stream.
    public var events: String { prefix + "#events" }

    /// Where versions before 0.3 kept the stream (`prefix + "events"`): read, never written, so
    /// that events recorded before an upgrade stay exportable. nil when a global pool is named
    /// `events` (that key is then its bucket, not a stream).
    public func legacyEvents(poolIds: [String]) -> String? {
        cluster || poolIds.contains("events") ? nil : prefix + "events"
    }

    /// The idempotency record of one client key for one subject (both in key form). The
    /// record itself holds the request it belongs to; a 32-hex digest keeps the key short
    /// whatever the client sent.
    public func idempotency(subject: String, clientKey: String) -> String {
        let digest = SHA256.hex(subject + "\n" + clientKey).prefix(32)
        return cluster ? prefix + "#idem:" + Self.tag(subject: subject) + ":" + digest : prefix + "#idem:" + digest
    }

    /// The plan record of `subject` (in key form): `PlanRecord`, no expiry.
    public func plan(subject: String) -> String {
        planPrefix + (cluster ? Self.tag(subject: subject) : subject)
    }

    /// The counter of idempotency records one subject created in the current TTL window.
    public func idempotencyQuota(subject: String) -> String {
        prefix + "#idemq:" + (cluster ? Self.tag(subject: subject) : subject)
    }

    /// The hold of one settled request (`HoldRecord`), by its id (nginx's `$request_id`,
    /// `[A-Za-z0-9_-]{1,64}`: `Gate.holdID`).
    public func hold(id: String) -> String {
        prefix + "#hold:" + id
    }

    /// What every hold key starts with (`charge-gate status` lists the open ones).
    public var holdPrefix: String { prefix + "#hold:" }

    // MARK: Cluster placement
    //
    // A spend writes its event and its hold beside whichever slot it runs in. The cluster store
    // places them there from the bases above with a slot's tag (`ClusterSlot.tag(forSlot:)`).

    /// The event stream `base` (`events`) of the slot whose tag is `tag`: `base + ":{TAG}"`.
    public static func events(_ base: String, tag: String) -> String {
        base + ":{" + tag + "}"
    }

    /// The hold `base` (`hold(id:)`, ending in `id`) in the slot whose tag is `tag`:
    /// `prefix#hold:{TAG}:ID`.
    public static func hold(_ base: String, id: String, tag: String) -> String {
        String(base.dropLast(id.count)) + "{" + tag + "}:" + id
    }

    /// Where a settled spend on a cluster claims hold id `id` (for hold `base`) before it spends,
    /// naming the slots its holds are in, and where nginx's line for a request that never got
    /// its answer voids the id: `prefix#holdref:{ID}`, in the id's own slot (a line carries the
    /// id alone).
    public static func holdClaim(_ base: String, id: String) -> String {
        let tail = "#hold:" + id
        guard base.hasSuffix(tail) else { return base + ":claim" }
        return String(base.dropLast(tail.count)) + "#holdref:{" + id + "}"
    }

    /// The hold a cluster spend records in one slot of a route that does not settle, so that
    /// a later slot's denial can give that slot's charges back: `prefix#step:{TAG}:ID`. Not
    /// under `holdPrefix`: `charge-gate status` lists only the holds of settled requests.
    public func stepHold(id: String, tag: String) -> String {
        prefix + "#step:{" + tag + "}:" + id
    }

    /// A plan record no one writes, in the slot whose tag is `tag`: a cluster spend's slot
    /// outside the subject's reads it (always missing) with a table of the one plan resolved at
    /// home, so that its events and hold name that plan: `prefix#noplan:{TAG}`.
    public func absentPlan(tag: String) -> String {
        prefix + "#noplan:{" + tag + "}"
    }
}
