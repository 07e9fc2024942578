import ChargeGateCore

extension SettleTables.Driver {
    /// None.
    public var configHead: String { "" }
    /// One clock: none.
    public var spendStampSlackMs: Int64 { 0 }
}

extension SettleTables {
    /// What a store under test gives the runner besides `ChargeStore`: its clock, and the
    /// moves each store makes in its own way.
    public protocol Driver: AnyObject {
        /// The store.
        var store: any ChargeStore { get }
        /// The row's key prefix (a fresh one per row).
        var prefix: String { get }
        /// The store's clock (epoch ms).
        func now() throws -> Int64
        /// Before each step (the memory store's clock moves a second, so that stamps differ).
        func step()
        /// The window of the hold at `holdKey` ends now; its key stays.
        func endWindow(holdKey: String, windowMs: Int64) throws
        /// The store's clock moves by `ms` (the memory store only).
        func advance(_ ms: Int64)
        /// Whether `key` expires as `expected`; a failure's message, else nil. Called after the
        /// last step (the memory store may move its clock to see).
        func check(_ expected: ExpiryAt, key: String) throws -> String?
        /// Config lines put before each row's (a cluster store's `redis:` URL, which lays the
        /// keys out for it); none by default.
        var configHead: String { get }
        /// How much earlier than the spend's answer (`SpendResult.now`) a pool may be stamped: 0
        /// on one clock; a cluster spend across slots reads each slot's clock in turn, the
        /// answer's being the last (the home slot's).
        var spendStampSlackMs: Int64 { get }
    }

    /// An expiry as an absolute time.
    public enum ExpiryAt: Sendable, Equatable {
        /// No TTL: the key stays.
        case never
        /// The key expires at this epoch ms.
        case at(Int64)
        /// The key is gone.
        case removed
    }

    /// The subject and the request every row sends.
    static let subject = "s1"
    static let path = "/api/x"

    /// Runs `row` on `driver`'s store; the failures, each one line (empty: it passed).
    public static func run(_ row: Case, on driver: some Driver) throws -> [String] {
        var failures: [String] = []
        let yaml = driver.configHead + "keyPrefix: \"\(driver.prefix)\"\neventsMaxLen: 1000\n" + row.config
        let config: GateConfig
        switch ConfigLoader.parse(yaml, file: "settle-table.yaml") {
        case .success(let parsed): config = parsed
        case .failure(let errors): return ["the row's config: \(errors)"]
        }
        let gate = Gate(config: config)
        guard let route = gate.route(path: path, method: "POST") else { return ["no route for \(path)"] }
        let nginx = config.plans.isEmpty ? Gate.NginxPlan.none : gate.nginxPlan(nil)
        let items = gate.items(route, subject: subject, plan: nginx.index)
        let keys = items.map(\.key)
        var spendStamps: [Int64] = []
        var topOffStamps: [Int64] = []
        var settled: ClosedRange<Int64> = 0...0

        /// Whether `state` is `expected` (`where` names the step and pool for a failure).
        func compare(_ expected: Pool, _ state: BucketState?, _ place: String) {
            guard let current = expected.current else {
                if let state { failures.append("\(place): expected no key, got \(state)") }
                return
            }
            guard let state else {
                failures.append("\(place): expected current \(current), got no key")
                return
            }
            let stampOK: Bool
            switch expected.stamp {
            case .settle: stampOK = settled.contains(state.lastUpdatedAt)
            case .spend(let k):
                stampOK =
                    k < spendStamps.count && ((spendStamps[k] - driver.spendStampSlackMs)...spendStamps[k]).contains(state.lastUpdatedAt)
            case .topOff(let k): stampOK = k < topOffStamps.count && topOffStamps[k] == state.lastUpdatedAt
            }
            if state.current != current || state.limit != expected.limit || !stampOK {
                failures.append(
                    "\(place): expected current \(current) stamped \(expected.stamp) limit \(expected.limit.map(String.init) ?? "-"), got \(state) (spends at \(spendStamps), settled within \(settled))"
                )
            }
        }

        for (index, step) in row.steps.enumerated() {
            driver.step()
            let place = "step \(index + 1)"
            switch step {
            case .spend(let id, let expect):
                let request = SpendRequest(
                    items: items, eventsKey: gate.eventsKey, eventsMaxLen: config.eventsMaxLen,
                    context: EventContext(subject: subject, route: route.prefix, method: "POST", uri: path, idempotencyKey: ""),
                    plan: gate.planChoice(route, subject: subject, fallback: nginx.index),
                    hold: id.flatMap { gate.holdRequest(route, id: $0) })
                let result = try driver.store.charge(request)
                spendStamps.append(result.now)
                switch (expect, result.outcome) {
                case (.allowed(let remaining), .allowed(let got)):
                    if got.map(\.remaining) != remaining {
                        failures.append("\(place): spend left \(got.map(\.remaining)), expected \(remaining)")
                    }
                case (.outOfCharge(let item, let fromStamp), .outOfCharge(let gotItem, let wait)):
                    let state = try driver.store.peek([keys[item]]).states[0]
                    let since = result.now - (state?.lastUpdatedAt ?? result.now)
                    if gotItem != item || wait + since != fromStamp {
                        failures.append(
                            "\(place): spend waits \(wait) ms on item \(gotItem), \(since) ms after the stamp; expected \(fromStamp) in all"
                        )
                    }
                case (.voided, .holdVoided):
                    break
                default:
                    failures.append("\(place): spend answered \(result.outcome), expected \(expect)")
                }
            case .settle(let id, let report, let expect):
                let before = try driver.now()
                let outcome = try driver.store.settle(
                    SettleRequest(
                        key: gate.keys.hold(id: id), id: id, report: report, eventsKey: gate.eventsKey, eventsMaxLen: config.eventsMaxLen,
                        voidTtlMs: gate.voidTtlMs))
                settled = before...(try driver.now())
                if outcome.label != expect.label { failures.append("\(place): settled as \(outcome.label), expected \(expect.label)") }
                guard case .settled(let got) = outcome else {
                    if expect.resolution != nil {
                        failures.append("\(place): \(outcome), expected \(expect.resolution.map { "\($0)" } ?? "")")
                    }
                    continue
                }
                if got.resolution != expect.resolution {
                    failures.append("\(place): resolved \(got.resolution), expected \(expect.resolution.map { "\($0)" } ?? "none")")
                }
                if got.differences != expect.differences {
                    failures.append("\(place): differences \(got.differences), expected \(expect.differences)")
                }
                if got.pools.map(\.poolId) != items.map(\.poolId) || got.pools.map(\.item.key) != keys {
                    failures.append(
                        "\(place): pools \(got.pools.map(\.poolId)) at \(got.pools.map(\.item.key)), expected \(items.map(\.poolId)) at \(keys)"
                    )
                }
                for (pool, (expected, state)) in zip(items, zip(expect.pools, got.pools.map(\.state))) {
                    compare(expected, state, "\(place), \(pool.poolId)")
                }
                if expect.pools.count != got.pools.count {
                    failures.append("\(place): \(got.pools.count) pools, expected \(expect.pools.count)")
                }
            case .setPlan(let plan):
                try driver.store.setPlan(PlanRecord(plan: plan), at: gate.keys.plan(subject: subject))
            case .topOff(let pool, let amount):
                guard let item = items.first(where: { $0.poolId == pool }) else { return ["\(place): no pool \(pool)"] }
                topOffStamps.append(try driver.store.topOff(item, amount: amount).now)
            case .endWindow(let id):
                try driver.endWindow(holdKey: gate.keys.hold(id: id), windowMs: Int64(config.settleWindowSeconds) * 1000)
            case .advance(let ms):
                driver.advance(ms)
            case .peek(let expected):
                let states = try driver.store.peek(keys).states
                for (pool, (want, state)) in zip(items, zip(expected, states)) { compare(want, state, "\(place), \(pool.poolId)") }
            }
        }

        if let expected = row.events, let stream = gate.eventsKey {
            let events = try driver.store.events(stream: stream, EventQuery(limit: 100)).events
            let got = events.map(Event.init)
            if got != expected {
                failures.append(
                    "events:\n  " + got.map(\.description).joined(separator: "\n  ") + "\nexpected:\n  "
                        + expected.map(\.description).joined(separator: "\n  "))
            }
            for event in events where event.context.subject != subject || event.context.route != route.prefix || event.context.uri != path {
                failures.append("event \(event.id): context \(event.context)")
            }
        }

        for (pool, expiry) in row.expiries {
            guard let item = items.first(where: { $0.poolId == pool }) else { return failures + ["expiry: no pool \(pool)"] }
            let state = try driver.store.peek([item.key]).states[0]
            let at: ExpiryAt
            switch expiry {
            case .never:
                at = .never
            case .removed:
                at = .removed
            case .afterStamp(let ms):
                guard let state else { return failures + ["expiry of \(pool): no key"] }
                at = .at(state.lastUpdatedAt + ms)
            case .periodEnd:
                guard let state, let window = item.window(at: state.lastUpdatedAt) else {
                    return failures + ["expiry of \(pool): no key or no period"]
                }
                at = .at(window.end)
            }
            if let message = try driver.check(at, key: item.key) { failures.append("expiry of \(pool): \(message)") }
        }
        return failures
    }
}
