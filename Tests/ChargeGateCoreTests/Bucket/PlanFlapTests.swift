import ChargeGateTestSupport
import Testing

@testable import ChargeGateCore

/// What was used stays used through any sequence of plan changes: one per-subject pool, a
/// subject moved between plans (stored plan records) on the memory store with a manual clock,
/// and how many of a burst of requests pass at each step. The Redis script is held to the same
/// decisions by `PlanScriptTests`.
@Suite struct PlanFlapTests {
    /// 2025-11-30T10:00:00Z: the month ends in 14 h.
    static let t0: Int64 = 1_764_496_800_000
    /// A minute in ms.
    static let minute: Int64 = 60_000
    /// The spends' event context (no events are kept).
    static let context = EventContext(subject: "s1", route: "/api/x", method: "GET", uri: "/api/x", idempotencyKey: "")

    /// The plans of the pool: index 0 free, 1 pro, 2 max (as the case sets them).
    struct Plans: Sendable {
        var limits: [PlanChoice.Limit]
        var period: BillingPeriod?

        static let free = PlanChoice.Limit(max: 2, intervalMs: minute)
        static let pro = PlanChoice.Limit(max: 10, intervalMs: minute)
        static let unlimited = PlanChoice.Limit(max: nil, intervalMs: nil)
        /// Refilling: free 2, pro 10, max unlimited, a charge a minute.
        static let buckets = Plans(limits: [free, pro, unlimited])
        /// Free refills ten times slower than pro.
        static let slowFree = Plans(limits: [.init(max: 2, intervalMs: 10 * minute), pro, unlimited])
        /// A monthly allowance: free 2, pro 10.
        static let monthly = Plans(limits: [.init(max: 2, intervalMs: nil), .init(max: 10, intervalMs: nil), unlimited], period: .month)
        /// Prepaid credits: free 2, pro 10.
        static let credits = Plans(limits: [.init(max: 2, intervalMs: nil), .init(max: 10, intervalMs: nil), unlimited])
    }

    /// One step of a case.
    enum Step: Sendable, CustomStringConvertible {
        /// The subject's stored plan becomes this one (0 free, 1 pro, 2 max).
        case on(Int)
        /// Time passes.
        case wait(Int64)
        /// `tries` requests of cost 1, of which `allowed` pass.
        case spend(tries: Int, allowed: Int)
        /// An admin's top-off (nil: fill).
        case topOff(Int64?)

        var description: String {
            switch self {
            case .on(let plan): return ["free", "pro", "max"][plan]
            case .wait(let ms): return "wait \(ms / PlanFlapTests.minute) min"
            case .spend(let tries, let allowed): return "\(allowed) of \(tries)"
            case .topOff(let amount): return "top-off \(amount.map(String.init) ?? "fill")"
            }
        }
    }

    /// A sequence of steps on one pool under `plans`.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var plans: Plans
        var steps: [Step]
        var testDescription: String { name }
    }

    /// The flap of the review and its variations.
    static let cases: [Case] = [
        Case(
            name: "the review's flap: pro used up, free, a refill, pro again gets only that refill", plans: .buckets,
            steps: [
                .on(1), .spend(tries: 12, allowed: 10), .on(0), .wait(minute), .spend(tries: 1, allowed: 0), .on(1),
                .spend(tries: 10, allowed: 1),
            ]),
        Case(
            name: "staying on pro (what the flap must not beat)", plans: .buckets,
            steps: [.on(1), .spend(tries: 12, allowed: 10), .wait(minute), .spend(tries: 10, allowed: 1)]),
        Case(
            name: "flapping without time passing gives nothing back", plans: .buckets,
            steps: [
                .on(1), .spend(tries: 10, allowed: 10), .on(0), .spend(tries: 2, allowed: 0), .on(1), .spend(tries: 1, allowed: 0),
                .on(0), .on(1), .spend(tries: 1, allowed: 0),
            ]),
        Case(
            name: "a partial use, a downgrade below it, an upgrade: exactly the rest", plans: .buckets,
            steps: [.on(1), .spend(tries: 7, allowed: 7), .on(0), .spend(tries: 1, allowed: 0), .on(1), .spend(tries: 5, allowed: 3)]),
        Case(
            name: "refills on free pay back what pro used beyond free's cap, then count as refills of use", plans: .buckets,
            steps: [
                .on(1), .spend(tries: 10, allowed: 10), .on(0), .wait(8 * minute), .spend(tries: 1, allowed: 0), .wait(minute),
                .spend(tries: 2, allowed: 1), .on(1), .spend(tries: 10, allowed: 8),
            ]),
        Case(
            name: "an unlimited plan between: its count carries, at most the largest cap", plans: .buckets,
            steps: [
                .on(1), .spend(tries: 10, allowed: 10), .on(2), .spend(tries: 3, allowed: 3), .on(0), .wait(minute),
                .spend(tries: 1, allowed: 0), .on(1), .spend(tries: 10, allowed: 1),
            ]),
        Case(
            name: "a big count from an unlimited plan owes at most the largest cap", plans: .buckets,
            steps: [.on(2), .spend(tries: 50, allowed: 50), .on(0), .wait(9 * minute), .spend(tries: 2, allowed: 1)]),
        Case(
            name: "a slower plan pays back at its own pace: the key outlives pro's refill", plans: .slowFree,
            steps: [
                .on(1), .spend(tries: 10, allowed: 10), .on(0), .wait(10 * minute + 1), .spend(tries: 2, allowed: 0), .wait(80 * minute),
                .spend(tries: 2, allowed: 1), .on(1), .spend(tries: 12, allowed: 8),
            ]),
        Case(
            name: "a top-off counts in the cap the pool was spent under", plans: .buckets,
            steps: [
                .on(1), .spend(tries: 10, allowed: 10), .on(0), .topOff(1), .spend(tries: 1, allowed: 0), .on(1),
                .spend(tries: 3, allowed: 1),
            ]),
        Case(
            name: "a period pool: the month's use stays used through the flap, back at the period's end", plans: .monthly,
            steps: [
                .on(1), .spend(tries: 10, allowed: 10), .on(0), .topOff(1), .spend(tries: 1, allowed: 0), .on(1),
                .spend(tries: 3, allowed: 1), .on(0), .wait(14 * 60 * minute), .spend(tries: 3, allowed: 2),
            ]),
        Case(
            name: "credits: a downgrade owes, an upgrade gives back only what is left", plans: .credits,
            steps: [
                .on(1), .spend(tries: 6, allowed: 6), .on(0), .spend(tries: 1, allowed: 0), .topOff(1), .spend(tries: 1, allowed: 0),
                .on(1), .spend(tries: 10, allowed: 5),
            ]),
    ]

    /// The pool's item under every plan's limits, as `Gate.item` builds it.
    static func item(_ plans: Plans) -> SpendItem {
        SpendItem(
            poolId: "p", key: "charge:p:s1", max: plans.limits[0].max, intervalMs: plans.limits[0].intervalMs, cost: 1, expires: true,
            period: plans.period, tracksLimit: true, baseMax: plans.limits[0].max,
            largestMax: plans.limits.compactMap(\.max).max(), slowestIntervalMs: plans.limits.compactMap(\.intervalMs).max())
    }

    @Test(arguments: cases)
    func flap(_ c: Case) throws {
        let clock = ManualClock(Self.t0)
        let store = MemoryStore(clock: clock)
        let ids = ["free", "pro", "max"]
        let choice = PlanChoice(
            recordKey: "charge:#plan:s1", ids: ids, limits: c.plans.limits.map { [$0] }, fallback: 0, defaultPlan: 0)
        let item = Self.item(c.plans)
        var plan = 0
        for (index, step) in c.steps.enumerated() {
            switch step {
            case .on(let next):
                plan = next
                try store.setPlan(PlanRecord(plan: ids[next]), at: choice.recordKey)
            case .wait(let ms):
                clock.advance(ms)
            case .spend(let tries, let allowed):
                var passed = 0
                for _ in 0..<tries {
                    if case .allowed = try store.spend(SpendRequest(items: [item], context: Self.context, plan: choice)) { passed += 1 }
                }
                #expect(passed == allowed, "step \(index) (\(step)) of \(c.steps) on \(ids[plan])")
            case .topOff(let amount):
                // As the admin endpoint does: the item under the subject's plan.
                _ = try store.topOff(choice.apply(PlanUse(index: plan, stored: true), to: [item])[0], amount: amount)
            }
        }
    }

    /// (recorded cap, current, new cap, largest cap, rebased current): the arithmetic of
    /// `Bucket.rebased` (-1: unlimited).
    @Test(
        arguments: [
            (10, 0, 2, 10, -8),  // pro used up, read under free: 8 owed
            (10, 3, 2, 10, -5),
            (2, -8, 10, 10, 0),  // the owed state read back under pro: all 10 used
            (10, 7, 2, 10, -1),
            (2, 1, 10, 10, 9),
            (10, 0, -1, 10, 10),  // under an unlimited cap: the count of uses
            (-1, 13, 2, 10, -8),  // a count enters a cap as at most the largest cap used
            (-1, 1000, 2, 10, -8),
            (-1, 1, 2, 10, 1),
            (-1, 1000, 2, nil, -998),  // no ceiling given: the whole count
            (3, 5, 2, 10, 4),  // more than the cap recorded (another writer): 2 - (3 - 5)
        ] as [(Int64, Int64, Int64, Int64?, Int64)])
    func rebasedKeepsWhatWasUsed(from: Int64, current: Int64, to: Int64, largest: Int64?, expected: Int64) {
        let item = SpendItem(
            poolId: "p", key: "k", max: to == -1 ? nil : to, intervalMs: Self.minute, cost: 1, expires: true, tracksLimit: true,
            baseMax: 2, largestMax: largest)
        let state = Bucket.rebased(BucketState(current: current, lastUpdatedAt: Self.t0, limit: from), for: item)
        #expect(state == BucketState(current: expected, lastUpdatedAt: Self.t0, limit: to))
    }

    @Test func anOwedPoolsDenialWaitsForTheRefillsThatPayItBack() {
        var item = Self.item(.buckets)
        item.max = 2
        // Pro used up 30 s ago, read under free: 8 owed, so the next charge is 9 refills away.
        let state = BucketState(current: 0, lastUpdatedAt: Self.t0 - 30_000, limit: 10)
        let plan = Bucket.plan([item], states: [state], now: Self.t0)
        #expect(plan.outcome == .outOfCharge(item: 0, retryAfterMs: 9 * Self.minute - 30_000))
        let reading = Bucket.reading(state, item: item, now: Self.t0)
        #expect(reading.available == 0 && reading.used == 2)
        #expect(reading.nextRechargeAt == Self.t0 - 30_000 + 9 * Self.minute)
        #expect(reading.fullAt == Self.t0 - 30_000 + 10 * Self.minute)
    }

    @Test func aKeyLivesUntilFullUnderTheSlowestPlan() {
        var item = Self.item(.slowFree)
        item.max = 10
        item.intervalMs = Self.minute
        let plan = Bucket.plan([item], states: [nil], now: Self.t0)
        // 1 used: full again in a minute under pro, in 10 under free.
        #expect(plan.writes.first?.ttlMs == 10 * Self.minute)
        #expect(plan.outcome == .allowed([ItemResult(remaining: 9, fullAt: Self.t0 + Self.minute)]))
    }

    @Test func hugeOwedBalancesSaturateInsteadOfOverflowing() {
        let item = SpendItem(
            poolId: "p", key: "k", max: 1, intervalMs: 3_153_600_000_000, cost: 1, expires: true, tracksLimit: true, baseMax: 1,
            slowestIntervalMs: 3_153_600_000_000)
        let state = BucketState(current: 0, lastUpdatedAt: Self.t0, limit: 1_000_000_000_000_000)
        #expect(Bucket.plan([item], states: [state], now: Self.t0).outcome == .outOfCharge(item: 0, retryAfterMs: Bucket.exactLimit))
        let reading = Bucket.reading(state, item: item, now: Self.t0)
        #expect(reading.fullAt == Self.t0 + Bucket.exactLimit && reading.nextRechargeAt == Self.t0 + Bucket.exactLimit)
    }
}
