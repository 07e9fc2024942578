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
    private var scratch = RESPCommand()

    /// Arguments that never change, as bytes.
    private static let evalshaName = Array("EVALSHA".utf8)
    private static let sha = Array(ChargeScript.sha1.utf8)
    private static let evalName = Array("EVAL".utf8)
    private static let source = Array(ChargeScript.source.utf8)
    private static let spendOp = Array("spend".utf8)
    private static let peekOp = Array("peek".utf8)
    private static let topOffOp = Array("topoff".utf8)
    private static let one = Array("1".utf8)
    private static let zero = Array("0".utf8)
    private static let empty: [UInt8] = []

    /// Largest magnitude the script's Lua numbers (doubles) hold exactly.
    private static let exactLimit: Int64 = 1 << 53

    /// A store on a new connection to `url` (connected on first use). With `allowEviction`
    /// false (the default), a Redis whose `maxmemory-policy` is not `noeviction` is refused.
    public convenience init(url: RedisURL, timeoutMs: Int, observer: (any RedisObserver)? = nil, allowEviction: Bool = false) {
        self.init(connection: RedisConnection(url: url, timeoutMs: timeoutMs, observer: observer, allowEviction: allowEviction))
    }

    /// A store sending on `connection`.
    public init(connection: RedisConnection) {
        self.connection = connection
    }

    /// Spends every item or none in one script run, with the idempotency check and record and
    /// the event appends (see `ChargeScript` for the layout).
    public func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome {
        let reply = try runScript { (command: inout RESPCommand) throws(StoreError) in
            let idem = request.idempotency
            let stream = request.eventsMaxLen > 0 ? request.eventsKey : nil
            command.append(request.items.count + (idem == nil ? 0 : 2) + (stream == nil ? 0 : 1))
            for item in request.items { command.append(item.key) }
            if let idem {
                command.append(idem.key)
                command.append(idem.quotaKey)
            }
            if let stream { command.append(stream) }
            let context = request.context
            command.append(Self.spendOp)
            command.append(request.items.count)
            command.append(idem == nil ? Self.zero : Self.one)
            command.append(Self.clampExact(idem?.ttlMs ?? 1))
            command.append(stream == nil ? 0 : Self.clampExact(Int64(request.eventsMaxLen)))
            command.append(context.subject)
            command.append(context.route)
            command.append(context.method)
            command.append(context.uri)
            command.append(context.idempotencyKey)
            if let idem {
                command.append(idem.fingerprint)
                command.append(Self.clampExact(idem.maxRepeats))
                command.append(Self.clampExact(idem.maxRecords))
            } else {
                command.append(Self.empty)
                command.append(Self.empty)
                command.append(Self.empty)
            }
            for item in request.items {
                command.append(item.poolId)
                try Self.appendExact(item.max, "max", to: &command)
                try Self.appendExact(item.intervalMs, "interval", to: &command)
                try Self.appendExact(item.cost, "cost", to: &command)
                command.append(item.expires ? Self.one : Self.zero)
            }
        }
        guard let parts = reply.elements, let tag = parts.first?.text else {
            throw .protocolError("unexpected spend reply")
        }
        let numbers = parts.dropFirst().map(\.integer)
        switch tag {
        case "allowed":
            let n = request.items.count
            guard numbers.count == 2 * n + 1, let now = numbers[0] else { break }
            var remaining: [Int64] = []
            var fullAt: [Int64?] = []
            remaining.reserveCapacity(n)
            fullAt.reserveCapacity(n)
            for value in numbers[1...n] {
                guard let value else { throw .protocolError("unexpected spend reply") }
                remaining.append(value)
            }
            for value in numbers[(n + 1)...] {
                guard let value else { throw .protocolError("unexpected spend reply") }
                fullAt.append(value < 0 ? nil : value)
            }
            return .allowed(now: now, remaining: remaining, fullAt: fullAt)
        case "repeated":
            guard numbers.count == 1, let now = numbers[0] else { break }
            return .repeated(now: now)
        case "reused":
            guard numbers.count == 1, let now = numbers[0] else { break }
            return .keyReused(now: now)
        case "out":
            guard numbers.count == 2, let item = numbers[0], let wait = numbers[1],
                  item >= 0, item < Int64(request.items.count) else { break }
            return .outOfCharge(item: Int(item), retryAfterMs: wait)
        case "credits":
            guard numbers.count == 3, let item = numbers[0], let available = numbers[1], let required = numbers[2],
                  item >= 0, item < Int64(request.items.count) else { break }
            return .insufficientCredits(item: Int(item), available: available, required: required)
        default:
            break
        }
        throw .protocolError("unexpected spend reply '\(tag)'")
    }

    /// The states at `keys` and Redis's clock, read by the script (same decoder as spend).
    public func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) {
        let reply = try runScript { (command: inout RESPCommand) throws(StoreError) in
            command.append(keys.count)
            for key in keys { command.append(key) }
            command.append(Self.peekOp)
        }
        guard let parts = reply.elements, parts.count == keys.count + 1, let now = parts[0].integer else {
            throw .protocolError("unexpected peek reply")
        }
        var states: [BucketState?] = []
        states.reserveCapacity(keys.count)
        for part in parts.dropFirst() {
            if part.isNull {
                states.append(nil)
                continue
            }
            guard let pair = part.elements, pair.count == 2, let current = pair[0].integer, let last = pair[1].integer else {
                throw .protocolError("unexpected peek reply")
            }
            states.append(BucketState(current: current, lastUpdatedAt: last))
        }
        return (now, states)
    }

    /// Adds `amount` (nil: fills) to one bucket in one script run; returns the new state.
    public func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) {
        var amountText = ""
        if let amount {
            // Any amount past the cap fills, so clamping to what Lua holds exactly changes nothing.
            guard amount > -Self.exactLimit else { throw .protocolError("amount out of range") }
            amountText = String(Swift.min(amount, Self.exactLimit - 1))
        }
        let reply = try runScript { (command: inout RESPCommand) throws(StoreError) in
            command.append(1)
            command.append(item.key)
            command.append(Self.topOffOp)
            try Self.appendExact(item.max, "max", to: &command)
            try Self.appendExact(item.intervalMs, "interval", to: &command)
            command.append(item.expires ? Self.one : Self.zero)
            command.append(amountText)
        }
        guard let parts = reply.elements, parts.count == 3,
              let now = parts[0].integer, let current = parts[1].integer, let last = parts[2].integer else {
            throw .protocolError("unexpected top-off reply")
        }
        return (now, BucketState(current: current, lastUpdatedAt: last))
    }

    /// One page of the stream at `stream`: `XRANGE` in batches, filtering pool and subject here,
    /// until `limit` events match or the range ends; `after` is exclusive.
    public func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage {
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
            let reply = try connection.command(["XRANGE", stream, start, "+", "COUNT", String(batch)])
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

    /// Runs `ChargeScript` by its SHA with the keys and arguments `fill` appends (numkeys
    /// first), loading it with `EVAL` only when Redis answers `NOSCRIPT` (the script did not
    /// run, so sending it again cannot double-spend). An error reply becomes `.protocolError`
    /// with Redis's text. The command is encoded into this store's reused buffer.
    private func runScript(_ fill: (inout RESPCommand) throws(StoreError) -> Void) throws(StoreError) -> RedisValue {
        scratch.removeAll()
        scratch.append(Self.evalshaName)
        scratch.append(Self.sha)
        let arguments = scratch.mark
        try fill(&scratch)
        var reply = try connection.command(&scratch)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            var eval = RESPCommand(capacity: Self.source.count + 512)
            eval.append(Self.evalName)
            eval.append(Self.source)
            eval.append(argumentsOf: scratch, after: arguments)
            reply = try connection.command(&eval)
        }
        if case .error(let message) = reply { throw .protocolError(message) }
        return reply
    }

    /// The smallest stream id after `id` (XRANGE bounds are inclusive); nil past the last.
    private static func successor(_ id: EventID) -> String? {
        if id.seq < Int64.max { return "\(id.ms)-\(id.seq + 1)" }
        if id.ms < Int64.max { return "\(id.ms + 1)-0" }
        return nil
    }

    /// `value` within 1 ... 2^53 - 1, where the script's doubles hold it exactly.
    private static func clampExact(_ value: Int64) -> Int64 {
        Swift.min(Swift.max(1, value), exactLimit - 1)
    }

    /// Appends `value` in decimal (`""` for nil) when the script's doubles hold it exactly.
    private static func appendExact(_ value: Int64?, _ what: String, to command: inout RESPCommand) throws(StoreError) {
        guard let value else {
            command.append(empty)
            return
        }
        guard value > -exactLimit, value < exactLimit else { throw .protocolError("\(what) out of range") }
        command.append(value)
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
              let time = fields["time"].flatMap({ Int64($0) }) else {
            throw .protocolError("malformed usage event \(id)")
        }
        let context = EventContext(
            subject: fields["subject"] ?? "", route: fields["route"] ?? "", method: fields["method"] ?? "",
            uri: fields["uri"] ?? "", idempotencyKey: fields["idem"] ?? "")
        return UsageEvent(id: id, time: time, pool: pool, amount: amount, context: context)
    }
}
