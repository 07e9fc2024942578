import Testing

@testable import ChargeGateCore

/// The "Upgrade" link of the usage page: on a row that has an `upgradeUrl` (the responder gives
/// one to a used-up per-subject period or credits pool), escaped, and on no other.
@Suite struct UsagePageUpgradeTests {
    static let t0: Int64 = 1_700_000_000_000

    static func row(_ pool: PoolConfig, current: Int64, upgradeUrl: String?) -> UsagePage.Row {
        let item = SpendItem(
            poolId: pool.id, key: "", max: pool.maxCharges, intervalMs: pool.intervalMs, cost: 0, expires: false, period: pool.period)
        let reading = Bucket.reading(BucketState(current: current, lastUpdatedAt: t0 - 1000), item: item, now: t0)
        return UsagePage.Row(pool: pool, reading: reading, subject: "s1", upgradeUrl: upgradeUrl)
    }

    /// The `<li>` of pool `id`.
    static func card(_ id: String, in page: String) throws -> String {
        let marker = try #require(page.range(of: "id=\"pool-\(id)\""))
        let start = try #require(page[..<marker.lowerBound].range(of: "<li ", options: .backwards))
        let end = try #require(page[marker.upperBound...].range(of: "</li>"))
        return String(page[start.lowerBound..<end.upperBound])
    }

    static let generations = PoolConfig(
        id: "generations", capacity: .limited(5), recharge: .period(.month), label: "Generations", scope: .subject)
    static let credits = PoolConfig(id: "credits", capacity: .limited(100), recharge: .none, scope: .subject)

    @Test func aRowWithAURLEndsWithTheLink() throws {
        let page = UsagePage.render(
            [
                Self.row(Self.generations, current: 0, upgradeUrl: "/pricing#pro"),
                Self.row(Self.credits, current: 0, upgradeUrl: "https://shop.example.com/credits"),
            ], now: Self.t0)
        let card = try Self.card("generations", in: page)
        #expect(card.contains("<span class=\"state\">used up until reset</span>"))
        #expect(card.hasSuffix("</p>\n<p class=\"upgrade\"><a href=\"/pricing#pro\">Upgrade</a></p>\n</li>"), "\(card)")
        let credits = try Self.card("credits", in: page)
        #expect(credits.contains("<p class=\"upgrade\"><a href=\"https://shop.example.com/credits\">Upgrade</a></p>"))
        #expect(page.components(separatedBy: ">Upgrade</a>").count - 1 == 2)
    }

    @Test func aRowWithoutOneHasNoLink() throws {
        let page = UsagePage.render([Self.row(Self.generations, current: 0, upgradeUrl: nil)], now: Self.t0)
        #expect(!page.contains("Upgrade"))
        #expect(!page.contains("class=\"upgrade\""))
    }

    @Test func theURLIsEscapedInTheHref() throws {
        // The config refuses quotes and '<', '>', but the page escapes whatever it is given.
        let page = UsagePage.render(
            [Self.row(Self.generations, current: 0, upgradeUrl: "/p?a=1&b='2'\"><script>x</script>")], now: Self.t0)
        #expect(page.contains("<a href=\"/p?a=1&amp;b=&#39;2&#39;&quot;&gt;&lt;script&gt;x&lt;/script&gt;\">Upgrade</a>"))
        #expect(!page.contains("<script>"))
    }
}
