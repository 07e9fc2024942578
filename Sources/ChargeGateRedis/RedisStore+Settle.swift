import ChargeGateCore

/// Settlement on Redis: `SettleScript` (settle.lua) settles holds, up to `SettleLayout.chunk` a
/// run, and the open holds are listed for `charge-gate status`. The keys and arguments are built here and nowhere else.
extension RedisStore {
    // MARK: Keys and arguments
    //
    // Where each argument and reply field sits is `SettleLayout` (docs/redis.md's tables are
    // rendered from it). `KEYS`: the holds of one run (`KeySpace.hold(id:)`, up to
    // `SettleLayout.chunk`), then the event stream when `eventsMaxLen` > 0; each hold's arguments
    // after the one before's. The pools' keys are the hold record's (written by the spend that
    // opened it), so they are not in `KEYS`: one Redis node holds them all.
    //
    // The script reads the record (none: `unknown`, or `voided` when nginx's line says nothing
    // was delivered: `HOLD_VOID` is written, which charge.lua refuses to spend under; settled or
    // voided: `duplicate`; past `expiresAt`:
    // `expired`), resolves the report under the record's policy (`Settlement.resolve`; nginx's
    // line on a `by: app` route: `ignored`), marks the record settled (`SET ... KEEPTTL`: it
    // stays as a marker until its key expires), applies each pool's difference
    // (`Settlement.charges`, `Bucket.settle`) and appends one settle event per pool, all in one
    // run. A settlement is not followed by `WAIT` (`redisMinReplicas` guards spends).

    /// Settles one hold in one script run (keys and arguments above, `SettleLayout`).
    public func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome {
        let reply = try runScript(settleScript) { (command: inout RESPCommand) throws(StoreError) in
            Self.appendSettle([request][...], to: &command)
        }
        guard let replies = reply.elements, replies.count == 1 else { throw .protocolError("unexpected settle reply") }
        if case .error(let message) = replies[0] { throw .protocolError(message) }
        return try Self.settleResult(replies[0], pools: request.reportsPools)
    }

    /// Settles a batch in one round trip (the contract of `ChargeStore.settle(_:)` for a batch):
    /// runs of up to `SettleLayout.chunk` holds that share an event stream, one `EVALSHA` of
    /// settle.lua each, pipelined on this store's connection; each hold's reply decoded as
    /// `settle(_:)` decodes it. Each hold is settled atomically on its own; the batch is not
    /// (another client's commands may run between two runs).
    ///
    /// When Redis answers `NOSCRIPT` (its script cache was flushed), those runs did not happen:
    /// they are sent again in a second round trip behind a `SCRIPT LOAD`. A timeout or a lost
    /// connection leaves the requests whose replies were not read unanswered (`.failure` of that
    /// error); when no reply was read at all, the error is thrown.
    public func settle(_ requests: [SettleRequest]) throws(StoreError) -> [Result<SettleOutcome, StoreError>] {
        guard !requests.isEmpty else { return [] }
        let script = settleScript
        let runs = Self.settleRuns(requests)
        var results: [Result<SettleOutcome, StoreError>?] = Array(repeating: nil, count: requests.count)
        var commands = runs.map { run -> RESPCommand in
            var command = RESPCommand(capacity: 256 * run.count)
            command.append(Self.evalshaName)
            command.append(script.sha)
            Self.appendSettle(requests[run], to: &command)
            return command
        }
        func answer(_ run: Range<Int>, _ reply: RedisValue) {
            guard case .array(let replies) = reply, replies.count == run.count else {
                let error: StoreError
                if case .error(let message) = reply {
                    error = .protocolError(message)
                } else {
                    error = .protocolError("unexpected settle reply")
                }
                for index in run { results[index] = .failure(error) }
                return
            }
            for (index, element) in zip(run, replies) {
                results[index] = Self.settleResult(answering: element, pools: requests[index].reportsPools)
            }
        }
        let first = connection.pipeline(&commands)
        var missing: [Int] = []
        for (index, reply) in first.replies.enumerated() {
            if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
                missing.append(index)
            } else {
                answer(runs[index], reply)
            }
        }
        var failure = first.error
        if !missing.isEmpty {
            var again = [RESPCommand([Array("SCRIPT".utf8), Array("LOAD".utf8), script.source])]
            again.append(contentsOf: missing.map { commands[$0] })
            let second = connection.pipeline(&again)
            if let loaded = second.replies.first, case .error(let message) = loaded {
                for index in missing.flatMap({ runs[$0] }) { results[index] = .failure(.protocolError(message)) }
            } else {
                for (index, reply) in zip(missing, second.replies.dropFirst()) { answer(runs[index], reply) }
            }
            if failure == nil { failure = second.error }
        }
        if results.allSatisfy({ $0 == nil }) { throw failure ?? .unavailable("no reply") }
        let unanswered = failure ?? .unavailable("no reply")
        return results.map { $0 ?? .failure(unanswered) }
    }

    /// `requests` cut into script runs: consecutive requests that share an event stream (or
    /// none), `SettleLayout.chunk` at most each.
    static func settleRuns(_ requests: [SettleRequest]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var start = 0
        for index in requests.indices.dropFirst() {
            if index - start == SettleLayout.chunk || stream(of: requests[index]) != stream(of: requests[start]) {
                runs.append(start..<index)
                start = index
            }
        }
        if !requests.isEmpty { runs.append(start..<requests.count) }
        return runs
    }

    /// The event stream a settlement appends to; nil when it appends none.
    static func stream(of request: SettleRequest) -> String? {
        request.eventsMaxLen > 0 ? request.eventsKey : nil
    }

    /// One request's result from its reply: an error reply (`NOSCRIPT` included: the script
    /// was just loaded) or a reply `settleResult` refuses is that request's `.protocolError`.
    static func settleResult(answering reply: RedisValue, pools: Bool = true) -> Result<SettleOutcome, StoreError> {
        if case .error(let message) = reply { return .failure(.protocolError(message)) }
        do throws(StoreError) {
            return .success(try settleResult(reply, pools: pools))
        } catch {
            return .failure(error)
        }
    }

    /// The token of `SettleLayout.Argument.amount` for an amount that is not one.
    static let badAmount = Array("bad".utf8)
    /// `SettleLayout.Argument.report` of nginx's line.
    static let nginxReport = Array("nginx".utf8)
    /// `SettleLayout.Argument.report` of the app's call.
    static let appReport = Array("app".utf8)

    /// Appends one script run's keys (their count first: the holds, then the stream of the
    /// first request when it has one, which `settleRuns` makes every request's), then each
    /// request's arguments in `SettleLayout`'s order. Every number is sent within what the
    /// script's doubles hold exactly: an amount past 2^53 is `bad`, bytes and times past 2^53
    /// count as 2^53 (where `Settlement.resolve` caps them too).
    static func appendSettle(_ requests: ArraySlice<SettleRequest>, to command: inout RESPCommand) {
        let stream = requests.first.flatMap(Self.stream(of:))
        command.append(requests.count + (stream == nil ? 0 : 1))
        for request in requests { command.append(request.key) }
        if let stream { command.append(stream) }
        for request in requests { appendSettleArguments(request, hasStream: stream != nil, to: &command) }
    }

    /// Appends one request's arguments (`SettleLayout.Argument`); its `eventsMaxLen` is 0 when
    /// the run has no stream.
    private static func appendSettleArguments(_ request: SettleRequest, hasStream: Bool, to command: inout RESPCommand) {
        var facts: ResponseFacts?
        var amount: Int64?
        var bad = false
        switch request.report {
        case .nginx(let reported):
            facts = reported
            switch reported.amount {
            case .missing: break
            case .invalid: bad = true
            case .value(let value): amount = value
            }
        case .app(let value):
            amount = value
        }
        if let value = amount, !(0...Settlement.maxAmount).contains(value) {
            amount = nil
            bad = true
        }
        for argument in SettleLayout.Argument.allCases {
            switch argument {
            case .report: command.append(facts == nil ? appReport : nginxReport)
            case .status: if let facts { command.append(facts.status) } else { command.append(empty) }
            case .reached: command.append(facts?.upstreamReached == true ? one : zero)
            case .answered: command.append(facts?.upstreamAnswered == true ? one : zero)
            case .amount:
                if bad {
                    command.append(badAmount)
                } else if let amount {
                    command.append(amount)
                } else {
                    command.append(empty)
                }
            case .bytesSent: command.append(Swift.min(Settlement.maxAmount, Swift.max(0, facts?.bytesSent ?? 0)))
            case .upstreamMs: command.append(Swift.min(Settlement.maxAmount, Swift.max(0, facts?.upstreamMs ?? 0)))
            case .eventsMaxLen: command.append(hasStream && request.eventsMaxLen > 0 ? clampExact(Int64(request.eventsMaxLen)) : 0)
            case .voidTtlMs: command.append(Swift.min(Swift.max(0, request.voidTtlMs), exactLimit - 1))
            }
        }
    }

    // MARK: Replies

    /// A difference a settlement charges: the final charge (0 ... 2^53) less the held cost.
    static let differenceRange: Range<Int64> = (-exactLimit)..<(exactLimit + 1)

    /// The settle reply (`SettleLayout.Head`, then each pool's `PoolField`s), every number within
    /// its range and, with `pools`, the record decoded strictly (each pool's state needs its
    /// item); anything else is a `.protocolError`. Without `pools` (nginx's lines, which are
    /// only counted) the record is not decoded (JSON decoding was most of the applier's work) and
    /// the outcome's `pools` is empty; the differences and states are still read and checked.
    static func settleResult(_ reply: RedisValue, pools wanted: Bool = true) throws(StoreError) -> SettleOutcome {
        typealias Head = SettleLayout.Head
        guard let parts = reply.elements, parts.count > Head.now.index, let text = parts[Head.tag.index].text,
            let tag = SettleLayout.Tag(rawValue: text)
        else { throw .protocolError("unexpected settle reply") }
        _ = try number(parts[Head.now.index], countRange, "now", "settle")
        let short = parts.count == Head.now.index + 1
        switch tag {
        case .unknown where short: return .unknown
        case .voided where short: return .voided
        case .expired where short: return .expired
        case .duplicate where short: return .duplicate
        case .ignored where short: return .ignored
        case .settled where parts.count >= SettleLayout.poolsBase: break
        default: throw .protocolError("unexpected settle reply '\(text)'")
        }
        let width = SettleLayout.PoolField.allCases.count
        guard let recordText = parts[Head.record.index].text else {
            throw .protocolError("settle reply: the hold record is not one the spend script writes")
        }
        let items: [HoldRecord.Item]?
        let count: Int
        if wanted {
            guard let record = HoldRecord(stored: recordText) else {
                throw .protocolError("settle reply: the hold record is not one the spend script writes")
            }
            items = record.items
            count = record.items.count
        } else {
            items = nil
            count = (parts.count - SettleLayout.poolsBase) / width
        }
        guard count > 0, parts.count == SettleLayout.poolsBase + count * width else {
            throw .protocolError("unexpected settle reply: \(parts.count) values for \(count) pools")
        }
        let detail = parts[Head.detail.index]
        let resolution: Settlement.Resolution
        switch parts[Head.resolution.index].text.flatMap(SettleLayout.Resolution.init(rawValue:)) {
        case .refund?:
            guard let reason = detail.text.flatMap(Settlement.RefundReason.init(rawValue:)) else {
                throw .protocolError("settle reply: unknown refund reason")
            }
            resolution = .refund(reason)
        case .amount?:
            resolution = .amount(try number(detail, 0..<(Settlement.maxAmount + 1), "amount", "settle"))
        case .stands?:
            resolution = .stands
        case .badAmount?:
            resolution = .badAmount
        case nil:
            throw .protocolError("settle reply: unknown resolution")
        }
        var differences: [Int64] = []
        var pools: [SettleOutcome.PoolState] = []
        for index in 0..<count {
            let at = SettleLayout.poolsBase + index * width
            differences.append(
                try number(parts[at + SettleLayout.PoolField.difference.rawValue - 1], differenceRange, "difference", "settle"))
            let value = parts[at + SettleLayout.PoolField.state.rawValue - 1]
            var state: BucketState?
            if !value.isNull {
                guard let triple = value.elements else { throw .protocolError("unexpected settle reply") }
                state = try Self.state(triple[...], "settle")
            }
            if let item = items?[index] { pools.append(SettleOutcome.PoolState(poolId: item.poolId, item: item.spend, state: state)) }
        }
        return .settled(SettleOutcome.Settled(resolution: resolution, differences: differences, pools: pools))
    }

    // MARK: Open holds

    /// Keys asked for per `SCAN` step, and the most steps one listing takes (a million keys):
    /// the listing is bounded whatever the key space holds.
    static let holdScanCount = 1000
    static let holdScanSteps = 1000

    /// Up to `limit` open holds (not settled, window not over) under `prefix`, oldest first,
    /// among those `SCAN MATCH prefix*` finds within `holdScanSteps` steps, and Redis's clock.
    /// A record that is not one the spend script writes is a `.protocolError` naming its key.
    public func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) {
        let now = try time()
        guard limit > 0 else { return (now, []) }
        let pattern = Array((Self.globEscaped(prefix) + "*").utf8)
        var cursor = Array("0".utf8)
        var found: [HoldRecord] = []
        var steps = 0
        repeat {
            let reply = try connection.command([
                Array("SCAN".utf8), cursor, Array("MATCH".utf8), pattern, Array("COUNT".utf8), Array(String(Self.holdScanCount).utf8),
            ])
            if case .error(let message) = reply { throw .protocolError(message) }
            guard let parts = reply.elements, parts.count == 2, case .string(let next) = parts[0], let entries = parts[1].elements else {
                throw .protocolError("unexpected SCAN reply")
            }
            var keys: [[UInt8]] = []
            for entry in entries {
                guard case .string(let key) = entry else { throw .protocolError("unexpected SCAN reply") }
                keys.append(key)
            }
            if !keys.isEmpty {
                let values = try connection.command([Array("MGET".utf8)] + keys)
                if case .error(let message) = values { throw .protocolError(message) }
                guard let texts = values.elements, texts.count == keys.count else { throw .protocolError("unexpected MGET reply") }
                for (key, value) in zip(keys, texts) where !value.isNull && value.text != SpendLayout.holdVoid {
                    guard let text = value.text, let record = HoldRecord(stored: text) else {
                        throw .protocolError("corrupt hold record at key \(String(decoding: key, as: UTF8.self))")
                    }
                    if record.status == .open && record.expiresAt > now { found.append(record) }
                }
                if found.count - limit > limit {
                    found.sort { $0.createdAt < $1.createdAt }
                    found.removeLast(found.count - limit)
                }
            }
            cursor = next
            steps += 1
        } while cursor != Array("0".utf8) && steps < Self.holdScanSteps
        found.sort { $0.createdAt < $1.createdAt }
        return (now, Array(found.prefix(limit)))
    }

    /// Redis's clock (`TIME`) in epoch ms, read strictly.
    func time() throws(StoreError) -> Int64 {
        try Self.clock(try connection.command(["TIME"]))
    }

    /// A `TIME` reply in epoch ms, read strictly.
    static func clock(_ reply: RedisValue) throws(StoreError) -> Int64 {
        if case .error(let message) = reply { throw .protocolError(message) }
        guard let parts = reply.elements, parts.count == 2,
            let seconds = parts[0].integer(in: 0..<(Limits.exactInteger / 1000)), let micros = parts[1].integer(in: 0..<1_000_000)
        else { throw .protocolError("unexpected TIME reply") }
        return seconds * 1000 + micros / 1000
    }

    /// `text` with the characters `SCAN MATCH` reads as a pattern (`*?[]\`) escaped.
    static func globEscaped(_ text: String) -> String {
        var out = ""
        for character in text {
            if "*?[]\\".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
