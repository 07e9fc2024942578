import ChargeGateCore

/// The production store: bucket state in Redis, shared by every responder on every node.
///
/// One per worker thread, owning one `RedisConnection` (so not `Sendable`). Every decision runs
/// in `ChargeScript` inside Redis, on Redis's clock: `EVALSHA`, and `EVAL` only after a
/// `NOSCRIPT` answer (which guarantees the script did not run, so that second send is safe).
public final class RedisStore: ChargeStore {
    /// The connection this store sends on (exposed for diagnostics and tests).
    public let connection: RedisConnection

    /// The command buffer every script run is encoded into (reused: no allocation per run).
    var scratch = RESPCommand()

    /// The script this store runs: the SHA-1 `EVALSHA` names and the source `EVAL` sends after
    /// a `NOSCRIPT`. Always `ChargeScript`, except in tests that make Redis answer what the real
    /// script never would (a reply out of range must be an error, never a trap).
    var script: (sha: [UInt8], source: [UInt8]) = (RedisStore.sha, RedisStore.source)

    /// The settle script this store runs (`SettleScript`; a stand-in in the same tests).
    var settleScript: (sha: [UInt8], source: [UInt8]) = (Array(SettleScript.sha1.utf8), Array(SettleScript.source.utf8))

    /// Arguments that never change, as bytes.
    static let evalshaName = Array("EVALSHA".utf8)
    static let sha = Array(ChargeScript.sha1.utf8)
    static let evalName = Array("EVAL".utf8)
    static let source = Array(ChargeScript.source.utf8)
    static let spendOp = Array("spend".utf8)
    static let peekOp = Array("peek".utf8)
    static let probeOp = Array("probe".utf8)
    static let topOffOp = Array("topoff".utf8)
    static let one = Array("1".utf8)
    static let zero = Array("0".utf8)
    static let empty: [UInt8] = []

    /// Largest magnitude the script's Lua numbers (doubles) hold exactly.
    static let exactLimit = Limits.exactInteger

    /// Replicas that must acknowledge each spend (`WAIT` on the same connection) and how long
    /// to wait for them; nil: no WAIT (config `redisMinReplicas`, `redisReplicaWaitMs`).
    public let replicaWait: ReplicaWait?

    /// `redisMinReplicas` and `redisReplicaWaitMs`.
    public struct ReplicaWait: Sendable, Equatable {
        /// Replicas that must acknowledge, at least 1.
        public var replicas: Int
        /// Milliseconds to wait for them, at least 1.
        public var timeoutMs: Int

        /// nil when `replicas` is 0 (no WAIT).
        public init?(replicas: Int, timeoutMs: Int) {
            guard replicas > 0 else { return nil }
            self.replicas = replicas
            self.timeoutMs = Swift.max(1, timeoutMs)
        }
    }

    /// A store on a new connection to `url` (connected on first use). With `allowEviction`
    /// false (the default), a Redis whose `maxmemory-policy` is not `noeviction` is refused. With
    /// a sentinel URL, `watch` is the process's shared `MasterWatch` (a private one when nil).
    public convenience init(
        url: RedisURL, timeoutMs: Int, observer: (any RedisObserver)? = nil, allowEviction: Bool = false,
        watch: MasterWatch? = nil, replicaWait: ReplicaWait? = nil
    ) {
        self.init(
            connection: RedisConnection(url: url, timeoutMs: timeoutMs, observer: observer, allowEviction: allowEviction, watch: watch),
            replicaWait: replicaWait)
    }

    /// A store sending on `connection`.
    public init(connection: RedisConnection, replicaWait: ReplicaWait? = nil) {
        self.connection = connection
        self.replicaWait = replicaWait
    }

    /// One page of the stream at `stream`: `XRANGE` in batches, filtering pool and subject here,
    /// until `limit` events match or the range ends; `after` is exclusive.
    public func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage {
        try Self.events(stream: stream, query) { (arguments: [String]) throws(StoreError) in try connection.command(arguments) }
    }

    /// One page of the stream at `stream` as `events(stream:_:)` reads it, each `XRANGE` sent
    /// with `send` (the cluster store routes it to the stream's slot).
    static func events(
        stream: String, _ query: EventQuery, send: ([String]) throws(StoreError) -> RedisValue
    ) throws(StoreError) -> EventPage {
        guard query.limit > 0 else { return EventPage(events: [], next: nil) }
        // Lower bound: just past `after` (exclusive), else `since` (ms), else the start.
        var start = "-"
        if let after = query.after, let id = EventID(after) {
            guard let next = Self.successor(id) else { return EventPage(events: [], next: nil) }
            start = next
        } else if let since = query.since {
            start = String(Swift.max(0, since))
        }
        var page: [UsageEvent] = []
        var lastScanned: String?
        while true {
            let wanted = query.limit - page.count  // one more than that shows whether more follow
            let batch = wanted >= 1000 ? 1000 : Swift.max(16, wanted + 1)
            let reply = try send(["XRANGE", stream, start, "+", "COUNT", String(batch)])
            if case .error(let message) = reply { throw .protocolError(message) }
            guard let entries = reply.elements else { throw .protocolError("unexpected XRANGE reply") }
            for entry in entries {
                let event = try Self.event(entry)
                if page.count == query.limit {
                    let more = query.until.map { event.time <= $0 } ?? true
                    return EventPage(events: page, next: more ? (page.last?.id ?? lastScanned) : nil)
                }
                if let until = query.until, event.time > until { return EventPage(events: page, next: nil) }
                lastScanned = event.id
                if let since = query.since, query.after == nil, event.time < since { continue }
                if let pool = query.pool, event.pool != pool { continue }
                if let subject = query.subject, event.context.subject != subject { continue }
                page.append(event)
            }
            guard entries.count == batch, let last = lastScanned, let id = EventID(last), let next = Self.successor(id) else {
                return EventPage(events: page, next: nil)
            }
            start = next
        }
    }

    // MARK: - Helpers

    /// The smallest stream id after `id` (XRANGE bounds are inclusive); nil past the last.
    private static func successor(_ id: EventID) -> String? {
        if id.seq < Int64.max { return "\(id.ms)-\(id.seq + 1)" }
        if id.ms < Int64.max { return "\(id.ms + 1)-0" }
        return nil
    }

    /// One XRANGE entry `[id, [field, value, ...]]` as a usage event.
    private static func event(_ entry: RedisValue) throws(StoreError) -> UsageEvent {
        guard let pair = entry.elements, pair.count == 2, let id = pair[0].text, let flat = pair[1].elements else {
            throw .protocolError("unexpected stream entry")
        }
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let name = flat[index].text, let value = flat[index + 1].text { fields[name] = value }
            index += 2
        }
        guard let pool = fields["pool"], let amount = fields["amount"].flatMap({ Int64($0) }),
            let time = fields["time"].flatMap({ Int64($0) })
        else {
            throw .protocolError("malformed usage event \(id)")
        }
        // Fields added with settlement: absent on a spend (and on every event written before).
        var kind = UsageEvent.Kind.spend
        if let text = fields["kind"] {
            guard let known = UsageEvent.Kind(rawValue: text) else { throw .protocolError("malformed usage event \(id)") }
            kind = known
        }
        var status: Int?
        if let text = fields["status"] {
            guard let value = Int(text) else { throw .protocolError("malformed usage event \(id)") }
            status = value
        }
        let context = EventContext(
            subject: fields["subject"] ?? "", route: fields["route"] ?? "", method: fields["method"] ?? "",
            uri: fields["uri"] ?? "", idempotencyKey: fields["idem"] ?? "", plan: fields["plan"] ?? "", hold: fields["hold"] ?? "")
        return UsageEvent(id: id, time: time, pool: pool, amount: amount, context: context, kind: kind, status: status)
    }
}
