import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateCore

/// A pool below zero (a settlement charged past its hold, or a plan's cap lowered below what
/// was used) in what readers see: the reading, the usage JSON (`owed`), the page and the table.
@Suite struct UsageOwedTests {
    static let now: Int64 = 1_700_000_000_000
    static let hour: Int64 = 3_600_000

    // MARK: Below zero

    static let bucket = PoolConfig(
        id: "tokens", capacity: .limited(5), recharge: .every(intervalMs: hour), rechargeIntervalHours: 1, scope: .subject)
    static let credits = PoolConfig(id: "credits", capacity: .limited(100), recharge: .none, label: "Credits")
    static let monthly = PoolConfig(id: "monthly", capacity: .limited(10), recharge: .period(.month))

    static func item(_ pool: PoolConfig) -> SpendItem {
        SpendItem(poolId: pool.id, key: "", max: pool.maxCharges, intervalMs: pool.intervalMs, cost: 0, expires: false, period: pool.period)
    }

    @Test func aReadingBelowZeroIsOwed() {
        let reading = Bucket.reading(BucketState(current: -3, lastUpdatedAt: Self.now), item: Self.item(Self.bucket), now: Self.now)
        #expect(reading.available == 0)
        #expect(reading.owed == 3)
        #expect(reading.used == 5)
        // The next charge that can be spent comes once the 3 owed are paid back.
        #expect(reading.nextRechargeAt == Self.now + 4 * Self.hour)
        #expect(reading.fullAt == Self.now + 8 * Self.hour)
        let credits = Bucket.reading(BucketState(current: -250, lastUpdatedAt: Self.now), item: Self.item(Self.credits), now: Self.now)
        #expect((credits.available, credits.owed, credits.nextRechargeAt) == (0, 250, nil))
        let period = Bucket.reading(BucketState(current: -4, lastUpdatedAt: Self.now), item: Self.item(Self.monthly), now: Self.now)
        #expect((period.available, period.owed) == (0, 4))
        // A period written before this one began is a full pool: nothing is owed any more.
        let old = Bucket.reading(
            BucketState(current: -4, lastUpdatedAt: Self.now - 40 * 24 * Self.hour), item: Self.item(Self.monthly), now: Self.now)
        #expect((old.available, old.owed) == (10, 0))
        for state in [nil, BucketState(current: 0, lastUpdatedAt: Self.now), BucketState(current: 2, lastUpdatedAt: Self.now)] {
            #expect(Bucket.reading(state, item: Self.item(Self.bucket), now: Self.now).owed == 0)
        }
        let meter = PoolConfig(id: "meter", capacity: .unlimited, recharge: .none)
        #expect(Bucket.reading(BucketState(current: 9, lastUpdatedAt: Self.now), item: Self.item(meter), now: Self.now).owed == 0)
        // Refills that pay part of it back: 3 owed, 2 hours later 1.
        let later = Bucket.reading(
            BucketState(current: -3, lastUpdatedAt: Self.now), item: Self.item(Self.bucket), now: Self.now + 2 * Self.hour)
        #expect((later.available, later.owed) == (0, 1))
    }

    @Test func theUsageJSONAddsOwedOnlyBelowZero() {
        let below = Bucket.reading(BucketState(current: -250, lastUpdatedAt: Self.now), item: Self.item(Self.credits), now: Self.now)
        var w = JSONWriter()
        Responder.writeState(&w, pool: Self.credits, reading: below, subject: "")
        #expect(
            w.text
                == #"{"id":"credits","label":"Credits","group":"","current":0,"max":100,"rechargeIntervalHours":null,"nextRechargeAt":null,"fullAt":null,"availableBalance":0,"usedBalance":100,"balanceLimit":100,"owed":250}"#
        )
        let zero = Bucket.reading(BucketState(current: 0, lastUpdatedAt: Self.now), item: Self.item(Self.credits), now: Self.now)
        var z = JSONWriter()
        Responder.writeState(&z, pool: Self.credits, reading: zero, subject: "")
        #expect(!z.text.contains("owed"))
    }

    @Test func thePageShowsABalanceBelowZero() {
        let rows = [
            UsagePage.Row(pool: Self.credits, state: BucketState(current: -1200, lastUpdatedAt: Self.now), subject: "", now: Self.now),
            UsagePage.Row(pool: Self.bucket, state: BucketState(current: -3, lastUpdatedAt: Self.now), subject: "s1", now: Self.now),
            UsagePage.Row(pool: Self.monthly, state: BucketState(current: -4, lastUpdatedAt: Self.now), subject: "", now: Self.now),
            UsagePage.Row(pool: Self.credits, state: BucketState(current: 0, lastUpdatedAt: Self.now), subject: "", now: Self.now),
        ]
        let html = UsagePage.render(rows, now: Self.now)
        #expect(html.contains(#"<b>-1,200</b> of 100 left <span class="state">overdrawn</span>"#))
        #expect(html.contains(#"aria-valuenow="0" aria-valuetext="-1,200 of 100 left"><span style="width:0%"></span>"#))
        #expect(html.contains(#"<li class="pool danger credits" id="pool-credits">"#))
        #expect(html.contains(#"<b>-3</b> of 5 left <span class="state">overdrawn</span>"#))
        #expect(html.contains("<span>next charge in 4h</span> · <span>full in 8h</span>"))
        #expect(html.contains(#"<b>-4</b> of 10 left <span class="state">overdrawn</span>"#))
        // At zero it is empty, as before.
        #expect(html.contains(#"<b>0</b> of 100 left <span class="state">empty</span>"#))
    }

    @Test func theTableShowsABalanceBelowZero() {
        let rows = [
            UsagePage.Row(pool: Self.credits, state: BucketState(current: -1200, lastUpdatedAt: Self.now), subject: "", now: Self.now),
            UsagePage.Row(pool: Self.bucket, state: BucketState(current: -3, lastUpdatedAt: Self.now), subject: "s1", now: Self.now),
        ]
        #expect(
            UsageTable.render(rows, now: Self.now) == """
                POOL     GROUP  LEFT                        NEXT CHARGE   FULL IN  SUBJECT
                credits         -1200/100  [..........] !!  top-off only  -
                tokens          -3/5       [..........] !!  4h            8h       s1

                """)
    }
}
