import Foundation
import Testing
@testable import ChargeGateCore

@Suite struct UsagePageTests {
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    static let t0: Int64 = 1_700_000_000_000

    // MARK: the retry string (the same table as tests/js/charge-fetch.test.mjs)

    static let retryStringTable: [(Int64, String)] = [
        (0, "0m"),
        (-5, "0m"),
        (1, "1m"),
        (59_000, "1m"),
        (60_000, "1m"),
        (60_001, "2m"),
        (61_000, "2m"),
        (45 * minute - 1, "45m"),
        (45 * minute, "45m"),
        (59 * minute, "59m"),
        (59 * minute + 1, "1h"),
        (hour, "1h"),
        (hour + 1, "1h 1m"),
        (2 * hour - 1, "2h"),
        (2 * hour + 14 * minute + 1, "2h 15m"),
        (2 * hour + 15 * minute, "2h 15m"),
        (25 * hour, "25h"),
        (24 * hour + 59 * minute, "24h 59m"),
        (Int64.max, "2562047788015h 13m"),
    ]

    @Test(arguments: retryStringTable)
    func retryString(ms: Int64, expected: String) {
        #expect(UsagePage.retryString(ms: ms) == expected)
    }

    static let intervalStringTable: [(Int64, String)] = [
        (1, "1s"),
        (1_800, "2s"),
        (36_000, "36s"),
        (59_999, "60s"),
        (60_000, "1m"),
        (1_199_999, "20m"),
        (2 * hour, "2h"),
    ]

    @Test(arguments: intervalStringTable)
    func intervalString(ms: Int64, expected: String) {
        #expect(UsagePage.intervalString(ms: ms) == expected)
    }

    static let escapeTable: [(String, String)] = [
        ("plain", "plain"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        (#""'&"#, "&quot;&#39;&amp;"),
        ("&amp;", "&amp;amp;"),
        ("é ✓ 🚀", "é ✓ 🚀"),
        ("a\u{0}b", "a\u{FFFD}b"),
    ]

    @Test(arguments: escapeTable)
    func escape(raw: String, expected: String) {
        #expect(UsagePage.escape(raw) == expected)
    }

    static let groupedTable: [(Int64, String)] = [
        (0, "0"), (999, "999"), (1000, "1,000"), (123_456, "123,456"),
        (1_234_567, "1,234,567"), (-1234, "-1,234"), (1_000_000_000_000_000, "1,000,000,000,000,000"),
    ]

    @Test(arguments: groupedTable)
    func grouped(number: Int64, expected: String) {
        #expect(UsagePage.grouped(number) == expected)
    }

    static let utcTable: [(Int64, String, String)] = [
        (0, "1970-01-01T00:00:00Z", "1970-01-01 00:00 UTC"),
        (951_782_400_000, "2000-02-29T00:00:00Z", "2000-02-29 00:00 UTC"),
        (1_700_000_000_000, "2023-11-14T22:13:20Z", "2023-11-14 22:13 UTC"),
        (1_763_751_600_999, "2025-11-21T19:00:00Z", "2025-11-21 19:00 UTC"),
    ]

    @Test(arguments: utcTable)
    func utc(ms: Int64, iso: String, text: String) {
        let stamp = UsagePage.utc(ms)
        #expect(stamp.iso == iso)
        #expect(stamp.text == text)
    }

    // MARK: warning levels: amber from 75 % used, red from 90 % used

    static let levelTable: [(Int64, Int64, UsagePage.Level)] = [
        (100, 100, .ok),
        (26, 100, .ok),  // 74 % used
        (25, 100, .warn),  // 75 %
        (11, 100, .warn),  // 89 %
        (10, 100, .danger),  // 90 %
        (0, 100, .danger),
        (2, 8, .warn),  // 75 % of a small pool
        (1, 4, .warn),
        (1, 10, .danger),
        (1, 1, .ok),
        (0, 1, .danger),
        (250_000_000_000_000, 1_000_000_000_000_000, .warn),
    ]

    @Test(arguments: levelTable)
    func level(available: Int64, max: Int64, expected: UsagePage.Level) {
        #expect(UsagePage.level(available: available, max: max) == expected)
    }

    static let renderedColourClassTable: [(Int64, String, String)] = [
        (26, "ok", "74% used"),
        (25, "warn", "75% used"),
        (11, "warn", "89% used"),
        (10, "danger", "90% used"),
    ]

    @Test(arguments: renderedColourClassTable)
    func renderedColourClass(available: Int64, expected: String, _ what: String) throws {
        let page = render([row(pool("p", max: 100, hours: 1), current: available)])
        let card = try #require(Self.card("p", in: page))
        #expect(card.hasPrefix("<li class=\"pool \(expected)\""), "\(what): \(card)")
        #expect(card.contains("aria-valuenow=\"\(available)\""))
        #expect(card.contains("style=\"width:\(available)%\""))
    }

    // MARK: rendering

    @Test func pageShellIsSelfContained() {
        let page = render([row(pool("p", max: 5, hours: 2))])
        #expect(page.hasPrefix("<!doctype html>\n<html lang=\"en\">"))
        #expect(page.contains("<meta charset=\"utf-8\">"))
        #expect(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"))
        #expect(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"))
        #expect(page.contains("prefers-color-scheme:dark"))
        #expect(page.contains("<time datetime=\"2023-11-14T22:13:20Z\">2023-11-14 22:13 UTC</time>"))
        #expect(page.hasSuffix("</html>\n"))
        for external in ["<script", "<link", "src=", "http://", "https://", "url(", "@import"] {
            #expect(!page.contains(external), "\(external)")
        }
    }

    @Test func groupsInOrderOfFirstAppearanceUngroupedLastAsOther() throws {
        let page = render([
            row(pool("loose-1", max: 5, hours: 1)),
            row(pool("ai-1", max: 5, hours: 1, group: "AI")),
            row(pool("text-1", max: 5, hours: 1, group: "Text")),
            row(pool("ai-2", max: 5, hours: 1, group: "AI")),
            row(pool("loose-2", max: 5, hours: 1)),
            row(pool("text-2", max: 5, hours: 1, group: "Text")),
        ])
        let order = [
            "<h2 id=\"g0\">AI</h2>", "id=\"pool-ai-1\"", "id=\"pool-ai-2\"",
            "<h2 id=\"g1\">Text</h2>", "id=\"pool-text-1\"", "id=\"pool-text-2\"",
            "<h2 id=\"g2\">Other</h2>", "id=\"pool-loose-1\"", "id=\"pool-loose-2\"",
        ]
        let positions = try order.map { try #require(page.range(of: $0), "\($0)").lowerBound }
        #expect(positions == positions.sorted())
        #expect(page.components(separatedBy: "<section").count - 1 == 3)
        #expect(page.components(separatedBy: "<h2").count - 1 == 3)
    }

    @Test func noVisibleHeadingWhenNoPoolHasAGroup() {
        let page = render([row(pool("a", max: 5, hours: 1)), row(pool("b", max: 5, hours: 1))])
        // one heading, for screen readers only
        #expect(page.components(separatedBy: "<h2").count - 1 == 1)
        #expect(page.contains("<h2 id=\"g0\" class=\"vh\">Pools</h2>"))
        #expect(!page.contains("Other"))
        #expect(page.components(separatedBy: "<section").count - 1 == 1)
        #expect(page.range(of: "pool-a")!.lowerBound < page.range(of: "pool-b")!.lowerBound)
    }

    @Test func labelAndIdInSmallText() throws {
        let page = render([
            row(pool("generate-image", max: 5, hours: 2, label: "Image generation", group: "AI")),
            row(pool("plain", max: 5, hours: 2)),
        ])
        let card = try #require(Self.card("generate-image", in: page))
        #expect(card.contains("<h3>Image generation</h3>\n<small class=\"id\">generate-image</small>"))
        // a label that is the id is not repeated
        let plain = try #require(Self.card("plain", in: page))
        #expect(plain.contains("<h3>plain</h3>"))
        #expect(!plain.contains("class=\"id\""))
    }

    @Test func partlySpentPoolShowsNextChargeAndFull() throws {
        // 3 of 5, last step at t0, one charge every 2 h: next at t0+2h, full at t0+4h.
        let now = Self.t0 + Self.hour + 45 * Self.minute
        let page = UsagePage.render([row(pool("p", max: 5, hours: 2, label: "Pictures"), current: 3, now: now)], now: now)
        let card = try #require(Self.card("p", in: page))
        #expect(card.contains("<p class=\"count\"><b>3</b> of 5 left</p>"))
        #expect(card.contains(Self.when("next charge in 15m", "full in 2h 15m", "+1 every 2h")))
        #expect(
            card.contains(
                "role=\"meter\" aria-label=\"Pictures\" aria-valuemin=\"0\" aria-valuemax=\"5\" aria-valuenow=\"3\" aria-valuetext=\"3 of 5 left\""
            ))
        #expect(card.contains("style=\"width:60%\""))
        #expect(card.hasPrefix("<li class=\"pool ok\""))
    }

    @Test func minutesRoundUpAndWholeHours() throws {
        // 4 of 5: next = full = t0 + 2h; 1 ms after t0 + 1h → 59 min 59.999 s → "1h".
        let now = Self.t0 + Self.hour + 1
        let page = UsagePage.render([row(pool("p", max: 5, hours: 2), current: 4, now: now)], now: now)
        #expect(page.contains(Self.when("next charge in 1h", "full in 1h", "+1 every 2h")))
    }

    @Test func fullPoolSaysFull() throws {
        let page = render([row(pool("p", max: 5, hours: 2))])  // missing key: full
        let card = try #require(Self.card("p", in: page))
        #expect(card.contains(Self.when("full", "+1 every 2h")))
        #expect(!card.contains("next charge"))
        #expect(card.contains("style=\"width:100%\""))
        // a stored state that has recharged to the cap is full too
        let fourHours = Self.t0 + 4 * Self.hour
        let later = UsagePage.render([row(pool("p", max: 5, hours: 2), current: 3, now: fourHours)], now: fourHours)
        #expect(later.contains(Self.when("full", "+1 every 2h")))
        #expect(later.contains("<b>5</b> of 5 left"))
    }

    @Test func emptyPoolSaysEmpty() throws {
        let page = render([row(pool("p", max: 5, hours: 2), current: 0)])
        let card = try #require(Self.card("p", in: page))
        #expect(card.hasPrefix("<li class=\"pool danger\""))
        #expect(card.contains("<b>0</b> of 5 left <span class=\"state\">empty</span>"))
        #expect(card.contains("style=\"width:0%\""))
        #expect(card.contains(Self.when("next charge in 2h", "full in 10h", "+1 every 2h")))
    }

    @Test func warningWordsBesideTheColour() {
        #expect(render([row(pool("p", max: 100, hours: 1), current: 20)]).contains("<span class=\"state\">running low</span>"))
        #expect(render([row(pool("p", max: 100, hours: 1), current: 5)]).contains("<span class=\"state\">almost empty</span>"))
        #expect(!render([row(pool("p", max: 100, hours: 1), current: 50)]).contains("class=\"state\""))
    }

    @Test func hostileLabelGroupAndSubjectAreEscaped() {
        let hostile = "<script>alert(1)</script>"
        let quotes = #""'&"#
        let page = render([
            row(pool("a", max: 5, hours: 1, label: hostile, group: hostile, scope: .subject), current: 2, subject: hostile),
            row(pool("b", max: 5, hours: 1, label: quotes, group: quotes, scope: .subject), subject: quotes),
            row(pool("c", max: nil, hours: nil, label: hostile, scope: .subject), current: 1, subject: quotes),
        ])
        #expect(!page.contains("<script"))
        #expect(!page.contains("</script"))
        #expect(!page.contains(quotes))
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
        #expect(page.contains("<h2 id=\"g0\">\(escaped)</h2>"))
        #expect(page.contains("<h3>\(escaped)</h3>"))
        #expect(page.contains("aria-label=\"\(escaped)\""))
        #expect(page.contains("<span class=\"subject\">\(escaped)</span>"))
        #expect(page.contains("<h2 id=\"g1\">&quot;&#39;&amp;</h2>"))
        #expect(page.contains("<h3>&quot;&#39;&amp;</h3>"))
        #expect(page.contains("aria-label=\"&quot;&#39;&amp;\""))
        #expect(page.contains("<span class=\"subject\">&quot;&#39;&amp;</span>"))
        // every tag on the page is one of ours
        let allowed: Set<String> = [
            "!doctype", "html", "head", "meta", "title", "style", "body", "main", "h1", "p",
            "time", "section", "h2", "ul", "li", "h3", "small", "b", "span", "div",
        ]
        for piece in page.split(separator: "<").dropFirst() {
            let name = piece.prefix { $0 != " " && $0 != ">" && $0 != "\n" }.lowercased()
            let bare = name.hasPrefix("/") ? String(name.dropFirst()) : name
            #expect(allowed.contains(bare), "unexpected tag <\(name)")
        }
    }

    @Test func unlimitedPoolShowsTheCountWithoutABar() throws {
        let page = render([row(pool("meter", max: nil, hours: nil, label: "Meter"), current: 1234)])
        let card = try #require(Self.card("meter", in: page))
        #expect(card.hasPrefix("<li class=\"pool unlimited\""))
        #expect(card.contains("<p class=\"count\"><b>1,234</b> used</p>"))
        #expect(card.contains(Self.when("unlimited", "every use is counted")))
        #expect(!card.contains("role=\"meter\""))
        #expect(!card.contains("class=\"bar\""))
        #expect(!card.contains("next charge"))
        // never used: 0
        let fresh = render([row(pool("meter", max: nil, hours: nil))])
        #expect(fresh.contains("<b>0</b> used"))
    }

    @Test func creditsPoolShowsTheBalanceAndTopOffOnly() throws {
        let page = render([row(pool("credits", max: 10_000, hours: nil, label: "Credits"), current: 1_500)])
        let card = try #require(Self.card("credits", in: page))
        #expect(card.hasPrefix("<li class=\"pool warn credits\""))
        #expect(card.contains("<b>1,500</b> of 10,000 left"))
        #expect(card.contains(Self.when("top-off only")))
        #expect(card.contains("role=\"meter\""))
        #expect(!card.contains("next charge"))
        #expect(!card.contains("full in"))
        // time never refills a credits pool
        let much = Self.t0 + 1000 * Self.hour
        let later = UsagePage.render([row(pool("credits", max: 10_000, hours: nil), current: 1_500, now: much)], now: much)
        #expect(later.contains("<b>1,500</b> of 10,000 left"))
        let full = render([row(pool("credits", max: 10_000, hours: nil))])
        #expect(full.contains(Self.when("full", "top-off only")))
    }

    @Test func perSubjectPoolShowsYourBalance() throws {
        let page = render([
            row(pool("mine", max: 5, hours: 1, scope: .subject), current: 2, subject: "127.0.0.1"),
            row(pool("my-meter", max: nil, hours: nil, scope: .subject), current: 7, subject: "key_live_42"),
            row(pool("everyone", max: 5, hours: 1)),
        ])
        let mine = try #require(Self.card("mine", in: page))
        #expect(mine.contains("<p class=\"who\">your balance · <span class=\"subject\">127.0.0.1</span></p>"))
        #expect(mine.contains("<b>2</b> of 5 left"))
        let meter = try #require(Self.card("my-meter", in: page))
        #expect(meter.contains("<p class=\"who\">your use · <span class=\"subject\">key_live_42</span></p>"))
        #expect(meter.contains("<b>7</b> used"))
        let everyone = try #require(Self.card("everyone", in: page))
        #expect(!everyone.contains("your"))
    }

    @Test func noPools() {
        #expect(render([]).contains("No pools are configured."))
    }

    @Test func tinyRemainderStillShowsASliver() throws {
        let page = render([row(pool("p", max: 1000, hours: 1), current: 1), row(pool("q", max: 3, hours: 1), current: 1)])
        #expect(try #require(Self.card("p", in: page)).contains("style=\"width:1%\""))
        #expect(try #require(Self.card("q", in: page)).contains("style=\"width:33.3%\""))
    }

    // MARK: plans

    static let planLineTable: [(UsagePage.Plan?, String?, String)] = [
        (UsagePage.Plan(label: "Pro", source: .stored), "<p class=\"plan\">Plan: <b>Pro</b></p>", "stored"),
        (UsagePage.Plan(label: "Pro", source: .nginx), "<p class=\"plan\">Plan: <b>Pro</b></p>", "from nginx"),
        (
            UsagePage.Plan(label: "Free", source: .default),
            "<p class=\"plan\">Plan: <b>Free</b> <span class=\"note\">(default plan)</span></p>", "the default"
        ),
        (
            UsagePage.Plan(label: #"<script>alert(1)</script> & "x" 'y'"#, source: .stored),
            "<p class=\"plan\">Plan: <b>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; &#39;y&#39;</b></p>", "hostile label"
        ),
        (nil, nil, "no plans configured"),
    ]

    @Test(arguments: planLineTable)
    func planLine(plan: UsagePage.Plan?, expected: String?, _ what: String) throws {
        let page = UsagePage.render([row(pool("p", max: 5, hours: 2))], plan: plan, now: Self.t0)
        #expect(!page.contains("<script"), "\(what)")
        guard let expected else {
            #expect(!page.contains("class=\"plan\""), "\(what)")
            #expect(page.contains("<h1>Usage</h1>\n<p class=\"asof\">"), "\(what)")
            return
        }
        // under the title, before the time stamp, once
        #expect(page.contains("<h1>Usage</h1>\n\(expected)\n<p class=\"asof\">"), "\(what): \(page)")
        #expect(page.components(separatedBy: "class=\"plan\"").count - 1 == 1, "\(what)")
    }

    // MARK: the reset phrase (the same table as tests/js/charge-usage.test.mjs)

    static let dec1: Int64 = 1_764_547_200_000  // 2025-12-01 00:00 UTC
    static let jan1: Int64 = 1_767_225_600_000  // 2026-01-01 00:00 UTC
    static let nov24: Int64 = 1_763_942_400_000  // 2025-11-24 00:00 UTC, a Monday
    static let nov14Noon: Int64 = 1_763_121_600_000  // 2025-11-14 12:00 UTC
    static let nov14Late: Int64 = 1_763_163_300_000  // 2025-11-14 23:35 UTC
    static let nov19: Int64 = 1_763_546_400_000  // 2025-11-19 10:00 UTC, a Wednesday
    static let nov30Evening: Int64 = 1_764_536_400_000  // 2025-11-30 21:00 UTC
    static let dec20: Int64 = 1_766_217_600_000  // 2025-12-20 08:00 UTC
    static let dec31Late: Int64 = 1_767_218_400_000  // 2025-12-31 22:00 UTC
    static let day: Int64 = 86_400_000

    static let resetStringTable: [(Int64, Int64, String)] = [
        (dec1, nov14Noon, "resets Dec 1"),
        (dec1, nov30Evening, "resets in 3h"),
        (dec1, dec1 - 25 * minute, "resets in 25m"),
        (dec1, dec1 - 2 * hour - 14 * minute - 1, "resets in 2h 15m"),
        (dec1, dec1 - 1, "resets in 1m"),
        (dec1, dec1 - day, "resets in 24h"),  // exactly 24 h: still a wait
        (dec1, dec1 - day + 1, "resets in 24h"),
        (dec1, dec1 - day - 1, "resets Dec 1"),  // more than 24 h: the date
        (nov24, nov19, "resets Nov 24"),
        (jan1, dec20, "resets Jan 1, 2026"),  // another year: with the year
        (jan1, dec31Late, "resets in 2h"),
        (1_709_251_200_000, 1_709_251_200_000 - 3 * day, "resets Mar 1"),  // 2024, a leap year
        (1_709_251_200_000 - 1, 1_709_251_200_000 - 3 * day, "resets Feb 29"),  // the date of the reset's own moment
        (dec1, dec1, "resets now"),
        (dec1, dec1 + 5, "resets now"),
    ]

    @Test(arguments: resetStringTable)
    func resetString(resetsAt: Int64, now: Int64, expected: String) {
        #expect(UsagePage.resetString(at: resetsAt, now: now) == expected)
    }

    // MARK: period pools

    static func periodPool(_ period: BillingPeriod, max: Int64? = 5, scope: PoolConfig.Scope = .subject) -> PoolConfig {
        PoolConfig(
            id: "gen", capacity: max.map { .limited($0) } ?? .unlimited, recharge: .period(period), label: "Generations", scope: scope)
    }

    /// A period pool with 3 of 5 left (used this period), read at `now`: the reset phrase and
    /// the allowance instead of "next charge", "full in" and "+1 every".
    static let periodPoolTable: [(BillingPeriod, Int64, String, String)] = [
        (.month, nov14Noon, "resets Dec 1", "reset more than 24 h away: the date"),
        (.month, nov30Evening, "resets in 3h", "reset less than 24 h away: the wait"),
        (.day, nov14Late, "resets in 25m", "a day period near its end"),
        (.week, nov19, "resets Nov 24", "a week period: next Monday"),
        (.month, dec20, "resets Jan 1, 2026", "across a year end: with the year"),
        (.day, dec31Late, "resets in 2h", "across a year end, within 24 h: the wait"),
    ]

    @Test(arguments: periodPoolTable)
    func periodPoolSaysWhenItResets(period: BillingPeriod, now: Int64, reset: String, _ what: String) throws {
        let page = UsagePage.render([row(Self.periodPool(period), current: 3, subject: "k1", written: now, now: now)], now: now)
        let card = try #require(Self.card("gen", in: page))
        #expect(card.hasPrefix("<li class=\"pool ok\" id=\"pool-gen\">"), "\(what): \(card)")
        #expect(card.contains("<p class=\"who\">your balance · <span class=\"subject\">k1</span></p>"), "\(what)")
        #expect(card.contains("<p class=\"count\"><b>3</b> of 5 left</p>"), "\(what): \(card)")
        #expect(card.contains("aria-valuenow=\"3\" aria-valuetext=\"3 of 5 left\""), "\(what)")
        #expect(card.contains(Self.when(reset, "5 per \(period.rawValue)")), "\(what): \(card)")
        for absent in ["next charge", "full in", "+1 every", "top-off", "credits", "empty"] {
            #expect(!card.contains(absent), "\(what): \(absent)")
        }
    }

    static let usedUpPeriodPoolTable: [(BillingPeriod, Int64, String)] = [
        (.month, nov14Noon, "resets Dec 1"),
        (.week, nov19, "resets Nov 24"),
        (.day, nov14Late, "resets in 25m"),
        (.month, dec20, "resets Jan 1, 2026"),
    ]

    @Test(arguments: usedUpPeriodPoolTable)
    func usedUpPeriodPoolSaysSoUntilTheReset(period: BillingPeriod, now: Int64, reset: String) throws {
        let page = UsagePage.render([row(Self.periodPool(period), current: 0, written: now, now: now)], now: now)
        let card = try #require(Self.card("gen", in: page))
        #expect(card.hasPrefix("<li class=\"pool danger\""), "\(card)")
        #expect(card.contains("<b>0</b> of 5 left <span class=\"state\">used up until reset</span></p>"), "\(card)")
        #expect(card.contains("style=\"width:0%\""))
        #expect(card.contains(Self.when(reset, "5 per \(period.rawValue)")), "\(card)")
        #expect(!card.contains(">empty<"))
    }

    /// A full period pool: "full" and the allowance, no reset phrase (it would change nothing).
    static let fullPeriodPoolTable: [(BucketState?, String)] = [
        (nil, "never used (no key)"),
        (BucketState(current: 0, lastUpdatedAt: dec1 - 1), "used up last period"),
        (BucketState(current: 2, lastUpdatedAt: nov14Noon - 40 * day), "a state from months ago"),
        (BucketState(current: 5, lastUpdatedAt: dec1 + hour), "written this period, nothing used"),
    ]

    @Test(arguments: fullPeriodPoolTable)
    func fullPeriodPoolSaysFull(state: BucketState?, _ what: String) throws {
        let now = Self.dec1 + 2 * Self.hour
        let page = UsagePage.render([Self.row(Self.periodPool(.month), state: state, now: now)], now: now)
        let card = try #require(Self.card("gen", in: page))
        #expect(card.hasPrefix("<li class=\"pool ok\""), "\(what)")
        #expect(card.contains("<p class=\"count\"><b>5</b> of 5 left</p>"), "\(what): \(card)")
        #expect(card.contains("style=\"width:100%\""), "\(what)")
        #expect(card.contains(Self.when("full", "5 per month")), "\(what): \(card)")
        #expect(!card.contains("resets"), "\(what)")
    }

    /// An unlimited period pool (a meter, e.g. a plan's "unlimited"): this period's use and when
    /// the count resets.
    static let periodMeterTable: [(BillingPeriod, Int64, BucketState?, String, String)] = [
        (.month, nov14Noon, BucketState(current: 1234, lastUpdatedAt: nov14Noon - hour), "<b>1,234</b> used this month", "resets Dec 1"),
        (.week, nov19, BucketState(current: 7, lastUpdatedAt: nov19), "<b>7</b> used this week", "resets Nov 24"),
        (.day, nov14Late, BucketState(current: 7, lastUpdatedAt: nov14Late - hour), "<b>7</b> used today", "resets in 25m"),
        (.month, dec20, BucketState(current: 7, lastUpdatedAt: dec1 - 1), "<b>0</b> used this month", "resets Jan 1, 2026"),
        (.month, dec20, nil, "<b>0</b> used this month", "resets Jan 1, 2026"),
    ]

    @Test(arguments: periodMeterTable)
    func unlimitedPeriodMeterCountsThisPeriod(period: BillingPeriod, now: Int64, state: BucketState?, count: String, reset: String) throws {
        let page = UsagePage.render([Self.row(Self.periodPool(period, max: nil), state: state, subject: "k1", now: now)], now: now)
        let card = try #require(Self.card("gen", in: page))
        #expect(card.hasPrefix("<li class=\"pool unlimited\""), "\(card)")
        #expect(card.contains("<p class=\"who\">your use · <span class=\"subject\">k1</span></p>"))
        #expect(card.contains("<p class=\"count\">\(count)</p>"), "\(card)")
        #expect(card.contains(Self.when("unlimited", reset)), "\(card)")
        #expect(!card.contains("role=\"meter\"") && !card.contains("class=\"bar\""))
    }

    // MARK: the cards of pools without a period are as they were

    /// Whole cards of every other kind of pool, as the page rendered them before plans and
    /// periods (a plan on the page changes none of them).
    static let unchangedCardsTable: [(UsagePage.Row, Int64, String)] = [
        (
            row(pool("p", max: 5, hours: 2, label: "Pictures"), current: 3, now: t0 + hour + 45 * minute), t0 + hour + 45 * minute,
            """
            <li class="pool ok" id="pool-p">
            <h3>Pictures</h3>
            <small class="id">p</small>
            <p class="count"><b>3</b> of 5 left</p>
            <div class="bar" role="meter" aria-label="Pictures" aria-valuemin="0" aria-valuemax="5" aria-valuenow="3" aria-valuetext="3 of 5 left">\
            <span style="width:60%"></span></div>
            <p class="when"><span>next charge in 15m</span> · <span>full in 2h 15m</span> · <span>+1 every 2h</span></p>
            </li>
            """
        ),
        (
            row(pool("f", max: 5, hours: 2)), t0,
            """
            <li class="pool ok" id="pool-f">
            <h3>f</h3>
            <p class="count"><b>5</b> of 5 left</p>
            <div class="bar" role="meter" aria-label="f" aria-valuemin="0" aria-valuemax="5" aria-valuenow="5" aria-valuetext="5 of 5 left">\
            <span style="width:100%"></span></div>
            <p class="when"><span>full</span> · <span>+1 every 2h</span></p>
            </li>
            """
        ),
        (
            row(pool("e", max: 5, hours: 2), current: 0), t0,
            """
            <li class="pool danger" id="pool-e">
            <h3>e</h3>
            <p class="count"><b>0</b> of 5 left <span class="state">empty</span></p>
            <div class="bar" role="meter" aria-label="e" aria-valuemin="0" aria-valuemax="5" aria-valuenow="0" aria-valuetext="0 of 5 left">\
            <span style="width:0%"></span></div>
            <p class="when"><span>next charge in 2h</span> · <span>full in 10h</span> · <span>+1 every 2h</span></p>
            </li>
            """
        ),
        (
            row(pool("c", max: 10_000, hours: nil, label: "Credits", scope: .subject), current: 1_500, subject: "k1"), t0,
            """
            <li class="pool warn credits" id="pool-c">
            <h3>Credits</h3>
            <small class="id">c</small>
            <p class="who">your balance · <span class="subject">k1</span></p>
            <p class="count"><b>1,500</b> of 10,000 left <span class="state">running low</span></p>
            <div class="bar" role="meter" aria-label="Credits" aria-valuemin="0" aria-valuemax="10000" aria-valuenow="1500" \
            aria-valuetext="1,500 of 10,000 left"><span style="width:15%"></span></div>
            <p class="when"><span>top-off only</span></p>
            </li>
            """
        ),
        (
            row(pool("m", max: nil, hours: nil, label: "Meter", scope: .subject), current: 1234, subject: "k1"), t0,
            """
            <li class="pool unlimited" id="pool-m">
            <h3>Meter</h3>
            <small class="id">m</small>
            <p class="who">your use · <span class="subject">k1</span></p>
            <p class="count"><b>1,234</b> used</p>
            <p class="when"><span>unlimited</span> · <span>every use is counted</span></p>
            </li>
            """
        ),
    ]

    @Test(arguments: unchangedCardsTable)
    func cardsWithoutAPeriodAreUnchanged(row: UsagePage.Row, now: Int64, expected: String) throws {
        for plan in [nil, UsagePage.Plan(label: "Pro", source: .stored), UsagePage.Plan(label: "Free", source: .default)] {
            let page = UsagePage.render([row], plan: plan, now: now)
            let card = try #require(Self.card(row.pool.id, in: page))
            #expect(card == expected, "plan \(plan?.label ?? "none")")
            #expect(!card.contains("resets") && !card.contains(" per "))
        }
    }

    // MARK: helpers

    func pool(
        _ id: String, max: Int64?, hours: Double?, label: String? = nil, group: String = "",
        scope: PoolConfig.Scope = .global
    ) -> PoolConfig {
        Self.pool(id, max: max, hours: hours, label: label, group: group, scope: scope)
    }

    static func pool(
        _ id: String, max: Int64?, hours: Double?, label: String? = nil, group: String = "",
        scope: PoolConfig.Scope = .global
    ) -> PoolConfig {
        PoolConfig(
            id: id, capacity: max.map { .limited($0) } ?? .unlimited,
            recharge: hours.map { .every(intervalMs: Int64(($0 * 3_600_000).rounded())) } ?? .none,
            rechargeIntervalHours: hours, label: label, group: group, scope: scope)
    }

    /// A row whose state was written at `written` with `current` (nil: no key), read at `now`.
    func row(
        _ pool: PoolConfig, current: Int64? = nil, subject: String = "", written: Int64 = UsagePageTests.t0, now: Int64 = UsagePageTests.t0
    ) -> UsagePage.Row {
        Self.row(pool, current: current, subject: subject, written: written, now: now)
    }

    static func row(
        _ pool: PoolConfig, current: Int64? = nil, subject: String = "", written: Int64 = UsagePageTests.t0, now: Int64 = UsagePageTests.t0
    ) -> UsagePage.Row {
        row(pool, state: current.map { BucketState(current: $0, lastUpdatedAt: written) }, subject: subject, now: now)
    }

    /// A row for `pool` whose stored state is `state`, read at `now` as the usage endpoint reads it.
    static func row(_ pool: PoolConfig, state: BucketState?, subject: String = "", now: Int64) -> UsagePage.Row {
        let item = SpendItem(
            poolId: pool.id, key: "", max: pool.maxCharges, intervalMs: pool.intervalMs, cost: 0, expires: false, period: pool.period)
        return UsagePage.Row(pool: pool, reading: Bucket.reading(state, item: item, now: now), subject: subject)
    }

    func render(_ rows: [UsagePage.Row]) -> String { UsagePage.render(rows, now: Self.t0) }

    /// The expected line under the bar: its phrases, each in a span, joined by " · ".
    static func when(_ parts: String...) -> String {
        "<p class=\"when\">" + parts.map { "<span>\($0)</span>" }.joined(separator: " · ") + "</p>"
    }

    /// The `<li>` of pool `id`.
    static func card(_ id: String, in page: String) -> String? {
        guard let marker = page.range(of: "id=\"pool-\(id)\"") else { return nil }
        guard let start = page[..<marker.lowerBound].range(of: "<li ", options: .backwards) else { return nil }
        guard let end = page[marker.upperBound...].range(of: "</li>") else { return nil }
        return String(page[start.lowerBound..<end.upperBound])
    }
}
