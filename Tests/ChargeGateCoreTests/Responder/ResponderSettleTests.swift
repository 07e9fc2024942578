import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateCore

/// `POST /api/usage/settle` (docs/http.md): every answer of the endpoint through the responder,
/// over the memory store on a manual clock.
@Suite struct ResponderSettleTests {
    static let token = "s3cret"
    static let hour: Int64 = 3_600_000

    /// credits (per subject, 100,000, top-off only) metered at the route's cost 4000; calls (3,
    /// one an hour) charged per call; a route nginx settles; a plain one.
    static func config() -> GateConfig {
        var config = GateConfig()
        config.adminToken = token
        config.pools = [
            PoolConfig(id: "credits", capacity: .limited(100_000), recharge: .none, label: "Credits", group: "Billing", scope: .subject),
            PoolConfig(id: "calls", capacity: .limited(3), recharge: .every(intervalMs: hour), rechargeIntervalHours: 1, scope: .subject),
        ]
        config.routes = [
            RouteConfig(
                prefix: "/api/chat", charges: [.init(poolIndex: 0, cost: 4000), .init(poolIndex: 1, cost: 1)],
                settle: SettlePolicy(amount: .header, by: .app), cost: 4000),
            RouteConfig(prefix: "/api/files", charges: [.init(poolIndex: 0, cost: 10)], settle: SettlePolicy(), cost: 10),
            RouteConfig(prefix: "/api/plain", charges: [.init(poolIndex: 1, cost: 1)]),
            // No credits pool: its 429s are remembered by the deny cache.
            RouteConfig(
                prefix: "/api/think", charges: [.init(poolIndex: 1, cost: 1)], settle: SettlePolicy(amount: .header, by: .app), cost: 1),
        ]
        return config
    }

    let clock = ManualClock()
    let store: MemoryStore
    let denials = DenyCache()
    let gate: Gate
    var responder: Responder { Responder(store: store, clock: clock, denials: denials) }

    init() { self.init(config: Self.config()) }

    init(config: GateConfig) {
        store = MemoryStore(clock: clock)
        gate = Gate(config: config)
    }

    // MARK: Helpers

    /// The auth subrequest of `uri` by `subject`, with nginx's `$request_id` `hold`.
    func auth(_ uri: String, hold: String? = nil, subject: String = "alice") -> Response {
        var headers: [String: String] = [:]
        if let hold { headers[WireProtocol.Param.requestID] = hold }
        return responder.respond(to: FakeRequest.auth(uri, subject: subject, headers: headers), gate: gate)
    }

    func settle(_ body: String, token: String? = ResponderSettleTests.token, method: String = "POST") -> Response {
        responder.respond(to: FakeRequest.endpoint("settle", method: method, token: token, subject: "app", body: body), gate: gate)
    }

    func settleBytes(_ bytes: [UInt8]) -> Response {
        var request = FakeRequest.endpoint("settle", method: "POST", token: Self.token, subject: "app")
        request.bodyBytes = bytes
        return responder.respond(to: request, gate: gate)
    }

    func status(_ response: Response) -> String? { header(response, WireProtocol.Header.status) }
    func header(_ response: Response, _ name: String) -> String? { response.headers.first { $0.name == name }?.value }

    func usage(subject: String = "alice") throws -> [String: [String: Any]] {
        let response = responder.respond(to: FakeRequest.endpoint("usage", subject: subject), gate: gate)
        #expect(response.status == 200)
        let doc = try #require(JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        let pools = try #require(doc["pools"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: pools.map { ($0["id"] as? String ?? "", $0) })
    }

    func current(_ pool: String, subject: String = "alice") throws -> Int? {
        try usage(subject: subject)[pool]?["current"] as? Int
    }

    func events() -> [UsageEvent] {
        (try? store.events(streams: gate.eventStreams, EventQuery(limit: 1000)).events) ?? []
    }

    // MARK: 200

    @Test func anAmountBelowTheHoldGivesTheDifferenceBack() throws {
        let t = clock.nowMs()
        let allowed = auth("/api/chat", hold: "h1")
        #expect(status(allowed) == "204")
        #expect(header(allowed, WireProtocol.Header.hold) == "h1")
        #expect(try current("credits") == 96_000)
        clock.advance(1000)
        let settled = settle(#"{"hold":"h1","amount":1500}"#)
        #expect(settled.status == 200)
        #expect(header(settled, "Content-Type") == "application/json")
        #expect(
            settled.body
                == #"{"hold":"h1","outcome":"amount","pools":[{"id":"credits","label":"Credits","group":"Billing","current":98500,"max":100000,"rechargeIntervalHours":null,"nextRechargeAt":null,"fullAt":null,"availableBalance":98500,"usedBalance":1500,"balanceLimit":100000,"subject":"alice","difference":-2500},{"id":"calls","label":"calls","group":"","current":2,"max":3,"rechargeIntervalHours":1,"nextRechargeAt":\#(t + Self.hour),"fullAt":\#(t + Self.hour),"availableBalance":2,"usedBalance":1,"balanceLimit":3,"subject":"alice","difference":0}]}"#
        )
        #expect(settled.note == nil)
        guard case .settled(let outcome)? = settled.settlement else {
            Issue.record("no settlement on the response")
            return
        }
        #expect(outcome.resolution == .amount(1500))
        #expect(outcome.differences == [-2500, 0])
        // What the usage answer says afterwards is what the settlement answered.
        #expect(try current("credits") == 98_500)
        #expect(try current("calls") == 2)
    }

    @Test func anAmountAboveTheHoldIsSpentOnTop() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        let settled = settle(#"{"hold":"h1","amount":5200}"#)
        #expect(settled.status == 200)
        let doc = try #require(JSONSerialization.jsonObject(with: Data(settled.body.utf8)) as? [String: Any])
        #expect(doc["outcome"] as? String == "overage")
        let pools = try #require(doc["pools"] as? [[String: Any]])
        #expect(pools.map { $0["id"] as? String } == ["credits", "calls"])
        #expect(pools.map { $0["difference"] as? Int } == [1200, 0])
        #expect(pools[0]["current"] as? Int == 94_800)
        #expect(pools[0]["owed"] == nil)
        #expect(try current("credits") == 94_800)
    }

    @Test func anOverageBelowZeroIsOwedAndShownAsSuch() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        let settled = settle(#"{"hold":"h1","amount":150000}"#)
        #expect(settled.status == 200)
        #expect(settled.body.contains(#""current":0,"max":100000"#))
        #expect(
            settled.body.contains(
                #""availableBalance":0,"usedBalance":100000,"balanceLimit":100000,"owed":50000,"subject":"alice","difference":146000}"#))
        let credits = try #require(try usage()["credits"])
        #expect(credits["current"] as? Int == 0)
        #expect(credits["availableBalance"] as? Int == 0)
        #expect(credits["owed"] as? Int == 50_000)
        // A pool that is not below zero has no `owed`.
        #expect(try usage()["calls"]?["owed"] == nil)
        // Nothing passes while it owes: credits never refill by themselves, so a 402.
        let denied = auth("/api/chat", hold: "h2")
        #expect(status(denied) == "402")
        // The page and the table show the balance below zero.
        let page = responder.respond(
            to: FakeRequest(params: [
                "CHARGE_GATE_ROLE": "usage", "REQUEST_METHOD": "GET", "CHARGE_GATE_SUBJECT": "alice", "HTTP_ACCEPT": "text/html",
            ]), gate: gate)
        #expect(page.body.contains(#"<b>-50,000</b> of 100,000 left <span class="state">overdrawn</span>"#))
    }

    @Test func aRefundGivesTheWholeHoldBackOnEveryPool() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        #expect(try current("calls") == 2)
        let settled = settle(#"{"refund":true,"hold":"h1"}"#)
        #expect(settled.status == 200)
        let doc = try #require(JSONSerialization.jsonObject(with: Data(settled.body.utf8)) as? [String: Any])
        #expect(doc["hold"] as? String == "h1")
        #expect(doc["outcome"] as? String == "refund")
        #expect((doc["pools"] as? [[String: Any]])?.map { $0["difference"] as? Int } == [-4000, -1])
        #expect(try current("credits") == 100_000)
        #expect(try current("calls") == 3)
        guard case .settled(let outcome)? = settled.settlement else {
            Issue.record("no settlement on the response")
            return
        }
        #expect(outcome.resolution == .refund(.app))
    }

    @Test func anAmountOfZeroChargesOnlyThePerCallPools() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        #expect(settle(#"{"hold":"h1","amount":0}"#).status == 200)
        #expect(try current("credits") == 100_000)
        #expect(try current("calls") == 2)
    }

    @Test func theLargestAmountIsTwoToThe53() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        let settled = settle(#"{"hold":"h1","amount":9007199254740992}"#)
        #expect(settled.status == 200)
        #expect(try usage()["credits"]?["current"] as? Int == 0)
        // Within the bucket's own bound (2^53 below zero at most): never a trap.
        #expect((try usage()["credits"]?["owed"] as? Int).map { $0 > 0 } == true)
    }

    @Test func theAppMaySettleARouteNginxSettlesAndTheFirstWins() throws {
        #expect(status(auth("/api/files", hold: "f1")) == "204")
        #expect(settle(#"{"hold":"f1","amount":3}"#).status == 200)
        #expect(try current("credits") == 99_997)
        let line = try store.settle(
            SettleRequest(
                key: gate.keys.hold(id: "f1"), id: "f1",
                report: .nginx(ResponseFacts(status: 500, upstreamReached: true, upstreamAnswered: true))))
        #expect(line == .duplicate)
        #expect(try current("credits") == 99_997)
    }

    @Test func aGiveBackEndsTheDenialsThisResponderRemembers() throws {
        for n in 1...3 { #expect(status(auth("/api/think", hold: "h\(n)")) == "204") }
        // calls is empty: a 429, then the same 429 from the worker's deny cache.
        #expect(status(auth("/api/think", hold: "h4")) == "429")
        let remembered = auth("/api/think", hold: "h5")
        guard case .denied(_, _, fromMemory: true)? = remembered.outcome else {
            Issue.record("the second 429 was not answered from memory: \(String(describing: remembered.outcome))")
            return
        }
        #expect(settle(#"{"hold":"h1","refund":true}"#).status == 200)
        // The refund gave one call back: the next request is decided by the store, and passes.
        #expect(status(auth("/api/think", hold: "h6")) == "204")
        // An amount that gives nothing back leaves what the cache learned alone.
        #expect(status(auth("/api/think", hold: "h7")) == "429")
        #expect(settle(#"{"hold":"h2","amount":1}"#).status == 200)
        let after = auth("/api/think", hold: "h8")
        guard case .denied(_, _, fromMemory: true)? = after.outcome else {
            Issue.record("a settlement without a give-back cleared the deny cache: \(String(describing: after.outcome))")
            return
        }
    }

    @Test func theSettledPoolIsShownUnderThePlanItWasSpentUnder() throws {
        var config = Self.config()
        config.plans = [PlanConfig(id: "free"), PlanConfig(id: "pro", overrides: [0: .init(capacity: .limited(500_000))])]
        config.defaultPlan = 0
        let suite = ResponderSettleTests(config: config)
        try suite.store.setPlan(PlanRecord(plan: "pro"), at: suite.gate.keys.plan(subject: "alice"))
        #expect(suite.status(suite.auth("/api/chat", hold: "h1")) == "204")
        let settled = suite.settle(#"{"hold":"h1","amount":1000}"#)
        #expect(settled.status == 200)
        #expect(settled.body.contains(#""current":499000,"max":500000"#))
    }

    // MARK: Events

    @Test func eventsShowTheSpendThenTheSettlementAndSumToWhatWasCharged() {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        clock.advance(5)
        #expect(settle(#"{"hold":"h1","amount":1500}"#).status == 200)
        let all = events()
        #expect(all.map(\.kind) == [.spend, .spend, .settle, .settle])
        #expect(all.map(\.pool) == ["credits", "calls", "credits", "calls"])
        #expect(all.map(\.amount) == [4000, 1, -2500, 0])
        #expect(all.allSatisfy { $0.context.hold == "h1" && $0.context.subject == "alice" && $0.context.route == "/api/chat" })
        #expect(all.allSatisfy { $0.status == nil })
        var totals = EventTotals()
        for event in all { totals.add(event) }
        #expect(
            totals.rows == [
                EventTotals.Total(subject: "alice", pool: "calls", spent: 1, settled: 0, requests: 1, settlements: 1),
                EventTotals.Total(subject: "alice", pool: "credits", spent: 4000, settled: -2500, requests: 1, settlements: 1),
            ])
        #expect(totals.rows.map(\.amount) == [1, 1500])
        // Through the events endpoint: the kind, the hold; no status on the app's settlement.
        let page = responder.respond(to: FakeRequest.endpoint("events", query: "pool=credits", token: Self.token), gate: gate)
        #expect(page.body.contains(#""plan":"","kind":"spend","hold":"h1"}"#))
        #expect(page.body.contains(#""amount":-2500,"#))
        #expect(page.body.contains(#""plan":"","kind":"settle","hold":"h1"}"#))
    }

    @Test func aRefusedSettlementWritesNoEvent() {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        #expect(settle(#"{"hold":"h1","amount":-1}"#).status == 400)
        #expect(settle(#"{"hold":"nope","amount":1}"#).status == 404)
        #expect(events().map(\.kind) == [.spend, .spend])
    }

    // MARK: 404, 409

    @Test func anUnknownHoldIs404() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        let response = settle(#"{"hold":"h2","amount":10}"#)
        #expect(response.status == 404)
        #expect(response.body == #"{"error":"unknown_hold","hold":"h2"}"#)
        #expect(response.settlement == .unknown)
        #expect(response.note?.isError == false)
        #expect(response.note?.field(.hold) == "h2")
        // A hold is made only for a settled route's allow: a plain route's request id is none.
        #expect(status(auth("/api/plain", hold: "p1")) == "204")
        #expect(settle(#"{"hold":"p1","amount":0}"#).body == #"{"error":"unknown_hold","hold":"p1"}"#)
        #expect(try current("credits") == 96_000)
    }

    @Test func aHoldPastItsWindowIs404ThenUnknown() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        let window = Int64(gate.config.settleWindowSeconds) * 1000
        clock.advance(window - 1)
        #expect(status(auth("/api/chat", hold: "h2")) == "204")
        #expect(settle(#"{"hold":"h2","amount":1}"#).status == 200)
        clock.advance(1)
        let expired = settle(#"{"hold":"h1","refund":true}"#)
        #expect(expired.status == 404)
        #expect(expired.body == #"{"error":"hold_expired","hold":"h1"}"#)
        #expect(expired.settlement == .expired)
        // It stays charged as held.
        #expect(try current("credits") == 100_000 - 4000 - 1)
        clock.advance(window)
        #expect(settle(#"{"hold":"h1","refund":true}"#).body == #"{"error":"unknown_hold","hold":"h1"}"#)
    }

    @Test func aSecondSettlementIs409AndChangesNothing() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        #expect(settle(#"{"hold":"h1","amount":1000}"#).status == 200)
        for body in [#"{"hold":"h1","amount":1000}"#, #"{"hold":"h1","refund":true}"#, #"{"hold":"h1","amount":9}"#] {
            let again = settle(body)
            #expect(again.status == 409)
            #expect(again.body == #"{"error":"already_settled","hold":"h1"}"#)
            #expect(again.settlement == .duplicate)
        }
        #expect(try current("credits") == 99_000)
        #expect(try current("calls") == 2)
        #expect(events().count == 4)
    }

    // MARK: 400, 401, 403, 405, 413, 503

    /// (body, refusal): each answered 400 with the refusal's message, before the store is asked.
    static let badBodies: [(String, SettleBody.Refusal)] = [
        ("", .shape),
        ("null", .shape),
        ("[]", .shape),
        (#""h1""#, .shape),
        ("{}", .shape),
        (#"{"hold":"h1"}"#, .shape),
        (#"{"amount":5}"#, .shape),
        (#"{"refund":true}"#, .shape),
        (#"{"hold":"h1","amount":5,"refund":true}"#, .shape),
        (#"{"hold":"h1","refund":false}"#, .shape),
        (#"{"hold":"h1","refund":"true"}"#, .shape),
        (#"{"hold":"h1","refund":1}"#, .shape),
        (#"{"hold":5,"amount":5}"#, .shape),
        (#"{"hold":null,"amount":5}"#, .shape),
        (#"{"hold":"h1","amount":5,"extra":1}"#, .shape),
        (#"{"hold":"h1","Amount":5}"#, .shape),
        (#"{"hold":"h1","amount":5,"amount":6}"#, .shape),
        (#"{"hold":"h1","hold":"h2","amount":5}"#, .shape),
        (#"{"hold":"h1","amount":5}x"#, .shape),
        (#"{"hold":"h1","amount":5},"#, .shape),
        (#"{"hold":"h1","amount":5,}"#, .shape),
        (#"{"hold":"h1" "amount":5}"#, .shape),
        (#"{"hold":"h1","amount":5"#, .shape),
        (#"{"hold":"h1","amount":{"n":5}}"#, .shape),
        (#"{"hold":"h1","amount":[5]}"#, .shape),
        (#"{"hold":"h1","amount":05}"#, .shape),
        (#"{"hold":"h1","amount":1.}"#, .shape),
        (#"{"hold":"h1","amount":+5}"#, .shape),
        (#"{'hold':'h1','amount':5}"#, .shape),
        (#"{"hold":"h\u00"}"#, .shape),
        (#"{"hold":"\ud800","amount":1}"#, .shape),
        ("{\"hold\":\"h\u{1}\",\"amount\":1}", .shape),
        (#"{"hold":"h1","amount":-1}"#, .amount),
        (#"{"hold":"h1","amount":-0}"#, .amount),
        (#"{"hold":"h1","amount":1.5}"#, .amount),
        (#"{"hold":"h1","amount":5.0}"#, .amount),
        (#"{"hold":"h1","amount":1e3}"#, .amount),
        (#"{"hold":"h1","amount":1E+3}"#, .amount),
        (#"{"hold":"h1","amount":9007199254740993}"#, .amount),
        (#"{"hold":"h1","amount":99999999999999999999}"#, .amount),
        (#"{"hold":"h1","amount":"5"}"#, .amount),
        (#"{"hold":"h1","amount":null}"#, .amount),
        (#"{"hold":"h1","amount":true}"#, .amount),
        (#"{"hold":"","amount":5}"#, .hold),
        (#"{"hold":"h 1","amount":5}"#, .hold),
        (#"{"hold":"h1\n","amount":5}"#, .hold),
        (#"{"hold":"h1.2","amount":5}"#, .hold),
        (#"{"hold":"h/1","refund":true}"#, .hold),
        (#"{"hold":"héllo","amount":5}"#, .hold),
        ("{\"hold\":\"\(String(repeating: "a", count: 65))\",\"amount\":5}", .hold),
        (#"{"hold":"../h1","amount":-1}"#, .hold),
        // What nginx logs for an empty variable, and ids that start like it.
        (#"{"hold":"-","amount":1}"#, .hold),
        (#"{"hold":"-h1","refund":true}"#, .hold),
        (#"{"hold":"_h1","amount":1}"#, .hold),
    ]

    @Test(arguments: Self.badBodies)
    func aBadBodyIs400(body: String, refusal: SettleBody.Refusal) throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        let response = settle(body)
        #expect(response == Response.error(400, "bad_request", [("message", refusal.message)]))
        #expect(response.settlement == nil)
        // Nothing was settled: the hold is still open.
        #expect(try current("credits") == 96_000)
        #expect(settle(#"{"hold":"h1","amount":4000}"#).status == 200)
    }

    @Test func invalidUTF8IsABadShape() {
        let bytes = Array(#"{"hold":"h"#.utf8) + [0xFF, 0xFE] + Array(#"","amount":1}"#.utf8)
        #expect(settleBytes(bytes) == Response.error(400, "bad_request", [("message", SettleBody.Refusal.shape.message)]))
        #expect(settleBytes([0xEF, 0xBB, 0xBF] + Array(#"{"hold":"h1","refund":true}"#.utf8)).status == 400)
    }

    @Test func theMessagesAreExact() {
        #expect(
            settle("{}").body
                == #"{"error":"bad_request","message":"body: expected JSON {\"hold\":\"ID\",\"amount\":N} or {\"hold\":\"ID\",\"refund\":true}"}"#
        )
        #expect(
            settle(#"{"hold":"a b","amount":1}"#).body
                == #"{"error":"bad_request","message":"hold: expected the id X-Charge-Hold carried (1 to 64 of A-Z a-z 0-9 _ -, starting with a letter or digit)"}"#
        )
        #expect(
            settle(#"{"hold":"h1","amount":-1}"#).body
                == #"{"error":"bad_request","message":"amount: expected a whole number from 0 to 2^53, written as digits"}"#)
    }

    @Test func theTokenIsNeeded() throws {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        for token in [nil, "wrong", "s3cre", "s3cret "] as [String?] {
            let response = settle(#"{"hold":"h1","refund":true}"#, token: token)
            #expect(response.status == 401)
            #expect(response.body == #"{"error":"unauthorized"}"#)
            #expect(header(response, "WWW-Authenticate") == "Bearer")
        }
        var config = Self.config()
        config.adminToken = nil
        let off = ResponderSettleTests(config: config)
        let forbidden = off.settle(#"{"hold":"h1","refund":true}"#)
        #expect(forbidden.status == 403)
        #expect(forbidden.body == #"{"error":"forbidden","message":"admin endpoints are off: set adminToken in the config"}"#)
        #expect(try current("credits") == 96_000)
    }

    @Test func onlyPost() {
        for method in ["GET", "HEAD", "PUT", "DELETE", ""] {
            let response = settle(#"{"hold":"h1","refund":true}"#, method: method)
            #expect(response.status == 405)
            #expect(header(response, "Allow") == "POST")
        }
    }

    @Test func aBodyOver4096BytesIs413() {
        #expect(status(auth("/api/chat", hold: "h1")) == "204")
        let padded = #"{"hold":"h1","amount":1"# + String(repeating: " ", count: 4096) + "}"
        let response = settle(padded)
        #expect(response.status == 413)
        #expect(response.body == #"{"error":"bad_request","message":"body: at most 4096 bytes"}"#)
        let fits = #"{"hold":"h1","amount":1"# + String(repeating: " ", count: 4096 - 24) + "}"
        #expect(fits.utf8.count == 4096)
        #expect(settle(fits).status == 200)
    }

    @Test func aStoreThatDoesNotAnswerIs503() {
        let down = Responder(store: DownStore(), clock: clock)
        let response = down.respond(
            to: FakeRequest.endpoint("settle", method: "POST", token: Self.token, body: #"{"hold":"h1","amount":1}"#), gate: gate)
        #expect(response.status == 503)
        #expect(response.body == #"{"error":"service_unavailable"}"#)
        #expect(response.note?.isError == true)
        #expect(response.note?.field(.endpoint) == "settle")
    }

    @Test func aStoreThatIgnoresTheAppIs503() {
        let ignoring = Responder(store: IgnoringStore(store), clock: clock)
        let response = ignoring.respond(
            to: FakeRequest.endpoint("settle", method: "POST", token: Self.token, body: #"{"hold":"h1","amount":1}"#), gate: gate)
        #expect(response.status == 503)
        #expect(response.body == #"{"error":"service_unavailable"}"#)
        #expect(response.note?.isError == true)
        #expect(response.settlement == .ignored)
    }

    @Test func theRoleIsPartOfTheWireContract() {
        #expect(WireProtocol.Role(rawValue: "settle") == .settle)
        #expect(Response.reason(409) == "Conflict")
    }
}

/// A store whose settlements are all `.ignored` (what no store should answer the app).
final class IgnoringStore: ForwardingStore {
    let inner: MemoryStore
    init(_ inner: MemoryStore) { self.inner = inner }
    func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome { .ignored }
}
