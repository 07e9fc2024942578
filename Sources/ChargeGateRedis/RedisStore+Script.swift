import ChargeGateCore

/// The operations of `ChargeScript` (charge.lua): the keys and arguments each takes are
/// built here and nowhere else.
extension RedisStore {
    // MARK: Keys and arguments
    //
    // Where each argument and reply field sits is `SpendLayout` (by name, with what it holds;
    // docs/redis.md's tables are rendered from it); the keys and the rules are here.
    //
    // `op = "spend"`
    // - `KEYS`: the n bucket keys, in route order; then, when `idempotent` is `"1"`, the
    //   idempotency record and the subject's record counter; then, when the plan table has
    //   lines (P > 0), the subject's plan record; then the events stream when `eventsMaxLen` > 0;
    //   then, when the spend records a hold (a settled route), the hold (`KeySpace.hold(id:)`),
    //   whose arguments follow the items (`SpendLayout.HoldArgument`).
    // - With plans, the plan record (`PlanRecord`) picks the plan: a stored id the config
    //   knows, else the default when a record is there, else the fallback; the items take that
    //   plan's max and interval, and per-subject period pools the record's anchor.
    // - The idempotency record is `FINGERPRINT:REPEATS` (`IdempotencyRecord`): another
    //   fingerprint answers `reused`; fewer repeats than allowed answers `repeated` and counts one
    //   (the TTL kept); otherwise the spend is decided afresh. A fresh key that is spent is
    //   recorded with 0 repeats when the counter (`INCR`, expiring with the first record of the
    //   window) is within the bound.
    // - An allowed spend with a hold records it (`HoldRecord.opened`, JSON: docs/redis.md, "The
    //   hold record") with `SET ... PX holdTtl NX`: a live hold under the same id is kept. The
    //   spend's events then carry `hold`. A repeat or a denial records none.
    //
    // `op = "topoff"`: `KEYS[1]` the bucket; the item (max `""` counts as 0), then the amount
    // (`""`: fill). Returns `{now, current, lastUpdatedAt, max or nil}`.
    //
    // `op = "peek"` (writes nothing): `KEYS` the buckets. Returns `{now, state...}` where a state
    // is `{current, lastUpdatedAt, max or nil}` or nil for a missing key.
    //
    // Every number is a decimal integer string, `""` stands for none. A key whose value is not
    // `{"current":N,"lastUpdatedAt":MS}` (with an optional `"max":M`) with integers (|N| < 2^53)
    // makes the script answer the error `CHARGEGATE corrupt bucket state at key K` without
    // writing. The clock is Redis `TIME`; periods are `period.lua`'s `period_window` (the twin
    // of `BillingPeriod.window`).

    /// Spends every item or none in one script run, with the plan, the idempotency check and
    /// record and the event appends (keys above, arguments `SpendLayout`). With `replicaWait`, a spend that wrote
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
        case .keyReused, .holdVoided, .outOfCharge, .insufficientCredits:
            return result  // nothing was written
        }
    }

    /// Appends one item's fields, in `SpendLayout.ItemField`'s order.
    static func appendItem(_ item: SpendItem, to command: inout RESPCommand) throws(StoreError) {
        for field in SpendLayout.ItemField.allCases {
            switch field {
            case .pool: command.append(item.poolId)
            case .max: try appendExact(item.max, "max", to: &command)
            case .interval: try appendExact(item.intervalMs, "interval", to: &command)
            case .cost: try appendExact(item.cost, "cost", to: &command)
            case .expires: command.append(item.expires ? one : zero)
            case .period: if let period = item.period { command.append(period.rawValue) } else { command.append(empty) }
            case .anchor: try appendExact(item.anchor, "anchor", to: &command)
            case .tracksLimit: command.append(item.tracksLimit ? one : zero)
            case .baseMax: try appendExact(item.tracksLimit ? item.baseMax : nil, "max", to: &command)
            case .largestMax: try appendExact(item.tracksLimit ? item.largestMax : nil, "max", to: &command)
            case .slowestInterval: try appendExact(item.slowestIntervalMs, "interval", to: &command)
            }
        }
    }

    /// One run of the script's spend (`appendSpend`).
    private func decide(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        let reply = try runScript { (command: inout RESPCommand) throws(StoreError) in try Self.appendSpend(request, to: &command) }
        return try Self.spendResult(reply, for: request)
    }

    /// Appends the spend's keys (their count first), then its arguments, items and hold in
    /// `SpendLayout`'s order.
    /// `streamTag`: a cluster slot's tag: the stream is the request's placed in that slot
    /// (`KeySpace.events(_:tag:)`), written without making its key.
    static func appendSpend(
        _ request: SpendRequest, to command: inout RESPCommand, probe: Bool = false, streamTag: String? = nil
    ) throws(StoreError) {
        let idem = request.idempotency
        let plan = request.plan
        let stream = request.eventsMaxLen > 0 ? request.eventsKey : nil
        let hold = request.hold
        command.append(
            request.items.count + (idem == nil ? 0 : 2) + (plan == nil ? 0 : 1) + (stream == nil ? 0 : 1) + (hold == nil ? 0 : 1))
        for item in request.items { command.append(item.key) }
        if let idem {
            command.append(idem.key)
            command.append(idem.quotaKey)
        }
        if let plan { command.append(plan.recordKey) }
        if let stream {
            if let streamTag { command.append(stream, tagged: streamTag) } else { command.append(stream) }
        }
        if let hold { command.append(hold.key) }
        if let plan, !plan.limits.allSatisfy({ $0.count == request.items.count }) {
            throw .protocolError("plan limits do not match the items")
        }
        let context = request.context
        for argument in SpendLayout.Argument.allCases {
            switch argument {
            case .op: command.append(probe ? Self.probeOp : Self.spendOp)
            case .count: command.append(request.items.count)
            case .idempotent: command.append(idem == nil ? Self.zero : Self.one)
            case .idempotencyTtl: command.append(Self.clampExact(idem?.ttlMs ?? 1))
            case .eventsMaxLen: command.append(stream == nil ? 0 : Self.clampExact(Int64(request.eventsMaxLen)))
            case .subject: command.append(context.subject)
            case .route: command.append(context.route)
            case .method: command.append(context.method)
            case .uri: command.append(context.uri)
            case .idempotencyKey: command.append(context.idempotencyKey)
            case .fingerprint: if let idem { command.append(idem.fingerprint) } else { command.append(Self.empty) }
            case .maxRepeats: if let idem { command.append(Self.clampExact(idem.maxRepeats)) } else { command.append(Self.empty) }
            case .maxRecords: if let idem { command.append(Self.clampExact(idem.maxRecords)) } else { command.append(Self.empty) }
            case .planTable: if let plan { command.append(plan.table) } else { command.append(Self.empty) }
            case .fallbackPlan: command.append(plan?.fallback ?? 0)
            case .defaultPlan: command.append(plan?.defaultPlan ?? 0)
            }
        }
        for item in request.items { try Self.appendItem(item, to: &command) }
        if let hold { appendHold(hold, items: request.items.count, to: &command) }
    }

    /// Appends a hold's arguments (`SpendLayout.HoldArgument`), after the items. Kept out of
    /// line: only a settled route's spend runs it, and inlined it made every spend's encoder
    /// larger (two of its number appends then went out of line: about 170 instructions a spend).
    @inline(never)
    static func appendHold(_ hold: HoldRequest, items: Int, to command: inout RESPCommand) {
        for argument in SpendLayout.HoldArgument.allCases {
            switch argument {
            case .id: command.append(hold.id)
            case .ttl: command.append(Self.clampExact(hold.keyTtlMs))
            case .window: command.append(Self.clampExact(hold.windowMs))
            case .policy: command.append(hold.policy.storedText)
            case .metered: command.append(Self.meteredFlags(hold, items: items))
            }
        }
    }

    /// `SpendLayout.Argument.holdMetered`: per item `1` when the hold settles it to the amount.
    static func meteredFlags(_ hold: HoldRequest, items: Int) -> [UInt8] {
        (0..<items).map { $0 < hold.metered.count && hold.metered[$0] ? UInt8(ascii: "1") : UInt8(ascii: "0") }
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
        let reply = try runScript { (command: inout RESPCommand) throws(StoreError) in
            try Self.appendTopOff(item, amount: amount, to: &command)
        }
        return try Self.topOffResult(reply)
    }

    /// A top-off's keys and arguments (numkeys first), for `ChargeScript` on one node or on the
    /// item's slot.
    static func appendTopOff(_ item: SpendItem, amount: Int64?, to command: inout RESPCommand) throws(StoreError) {
        var amountText = ""
        if let amount {
            // Any amount past the cap fills, so clamping to what Lua holds exactly changes nothing.
            guard amount > -exactLimit else { throw .protocolError("amount out of range") }
            amountText = String(Swift.min(amount, exactLimit - 1))
        }
        command.append(1)
        command.append(item.key)
        command.append(topOffOp)  // ARGV[1], then from `SpendLayout.topOffItemBase`
        try appendItem(item, to: &command)
        command.append(amountText)  // `SpendLayout.topOffAmount`
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
    static func number(_ value: RedisValue, _ range: Range<Int64>, _ what: String, _ reply: String) throws(StoreError) -> Int64 {
        guard let number = value.integer(in: range) else {
            throw .protocolError("\(reply) reply: \(what) is not a whole number from \(range.lowerBound) to \(range.upperBound - 1)")
        }
        return number
    }

    /// The spend reply to `request` (`SpendLayout.Head`, then the tag's `fields`), every
    /// number within its range.
    static func spendResult(_ reply: RedisValue, for request: SpendRequest) throws(StoreError) -> SpendResult {
        typealias Head = SpendLayout.Head
        guard let parts = reply.elements, parts.count > Head.now.index, let tag = parts[Head.tag.index].text else {
            throw .protocolError("unexpected spend reply")
        }
        let now = try number(parts[Head.now.index], countRange, "now", "spend")
        var head = Head.plan.index
        var use: PlanUse?
        if let plan = request.plan {
            guard parts.count > Head.plan.index else { throw .protocolError("unexpected spend reply") }
            let code = try number(parts[Head.plan.index], 0..<(4 * Int64(plan.ids.count)), "plan code", "spend")
            use = PlanUse(index: Int(code / 4), stored: code & 2 != 0)
            head = Head.plan.index + 1
            if code & 1 != 0 {
                guard parts.count > Head.anchor.index else { throw .protocolError("unexpected spend reply") }
                let anchor = try number(parts[Head.anchor.index], -1..<exactLimit, "anchor", "spend")
                use?.unknownStored = parts[Head.unknownPlan.index].isNull ? nil : parts[Head.unknownPlan.index].text
                use?.anchor = anchor < 0 ? nil : anchor
                head = Head.anchor.index + 1
            }
        }
        let n = request.items.count
        let items = 0..<Int64(n)
        if let layout = SpendLayout.Tag(named: tag), let body = ReplyBody(parts[head...], layout, items: n) {
            switch layout {
            case .allowed:
                var results: [ItemResult] = []
                results.reserveCapacity(n)
                for value in body.values(.remaining) {
                    results.append(ItemResult(remaining: try number(value, countRange, "remaining", "spend"), fullAt: nil))
                }
                for (i, value) in zip(results.indices, body.values(.fullAt)) {
                    let full = try number(value, -1..<aheadRange.upperBound, "fullAt", "spend")
                    results[i].fullAt = full < 0 ? nil : full
                }
                return SpendResult(.allowed(results), now: now, plan: use)
            case .repeated:
                return SpendResult(.repeated, now: now, plan: use)
            case .reused:
                return SpendResult(.keyReused, now: now, plan: use)
            case .void:
                return SpendResult(.holdVoided, now: now, plan: use)
            case .fresh:
                throw .protocolError("unexpected spend reply 'fresh' (a probe's)")
            case .out:
                let item = try number(body[.item], items, "item", "spend")
                let wait = try number(body[.retryAfterMs], aheadRange, "retryAfterMs", "spend")
                return SpendResult(.outOfCharge(item: Int(item), retryAfterMs: wait), now: now, plan: use)
            case .credits:
                let item = try number(body[.item], items, "item", "spend")
                let available = try number(body[.available], exactRange, "available", "spend")
                let required = try number(body[.required], countRange, "required", "spend")
                return SpendResult(.insufficientCredits(item: Int(item), available: available, required: required), now: now, plan: use)
            }
        }
        throw .protocolError("unexpected spend reply '\(tag)'")
    }

    /// The values after a spend reply's head, read by field name (`SpendLayout.Tag.fields`).
    private struct ReplyBody {
        let values: ArraySlice<RedisValue>
        let fields: [SpendLayout.ReplyField]
        let items: Int

        /// nil unless `values` are exactly the values `tag` has for `items` items.
        init?(_ values: ArraySlice<RedisValue>, _ tag: SpendLayout.Tag, items: Int) {
            let fields = tag.fields
            var count = 0
            for field in fields { count += field.width(items: items) }
            guard values.count == count else { return nil }
            self.values = values
            self.fields = fields
            self.items = items
        }

        /// Where `field`'s first value is.
        private func start(of field: SpendLayout.ReplyField) -> Int {
            var start = values.startIndex
            for other in fields {
                if other == field { break }
                start += other.width(items: items)
            }
            return start
        }

        /// The one value of `field`.
        subscript(_ field: SpendLayout.ReplyField) -> RedisValue { values[start(of: field)] }

        /// The values of `field`: n of a per-item field.
        func values(_ field: SpendLayout.ReplyField) -> ArraySlice<RedisValue> {
            let start = start(of: field)
            return values[start..<(start + field.width(items: items))]
        }
    }

    /// A bucket state of a reply: `{current, lastUpdatedAt, max or nil}` (`SpendLayout.StateField`).
    static func state(_ parts: ArraySlice<RedisValue>, _ reply: String) throws(StoreError) -> BucketState {
        typealias Field = SpendLayout.StateField
        guard parts.count == Field.allCases.count, let first = parts.indices.first else {
            throw .protocolError("unexpected \(reply) reply")
        }
        let current = try number(parts[first + Field.current.index], exactRange, "current", reply)
        let last = try number(parts[first + Field.lastUpdatedAt.index], exactRange, "lastUpdatedAt", reply)
        let recorded = parts[first + Field.max.index]
        let limit = recorded.isNull ? nil : try number(recorded, exactRange, "max", reply)
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
        guard let parts = reply.elements, parts.count == 1 + SpendLayout.StateField.allCases.count else {
            throw .protocolError("unexpected top-off reply")
        }
        let now = try number(parts[0], countRange, "now", "top-off")
        return (now, try state(parts[1...], "top-off"))
    }

    /// The plan record at `key` (`GET`); nil when none.
    public func plan(at key: String) throws(StoreError) -> PlanRecord? {
        try Self.planRecord(try connection.command(["GET", key]))
    }

    /// Stores `record` at `key` (`SET`, no expiry).
    public func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) {
        try Self.planStored(try connection.command(["SET", key, record.text]))
    }

    /// Removes the plan record at `key` (`DEL`); whether there was one.
    @discardableResult
    public func clearPlan(at key: String) throws(StoreError) -> Bool {
        try Self.planRemoved(try connection.command(["DEL", key]))
    }

    /// A plan record's `GET` reply: the record, nil when none.
    static func planRecord(_ reply: RedisValue) throws(StoreError) -> PlanRecord? {
        if case .error(let message) = reply { throw .protocolError(message) }
        if reply.isNull { return nil }
        guard let text = reply.text else { throw .protocolError("unexpected GET reply") }
        return PlanRecord(text: text)
    }

    /// A plan record's `SET` reply: `OK`, or the error it is.
    static func planStored(_ reply: RedisValue) throws(StoreError) {
        if case .error(let message) = reply { throw .protocolError(message) }
        guard reply.text == "OK" else { throw .protocolError("unexpected SET reply") }
    }

    /// A plan record's `DEL` reply: whether there was one.
    static func planRemoved(_ reply: RedisValue) throws(StoreError) -> Bool {
        if case .error(let message) = reply { throw .protocolError(message) }
        guard let count = reply.integer else { throw .protocolError("unexpected DEL reply") }
        return count > 0
    }

    /// Runs `ChargeScript` by its SHA with the keys and arguments `fill` appends (numkeys
    /// first), loading it with `EVAL` only when Redis answers `NOSCRIPT` (the script did not
    /// run, so sending it again cannot double-spend). An error reply becomes `.protocolError`
    /// with Redis's text. The command is encoded into this store's reused buffer.
    func runScript(_ fill: (inout RESPCommand) throws(StoreError) -> Void) throws(StoreError) -> RedisValue {
        try runScript(script, fill)
    }

    /// Runs `script` (`sha`, `source`) as `runScript(_:)` runs `ChargeScript`.
    func runScript(
        _ script: (sha: [UInt8], source: [UInt8]), _ fill: (inout RESPCommand) throws(StoreError) -> Void
    ) throws(StoreError) -> RedisValue {
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
