import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateCore

/// Plans, billing periods and shadow mode through the responder, on the memory store with a
/// manual clock.
@Suite struct ResponderPlanTests: ResponderHarness {
    /// 2025-11-30T10:00:00Z: the month ends in 14 h (Dec 1, 00:00 UTC).
    static let start: Int64 = 1_764_496_800_000
    static let dec1: Int64 = 1_764_547_200_000
    static let token = "s3cret"

    static func config(mode: GateMode = .enforce) -> GateConfig {
        var config = GateConfig()
        config.adminToken = token
        config.mode = mode
        config.pools = [
            PoolConfig(id: "generations", capacity: .limited(5), recharge: .period(.month), scope: .subject),
            PoolConfig(
                id: "api-calls", capacity: .limited(3), recharge: .every(intervalMs: 60_000), rechargeIntervalHours: 1.0 / 60,
                scope: .subject),
            PoolConfig(id: "credits", capacity: .limited(2), recharge: .none, scope: .subject),
            PoolConfig(id: "daily", capacity: .limited(2), recharge: .period(.day), scope: .subject),
        ]
        config.routes = [
            RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)]),
            RouteConfig(prefix: "/api/calls", charges: [.init(poolIndex: 1, cost: 1)]),
            RouteConfig(prefix: "/api/paid", charges: [.init(poolIndex: 2, cost: 1)]),
            RouteConfig(prefix: "/api/try", charges: [.init(poolIndex: 1, cost: 1)], mode: .shadow),
            RouteConfig(prefix: "/api/strict", charges: [.init(poolIndex: 3, cost: 1)], mode: .enforce),
        ]
        config.plans = [
            PlanConfig(id: "free", label: "Free"),
            PlanConfig(
                id: "pro", label: "Pro",
                overrides: [0: .init(capacity: .limited(100)), 1: .init(capacity: .unlimited), 3: .init(capacity: .limited(10))]),
        ]
        config.defaultPlan = 0
        return config
    }

    let clock = ManualClock(ResponderPlanTests.start)
    let store: MemoryStore
    let denials = DenyCache()
    let gate: Gate

    init() { self.init(config: Self.config()) }

    init(config: GateConfig) {
        store = MemoryStore(clock: clock)
        gate = Gate(config: config)
    }

    func status(_ response: Response) -> String? { header(response, "X-Charge-Status") }

    func planRequest(
        _ method: String, subject: String? = "s1", body: String = "", token: String? = ResponderPlanTests.token, plan: String? = nil
    )
        -> Response
    {
        var request = FakeRequest.endpoint(
            "plan", query: subject.map { "subject=" + $0 } ?? "", method: method, token: token, subject: "admin", body: body)
        if let plan { request.params["CHARGE_GATE_PLAN"] = plan }
        return responder.respond(to: request, gate: gate)
    }

    func usage(subject: String = "s1", plan: String? = nil) throws -> [String: Any] {
        var request = FakeRequest.endpoint("usage", subject: subject)
        if let plan { request.params["CHARGE_GATE_PLAN"] = plan }
        let response = responder.respond(to: request, gate: gate)
        #expect(response.status == 200)
        return try #require(JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
    }

    func pool(_ usage: [String: Any], _ id: String) throws -> [String: Any] {
        let pools = try #require(usage["pools"] as? [[String: Any]])
        return try #require(pools.first { $0["id"] as? String == id })
    }

    // MARK: Which plan

    /// (stored plan, nginx's plan, the cap that applies, the source usage names)
    @Test(
        arguments: [
            (nil, nil, 5, "default"),
            (nil, "pro", 100, "nginx"),
            (nil, "prro", 5, "default"),
            ("pro", nil, 100, "stored"),
            ("free", "pro", 5, "stored"),
            ("gone", "pro", 5, "default"),
        ] as [(String?, String?, Int, String)])
    func planResolutionOrder(stored: String?, nginx: String?, cap: Int, source: String) throws {
        if let stored { try store.setPlan(PlanRecord(plan: stored), at: gate.keys.plan(subject: "s1")) }
        let response = auth("/api/generate", plan: nginx)
        #expect(status(response) == "204")
        let view = try usage(plan: nginx)
        let plan = try #require(view["plan"] as? [String: Any])
        #expect(plan["source"] as? String == source)
        #expect(try pool(view, "generations")["max"] as? Int == cap)
        #expect(try pool(view, "generations")["current"] as? Int == cap - 1)
        // A name that is not a plan is logged as an error; the default applies.
        let unknown = (stored == "gone") || (stored == nil && nginx == "prro")
        #expect((response.note?.isError ?? false) == unknown)
        if stored == "gone" { #expect(response.note?.field(.unknownStoredPlan) == "gone") }
        if stored == nil && nginx == "prro" { #expect(response.note?.field(.unknownNginxPlan) == "prro") }
    }

    // MARK: Changing plan

    @Test func anUpgradeKeepsWhatWasUsedAndADowngradeNeverGoesNegative() throws {
        for _ in 0..<5 { #expect(status(auth("/api/generate")) == "204") }
        #expect(status(auth("/api/generate")) == "429")
        #expect(planRequest("PUT", body: #"{"plan":"pro"}"#).status == 200)
        #expect(try pool(usage(), "generations")["current"] as? Int == 95)
        #expect(status(auth("/api/generate")) == "204")
        #expect(try pool(usage(), "generations")["current"] as? Int == 94)
        #expect(planRequest("PUT", body: #"{"plan":"free"}"#).status == 200)
        #expect(try pool(usage(), "generations")["current"] as? Int == 0)
        let denied = auth("/api/generate")
        #expect(status(denied) == "429")
        #expect(denied.headers.first { $0.name == "X-Charge-Body" }?.value.contains(#""retryAfterMs":\#(Self.dec1 - Self.start)"#) == true)
        // The period ends: the whole (free) allowance is back.
        clock.set(Self.dec1)
        #expect(try pool(usage(), "generations")["current"] as? Int == 5)
        #expect(status(auth("/api/generate")) == "204")
    }

    @Test func limitedToUnlimitedAndBackCountsUse() throws {
        for _ in 0..<3 { #expect(status(auth("/api/calls")) == "204") }
        #expect(status(auth("/api/calls")) == "429")
        #expect(planRequest("PUT", body: #"{"plan":"pro"}"#).status == 200)
        for _ in 0..<4 { #expect(status(auth("/api/calls")) == "204") }
        let meter = try pool(usage(), "api-calls")
        #expect(meter["max"] is NSNull && meter["usedBalance"] as? Int == 7)
        // Back to free: 7 used of a cap of 3 leaves none, and charges come back from there.
        #expect(planRequest("DELETE").status == 200)
        #expect(try pool(usage(), "api-calls")["current"] as? Int == 0)
        #expect(status(auth("/api/calls")) == "429")
        clock.advance(60_000)
        #expect(status(auth("/api/calls")) == "204")
    }

    /// free: 2, pro: 10, a charge back a minute under both.
    static func flapConfig() -> GateConfig {
        var config = GateConfig()
        config.adminToken = token
        config.pools = [
            PoolConfig(
                id: "api", capacity: .limited(2), recharge: .every(intervalMs: 60_000), rechargeIntervalHours: 1.0 / 60, scope: .subject)
        ]
        config.routes = [RouteConfig(prefix: "/api/x", charges: [.init(poolIndex: 0, cost: 1)])]
        config.plans = [PlanConfig(id: "free"), PlanConfig(id: "pro", overrides: [0: .init(capacity: .limited(10))])]
        config.defaultPlan = 0
        return config
    }

    @Test func aPlanFlapGivesNothingBack() throws {
        try Self(config: Self.flapConfig()).flap()
    }

    /// Pro used up, free for a minute (its refill pays back part of what pro used beyond
    /// free's 2), pro again: only that refill, as if the subject had stayed on pro.
    func flap() throws {
        #expect(planRequest("PUT", body: #"{"plan":"pro"}"#).status == 200)
        for _ in 0..<10 { #expect(status(auth("/api/x")) == "204") }
        #expect(status(auth("/api/x")) == "429")
        #expect(planRequest("PUT", body: #"{"plan":"free"}"#).status == 200)
        clock.advance(60_000)
        let denied = auth("/api/x")
        #expect(status(denied) == "429")
        // 7 still owed: the next charge free can spend comes 8 minutes from now.
        #expect(header(denied, "X-Charge-Body")?.contains(#""retryAfterMs":480000"#) == true)
        let state = try pool(usage(), "api")
        #expect(state["current"] as? Int == 0 && state["usedBalance"] as? Int == 2 && state["max"] as? Int == 2)
        #expect(state["nextRechargeAt"] as? Int64 == Self.start + 9 * 60_000)
        #expect(state["fullAt"] as? Int64 == Self.start + 10 * 60_000)
        #expect(planRequest("PUT", body: #"{"plan":"pro"}"#).status == 200)
        #expect(status(auth("/api/x")) == "204")
        #expect(status(auth("/api/x")) == "429")
    }

    // MARK: Periods

    @Test func aPeriodPoolsDenialWaitsExactlyForTheEndAndUsageSaysWhen() throws {
        for _ in 0..<5 { #expect(status(auth("/api/generate")) == "204") }
        let denied = auth("/api/generate")
        #expect(header(denied, "X-Charge-Retry-After") == String((Self.dec1 - Self.start + 999) / 1000))
        #expect(header(denied, "X-Charge-RateLimit-Policy") == #""generations";q=5;w=2592000"#)
        let state = try pool(usage(), "generations")
        #expect(state["period"] as? String == "month")
        #expect(state["periodStart"] as? Int64 == 1_761_955_200_000)  // Nov 1
        #expect(state["resetsAt"] as? Int64 == Self.dec1)
        #expect(state["fullAt"] as? Int64 == Self.dec1)
        #expect(state["rechargeIntervalHours"] is NSNull)
        clock.set(Self.dec1 - 1)
        #expect(status(auth("/api/generate")) == "429")
        clock.set(Self.dec1)
        let allowed = auth("/api/generate")
        #expect(status(allowed) == "204")
        // December has 31 days; the next reset is Jan 1.
        #expect(header(allowed, "X-Charge-RateLimit-Policy") == #""generations";q=5;w=2678400"#)
        #expect(header(allowed, "X-Charge-RateLimit") == #""generations";r=4;t=2678400"#)
    }

    @Test func aStoredAnchorMovesTheSubjectsPeriods() throws {
        // Anchored on the 15th at 12:00: the current period runs Nov 15 12:00 → Dec 15 12:00.
        let anchor: Int64 = 1_757_937_600_000  // 2025-09-15T12:00:00Z
        #expect(planRequest("PUT", body: #"{"plan":"free","periodAnchor":\#(anchor)}"#).status == 200)
        for _ in 0..<5 { #expect(status(auth("/api/generate")) == "204") }
        let state = try pool(usage(), "generations")
        #expect(state["periodStart"] as? Int64 == 1_763_208_000_000)
        #expect(state["resetsAt"] as? Int64 == 1_765_800_000_000)
        clock.set(Self.dec1)  // the calendar month ends; the anchored period does not
        #expect(status(auth("/api/generate")) == "429")
    }

    // MARK: Deny cache

    @Test func aPlanSetHereIsNeverAnsweredFromAStaleCachedDenial() throws {
        for _ in 0..<3 { _ = auth("/api/calls") }
        #expect(status(auth("/api/calls")) == "429")
        #expect(
            auth("/api/calls").outcome
                == .denied(.outOfCharge(pool: "api-calls", retryAfterMs: 60_000), pools: ["api-calls"], fromMemory: true))
        // nginx naming another plan: another cache key, decided by the store.
        #expect(status(auth("/api/calls", plan: "pro")) == "204")
        #expect(planRequest("PUT", body: #"{"plan":"pro"}"#).status == 200)
        #expect(status(auth("/api/calls")) == "204")
    }

    // MARK: Shadow mode

    @Test func aShadowRoutesWouldBeDenialsPassMarked() throws {
        for _ in 0..<3 { #expect(status(auth("/api/try")) == "204") }
        let passed = auth("/api/try")
        #expect(passed.status == 204 && status(passed) == "204")
        #expect(header(passed, "X-Charge-Shadow") == "out_of_charge")
        #expect(header(passed, "X-Accel-Expires") == "0")
        #expect(
            passed.outcome
                == .shadow(.denied(.outOfCharge(pool: "api-calls", retryAfterMs: 60_000), pools: ["api-calls"], fromMemory: false)))
        #expect(passed.note?.message == "shadow denied out_of_charge (passed)")
        // Spent exactly as when enforced: the enforced route sees the same empty pool.
        #expect(status(auth("/api/calls")) == "429")
    }

    @Test func shadowAtTopLevelWithAnEnforcedRoute() throws {
        let test = Self(config: Self.config(mode: .shadow))
        try test.shadowAtTopLevel()
    }

    func shadowAtTopLevel() throws {
        for _ in 0..<2 { _ = auth("/api/paid") }
        let credits = auth("/api/paid")
        #expect(header(credits, "X-Charge-Shadow") == "insufficient_credits")
        #expect(
            credits.outcome
                == .shadow(.denied(.insufficientCredits(pool: "credits", available: 0, required: 1), pools: ["credits"], fromMemory: false))
        )
        for _ in 0..<2 { _ = auth("/api/strict") }
        #expect(status(auth("/api/strict")) == "429")
    }

    @Test func aShadowRoutePassesAStoreOutage() {
        let down = Responder(store: DownStore(), clock: clock)
        let passed = down.respond(to: FakeRequest.auth("/api/try", subject: "s1"), gate: gate)
        #expect(passed.status == 204 && header(passed, "X-Charge-Shadow") == "service_unavailable")
        #expect(passed.outcome == .shadow(.denied(.serviceUnavailable, pools: ["api-calls"], fromMemory: false)))
        #expect(passed.note?.isError == true)
        let enforced = down.respond(to: FakeRequest.auth("/api/calls", subject: "s1"), gate: gate)
        #expect(status(enforced) == "503")
    }

    // MARK: Admin API

    @Test func planAnswers() throws {
        #expect(planRequest("GET").body == #"{"subject":"s1","plan":"free","source":"default","periodAnchor":null}"#)
        #expect(planRequest("GET", plan: "pro").body == #"{"subject":"s1","plan":"pro","source":"nginx","periodAnchor":null}"#)
        let set = planRequest("PUT", body: #"{"plan":"pro","periodAnchor":1764547200000}"#)
        #expect(set.body == #"{"subject":"s1","plan":"pro","source":"stored","periodAnchor":1764547200000}"#)
        #expect(try store.plan(at: gate.keys.plan(subject: "s1")) == PlanRecord(plan: "pro", periodAnchor: 1_764_547_200_000))
        #expect(planRequest("GET").body == set.body)
        #expect(planRequest("DELETE").body == #"{"subject":"s1","plan":"free","source":"default","periodAnchor":null}"#)
        #expect(try store.plan(at: gate.keys.plan(subject: "s1")) == nil)
    }

    /// (method, query subject, body, token, status, error)
    @Test(
        arguments: [
            ("PUT", "s1", #"{"plan":"gold"}"#, token, 400, "unknown_plan"),
            ("PUT", "s1", #"{"plan":5}"#, token, 400, "bad_request"),
            ("PUT", "s1", #"{"plan":"pro","extra":1}"#, token, 400, "bad_request"),
            ("PUT", "s1", #"{"plan":"pro","periodAnchor":-1}"#, token, 400, "bad_request"),
            ("PUT", "s1", #"{"plan":"pro","periodAnchor":1.5}"#, token, 400, "bad_request"),
            ("PUT", "s1", #"{"plan":"pro","periodAnchor":9007199254740992}"#, token, 400, "bad_request"),
            ("PUT", "s1", "not json", token, 400, "bad_request"),
            ("PUT", "s1", "", token, 400, "bad_request"),
            ("PUT", nil, #"{"plan":"pro"}"#, token, 400, "bad_request"),
            ("PUT", "", #"{"plan":"pro"}"#, token, 400, "bad_request"),
            ("PUT", "s1&subject=s2", #"{"plan":"pro"}"#, token, 400, "bad_request"),
            ("PUT", "s1", #"{"plan":"pro"}"#, nil, 401, "unauthorized"),
            ("PUT", "s1", #"{"plan":"pro"}"#, "wrong", 401, "unauthorized"),
            ("POST", "s1", #"{"plan":"pro"}"#, token, 405, "method_not_allowed"),
        ] as [(String, String?, String, String?, Int, String)])
    func badPlanRequestsChangeNothing(method: String, subject: String?, body: String, token: String?, code: Int, error: String) throws {
        let response = planRequest(method, subject: subject, body: body, token: token)
        #expect(response.status == code)
        #expect(response.body.hasPrefix(#"{"error":"\#(error)""#))
        #expect(try store.plan(at: gate.keys.plan(subject: "s1")) == nil)
    }

    @Test func withoutPlansConfiguredEveryNameIsUnknown() {
        var config = Self.config()
        config.plans = []
        config.defaultPlan = nil
        Self(config: config).withoutPlans()
    }

    func withoutPlans() {
        #expect(planRequest("PUT", body: #"{"plan":"pro"}"#).status == 400)
        #expect(planRequest("GET").body == #"{"subject":"s1","plan":null,"source":"default","periodAnchor":null}"#)
        #expect(status(auth("/api/generate")) == "204")
        // nginx naming a plan means nothing without plans: no error line.
        #expect(auth("/api/generate", plan: "pro").note == nil)
    }
}
