import ChargeGateCore

/// The operations of `ChargeScript` (charge.lua): the keys and arguments each takes are
/// built here and nowhere else.
extension RedisStore {
    // MARK: Argument layout
    //
    // Layout (`n` = number of bucket keys; every number is a decimal integer string):
    //
    // `op = "spend"`
    // - `KEYS[1...n]`: the bucket keys, in route order; then, when `ARGV[3] == "1"`, the
    //   idempotency record and the subject's record counter; then the events stream when
    //   `ARGV[5] > 0`.
    // - `ARGV[1]` `"spend"`, `ARGV[2]` n, `ARGV[3]` idempotency flag (`"1"`/`"0"`), `ARGV[4]`
    //   idempotency TTL ms, `ARGV[5]` events MAXLEN (`"0"`: no event), `ARGV[6...10]` the event's
    //   subject, route, method, uri, idempotency key, `ARGV[11...13]` the request's fingerprint,
    //   the free repeats allowed, the records one subject may create per TTL window (`""` without
    //   a record); then five per item i (at `13 + 5(i-1)`): pool id, max (`""`: unlimited),
    //   interval ms (`""`: never refills), cost, expires (`"1"`/`"0"`).
    // - The idempotency record is `FINGERPRINT:REPEATS` (`IdempotencyRecord`): another
    //   fingerprint answers `reused`; fewer repeats than allowed answers `repeated` and counts one
    //   (the TTL kept); otherwise the spend is decided afresh. A fresh key that is spent is
    //   recorded with 0 repeats when the counter (`INCR`, expiring with the first record of the
    //   window) is within the bound.
    // - Returns `{"allowed", now, remaining..., fullAt...}` (fullAt `-1`: never refills, or
    //   unlimited), `{"repeated", now}`, `{"reused", now}`,
    //   `{"out", item0, retryAfterMs}` or `{"credits", item0, available, required}` (item0 is the
    //   0-based item index).
    //
    // `op = "topoff"`: `KEYS[1]` the bucket; `ARGV[2]` max (`""`: unlimited, treated as 0),
    // `ARGV[3]` interval ms (`""`: none), `ARGV[4]` expires, `ARGV[5]` amount (`""`: fill).
    // Returns `{now, current, lastUpdatedAt}`.
    //
    // `op = "peek"` (writes nothing): `KEYS` the buckets. Returns `{now, state...}` where a state
    // is `{current, lastUpdatedAt}` or nil for a missing key.
    //
    // A key whose value is not `{"current":N,"lastUpdatedAt":MS}` with integers (|N| < 2^53)
    // makes the script answer the error `CHARGEGATE corrupt bucket state at key K` without writing.
    // The clock is Redis `TIME`.

    /// Spends every item or none in one script run, with the idempotency check and record and
    /// the event appends (layout above). With `replicaWait`, a spend that wrote (allowed, or a
    /// counted repeat) then waits on the same connection (`WAIT`) until that many replicas have
    /// it; fewer in time is `.unavailable` (the request gets a 503; the spend stays on the master).
    public func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome {
        let outcome = try decide(request)
        guard let replicaWait else { return outcome }
        switch outcome {
        case .allowed, .repeated:
            let acknowledged = try connection.waitForReplicas(replicaWait.replicas, timeoutMs: replicaWait.timeoutMs)
            if acknowledged < replicaWait.replicas {
                connection.observer?.replicasMissing(acknowledged: acknowledged, wanted: replicaWait.replicas)
                let noun = replicaWait.replicas == 1 ? "replica" : "replicas"
                throw .unavailable(
                    "spend not acknowledged by \(replicaWait.replicas) \(noun) within \(replicaWait.timeoutMs) ms (\(acknowledged) did)")
            }
            return outcome
        case .keyReused, .outOfCharge, .insufficientCredits:
            return outcome  // nothing was written
        }
    }

    /// One run of the script's spend (layout above).
    private func decide(_ request: SpendRequest) throws(StoreError) -> SpendOutcome {
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
                item >= 0, item < Int64(request.items.count)
            else { break }
            return .outOfCharge(item: Int(item), retryAfterMs: wait)
        case "credits":
            guard numbers.count == 3, let item = numbers[0], let available = numbers[1], let required = numbers[2],
                item >= 0, item < Int64(request.items.count)
            else { break }
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
            let now = parts[0].integer, let current = parts[1].integer, let last = parts[2].integer
        else {
            throw .protocolError("unexpected top-off reply")
        }
        return (now, BucketState(current: current, lastUpdatedAt: last))
    }

    /// Runs `ChargeScript` by its SHA with the keys and arguments `fill` appends (numkeys
    /// first), loading it with `EVAL` only when Redis answers `NOSCRIPT` (the script did not
    /// run, so sending it again cannot double-spend). An error reply becomes `.protocolError`
    /// with Redis's text. The command is encoded into this store's reused buffer.
    func runScript(_ fill: (inout RESPCommand) throws(StoreError) -> Void) throws(StoreError) -> RedisValue {
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
