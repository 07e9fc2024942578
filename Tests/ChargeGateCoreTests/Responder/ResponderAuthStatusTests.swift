import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The auth role answers nginx 204 or 403, with its `Status:` line and without a body, whatever
/// happens: every outcome a store can give and every error it can fail with, on a plain, an
/// idempotent, a shadow and a settled route, with and without plans, answered from the deny
/// cache, unrouted, bypassed, and asked with bad or missing params. Never a 200: under the
/// keepalive profile's `fastcgi_store`, nginx stores an answer whose status is 200
/// (ngx_http_upstream_process_request), and a FastCGI answer without `Status:` is a 200 to
/// nginx (ngx_http_fastcgi_process_header); and a body would be written to a temporary file on
/// every request. (Each answer's exact headers are in the other responder suites.)
@Suite struct ResponderAuthStatusTests {
    static let now: Int64 = 1_700_000_000_000
    static let requestID = "0123456789abcdef0123456789abcdef"

    /// Every outcome a store can give. The switch stops the build when SpendOutcome gains a
    /// case: add it to the list too.
    static let outcomes: [SpendOutcome] = {
        let all: [SpendOutcome] = [
            .allowed([ItemResult(remaining: 1, fullAt: now + 60_000)]), .repeated, .keyReused, .holdVoided,
            .outOfCharge(item: 0, retryAfterMs: 30_000), .insufficientCredits(item: 0, available: 0, required: 1),
        ]
        for outcome in all {
            switch outcome {
            case .allowed, .repeated, .keyReused, .holdVoided, .outOfCharge, .insufficientCredits: break
            }
        }
        return all
    }()

    /// Every error a store can fail with (the switch, as above).
    static let errors: [StoreError] = {
        let all: [StoreError] = [.unavailable("down"), .timeout, .protocolError("bad reply")]
        for error in all {
            switch error {
            case .unavailable, .timeout, .protocolError: break
            }
        }
        return all
    }()

    /// `/api`: a plain route on a recharging pool (429s cached at the edge), `/idem`
    /// idempotent, `/shadow` in shadow mode, `/settled` settled by nginx's line, `/credits` on
    /// a pool that never refills; `plans` adds two plans.
    static func config(plans: Bool = false, devBypass: Bool = false) -> GateConfig {
        var config = GateConfig()
        config.devBypass = devBypass
        config.edgeDenySeconds = 5
        config.pools = [
            PoolConfig(id: "p", capacity: .limited(5), recharge: .every(intervalMs: 3_600_000), rechargeIntervalHours: 1),
            PoolConfig(id: "c", capacity: .limited(5), recharge: .none, scope: .subject),
        ]
        config.routes = [
            RouteConfig(prefix: "/api", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST", "GET"]),
            RouteConfig(prefix: "/idem", charges: [.init(poolIndex: 0, cost: 1)], idempotent: true),
            RouteConfig(prefix: "/shadow", charges: [.init(poolIndex: 0, cost: 1)], mode: .shadow),
            RouteConfig(prefix: "/settled", charges: [.init(poolIndex: 0, cost: 1)], settle: SettlePolicy()),
            RouteConfig(prefix: "/credits", charges: [.init(poolIndex: 1, cost: 1)]),
        ]
        if plans { config.plans = [PlanConfig(id: "free"), PlanConfig(id: "pro")] }
        return config
    }

    /// The auth requests asked of every store answer: each route, with the params it may come
    /// with.
    static let requests: [FakeRequest] = {
        var settled = FakeRequest.auth("/settled/x")
        settled.params[WireProtocol.Param.requestID] = requestID
        var settledWithoutID = FakeRequest.auth("/settled/x")
        settledWithoutID.params[WireProtocol.Param.requestID] = "-"
        return [
            FakeRequest.auth("/api/x"), FakeRequest.auth("/api/x", method: "HEAD"),
            FakeRequest.auth("/idem/x", headers: ["HTTP_IDEMPOTENCY_KEY": "k-1"]), FakeRequest.auth("/idem/x"),
            FakeRequest.auth("/shadow/x"), settled, settledWithoutID, FakeRequest.auth("/credits/x", subject: "alice"),
        ]
    }()

    /// Requests a store never sees: unrouted (path, method), the snippets' own path, a role
    /// that is not one, params missing or hostile.
    static let refusedOrUnrouted: [FakeRequest] = {
        let onlyRole = FakeRequest(params: [WireProtocol.Param.role: "auth"])
        var noRole = FakeRequest.auth("/api/x")
        noRole.params[WireProtocol.Param.role] = nil
        var badRole = FakeRequest.auth("/api/x")
        badRole.params[WireProtocol.Param.role] = "AUTH"
        var rawOnly = FakeRequest.auth("")
        rawOnly.params[WireProtocol.Param.requestURI] = "/_charge_gate/%2e%2e/auth?x=%zz"
        return [
            FakeRequest.auth("/nowhere"), FakeRequest.auth("/api/x", method: "DELETE"), FakeRequest.auth("/_charge_gate/auth"),
            FakeRequest.auth("/api/../_charge_gate/auth"), onlyRole, noRole, badRole, rawOnly,
            FakeRequest.auth(String(repeating: "/a", count: 10_000)), FakeRequest.auth("/api/\u{0}x", method: ""),
        ]
    }()

    /// A request as its params, for a failure's message.
    static func describe(_ request: FakeRequest) -> String {
        request.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.prefix(40))" }.joined(separator: " ")
    }

    /// Checks one answer to the auth role; returns its `X-Charge-Status` (and
    /// `X-Charge-Shadow`).
    static func check(_ response: Response, _ what: String) -> String {
        let headers = Dictionary(response.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        let decision = headers[WireProtocol.Header.status] ?? "none"
        #expect(response.status != 200, "\(what)")
        #expect([204, 403].contains(response.status), "\(what): \(response.status)")
        let statusLine = response.status == 204 ? "Status: 204 No Content\r\n" : "Status: 403 Forbidden\r\n"
        #expect(response.serialized().starts(with: Array(statusLine.utf8)), "\(what)")
        #expect(response.body.isEmpty, "\(what): a body")
        #expect(headers[WireProtocol.Header.accelExpires] != nil, "\(what): no X-Accel-Expires")
        let allowed: Set<String> = response.status == 204 ? ["204", "unrouted"] : ["429", "402", "422", "503"]
        #expect(allowed.contains(decision), "\(what): X-Charge-Status \(decision) on a \(response.status)")
        return decision + (headers[WireProtocol.Header.shadow].map { " shadow " + $0 } ?? "")
    }

    /// Every store answer, on every route, under each config, asked twice of one responder
    /// (the second 429 of a key comes from the deny cache): 204 or 403, and every decision the
    /// gate has is among them.
    @Test func everyStoreAnswerIsA204OrA403() {
        var seen = Set<String>()
        var fromMemory = 0
        for config in [Self.config(), Self.config(plans: true)] {
            let gate = Gate(config: config)
            let answers = Self.outcomes.map { Result<SpendOutcome, StoreError>.success($0) } + Self.errors.map { .failure($0) }
            for answer in answers {
                let responder = Responder(store: AnsweringStore(answer, now: Self.now), clock: ManualClock(Self.now), denials: DenyCache())
                for request in Self.requests {
                    for plan in config.plans.isEmpty ? [nil] : [nil, "pro", "gone"] as [String?] {
                        var asked = request
                        asked.params[WireProtocol.Param.plan] = plan
                        for pass in 1...2 {
                            let what = "\(answer) \(Self.describe(asked)) plan \(plan ?? "-") pass \(pass)"
                            let response = responder.respond(to: asked, gate: gate)
                            seen.insert(Self.check(response, what))
                            if case .denied(_, _, fromMemory: true) = response.outcome { fromMemory += 1 }
                        }
                    }
                }
            }
        }
        #expect(
            seen == [
                "204", "429", "402", "422", "503", "204 shadow out_of_charge", "204 shadow insufficient_credits",
                "204 shadow idempotency_key_reused", "204 shadow service_unavailable",
            ])
        #expect(fromMemory > 0)
    }

    /// Requests no store answers, and a gate in devBypass (beside the store down): 204
    /// (`unrouted`, a pass, a shadow pass) or 403.
    @Test func unroutedBypassedAndBadRequestsAreA204OrA403() {
        var seen = Set<String>()
        for config in [Self.config(), Self.config(devBypass: true)] {
            let gate = Gate(config: config)
            let store = AnsweringStore(.failure(.timeout), now: Self.now)
            let responder = Responder(store: store, clock: ManualClock(Self.now), denials: DenyCache())
            for request in Self.refusedOrUnrouted + Self.requests {
                seen.insert(Self.check(responder.respond(to: request, gate: gate), Self.describe(request)))
            }
        }
        #expect(seen == ["204", "unrouted", "503", "204 shadow service_unavailable"])
    }
}
