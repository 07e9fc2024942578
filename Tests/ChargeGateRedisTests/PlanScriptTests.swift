import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// The script's plans and periods against the Swift reference: random items (buckets, credits,
/// meters, period pools, per subject or global, with or without a recorded cap), random plan
/// tables, records (none, known, unknown, unreadable, with and without an anchor) and stored
/// states; the script's decision and every state it wrote must be what `PlanChoice.resolve`,
/// `PlanChoice.apply` and `Bucket.plan` give at the script's own clock.
extension RedisTests {
    @Suite("Plans and periods in the script")
    struct PlanScript {
        static let cases = 400

        /// One random case.
        struct Case {
            var items: [SpendItem]
            var choice: PlanChoice?
            var record: String?
            var seeds: [String?]
            var description: String
        }

        static func randomCase(_ rng: inout SplitMix, prefix: String, now: Int64, index: Int) -> Case {
            let n = Int.random(in: 1...3, using: &rng)
            let periods: [BillingPeriod?] = [nil, nil, .day, .week, .month]
            var items: [SpendItem] = []
            for i in 0..<n {
                let perSubject = Bool.random(using: &rng)
                let period = periods.randomElement(using: &rng) ?? nil
                let kind = Int.random(in: 0..<4, using: &rng)  // 0 bucket, 1 credits, 2 meter, 3 bucket
                var max: Int64? = Int64.random(in: 1...8, using: &rng)
                var interval: Int64? = Int64.random(in: 1...5, using: &rng) * 60_000
                if kind == 1 || period != nil { interval = nil }
                if kind == 2 { max = nil }
                items.append(
                    SpendItem(
                        poolId: "p\(i)", key: prefix + "c\(index):p\(i)" + (perSubject ? ":s1" : ""), max: max, intervalMs: interval,
                        cost: Int64.random(in: 1...3, using: &rng), expires: perSubject, period: period,
                        tracksLimit: perSubject && Bool.random(using: &rng),
                        baseMax: Bool.random(using: &rng) ? max : Int64.random(in: 1...8, using: &rng),
                        largestMax: Bool.random(using: &rng) ? nil : Int64.random(in: 1...12, using: &rng),
                        slowestIntervalMs: Bool.random(using: &rng) ? nil : Int64.random(in: 1...12, using: &rng) * 60_000))
            }
            var choice: PlanChoice?
            var record: String?
            let plans = Int.random(in: 0...3, using: &rng)
            if plans > 0 {
                let ids = (0..<plans).map { "plan\($0)" }
                let limits = ids.map { _ in
                    items.map { item -> PlanChoice.Limit in
                        let max: Int64? = Int.random(in: 0..<4, using: &rng) == 0 ? nil : Int64.random(in: 1...10, using: &rng)
                        let interval =
                            item.period == nil && item.intervalMs != nil ? Int64.random(in: 1...5, using: &rng) * 60_000 : item.intervalMs
                        return PlanChoice.Limit(max: max, intervalMs: max == nil ? nil : interval)
                    }
                }
                choice = PlanChoice(
                    recordKey: prefix + "c\(index):#plan", ids: ids, limits: limits, fallback: Int.random(in: 0..<plans, using: &rng),
                    defaultPlan: Int.random(in: 0..<plans, using: &rng))
                let anchor =
                    Bool.random(using: &rng)
                    ? ",\"periodAnchor\":\(now + Int64.random(in: -400...400, using: &rng) * 3_600_000 + Int64.random(in: 0..<3_600_000, using: &rng))"
                    : ""
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: record = nil
                case 1: record = "{\"plan\":\"nope\"\(anchor)}"
                case 2: record = "not json"
                default: record = "{\"plan\":\"\(ids.randomElement(using: &rng) ?? "plan0")\"\(anchor)}"
                }
            }
            var seeds: [String?] = []
            for item in items {
                if Int.random(in: 0..<4, using: &rng) == 0 {
                    seeds.append(nil)
                    continue
                }
                let current = Int64.random(in: -3...12, using: &rng)  // below 0: another writer's
                let ago = Int64.random(in: 0...(item.period == nil ? 10 * 60_000 : 40 * 86_400_000), using: &rng)
                let cap = Int.random(in: 0..<3, using: &rng) == 0 ? "" : ",\"max\":\([-1, 3, 5, 10].randomElement(using: &rng) ?? 5)"
                seeds.append("{\"current\":\(current),\"lastUpdatedAt\":\(now - ago)\(cap)}")
            }
            let description =
                "case \(index): items \(items.map { "\($0.poolId) max \($0.max.map(String.init) ?? "-") every \($0.intervalMs.map(String.init) ?? "-") \($0.period?.rawValue ?? "") tracks \($0.tracksLimit) largest \($0.largestMax.map(String.init) ?? "-") slowest \($0.slowestIntervalMs.map(String.init) ?? "-")" }) plans \(choice?.limits.description ?? "none") record \(record ?? "none") seeds \(seeds)"
            return Case(items: items, choice: choice, record: record, seeds: seeds, description: description)
        }

        @Test("400 random cases: the script decides and writes what the Swift reference does")
        func scriptIsTheReferencesTwin() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            var rng = SplitMix(state: 0x5EED_0010)
            for index in 0..<Self.cases {
                let now = try fixture.time()
                let c = Self.randomCase(&rng, prefix: fixture.prefix, now: now, index: index)
                for (item, seed) in zip(c.items, c.seeds) {
                    if let seed { try fixture.run("SET", item.key, seed) }
                }
                if let record = c.record, let choice = c.choice { try fixture.run("SET", choice.recordKey, record) }
                let seeded = try store.peek(c.items.map(\.key)).states
                let request = SpendRequest(items: c.items, context: context(), plan: c.choice)
                let result = try store.charge(request)
                let states = try store.peek(c.items.map(\.key)).states

                // The reference at the script's clock.
                var items = c.items
                var expectedUse: PlanUse?
                if let choice = c.choice {
                    let use = choice.resolve(c.record.map { PlanRecord(text: $0) })
                    items = choice.apply(use, to: items)
                    expectedUse = use
                }
                let plan = Bucket.plan(items, states: seeded, now: result.now)
                #expect(result.plan == expectedUse, "\(c.description)")
                #expect(result.outcome == plan.outcome, "\(c.description)")
                if case .allowed = plan.outcome {
                    #expect(states == plan.writes.map(\.state), "\(c.description)")
                    for (item, write) in zip(items, plan.writes) {
                        let pttl = try fixture.run("PTTL", item.key).integer ?? -3
                        if let ttl = write.ttlMs {
                            #expect(pttl <= ttl && pttl >= ttl - 1000, "\(c.description): PTTL \(pttl), want \(ttl)")
                        } else {
                            #expect(pttl == -1, "\(c.description): PTTL \(pttl), want none")
                        }
                    }
                } else {
                    #expect(states == seeded, "a denial wrote something: \(c.description)")
                }
            }
        }

        @Test("200 concurrent spends under a stored plan on a monthly pool: exactly its cap pass; a downgrade then leaves none")
        func concurrentSpendsUnderAPlan() throws {
            let fixture = try RedisFixture()
            let item = SpendItem(
                poolId: "g", key: fixture.prefix + "g:s1", max: 5, intervalMs: nil, cost: 1, expires: true, period: .month,
                tracksLimit: true, baseMax: 5)
            let choice = PlanChoice(
                recordKey: fixture.prefix + "#plan:s1", ids: ["free", "pro"],
                limits: [[.init(max: 5, intervalMs: nil)], [.init(max: 40, intervalMs: nil)]], fallback: 0, defaultPlan: 0)
            try fixture.store().setPlan(PlanRecord(plan: "pro"), at: choice.recordKey)
            let request = SpendRequest(items: [item], context: context(), plan: choice)
            let results = Collector<Result<SpendOutcome, StoreError>>()
            let stores = StoreBox(count: 8, url: fixture.url)
            raceThreads(8, prepare: { index in stores.warm(index) }) { index in
                for _ in 0..<25 { results.append(stores.spend(index, request)) }
            }
            let outcomes = try results.all.map { try $0.get() }
            let allowed = outcomes.compactMap { outcome -> Int64? in
                if case .allowed(let results) = outcome { return results[0].remaining }
                return nil
            }
            #expect(allowed.count == 40)
            #expect(Set(allowed) == Set(0..<40), "each remaining count is reported exactly once")
            // Downgraded with everything used: nothing left, and never below 0.
            try fixture.store().setPlan(PlanRecord(plan: "free"), at: choice.recordKey)
            guard case .outOfCharge = try fixture.store().spend(request) else {
                Issue.record("a downgrade below what was used must deny")
                return
            }
            let state = try #require(try fixture.store().peek([item.key]).states.first ?? nil)
            #expect(state.current == 0 && state.limit == 40)
        }

        @Test("events carry the plan the spend was decided under")
        func eventsCarryThePlan() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "g", key: fixture.prefix + "g:s1", max: 5, intervalMs: nil, cost: 1, expires: true, period: .month)
            let choice = PlanChoice(
                recordKey: fixture.prefix + "#plan:s1", ids: ["free", "pro"],
                limits: [[.init(max: 5, intervalMs: nil)], [.init(max: 100, intervalMs: nil)]], fallback: 0, defaultPlan: 0)
            try fixture.run("SET", choice.recordKey, #"{"plan":"pro"}"#)
            let stream = fixture.prefix + "#events"
            let result = try store.charge(
                SpendRequest(items: [item], eventsKey: stream, eventsMaxLen: 100, context: context(), plan: choice))
            guard case .allowed(let results) = result.outcome else {
                Issue.record("expected allowed, got \(result.outcome)")
                return
            }
            #expect(results.map(\.remaining) == [99])
            #expect(result.plan == PlanUse(index: 1, stored: true))
            let events = try store.events(stream: stream, EventQuery(limit: 10)).events
            #expect(events.map(\.context.plan) == ["pro"])
            // Without plans the event has no plan field, and reads as "".
            _ = try store.charge(SpendRequest(items: [item], eventsKey: stream, eventsMaxLen: 100, context: context()))
            #expect(try store.events(stream: stream, EventQuery(limit: 10)).events.map(\.context.plan) == ["pro", ""])
        }

        @Test("plan records: set, read, clear; an unreadable one reads as the plan \"\"")
        func records() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let key = fixture.prefix + "#plan:s1"
            #expect(try store.plan(at: key) == nil)
            try store.setPlan(PlanRecord(plan: "pro", periodAnchor: 1_764_547_200_000), at: key)
            #expect(try fixture.get(key) == #"{"plan":"pro","periodAnchor":1764547200000}"#)
            #expect(try fixture.run("PTTL", key).integer == -1)
            #expect(try store.plan(at: key) == PlanRecord(plan: "pro", periodAnchor: 1_764_547_200_000))
            try fixture.run("SET", key, "garbage")
            #expect(try store.plan(at: key) == PlanRecord(plan: ""))
            #expect(try store.clearPlan(at: key))
            #expect(try !store.clearPlan(at: key))
        }

        @Test("a period pool's 429 waits exactly until the period ends; top-off fills it for the period")
        func periodDenialAndTopOff() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            var item = SpendItem(poolId: "g", key: fixture.prefix + "g:s1", max: 2, intervalMs: nil, cost: 1, expires: true, period: .day)
            let request = SpendRequest(items: [item], context: context())
            _ = try store.spend(request)
            _ = try store.spend(request)
            let result = try store.charge(request)
            let window = BillingPeriod.day.window(at: result.now, anchor: nil)
            #expect(result.outcome == .outOfCharge(item: 0, retryAfterMs: window.end - result.now))
            // The key expires when the period ends: Redis counts `SET ... PX` from its own clock
            // at the SET, a little after the script read TIME, so the absolute expiry is the
            // window's end within the script's run time (PTTL, read later, was once seen a few ms
            // above `window.end - result.now` on a loaded machine).
            let expiresAt = try fixture.run("PEXPIRETIME", item.key).integer ?? 0
            #expect(abs(expiresAt - window.end) <= 250, "expires at \(expiresAt), the window ends at \(window.end)")
            item.cost = 0
            let filled = try store.topOff(item, amount: nil)
            #expect(filled.state.current == 2)
            guard case .allowed(let results) = try store.spend(request) else {
                Issue.record("the filled pool should allow")
                return
            }
            #expect(results.map(\.remaining) == [1])
            #expect(results.map(\.fullAt) == [window.end])
        }
    }
}
