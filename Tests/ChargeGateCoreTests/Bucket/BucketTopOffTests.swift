import ChargeGateTestSupport
import Testing

@testable import ChargeGateCore

/// The whole top-off decision (`Bucket.topOff(_:state:amount:now:)`), which the memory store
/// runs and the Lua script's `top_off` mirrors: the cap it counts in, the rebase, the level,
/// the amount, the recorded cap and the key's fate.
@Suite struct BucketTopOffTests {
    static let t0: Int64 = 1_700_000_000_000  // 22:13:20 UTC: its day ends 6,400,000 ms later
    static let dayEnd: Int64 = 1_700_006_400_000
    static let dayStart: Int64 = 1_699_920_000_000

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var item: SpendItem
        var state: BucketState?
        var amount: Int64?
        var expected: Bucket.TopOff
        var testDescription: String { name }
    }

    static func item(
        max: Int64? = 5, interval: Int64? = 60_000, expires: Bool = false, period: BillingPeriod? = nil, tracks: Bool = false,
        baseMax: Int64? = nil, slowest: Int64? = nil
    ) -> SpendItem {
        SpendItem(
            poolId: "p", key: "k", max: max, intervalMs: interval, cost: 0, expires: expires, period: period, tracksLimit: tracks,
            baseMax: baseMax, slowestIntervalMs: slowest)
    }

    static func kept(_ current: Int64, _ last: Int64, limit: Int64? = nil, ttl: Int64? = nil) -> Bucket.TopOff {
        Bucket.TopOff(state: BucketState(current: current, lastUpdatedAt: last, limit: limit), ttlMs: ttl, removesKey: false)
    }

    static let cases: [Case] = [
        Case(
            name: "adds, keeping the last step", item: item(), state: .init(current: 1, lastUpdatedAt: t0 - 5000), amount: 2,
            expected: kept(3, t0 - 5000)),
        Case(
            name: "past the cap fills", item: item(), state: .init(current: 1, lastUpdatedAt: t0 - 5000), amount: 10, expected: kept(5, t0)),
        Case(name: "no amount fills", item: item(), state: .init(current: 1, lastUpdatedAt: t0 - 5000), amount: nil, expected: kept(5, t0)),
        Case(name: "a missing key is full", item: item(), state: nil, amount: 1, expected: kept(5, t0)),
        Case(
            name: "earned charges first", item: item(), state: .init(current: 1, lastUpdatedAt: t0 - 130_000), amount: 1,
            expected: kept(4, t0 - 10_000)),
        Case(
            name: "per subject: lives until full again", item: item(interval: 10_000, expires: true),
            state: .init(current: 0, lastUpdatedAt: t0 - 1000), amount: 2, expected: kept(2, t0 - 1000, ttl: 29_000)),
        Case(
            name: "per subject: until full under the slowest plan", item: item(interval: 10_000, expires: true, slowest: 20_000),
            state: .init(current: 0, lastUpdatedAt: t0 - 1000), amount: 2, expected: kept(2, t0 - 1000, ttl: 59_000)),
        Case(
            name: "per subject: full again removes the key", item: item(interval: 10_000, expires: true),
            state: .init(current: 0, lastUpdatedAt: t0 - 1000), amount: nil,
            expected: Bucket.TopOff(state: BucketState(current: 5, lastUpdatedAt: t0), ttlMs: nil, removesKey: true)),
        Case(
            name: "per subject credits: never expire", item: item(interval: nil, expires: true),
            state: .init(current: 1, lastUpdatedAt: t0 - 1000), amount: 2, expected: kept(3, t0 - 1000)),
        Case(
            name: "period pool: lives until the period ends", item: item(interval: nil, expires: true, period: .day),
            state: .init(current: 1, lastUpdatedAt: t0 - 1000), amount: 2, expected: kept(3, t0 - 1000, ttl: dayEnd - t0)),
        Case(
            name: "period pool: a state from before the period is full", item: item(interval: nil, expires: true, period: .day),
            state: .init(current: 0, lastUpdatedAt: dayStart - 1), amount: 1, expected: kept(5, t0, ttl: dayEnd - t0)),
        Case(
            name: "global period pool: no expiry", item: item(interval: nil, period: .day),
            state: .init(current: 1, lastUpdatedAt: t0 - 1000), amount: 1, expected: kept(2, t0 - 1000)),
        Case(
            name: "recorded cap: counted in it, not the plan's", item: item(tracks: true, baseMax: 5),
            state: .init(current: 4, lastUpdatedAt: t0 - 1000, limit: 10), amount: 3, expected: kept(7, t0 - 1000, limit: 10)),
        Case(
            name: "no recorded cap: counted in the pool's own", item: item(tracks: true, baseMax: 8),
            state: .init(current: 4, lastUpdatedAt: t0 - 1000), amount: 3, expected: kept(7, t0 - 1000, limit: 8)),
        Case(
            name: "recorded unlimited: rebased into the item's cap", item: item(tracks: true, baseMax: 5),
            state: .init(current: 3, lastUpdatedAt: t0 - 1000, limit: Bucket.unlimitedMark), amount: 1,
            expected: kept(3, t0 - 1000, limit: 5)),
        Case(
            name: "an owed balance is paid back first (an overage is never written off)", item: item(tracks: true, baseMax: 5),
            state: .init(current: -3, lastUpdatedAt: t0 - 1000, limit: 5), amount: 2, expected: kept(-1, t0 - 1000, limit: 5)),
        Case(
            name: "then the pool holds what is left", item: item(tracks: true, baseMax: 5),
            state: .init(current: -3, lastUpdatedAt: t0 - 1000, limit: 5), amount: 7, expected: kept(4, t0 - 1000, limit: 5)),
        Case(
            name: "a fill forgives what is owed", item: item(tracks: true, baseMax: 5),
            state: .init(current: -3, lastUpdatedAt: t0 - 1000, limit: 5), amount: nil, expected: kept(5, t0, limit: 5)),
        Case(
            name: "an unlimited pool counts in a cap of 0", item: item(max: nil, interval: nil),
            state: .init(current: 7, lastUpdatedAt: t0 - 1000), amount: 2, expected: kept(0, t0)),
        Case(
            name: "an unlimited pool that tracks records unlimited", item: item(max: nil, interval: nil, tracks: true),
            state: nil, amount: nil, expected: kept(0, t0, limit: Bucket.unlimitedMark)),
    ]

    @Test(arguments: cases)
    func topOff(_ c: Case) {
        #expect(Bucket.topOff(c.item, state: c.state, amount: c.amount, now: Self.t0) == c.expected)
    }

    /// The memory store writes what the decision says: the state, expiring after its TTL, or
    /// no key. (Seeded by a fill of a pool whose cap is the state's `current`, at its
    /// `lastUpdatedAt`: so only states without a recorded cap, none owed.)
    @Test(arguments: cases.filter { $0.state?.limit == nil && ($0.state?.current ?? 0) >= 0 })
    func theMemoryStoreRunsIt(_ c: Case) throws {
        let clock = ManualClock(c.state?.lastUpdatedAt ?? Self.t0)
        let store = MemoryStore(clock: clock)
        if let state = c.state {
            let seed = SpendItem(poolId: "p", key: c.item.key, max: state.current, intervalMs: nil, cost: 0, expires: false)
            #expect(try store.topOff(seed, amount: nil).state == state)
            clock.advance(Self.t0 - state.lastUpdatedAt)
        }
        let answer = try store.topOff(c.item, amount: c.amount)
        #expect(answer.state == c.expected.state)
        #expect(try store.peek([c.item.key]).states[0] == (c.expected.removesKey ? nil : c.expected.state))
        if let ttl = c.expected.ttlMs {
            clock.advance(ttl - 1)
            #expect(try store.peek([c.item.key]).states[0] != nil)
            clock.advance(1)
            #expect(try store.peek([c.item.key]).states[0] == nil)
        }
    }
}
