import Testing
@testable import ChargeGateCore

@Suite struct BucketTests {
    static let hour: Int64 = 3_600_000
    static let t0: Int64 = 1_700_000_000_000

    struct LevelCase: CustomTestStringConvertible, Sendable {
        var name: String
        var state: BucketState?
        var max: Int64
        var interval: Int64?
        var now: Int64
        var available: Int64
        var last: Int64
        var full: Bool
        var testDescription: String { name }
    }

    @Test(arguments: [
        LevelCase(name: "missing key is full", state: nil, max: 5, interval: hour, now: t0, available: 5, last: t0, full: true),
        LevelCase(
            name: "no time passed", state: .init(current: 2, lastUpdatedAt: t0), max: 5, interval: hour, now: t0, available: 2, last: t0,
            full: false),
        LevelCase(
            name: "partial progress kept", state: .init(current: 2, lastUpdatedAt: t0), max: 5, interval: hour, now: t0 + hour + 10,
            available: 3, last: t0 + hour, full: false),
        LevelCase(
            name: "earned capped at max", state: .init(current: 4, lastUpdatedAt: t0), max: 5, interval: hour, now: t0 + 3 * hour,
            available: 5, last: t0 + 3 * hour, full: true),
        LevelCase(
            name: "clock behind is clamped", state: .init(current: 1, lastUpdatedAt: t0 + 5000), max: 5, interval: hour, now: t0,
            available: 1, last: t0 + 5000, full: false),
        LevelCase(
            name: "never refills", state: .init(current: 1, lastUpdatedAt: t0), max: 5, interval: nil, now: t0 + 100 * hour, available: 1,
            last: t0, full: false),
        LevelCase(
            name: "a negative stored current is owed", state: .init(current: -3, lastUpdatedAt: t0), max: 5, interval: hour, now: t0,
            available: -3, last: t0, full: false),
        LevelCase(
            name: "refills pay what is owed first", state: .init(current: -3, lastUpdatedAt: t0), max: 5, interval: hour,
            now: t0 + 4 * hour + 5, available: 1, last: t0 + 4 * hour, full: false),
    ])
    func level(_ c: LevelCase) {
        let level = Bucket.level(c.state, max: c.max, intervalMs: c.interval, now: c.now)
        #expect(level.available == c.available)
        #expect(level.lastUpdatedAt == c.last)
        #expect(level.isFull == c.full)
    }

    @Test func waitIsExactToTheMillisecond() {
        let state = BucketState(current: 0, lastUpdatedAt: Self.t0)
        let now = Self.t0 + 1234
        let level = Bucket.level(state, max: 5, intervalMs: Self.hour, now: now)
        let wait = Bucket.wait(for: 1, level: level, max: 5, intervalMs: Self.hour, now: now)
        #expect(wait == Self.hour - 1234)
        // One ms early: still none; at the wait: one.
        #expect(Bucket.level(state, max: 5, intervalMs: Self.hour, now: now + Self.hour - 1235).available == 0)
        #expect(Bucket.level(state, max: 5, intervalMs: Self.hour, now: now + Self.hour - 1234).available == 1)
        #expect(Bucket.wait(for: 3, level: level, max: 5, intervalMs: Self.hour, now: now) == 3 * Self.hour - 1234)
        #expect(Bucket.wait(for: 6, level: level, max: 5, intervalMs: Self.hour, now: now) == nil)
        #expect(Bucket.wait(for: 1, level: level, max: 5, intervalMs: nil, now: now) == nil)
    }

    @Test func spendFromFullRestartsTheClock() {
        let full = Bucket.level(nil, max: 5, intervalMs: Self.hour, now: Self.t0)
        #expect(Bucket.spend(1, from: full, now: Self.t0) == BucketState(current: 4, lastUpdatedAt: Self.t0))
        let partial = Bucket.level(.init(current: 1, lastUpdatedAt: Self.t0), max: 5, intervalMs: Self.hour, now: Self.t0 + Self.hour + 7)
        #expect(Bucket.spend(1, from: partial, now: Self.t0 + Self.hour + 7) == BucketState(current: 1, lastUpdatedAt: Self.t0 + Self.hour))
    }

    @Test func usageTimes() {
        let level = Bucket.level(.init(current: 2, lastUpdatedAt: Self.t0), max: 5, intervalMs: Self.hour, now: Self.t0 + 10)
        #expect(Bucket.nextRechargeAt(level, intervalMs: Self.hour) == Self.t0 + Self.hour)
        #expect(Bucket.fullAt(level, max: 5, intervalMs: Self.hour) == Self.t0 + 3 * Self.hour)
        let full = Bucket.level(nil, max: 5, intervalMs: Self.hour, now: Self.t0)
        #expect(Bucket.nextRechargeAt(full, intervalMs: Self.hour) == nil)
        #expect(Bucket.fullAt(full, max: 5, intervalMs: Self.hour) == nil)
    }

    @Test(arguments: [(nil as Int64?, 5 as Int64), (2, 4), (10, 5)])
    func topOff(amount: Int64?, expected: Int64) {
        let level = Bucket.level(.init(current: 2, lastUpdatedAt: Self.t0), max: 5, intervalMs: Self.hour, now: Self.t0 + 10)
        #expect(Bucket.topOff(level, amount: amount, max: 5, now: Self.t0 + 10).current == expected)
    }

    static func item(_ id: String, max: Int64?, interval: Int64? = hour, cost: Int64 = 1, expires: Bool = false) -> SpendItem {
        SpendItem(poolId: id, key: "k:" + id, max: max, intervalMs: interval, cost: cost, expires: expires)
    }

    @Test func planSpendsAllOrNothing() {
        let items = [Self.item("a", max: 5), Self.item("b", max: 2)]
        let empty = BucketState(current: 0, lastUpdatedAt: Self.t0)
        let plan = Bucket.plan(items, states: [nil, empty], now: Self.t0 + 100)
        #expect(plan.outcome == .outOfCharge(item: 1, retryAfterMs: Self.hour - 100))
        #expect(plan.writes.isEmpty)
        let ok = Bucket.plan(items, states: [nil, nil], now: Self.t0)
        #expect(
            ok.outcome
                == .allowed([ItemResult(remaining: 4, fullAt: Self.t0 + Self.hour), ItemResult(remaining: 1, fullAt: Self.t0 + Self.hour)]))
        #expect(
            ok.writes.map(\.state) == [BucketState(current: 4, lastUpdatedAt: Self.t0), BucketState(current: 1, lastUpdatedAt: Self.t0)])
    }

    @Test func planNamesTheLongestWait() {
        let items = [Self.item("short", max: 5, interval: 1000), Self.item("long", max: 5, interval: Self.hour)]
        let empty = BucketState(current: 0, lastUpdatedAt: Self.t0)
        #expect(Bucket.plan(items, states: [empty, empty], now: Self.t0).outcome == .outOfCharge(item: 1, retryAfterMs: Self.hour))
    }

    @Test func creditsWinOverRecharge() {
        let items = [Self.item("calls", max: 5), Self.item("credits", max: 100, interval: nil, cost: 5)]
        let states = [BucketState(current: 0, lastUpdatedAt: Self.t0), BucketState(current: 4, lastUpdatedAt: Self.t0)]
        #expect(Bucket.plan(items, states: states, now: Self.t0).outcome == .insufficientCredits(item: 1, available: 4, required: 5))
    }

    @Test func costFiveWithFourLeftIsDenied() {
        let items = [Self.item("a", max: 10, cost: 5)]
        let plan = Bucket.plan(items, states: [BucketState(current: 4, lastUpdatedAt: Self.t0)], now: Self.t0)
        #expect(plan.outcome == .outOfCharge(item: 0, retryAfterMs: Self.hour))
    }

    @Test func unlimitedCountsAndNeverDenies() {
        let items = [Self.item("meter", max: nil, interval: nil, cost: 3)]
        let plan = Bucket.plan(items, states: [BucketState(current: 7, lastUpdatedAt: Self.t0)], now: Self.t0 + 5)
        #expect(plan.outcome == .allowed([ItemResult(remaining: 10, fullAt: nil)]))
        #expect(plan.writes.first?.ttlMs == nil)
    }

    @Test func perSubjectKeysExpireWhenFullAgain() {
        let items = [Self.item("api", max: 3, interval: 1000, expires: true)]
        let plan = Bucket.plan(items, states: [nil], now: Self.t0)
        #expect(plan.writes.first?.ttlMs == 1000)
        let later = Bucket.plan(items, states: [BucketState(current: 1, lastUpdatedAt: Self.t0)], now: Self.t0 + 400)
        let ttl: Int64? = later.writes.first?.ttlMs ?? nil
        #expect(ttl == Int64(3000 - 400))
    }
}
