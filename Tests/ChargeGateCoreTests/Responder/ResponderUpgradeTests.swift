import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateCore

/// `upgradeUrl` in denials: which 429s and 402s carry it, whose URL (the plan in force), and
/// that a denial answered from memory or by nginx's cache never shows another plan's URL.
@Suite struct ResponderUpgradeTests: ResponderHarness {
    /// 2025-11-30T10:00:00Z: the month ends in 14 h.
    static let start: Int64 = 1_764_496_800_000
    static let token = "s3cret"
    static let pricing = "/pricing"
    static let toPro = "https://shop.example.com/pricing?from=free#pro"

    /// Free (5 generations a month, its own URL: Pro's pricing) and Pro (6, no URL of its
    /// own: the top-level one); per-subject period, bucket and credits pools, and global ones.
    static func config(upgradeUrl: String? = pricing, freeUrl: String? = toPro) -> GateConfig {
        var config = GateConfig()
        config.adminToken = token
        config.upgradeUrl = upgradeUrl
        config.pools = [
            PoolConfig(id: "generations", capacity: .limited(5), recharge: .period(.month), scope: .subject),
            PoolConfig(
                id: "api-calls", capacity: .limited(2), recharge: .every(intervalMs: 60_000), rechargeIntervalHours: 1.0 / 60,
                scope: .subject),
            PoolConfig(id: "credits", capacity: .limited(2), recharge: .none, scope: .subject),
            PoolConfig(id: "site-month", capacity: .limited(1), recharge: .period(.month)),
            PoolConfig(id: "site-credits", capacity: .limited(1), recharge: .none),
        ]
        config.routes = [
            RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)]),
            RouteConfig(prefix: "/api/calls", charges: [.init(poolIndex: 1, cost: 1)]),
            RouteConfig(prefix: "/api/paid", charges: [.init(poolIndex: 2, cost: 1)]),
            RouteConfig(prefix: "/api/site", charges: [.init(poolIndex: 3, cost: 1)]),
            RouteConfig(prefix: "/api/site-paid", charges: [.init(poolIndex: 4, cost: 1)]),
            RouteConfig(prefix: "/api/both", charges: [.init(poolIndex: 1, cost: 1), .init(poolIndex: 0, cost: 1)]),
            RouteConfig(prefix: "/api/try", charges: [.init(poolIndex: 0, cost: 1)], mode: .shadow),
        ]
        config.plans = [
            PlanConfig(id: "free", label: "Free", upgradeUrl: freeUrl),
            PlanConfig(id: "pro", label: "Pro", overrides: [0: .init(capacity: .limited(6))]),
        ]
        config.defaultPlan = 0
        return config
    }

    let clock = ManualClock(ResponderUpgradeTests.start)
    let store: MemoryStore
    let denials = DenyCache()
    let gate: Gate

    init() { self.init(config: Self.config()) }

    init(config: GateConfig) {
        store = MemoryStore(clock: clock)
        gate = Gate(config: config)
    }

    /// The denial's JSON body, as nginx returns it.
    func body(_ response: Response) throws -> [String: Any] {
        let text = try #require(header(response, "X-Charge-Body"))
        return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// Spends `uri` until it is denied; the denial.
    func drain(_ uri: String, subject: String = "s1", plan: String? = nil) throws -> Response {
        for _ in 0..<10 {
            let response = auth(uri, subject: subject, plan: plan)
            if header(response, "X-Charge-Status") != "204" { return response }
        }
        Issue.record("\(uri) was never denied")
        throw CancellationError()
    }

    func storePlan(_ plan: String, subject: String = "s1") -> Response {
        responder.respond(
            to: FakeRequest.endpoint(
                "plan", query: "subject=" + subject, method: "PUT", token: Self.token, subject: "admin", body: #"{"plan":"\#(plan)"}"#),
            gate: gate)
    }

    // MARK: Which denials carry it

    @Test func aUsedUpPeriodPoolsAnswerCarriesThePlansURL() throws {
        let denied = try drain("/api/generate")
        #expect(header(denied, "X-Charge-Status") == "429")
        // Free's own URL, last in the body, escaped by the JSON writer (`/` is not escaped).
        #expect(
            header(denied, "X-Charge-Body")
                == #"{"error":"out_of_charge","retryAfterMs":50400000,"poolId":"generations","upgradeUrl":"\#(Self.toPro)"}"#)
        // Under Pro (named by nginx), which has none of its own: the top-level one.
        let pro = try drain("/api/generate", subject: "s2", plan: "pro")
        #expect(try body(pro)["upgradeUrl"] as? String == Self.pricing)
    }

    @Test func aCredits402CarriesIt() throws {
        let free = try drain("/api/paid")
        #expect(header(free, "X-Charge-Status") == "402")
        #expect(
            header(free, "X-Charge-Body")
                == #"{"error":"insufficient_credits","poolId":"credits","availableBalance":0,"required":1,"upgradeUrl":"\#(Self.toPro)"}"#)
        let pro = try drain("/api/paid", subject: "s2", plan: "pro")
        #expect(try body(pro)["upgradeUrl"] as? String == Self.pricing)
    }

    @Test func aRefillingBuckets429DoesNot() throws {
        let denied = try drain("/api/calls")
        #expect(header(denied, "X-Charge-Status") == "429")
        #expect(header(denied, "X-Charge-Body") == #"{"error":"out_of_charge","retryAfterMs":60000,"poolId":"api-calls"}"#)
    }

    @Test func theNamedPoolDecides() throws {
        // Both empty: the period pool's wait (to the month's end) is the longest, so it is named,
        // with the URL; once only the bucket is short, its 429 has none.
        for _ in 0..<2 { #expect(header(auth("/api/both"), "X-Charge-Status") == "204") }
        for _ in 0..<3 { #expect(header(auth("/api/generate"), "X-Charge-Status") == "204") }
        let both = auth("/api/both")
        #expect(try body(both)["poolId"] as? String == "generations")
        #expect(try body(both)["upgradeUrl"] as? String == Self.toPro)

        let other = auth("/api/both", subject: "s2")
        #expect(header(other, "X-Charge-Status") == "204")
        #expect(header(auth("/api/both", subject: "s2"), "X-Charge-Status") == "204")
        let bucket = auth("/api/both", subject: "s2")
        #expect(try body(bucket)["poolId"] as? String == "api-calls")
        #expect(try body(bucket)["upgradeUrl"] == nil)
    }

    @Test func aGlobalPoolsDenialCarriesTheTopLevelURLOnly() throws {
        // Everybody's pool: no plan sets it, so a Free subject gets the top-level URL, not
        // Free's own; and without a top-level URL, none.
        let period = try drain("/api/site")
        #expect(header(period, "X-Charge-Status") == "429")
        #expect(try body(period)["upgradeUrl"] as? String == Self.pricing)
        let credits = try drain("/api/site-paid")
        #expect(header(credits, "X-Charge-Status") == "402")
        #expect(try body(credits)["upgradeUrl"] as? String == Self.pricing)
        let test = ResponderUpgradeTests(config: Self.config(upgradeUrl: nil))
        #expect(try test.body(try test.drain("/api/site"))["upgradeUrl"] == nil)
        #expect(try test.body(try test.drain("/api/site-paid"))["upgradeUrl"] == nil)
    }

    @Test func withoutAnyURLTheBodiesAreAsBefore() throws {
        let test = ResponderUpgradeTests(config: Self.config(upgradeUrl: nil, freeUrl: nil))
        #expect(
            test.header(try test.drain("/api/generate"), "X-Charge-Body")
                == #"{"error":"out_of_charge","retryAfterMs":50400000,"poolId":"generations"}"#)
        #expect(
            test.header(try test.drain("/api/paid"), "X-Charge-Body")
                == #"{"error":"insufficient_credits","poolId":"credits","availableBalance":0,"required":1}"#)
    }

    @Test func withoutPlansTheTopLevelURL() throws {
        var config = Self.config()
        config.plans = []
        config.defaultPlan = nil
        let test = ResponderUpgradeTests(config: config)
        #expect(try test.body(test.drain("/api/generate"))["upgradeUrl"] as? String == Self.pricing)
        #expect(try test.body(test.drain("/api/paid"))["upgradeUrl"] as? String == Self.pricing)
        #expect(try test.body(test.drain("/api/calls"))["upgradeUrl"] == nil)
    }

    @Test func aShadowPassCarriesNoBody() throws {
        for _ in 0..<5 { #expect(header(auth("/api/generate"), "X-Charge-Status") == "204") }
        let passed = auth("/api/try")
        #expect(header(passed, "X-Charge-Shadow") == "out_of_charge")
        #expect(header(passed, "X-Charge-Body") == nil)
    }

    // MARK: The plan in force decides, from the store and from memory

    @Test func theStoredPlanDecidesNotNginxs() throws {
        // Stored Pro, nginx names nothing (the default, Free, would point at Pro): the 429 is
        // decided under Pro, so it carries Pro's URL, and so does the same denial answered from
        // the worker's memory, whose key holds only nginx's plan.
        #expect(storePlan("pro").status == 200)
        let first = try drain("/api/generate")
        #expect(try body(first)["upgradeUrl"] as? String == Self.pricing)
        #expect(header(first, "X-Accel-Expires")?.hasPrefix("@") == true, "nginx may cache it")
        let again = auth("/api/generate")
        guard case .denied(_, _, let fromMemory)? = again.outcome else {
            Issue.record("not denied: \(String(describing: again.outcome))")
            return
        }
        #expect(fromMemory)
        #expect(header(again, "X-Charge-Body") == header(first, "X-Charge-Body"))
        #expect(header(again, "X-Accel-Expires")?.hasPrefix("@") == true)
    }

    @Test func nginxsPlanIsPartOfTheMemoryKey() throws {
        // One subject, first under Free then under Pro as nginx names them: each denial is
        // decided (and remembered) under its own plan, never answered with the other's URL.
        let free = try drain("/api/generate")
        #expect(try body(free)["upgradeUrl"] as? String == Self.toPro)
        #expect(try body(auth("/api/generate"))["upgradeUrl"] as? String == Self.toPro)
        let pro = try drain("/api/generate", plan: "pro")
        #expect(try body(pro)["upgradeUrl"] as? String == Self.pricing)
        #expect(try body(auth("/api/generate", plan: "pro"))["upgradeUrl"] as? String == Self.pricing)
        #expect(try body(auth("/api/generate"))["upgradeUrl"] as? String == Self.toPro)
    }

    @Test func anUpgradeThroughTheAdminAPINeverReplaysFreesURL() throws {
        let free = try drain("/api/generate")
        #expect(try body(free)["upgradeUrl"] as? String == Self.toPro)
        #expect(try body(auth("/api/generate"))["upgradeUrl"] as? String == Self.toPro)  // from memory
        // Upgraded to Pro (6): one more passes, then Pro's denial, with Pro's URL.
        #expect(storePlan("pro").status == 200)
        #expect(header(auth("/api/generate"), "X-Charge-Status") == "204")
        let pro = auth("/api/generate")
        #expect(header(pro, "X-Charge-Status") == "429")
        #expect(try body(pro)["upgradeUrl"] as? String == Self.pricing)
    }

    @Test func aReloadThatChangesTheURLIsAnsweredAtOnce() throws {
        #expect(try body(drain("/api/generate"))["upgradeUrl"] as? String == Self.toPro)
        let reloaded = Gate(config: Self.config(freeUrl: "/pricing#pro-yearly"))
        let response = responder.respond(to: FakeRequest.auth("/api/generate", subject: "s1"), gate: reloaded)
        #expect(try body(response)["upgradeUrl"] as? String == "/pricing#pro-yearly")
    }

    // MARK: Usage JSON and page

    func usage(subject: String = "s1", plan: String? = nil, html: Bool = false) -> Response {
        var request = FakeRequest.endpoint("usage", subject: subject)
        if let plan { request.params["CHARGE_GATE_PLAN"] = plan }
        if html { request.params["HTTP_ACCEPT"] = "text/html" }
        return responder.respond(to: request, gate: gate)
    }

    func usageJSON(subject: String = "s1", plan: String? = nil) throws -> [String: Any] {
        let response = usage(subject: subject, plan: plan)
        #expect(response.status == 200)
        return try #require(JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    func pools(_ usage: [String: Any]) throws -> [String: [String: Any]] {
        let pools = try #require(usage["pools"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: pools.map { ($0["id"] as? String ?? "", $0) })
    }

    @Test func usageNamesTheSubjectsURLAndShowsItOnUsedUpPeriodAndCreditsPools() throws {
        // Nothing used: the subject's URL at top level, on no pool.
        var view = try usageJSON()
        #expect(view["upgradeUrl"] as? String == Self.toPro)
        #expect(try pools(view).values.allSatisfy { $0["upgradeUrl"] == nil })

        // Every pool of s1 used up: the period and credits pools carry it (not the bucket, which
        // refills; the global ones the top-level URL).
        for uri in ["/api/generate", "/api/calls", "/api/paid", "/api/site", "/api/site-paid"] { _ = try drain(uri) }
        view = try usageJSON()
        let byId = try pools(view)
        #expect(byId["generations"]?["current"] as? Int == 0)
        #expect(byId["generations"]?["upgradeUrl"] as? String == Self.toPro)
        #expect(byId["credits"]?["upgradeUrl"] as? String == Self.toPro)
        #expect(byId["api-calls"]?["current"] as? Int == 0)
        #expect(byId["api-calls"]?["upgradeUrl"] == nil)
        for id in ["site-month", "site-credits"] {
            #expect(byId[id]?["current"] as? Int == 0, "\(id)")
            #expect(byId[id]?["upgradeUrl"] as? String == Self.pricing, "\(id)")
        }
        // Last in the STATE, after "subject".
        #expect(usage().body.contains(#""subject":"s1","upgradeUrl":"https://shop.example.com/pricing?from=free#pro"}"#))

        // The same subject under Pro (named by nginx): the period pool has 1 left (6 - 5), the
        // credits pool is still empty, with Pro's URL: the top-level one.
        view = try usageJSON(plan: "pro")
        #expect(view["upgradeUrl"] as? String == Self.pricing)
        #expect(try pools(view)["generations"]?["upgradeUrl"] == nil)
        #expect(try pools(view)["credits"]?["upgradeUrl"] as? String == Self.pricing)
    }

    @Test func usageWithoutAnyURLHasNoKey() throws {
        let test = ResponderUpgradeTests(config: Self.config(upgradeUrl: nil, freeUrl: nil))
        _ = try test.drain("/api/generate")
        let response = test.usage()
        #expect(!response.body.contains("upgradeUrl"))
        #expect(!test.usage(html: true).body.contains("Upgrade"))
    }

    @Test func thePageShowsTheLinkOnTheUsedUpPool() throws {
        _ = try drain("/api/generate")
        _ = try drain("/api/calls")
        let page = usage(html: true)
        #expect(header(page, "Content-Type") == "text/html; charset=utf-8")
        #expect(page.body.components(separatedBy: ">Upgrade</a>").count - 1 == 1)
        #expect(page.body.contains(#"<p class="upgrade"><a href="https://shop.example.com/pricing?from=free#pro">Upgrade</a></p>"#))
        let generations = try #require(page.body.range(of: #"id="pool-generations""#))
        let link = try #require(page.body.range(of: "class=\"upgrade\""))
        let next = page.body[generations.upperBound...].range(of: "</li>")
        #expect(link.lowerBound > generations.upperBound && link.upperBound < (next?.lowerBound ?? page.body.endIndex))
    }

    // MARK: Denial itself

    @Test func theDenialRendersTheURLLastAndOnlyWhenItHasOne() {
        let out = Denial.outOfCharge(pool: "g", retryAfterMs: 1500, upgradeUrl: "/pricing?a=1&b=<2>")
        // The JSON writer escapes what any context needs; the config never lets such a URL in.
        #expect(out.body == #"{"error":"out_of_charge","retryAfterMs":1500,"poolId":"g","upgradeUrl":"/pricing?a=1\u0026b=\u003c2\u003e"}"#)
        #expect(out.upgradeUrl == "/pricing?a=1&b=<2>")
        let credits = Denial.insufficientCredits(pool: "c", available: 0, required: 2, upgradeUrl: "/pricing")
        #expect(credits.body == #"{"error":"insufficient_credits","poolId":"c","availableBalance":0,"required":2,"upgradeUrl":"/pricing"}"#)
        #expect(Denial.outOfCharge(pool: "g", retryAfterMs: 1).upgradeUrl == nil)
        #expect(Denial.serviceUnavailable.upgradeUrl == nil)
        // The headers beside the body are those of a denial without one.
        #expect(
            out.answer(policy: "x").headers.filter { $0.name != "X-Charge-Body" }.map(\.value)
                == Denial.outOfCharge(pool: "g", retryAfterMs: 1500).answer(policy: "x").headers.filter { $0.name != "X-Charge-Body" }
                .map(\.value))
    }
}
