import ChargeGateTestSupport
import Testing

@testable import ChargeGateCore

/// One pool's settlement (`Bucket.settle`), which the memory store runs and the settle script's
/// `settle_item` mirrors (`SettleScriptTests` compares them on random cases): spent on top or
/// given back, capped at the cap, below zero when owed, an unlimited pool's use never below 0,
/// a period pool's give-back only in the hold's period, rebased to the cap it was held under,
/// and the key's fate.
@Suite struct BucketSettleTests {
    static let t0: Int64 = 1_700_000_000_000  // 22:13:20 UTC: its day ends 6,400,000 ms later
    static let dayStart: Int64 = 1_699_920_000_000
    static let dayEnd: Int64 = 1_700_006_400_000
    static let hour: Int64 = 3_600_000
    static let limit = Bucket.exactLimit

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var item: SpendItem
        var state: BucketState?
        var difference: Int64
        var periodStart: Int64?
        var expected: Bucket.Settle?
        var testDescription: String { name }
    }

    static func item(
        max: Int64? = 10, interval: Int64? = hour, expires: Bool = true, period: BillingPeriod? = nil, tracks: Bool = false,
        baseMax: Int64? = nil, largest: Int64? = nil
    ) -> SpendItem {
        SpendItem(
            poolId: "p", key: "k", max: max, intervalMs: interval, cost: 4, expires: expires, period: period, tracksLimit: tracks,
            baseMax: baseMax, largestMax: largest)
    }

    static func state(_ current: Int64, _ last: Int64, limit: Int64? = nil) -> BucketState {
        BucketState(current: current, lastUpdatedAt: last, limit: limit)
    }

    static func kept(_ current: Int64, _ last: Int64, limit: Int64? = nil, ttl: Int64? = nil) -> Bucket.Settle {
        Bucket.Settle(state: state(current, last, limit: limit), ttlMs: ttl, removesKey: false)
    }

    static let cases: [Case] = [
        Case(name: "no difference writes nothing", item: item(), state: state(6, t0 - 1000), difference: 0, expected: nil),
        Case(
            name: "a give-back keeps the bucket's last step; the key lives until full again", item: item(), state: state(6, t0 - 1000),
            difference: -1, expected: kept(7, t0 - 1000, ttl: 3 * hour - 1000)),
        Case(
            name: "a give-back counts the charges earned meanwhile", item: item(), state: state(0, t0 - 5 * hour / 2), difference: -1,
            expected: kept(3, t0 - hour / 2, ttl: 7 * hour - hour / 2)),
        Case(
            name: "a give-back that fills a per-subject bucket removes its key", item: item(), state: state(6, t0 - 1000),
            difference: -4, expected: Bucket.Settle(state: state(10, t0), ttlMs: nil, removesKey: true)),
        Case(
            name: "a give-back never goes above the cap (a global pool keeps its key)", item: item(expires: false),
            state: state(6, t0 - 1000), difference: -9, expected: kept(10, t0)),
        Case(
            name: "spent on top below zero: the pool owes, its key lives until it is paid back and full", item: item(),
            state: state(6, t0 - 1000), difference: 8, expected: kept(-2, t0 - 1000, ttl: 12 * hour - 1000)),
        Case(
            name: "spent on top of a full pool: the clock starts now", item: item(), state: nil, difference: 2,
            expected: kept(8, t0, ttl: 2 * hour)),
        Case(
            name: "an owed balance stops at what Lua holds", item: item(expires: false), state: state(5 - limit, t0), difference: 10,
            expected: kept(1 - limit, t0)),
        Case(
            name: "credits: given back up to the cap, no TTL (they never refill)", item: item(max: 100, interval: nil),
            state: state(90, t0 - 1000), difference: -10, expected: kept(100, t0)),
        Case(
            name: "credits: spent on top keep their stamp", item: item(max: 100, interval: nil), state: state(90, t0 - 1000),
            difference: 15, expected: kept(75, t0 - 1000)),
        Case(
            name: "an unlimited meter: the use lowered", item: item(max: nil, interval: nil), state: state(5, t0 - 1000), difference: -3,
            expected: kept(2, t0)),
        Case(
            name: "an unlimited meter: never below 0", item: item(max: nil, interval: nil), state: state(2, t0 - 1000), difference: -5,
            expected: kept(0, t0)),
        Case(
            name: "an unlimited meter: spent on top, at most what Lua holds", item: item(max: nil, interval: nil),
            state: state(limit - 3, t0 - 1000), difference: 5, expected: kept(limit - 1, t0)),
        Case(
            name: "a period meter: only this period's use counts, its key lives until the period ends",
            item: item(max: nil, interval: nil, period: .day), state: state(7, dayStart - 1), difference: 4,
            periodStart: dayStart - 86_400_000,
            expected: kept(4, t0, ttl: dayEnd - t0)),
        Case(
            name: "a period pool: a give-back in the hold's period lowers its use", item: item(max: 100, interval: nil, period: .day),
            state: state(90, t0 - 1000), difference: -7, periodStart: dayStart, expected: kept(97, t0, ttl: dayEnd - t0)),
        Case(
            name: "a period pool: no give-back once the period changed", item: item(max: 100, interval: nil, period: .day),
            state: state(90, dayStart - 1000), difference: -7, periodStart: dayStart - 86_400_000, expected: nil),
        Case(
            name: "a period pool: an overage is spent in the current period, whichever the hold's",
            item: item(max: 100, interval: nil, period: .day), state: state(90, dayStart - 1000), difference: 5,
            periodStart: dayStart - 86_400_000, expected: kept(95, t0, ttl: dayEnd - t0)),
        Case(
            name: "a global period pool keeps its key forever", item: item(max: 100, interval: nil, expires: false, period: .day),
            state: state(90, t0 - 1000), difference: -7, periodStart: dayStart, expected: kept(97, t0)),
        Case(
            name: "plans: a state counted in another cap is rebased to the cap the hold was spent under",
            item: item(max: 10, interval: nil, tracks: true, baseMax: 10, largest: 100), state: state(92, t0 - 1000, limit: 100),
            difference: -3, expected: kept(5, t0 - 1000, limit: 10)),
        Case(
            name: "plans: a hold spent under an unlimited plan lowers the count it was rebased to",
            item: item(max: nil, interval: nil, tracks: true, baseMax: 10, largest: 100), state: state(92, t0 - 1000, limit: 100),
            difference: -3, expected: kept(5, t0, limit: Bucket.unlimitedMark)),
    ]

    @Test(arguments: cases)
    func settle(_ c: Case) {
        #expect(Bucket.settle(c.item, state: c.state, difference: c.difference, periodStart: c.periodStart, now: Self.t0) == c.expected)
    }

    /// Settling the difference to the hold and spending it again leave the same balance: a
    /// give-back is undone by the same spend, on every kind of pool that is not full.
    @Test(arguments: [-3, -1, 1, 2, 7] as [Int64])
    func aGiveBackAndTheSameOverageCancel(difference: Int64) throws {
        let item = Self.item(max: 10, interval: nil)
        let start = Self.state(5, Self.t0 - 1000)
        let first = try #require(Bucket.settle(item, state: start, difference: difference, periodStart: nil, now: Self.t0))
        let back = try #require(Bucket.settle(item, state: first.state, difference: -difference, periodStart: nil, now: Self.t0))
        #expect(back.state.current == start.current)
    }
}
