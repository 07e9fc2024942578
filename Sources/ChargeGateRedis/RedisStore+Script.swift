import ChargeGateCore

/// The operations of `ChargeScript` (charge.lua): the keys and arguments each takes are
/// built here and nowhere else.
extension RedisStore {
    // MARK: Argument layout
    //
    // Layout (`n` = number of bucket keys, `P` = number of plans; every number is a decimal
    // integer string, `""` stands for none):
    //
    // An item is 11 arguments: pool id, max (`""`: unlimited), interval ms (`""`: never
    // refills), cost, expires (`"1"`/`"0"`), period (`""`, `day`, `week`, `month`), period anchor
    // ms, tracks its cap (`"1"`/`"0"`: the state records `"max"` and is rebased when it changes),
    // the pool's own max (`""`: unlimited; what a state without `"max"` was counted against),
    // the largest max of any plan (`""`: none; what a rebased state counts as used at most),
    // the slowest interval of any plan (`""`: none; what a per-subject bucket's TTL counts in).
    //
    // `op = "spend"`
    // - `KEYS[1...n]`: the bucket keys, in route order; then, when `ARGV[3] == "1"`, the
    //   idempotency record and the subject's record counter; then, when `P > 0`, the subject's
    //   plan record; then the events stream when `ARGV[5] > 0`.
    // - `ARGV[1]` `"spend"`, `ARGV[2]` n, `ARGV[3]` idempotency flag, `ARGV[4]` idempotency TTL
    //   ms, `ARGV[5]` events MAXLEN (`"0"`: no event), `ARGV[6...10]` the event's subject, route,
    //   method, uri, idempotency key, `ARGV[11...13]` the request's fingerprint, the free repeats
    //   allowed, the records one subject may create per TTL window (`""` without a record),
    //   `ARGV[14]` the plan table (`PlanChoice.table`, `""` without plans: P = its lines),
    //   `ARGV[15]` the fallback plan and `ARGV[16]` the default plan (0-based); then the n items,
    //   item i at `ARGV[16 + 11(i-1) + 1 ... 16 + 11i]`.
    // - With plans, the plan record (`PlanRecord`) picks the plan: a stored id the config
    //   knows, else the default when a record is there, else the fallback; the items take that
    //   plan's max and interval, and per-subject period pools the record's anchor.
    // - The idempotency record is `FINGERPRINT:REPEATS` (`IdempotencyRecord`): another
    //   fingerprint answers `reused`; fewer repeats than allowed answers `repeated` and counts one
    //   (the TTL kept); otherwise the spend is decided afresh. A fresh key that is spent is
    //   recorded with 0 repeats when the counter (`INCR`, expiring with the first record of the
    //   window) is within the bound.
    // - Every reply starts `{tag, now}`, then, with plans, `code` = plan · 4 + stored · 2 + more:
    //   the plan used (0-based), whether it is the stored one, and, when `more` is 1, two more
    //   fields: a stored id the config does not know (nil: none; `""`: an unreadable record) and
    //   the stored anchor (-1: none). Then for `allowed`, `remaining...` and
    //   `fullAt...` (fullAt `-1`: never refills, or unlimited); for `out`, `item0, retryAfterMs`;
    //   for `credits`, `item0, available, required` (item0 is the 0-based item index); nothing
    //   more for `repeated` and `reused`.
    //
    // `op = "topoff"`: `KEYS[1]` the bucket; `ARGV[2...12]` the item (max `""` counts as 0),
    // `ARGV[13]` amount (`""`: fill). Returns `{now, current, lastUpdatedAt, max or nil}`.
    //
    // `op = "peek"` (writes nothing): `KEYS` the buckets. Returns `{now, state...}` where a state
    // is `{current, lastUpdatedAt, max or nil}` or nil for a missing key.
    //
    // A key whose value is not `{"current":N,"lastUpdatedAt":MS}` (with an optional `"max":M`)
    // with integers (|N| < 2^53) makes the script answer the error
    // `CHARGEGATE corrupt bucket state at key K` without writing. The clock is Redis `TIME`;
    // periods are `period.lua`'s `period_window` (the twin of `BillingPeriod.window`).

    /// Spends every item or none in one script run, with the plan, the idempotency check and
    /// record and the event appends (layout above). With `replicaWait`, a spend that wrote
    /// (allowed, or a counted repeat) then waits on the same connection (`WAIT`) until that many
    /// replicas have it; fewer in time is `.unavailable` (the request gets a 503; the spend stays
    /// on the master).
    public func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        let result = try decide(request)
        guard let replicaWait else { return result }
        switch result.outcome {
        case .allowed, .repeated:
            let acknowledged = try connection.waitForReplicas(replicaWait.replicas, timeoutMs: replicaWait.timeoutMs)
            if acknowledged < replicaWait.replicas {
                connection.observer?.replicasMissing(acknowledged: acknowledged, wanted: replicaWait.replicas)
                let noun = replicaWait.replicas == 1 ? "replica" : "replicas"
                throw .unavailable(
                    "spend not acknowledged by \(replicaWait.replicas) \(noun) within \(replicaWait.timeoutMs) ms (\(acknowledged) did)")
            }
            return result
        case .keyReused, .outOfCharge, .insufficientCredits:
            return result  // nothing was written
        }
    }

    /// Appends one item's 11 arguments (layout above).
    private static func appendItem(_ item: SpendItem, to command: inout RESPCommand) throws(StoreError) {
        command.append(item.poolId)
        try appendExact(item.max, "max", to: &command)
        try appendExact(item.intervalMs, "interval", to: &command)
        try appendExact(item.cost, "cost", to: &command)
        command.append(item.expires ? one : zero)
        if let period = item.period { command.append(period.rawValue) } else { command.append(empty) }
        try appendExact(item.anchor, "anchor", to: &command)
        command.append(item.tracksLimit ? one : zero)
        try appendExact(item.tracksLimit ? item.baseMax : nil, "max", to: &command)
        try appendExact(item.tracksLimit ? item.largestMax : nil, "max", to: &command)
        try appendExact(item.slowestIntervalMs, "interval", to: &command)
    }

    /// One run of the script's spend (layout above).
    private func decide(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        let reply = try runScript { (command: inout RESPCommand) throws(StoreError) in
            let idem = request.idempotency
            let plan = request.plan
            let stream = request.eventsMaxLen > 0 ? request.eventsKey : nil
            command.append(request.items.count + (idem == nil ? 0 : 2) + (plan == nil ? 0 : 1) + (stream == nil ? 0 : 1))
            for item in request.items { command.append(item.key) }
            if let idem {
                command.append(idem.key)
                command.append(idem.quotaKey)
            }
            if let plan { command.append(plan.recordKey) }
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
            if let plan {
                guard plan.limits.allSatisfy({ $0.count == request.items.count }) else {
                    throw .protocolError("plan limits do not match the items")
                }
                command.append(plan.table)
            } else {
                command.append(Self.empty)
            }
            command.append(plan?.fallback ?? 0)
            command.append(plan?.defaultPlan ?? 0)
            for item in request.items { try Self.appendItem(item, to: &command) }
        }
        return try Self.spendResult(reply, for: request)
    }

    /// The states at `keys` and Redis's clock, read by the script (same decoder as spend).
    public func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) {
        let reply = try runScript { (command: inout RESPCommand) throws(StoreError) in
            command.append(keys.count)
            for key in keys { command.append(key) }
            command.append(Self.peekOp)
        }
        return try Self.peekResult(reply, count: keys.count)
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
            try Self.appendItem(item, to: &command)
            command.append(amountText)
        }
        return try Self.topOffResult(reply)
    }

    // MARK: Replies
    //
    // Every number of a reply is read within the range it can have (`RedisValue.integer(in:)`);
    // anything else makes the whole reply a `.protocolError`, so the request gets a 503. A reply
    // the script never gives (a Redis that is not what it seems, a script changed by hand) is
    // refused here, never trapped on later (`now + retryAfterMs`) nor passed on to a client.

    /// A number of a bucket state (charges, `lastUpdatedAt`, a recorded cap): what the script's
    /// doubles hold exactly, as it checks when it reads a state.
    static let exactRange: Range<Int64> = (1 - exactLimit)..<exactLimit
    /// Redis's clock (epoch ms), and a count of charges a spend answers.
    static let countRange: Range<Int64> = 0..<exactLimit
    /// A wait or a time ahead (`retryAfterMs`, `fullAt`): the clock plus at most a full refill,
    /// which the config bounds to 2^53 ms.
    static let aheadRange: Range<Int64> = 0..<(2 * exactLimit)

    /// `value` as a number within `range`, else the reply `reply` is refused naming `what`.
    private static func number(_ value: RedisValue, _ range: Range<Int64>, _ what: String, _ reply: String) throws(StoreError) -> Int64 {
        guard let number = value.integer(in: range) else {
            throw .protocolError("\(reply) reply: \(what) is not a whole number from \(range.lowerBound) to \(range.upperBound - 1)")
        }
        return number
    }

    /// The spend reply to `request` (layout above), every number within its range.
    static func spendResult(_ reply: RedisValue, for request: SpendRequest) throws(StoreError) -> SpendResult {
        guard let parts = reply.elements, parts.count >= 2, let tag = parts[0].text else {
            throw .protocolError("unexpected spend reply")
        }
        let now = try number(parts[1], countRange, "now", "spend")
        var head = 2
        var use: PlanUse?
        if let plan = request.plan {
            guard parts.count >= 3 else { throw .protocolError("unexpected spend reply") }
            let code = try number(parts[2], 0..<(4 * Int64(plan.ids.count)), "plan code", "spend")
            use = PlanUse(index: Int(code / 4), stored: code & 2 != 0)
            head = 3
            if code & 1 != 0 {
                guard parts.count >= 5 else { throw .protocolError("unexpected spend reply") }
                let anchor = try number(parts[4], -1..<exactLimit, "anchor", "spend")
                use?.unknownStored = parts[3].isNull ? nil : parts[3].text
                use?.anchor = anchor < 0 ? nil : anchor
                head = 5
            }
        }
        let rest = parts[head...]
        let n = request.items.count
        let items = 0..<Int64(n)
        switch tag {
        case "allowed":
            guard rest.count == 2 * n else { break }
            var results: [ItemResult] = []
            results.reserveCapacity(n)
            for value in rest.prefix(n) {
                results.append(ItemResult(remaining: try number(value, countRange, "remaining", "spend"), fullAt: nil))
            }
            for (i, value) in zip(results.indices, rest.suffix(n)) {
                let full = try number(value, -1..<aheadRange.upperBound, "fullAt", "spend")
                results[i].fullAt = full < 0 ? nil : full
            }
            return SpendResult(.allowed(results), now: now, plan: use)
        case "repeated":
            guard rest.isEmpty else { break }
            return SpendResult(.repeated, now: now, plan: use)
        case "reused":
            guard rest.isEmpty else { break }
            return SpendResult(.keyReused, now: now, plan: use)
        case "out":
            guard rest.count == 2 else { break }
            let item = try number(rest[head], items, "item", "spend")
            let wait = try number(rest[head + 1], aheadRange, "retryAfterMs", "spend")
            return SpendResult(.outOfCharge(item: Int(item), retryAfterMs: wait), now: now, plan: use)
        case "credits":
            guard rest.count == 3 else { break }
            let item = try number(rest[head], items, "item", "spend")
            let available = try number(rest[head + 1], exactRange, "available", "spend")
            let required = try number(rest[head + 2], countRange, "required", "spend")
            return SpendResult(.insufficientCredits(item: Int(item), available: available, required: required), now: now, plan: use)
        default:
            break
        }
        throw .protocolError("unexpected spend reply '\(tag)'")
    }

    /// A bucket state of a reply: `{current, lastUpdatedAt, max or nil}`.
    private static func state(_ parts: ArraySlice<RedisValue>, _ reply: String) throws(StoreError) -> BucketState {
        guard parts.count == 3, let first = parts.indices.first else { throw .protocolError("unexpected \(reply) reply") }
        let current = try number(parts[first], exactRange, "current", reply)
        let last = try number(parts[first + 1], exactRange, "lastUpdatedAt", reply)
        let limit = parts[first + 2].isNull ? nil : try number(parts[first + 2], exactRange, "max", reply)
        return BucketState(current: current, lastUpdatedAt: last, limit: limit)
    }

    /// The peek reply for `count` keys: Redis's clock, then a state or nil per key.
    static func peekResult(_ reply: RedisValue, count: Int) throws(StoreError) -> (now: Int64, states: [BucketState?]) {
        guard let parts = reply.elements, parts.count == count + 1 else { throw .protocolError("unexpected peek reply") }
        let now = try number(parts[0], countRange, "now", "peek")
        var states: [BucketState?] = []
        states.reserveCapacity(count)
        for part in parts.dropFirst() {
            if part.isNull {
                states.append(nil)
                continue
            }
            guard let triple = part.elements else { throw .protocolError("unexpected peek reply") }
            states.append(try state(triple[...], "peek"))
        }
        return (now, states)
    }

    /// The top-off reply: Redis's clock, then the new state.
    static func topOffResult(_ reply: RedisValue) throws(StoreError) -> (now: Int64, state: BucketState) {
        guard let parts = reply.elements, parts.count == 4 else { throw .protocolError("unexpected top-off reply") }
        let now = try number(parts[0], countRange, "now", "top-off")
        return (now, try state(parts[1...], "top-off"))
    }

    /// The plan record at `key` (`GET`); nil when none.
    public func plan(at key: String) throws(StoreError) -> PlanRecord? {
        let reply = try connection.command(["GET", key])
        if case .error(let message) = reply { throw .protocolError(message) }
        if reply.isNull { return nil }
        guard let text = reply.text else { throw .protocolError("unexpected GET reply") }
        return PlanRecord(text: text)
    }

    /// Stores `record` at `key` (`SET`, no expiry).
    public func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) {
        let reply = try connection.command(["SET", key, record.text])
        if case .error(let message) = reply { throw .protocolError(message) }
        guard reply.text == "OK" else { throw .protocolError("unexpected SET reply") }
    }

    /// Removes the plan record at `key` (`DEL`); whether there was one.
    @discardableResult
    public func clearPlan(at key: String) throws(StoreError) -> Bool {
        let reply = try connection.command(["DEL", key])
        if case .error(let message) = reply { throw .protocolError(message) }
        guard let count = reply.integer else { throw .protocolError("unexpected DEL reply") }
        return count > 0
    }

    /// Runs `ChargeScript` by its SHA with the keys and arguments `fill` appends (numkeys
    /// first), loading it with `EVAL` only when Redis answers `NOSCRIPT` (the script did not
    /// run, so sending it again cannot double-spend). An error reply becomes `.protocolError`
    /// with Redis's text. The command is encoded into this store's reused buffer.
    func runScript(_ fill: (inout RESPCommand) throws(StoreError) -> Void) throws(StoreError) -> RedisValue {
        scratch.removeAll()
        scratch.append(Self.evalshaName)
        scratch.append(script.sha)
        let arguments = scratch.mark
        try fill(&scratch)
        var reply = try connection.command(&scratch)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            var eval = RESPCommand(capacity: script.source.count + 512)
            eval.append(Self.evalName)
            eval.append(script.source)
            eval.append(argumentsOf: scratch, after: arguments)
            reply = try connection.command(&eval)
        }
        if case .error(let message) = reply { throw .protocolError(message) }
        return reply
    }

    /// `value` within 1 ... 2^53 - 1, where the script's doubles hold it exactly.
    static func clampExact(_ value: Int64) -> Int64 {
        Swift.min(Swift.max(1, value), exactLimit - 1)
    }

    /// Appends `value` in decimal (`""` for nil) when the script's doubles hold it exactly.
    static func appendExact(_ value: Int64?, _ what: String, to command: inout RESPCommand) throws(StoreError) {
        guard let value else {
            command.append(empty)
            return
        }
        guard value > -exactLimit, value < exactLimit else { throw .protocolError("\(what) out of range") }
        command.append(value)
    }
}
