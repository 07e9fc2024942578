import ChargeGateCore
import ChargeGateRedis
import Foundation
import ChargeGateTestSupport
import Testing

// One table of spend scenarios, run against both stores. Times are relative to `t0`, the
// store's "now" when the scenario starts: the memory store's clock is set to exactly t0; for
// Redis, t0 is read from Redis TIME just before the keys are written, and the script's own
// clock lands somewhere in [t0, t1] (t1 read after the spend), so waits are checked within
// that window and written stamps against the `now` the script reports.

/// A pool in a scenario (its key is the test's prefix + id).
struct ScenarioPool: Sendable {
    var id: String
    var max: Int64?
    var intervalMs: Int64?
    var cost: Int64 = 1
    var expires = false
}

/// A stored state, `lastUpdatedAt = t0 - ago`.
struct Seed: Sendable, Equatable {
    var current: Int64
    var ago: Int64
}

/// An expected written `lastUpdatedAt`.
enum Stamp: Sendable {
    /// The spend's own `now`.
    case now
    /// `t0 - ms`.
    case ago(Int64)
}

/// What the scenario must produce.
enum Expected: Sendable {
    case allowed(remaining: [Int64], states: [(current: Int64, stamp: Stamp)])
    case outOfCharge(item: Int, retryAfterMs: Int64)
    case credits(item: Int, available: Int64, required: Int64)
}

/// One row of the table.
struct Scenario: Sendable, CustomTestStringConvertible {
    var name: String
    var pools: [ScenarioPool]
    var seeds: [Seed?]
    var expected: Expected

    var testDescription: String { name }

    func items(prefix: String) -> [SpendItem] {
        pools.map { pool in
            SpendItem(
                poolId: pool.id, key: prefix + pool.id + (pool.expires ? ":s1" : ""), max: pool.max,
                intervalMs: pool.intervalMs, cost: pool.cost, expires: pool.expires)
        }
    }

    func seededStates(t0: Int64) -> [BucketState?] {
        seeds.map { $0.map { BucketState(current: $0.current, lastUpdatedAt: t0 - $0.ago) } }
    }

    static let minute: Int64 = 60_000

    static let all: [Scenario] = [
        Scenario(
            name: "a missing key is a full pool",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: minute)], seeds: [nil],
            expected: .allowed(remaining: [4], states: [(4, .now)])),
        Scenario(
            name: "spending the last charge keeps lastUpdatedAt",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: minute)], seeds: [Seed(current: 1, ago: 2000)],
            expected: .allowed(remaining: [0], states: [(0, .ago(2000))])),
        Scenario(
            name: "an empty pool waits exactly until the next charge",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: minute)], seeds: [Seed(current: 0, ago: 2000)],
            expected: .outOfCharge(item: 0, retryAfterMs: minute - 2000)),
        Scenario(
            name: "partial recharge progress is kept",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: 1000)], seeds: [Seed(current: 0, ago: 2300)],
            expected: .allowed(remaining: [1], states: [(1, .ago(300))])),
        Scenario(
            name: "earning back to full restarts the clock",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: 1000)], seeds: [Seed(current: 2, ago: 10_400)],
            expected: .allowed(remaining: [4], states: [(4, .now)])),
        Scenario(
            name: "a full pool with an old stamp spends from now",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: minute)], seeds: [Seed(current: 5, ago: 100_000)],
            expected: .allowed(remaining: [4], states: [(4, .now)])),
        Scenario(
            name: "a cost above what is held waits for every missing charge",
            pools: [ScenarioPool(id: "a", max: 10, intervalMs: 1000, cost: 4)], seeds: [Seed(current: 1, ago: 200)],
            expected: .outOfCharge(item: 0, retryAfterMs: 2800)),
        Scenario(
            name: "several pools spend all or none",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: minute), ScenarioPool(id: "b", max: 3, intervalMs: 10_000)],
            seeds: [nil, Seed(current: 0, ago: 100)],
            expected: .outOfCharge(item: 1, retryAfterMs: 9_900)),
        Scenario(
            name: "the denial names the pool with the longest wait",
            pools: [
                ScenarioPool(id: "a", max: 5, intervalMs: 10_000), ScenarioPool(id: "b", max: 5, intervalMs: minute),
                ScenarioPool(id: "c", max: 5, intervalMs: 5_000),
            ],
            seeds: [Seed(current: 0, ago: 1000), Seed(current: 0, ago: 1000), Seed(current: 0, ago: 0)],
            expected: .outOfCharge(item: 1, retryAfterMs: minute - 1000)),
        Scenario(
            name: "402 wins over 429",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: 10_000), ScenarioPool(id: "credits", max: 1000, intervalMs: nil, cost: 5)],
            seeds: [Seed(current: 0, ago: 1000), Seed(current: 2, ago: 5000)],
            expected: .credits(item: 1, available: 2, required: 5)),
        Scenario(
            name: "credits spend without refilling",
            pools: [ScenarioPool(id: "credits", max: 1000, intervalMs: nil, cost: 5)], seeds: [Seed(current: 10, ago: 5000)],
            expected: .allowed(remaining: [5], states: [(5, .ago(5000))])),
        Scenario(
            name: "a cost above the cap can never be met",
            pools: [ScenarioPool(id: "a", max: 3, intervalMs: 1000, cost: 5)], seeds: [nil],
            expected: .credits(item: 0, available: 3, required: 5)),
        Scenario(
            name: "an unlimited pool counts use beside a limited one",
            pools: [ScenarioPool(id: "meter", max: nil, intervalMs: nil, cost: 3), ScenarioPool(id: "a", max: 5, intervalMs: minute)],
            seeds: [Seed(current: 7, ago: 5000), nil],
            expected: .allowed(remaining: [10, 4], states: [(10, .now), (4, .now)])),
        Scenario(
            name: "an unlimited pool never denies",
            pools: [ScenarioPool(id: "meter", max: nil, intervalMs: nil, cost: 2, expires: true)], seeds: [nil],
            expected: .allowed(remaining: [2], states: [(2, .now)])),
        Scenario(
            name: "every pool of a route spends together",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: minute), ScenarioPool(id: "b", max: 2, intervalMs: minute, cost: 2)],
            seeds: [Seed(current: 3, ago: 1000), nil],
            expected: .allowed(remaining: [2, 0], states: [(2, .ago(1000)), (0, .now)])),
        Scenario(
            name: "a per-subject pool spends like any other",
            pools: [ScenarioPool(id: "a", max: 5, intervalMs: 10_000, cost: 2, expires: true)], seeds: [nil],
            expected: .allowed(remaining: [3], states: [(3, .now)])),
    ]
}

/// Checks a scenario's result and the states read back afterwards. The store's `now` must lie
/// in [t0, t1] (equal for the memory store).
func verify(_ scenario: Scenario, items: [SpendItem], result: SpendResult, states: [BucketState?], t0: Int64, t1: Int64) {
    let seeded = scenario.seededStates(t0: t0)
    let outcome = result.outcome
    switch (scenario.expected, outcome) {
    case (.allowed(let remaining, let expectedStates), .allowed(let got)):
        let now = result.now
        #expect(now >= t0 && now <= t1, "now \(now) outside [\(t0), \(t1)]")
        #expect(got.map(\.remaining) == remaining)
        let want: [BucketState?] = expectedStates.map { entry in
            switch entry.stamp {
            case .now: return BucketState(current: entry.current, lastUpdatedAt: now)
            case .ago(let ms): return BucketState(current: entry.current, lastUpdatedAt: t0 - ms)
            }
        }
        #expect(states == want)
        // The store is the twin of the Swift reference at its own clock.
        let plan = Bucket.plan(items, states: seeded, now: now)
        #expect(plan.outcome == outcome)
        #expect(plan.writes.map(\.state) == want.compactMap { $0 })
    case (.outOfCharge(let item, let wait), .outOfCharge(let gotItem, let gotWait)):
        #expect(gotItem == item)
        #expect(gotWait <= wait && gotWait >= wait - (t1 - t0), "retryAfterMs \(gotWait), expected \(wait) minus at most \(t1 - t0)")
        #expect(states == seeded, "a denial wrote something")
    case (.credits(let item, let available, let required), .insufficientCredits(let gotItem, let gotAvailable, let gotRequired)):
        #expect(gotItem == item && gotAvailable == available && gotRequired == required)
        #expect(states == seeded, "a denial wrote something")
    default:
        Issue.record("expected \(scenario.expected), got \(outcome)")
    }
}

@Suite("Spend scenarios on the memory store")
struct MemoryScenarioTests {
    @Test(arguments: Scenario.all)
    func scenario(_ scenario: Scenario) throws {
        let t0: Int64 = 1_763_000_000_123
        let clock = ManualClock(t0)
        let store = MemoryStore(clock: clock)
        let items = scenario.items(prefix: "m:")
        // Seed through the store's own API, at the seed's time: from a missing (full) key,
        // spending max - current leaves {current, then}; a full seed is a fill.
        for (item, seed) in zip(items, scenario.seeds) {
            guard let seed else { continue }
            clock.set(t0 - seed.ago)
            var seedItem = item
            if let max = item.max, seed.current >= max {
                _ = try store.topOff(seedItem, amount: nil)
                continue
            }
            seedItem.cost = item.max.map { $0 - seed.current } ?? seed.current
            if seedItem.cost > 0 {
                _ = try store.spend(SpendRequest(items: [seedItem], context: context()))
            }
        }
        clock.set(t0)
        try #require(try store.peek(items.map(\.key)).states == scenario.seededStates(t0: t0), "seeding failed")

        let result = try store.charge(SpendRequest(items: items, context: context()))
        let states = try store.peek(items.map(\.key)).states
        verify(scenario, items: items, result: result, states: states, t0: t0, t1: t0)
    }

    @Test("spend to zero, then 429 with the exact wait; one ms later than that it succeeds")
    func exactWait() throws {
        let clock = ManualClock(1_763_000_000_000)
        let store = MemoryStore(clock: clock)
        let item = SpendItem(poolId: "a", key: "a", max: 2, intervalMs: 1000, cost: 1, expires: false)
        let request = SpendRequest(items: [item], context: context())
        #expect(
            try store.charge(request) == SpendResult(.allowed([ItemResult(remaining: 1, fullAt: clock.nowMs() + 1000)]), now: clock.nowMs())
        )
        clock.advance(250)
        #expect(
            try store.charge(request) == SpendResult(.allowed([ItemResult(remaining: 0, fullAt: clock.nowMs() + 1750)]), now: clock.nowMs())
        )
        let denied = try store.spend(request)
        #expect(denied == .outOfCharge(item: 0, retryAfterMs: 750))
        clock.advance(749)
        #expect(try store.spend(request) == .outOfCharge(item: 0, retryAfterMs: 1))
        clock.advance(1)
        #expect(
            try store.charge(request) == SpendResult(.allowed([ItemResult(remaining: 0, fullAt: clock.nowMs() + 2000)]), now: clock.nowMs())
        )
    }
}

extension RedisTests {
    @Suite("Spend scenarios on the Redis store")
    struct Scenarios {
        @Test(arguments: Scenario.all)
        func scenario(_ scenario: Scenario) throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let items = scenario.items(prefix: fixture.prefix)
            let t0 = try fixture.time()
            for (item, seed) in zip(items, scenario.seeds) {
                guard let seed else { continue }
                try fixture.setState(item.key, current: seed.current, lastUpdatedAt: t0 - seed.ago)
            }
            let result = try store.charge(SpendRequest(items: items, context: context()))
            let t1 = try fixture.time()
            let states = try store.peek(items.map(\.key)).states
            verify(scenario, items: items, result: result, states: states, t0: t0, t1: t1)
        }

        @Test("spend to zero, then 429; after retryAfterMs the next spend succeeds")
        func exactWait() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 2, intervalMs: 1000, cost: 1, expires: false)
            let request = SpendRequest(items: [item], context: context())
            guard case .allowed(let first) = try store.spend(request), case .allowed(let second) = try store.spend(request) else {
                Issue.record("the first two spends should pass")
                return
            }
            #expect(first.map(\.remaining) == [1] && second.map(\.remaining) == [0])
            guard case .outOfCharge(0, let wait) = try store.spend(request) else {
                Issue.record("the third spend should be denied")
                return
            }
            #expect(wait > 0 && wait <= 1000)
            usleep(UInt32(wait) * 1000)
            let after = try store.spend(request)
            guard case .allowed(let results) = after else {
                Issue.record("after waiting retryAfterMs (\(wait)) the spend was \(after)")
                return
            }
            #expect(results.map(\.remaining) == [0])
        }
    }
}
