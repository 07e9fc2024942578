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
                state: BucketState(current: 1, lastUpdatedAt: Self.now - 45 * 60_000), subject: ""),
            UsagePage.Row(
                pool: PoolConfig(
                    id: "api-calls", capacity: .limited(10), recharge: .every(intervalMs: 60_000), rechargeIntervalHours: 1.0 / 60,
                    scope: .subject),
                state: nil, subject: "203.0.113.7"),
            UsagePage.Row(
                pool: PoolConfig(id: "credits", capacity: .limited(100), recharge: .none, group: "Bill\ning"),
                state: BucketState(current: 5, lastUpdatedAt: Self.now), subject: ""),
            UsagePage.Row(
                pool: PoolConfig(id: "meter", capacity: .unlimited, recharge: .none),
                state: BucketState(current: 42, lastUpdatedAt: Self.now), subject: ""),
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
