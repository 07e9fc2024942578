import Testing
@testable import ChargeGateCore

@Suite struct UsageTableTests {
    static let hour: Int64 = 3_600_000
    static let now: Int64 = 1_700_000_000_000

    @Test func tableShowsEveryKindOfPool() {
        let rows = [
            UsagePage.Row(
                pool: PoolConfig(
                    id: "generate-image", capacity: .limited(5), recharge: .every(intervalMs: 2 * Self.hour), rechargeIntervalHours: 2,
                    group: "AI"),
                state: BucketState(current: 1, lastUpdatedAt: Self.now - 45 * 60_000), subject: "", now: Self.now),
            UsagePage.Row(
                pool: PoolConfig(
                    id: "api-calls", capacity: .limited(10), recharge: .every(intervalMs: 60_000), rechargeIntervalHours: 1.0 / 60,
                    scope: .subject),
                state: nil, subject: "203.0.113.7", now: Self.now),
            UsagePage.Row(
                pool: PoolConfig(id: "credits", capacity: .limited(100), recharge: .none, group: "Bill\ning"),
                state: BucketState(current: 5, lastUpdatedAt: Self.now), subject: "", now: Self.now),
            UsagePage.Row(
                pool: PoolConfig(id: "meter", capacity: .unlimited, recharge: .none),
                state: BucketState(current: 42, lastUpdatedAt: Self.now), subject: "", now: Self.now),
        ]
        // 1 of 5 left is 80 % used (low); 5 of 100 is 95 % used (!!).
        #expect(
            UsageTable.render(rows, now: Self.now) == """
                POOL            GROUP     LEFT                       NEXT CHARGE   FULL IN  SUBJECT
                generate-image  AI        1/5      [##........] low  1h 15m        7h 15m
                api-calls                 10/10    [##########]      -             full     203.0.113.7
                credits         Bill?ing  5/100    [#.........] !!   top-off only  -
                meter                     42 used  unlimited         -             -

                """)
    }
}

extension UsageTableTests {
    @Test func periodPoolsSayWhenTheyReset() {
        // 2025-11-30T10:00:00Z: the month resets Dec 1 (in 14 h), the day in 14 h too.
        let now: Int64 = 1_764_496_800_000
        let month = PoolConfig(id: "generations", capacity: .limited(5), recharge: .period(.month), scope: .subject)
        let day = PoolConfig(id: "daily", capacity: .unlimited, recharge: .period(.day))
        let rows = [
            UsagePage.Row(pool: month, state: BucketState(current: 2, lastUpdatedAt: now - 1000), subject: "s1", now: now),
            UsagePage.Row(pool: day, state: BucketState(current: 7, lastUpdatedAt: now - 1000), subject: "", now: now),
            // Written last month: a full pool again.
            UsagePage.Row(pool: month, state: BucketState(current: 0, lastUpdatedAt: now - 40 * 86_400_000), subject: "s2", now: now),
        ]
        #expect(
            UsageTable.render(rows, now: now) == """
                POOL         GROUP  LEFT                        NEXT CHARGE    FULL IN  SUBJECT
                generations         2/5           [####......]  resets in 14h  14h      s1
                daily               7 used today  unlimited     resets in 14h  -
                generations         5/5           [##########]  -              full     s2

                """)
    }
}

extension UsagePage.Row {
    /// A row for `pool` whose stored state is `state`, read at `now` (rendering tests).
    init(pool: PoolConfig, state: BucketState?, subject: String, now: Int64) {
        let item = SpendItem(
            poolId: pool.id, key: "", max: pool.maxCharges, intervalMs: pool.intervalMs, cost: 0, expires: false, period: pool.period)
        self.init(pool: pool, reading: Bucket.reading(state, item: item, now: now), subject: subject)
    }
}
