import ChargeGateTestSupport
import Testing

@testable import ChargeGateCore

/// The hold an allowed request on a settled route records, through the responder and the
/// memory store: `X-Charge-Hold` on the allow, the record, and what never opens one.
@Suite struct HoldTests {
    static let requestID = "0123456789abcdef0123456789abcdef"

    let clock = ManualClock()
    let store: MemoryStore
    let gate: Gate
    var responder: Responder { Responder(store: store, clock: clock, denials: DenyCache()) }

    init() throws {
        store = MemoryStore(clock: clock)
        gate = Gate(
            config: try ConfigLoader.parse(
                """
                listen: /run/cg/charge.sock
                idempotencyHeader: Idempotency-Key
                pools:
                  - id: credits
                    maxCharges: 10
                    recharge: none
                    per: subject
                  - id: calls
                    maxCharges: 5
                    rechargeIntervalHours: 1
                    per: subject
                routes:
                  - prefix: /api/chat
                    cost: 4
                    idempotent: true
                    pools: [credits, {id: calls, cost: 1}]
                    settle:
                      amount: header
                  - prefix: /api/plain
                    pools: [calls]
                """, file: "inline.yaml"
            ).get())
    }

    func auth(_ uri: String, id: String? = requestID, key: String? = nil) -> Response {
        var request = FakeRequest.auth(uri)
        if let id { request.params["CHARGE_GATE_REQUEST_ID"] = id }
        if let key { request.params["HTTP_IDEMPOTENCY_KEY"] = key }
        return responder.respond(to: request, gate: gate)
    }

    func header(_ response: Response, _ name: String) -> String? {
        response.headers.first { $0.name == name }?.value
    }

    func openHolds() throws -> [HoldRecord] {
        try store.openHolds(prefix: gate.keys.holdPrefix, limit: 10).holds
    }

    @Test func anAllowOnASettledRouteCarriesItsHold() throws {
        let allowed = auth("/api/chat")
        #expect(allowed.status == 204)
        #expect(header(allowed, "X-Charge-Hold") == Self.requestID)
        let hold = try #require(try openHolds().first)
        #expect(hold.id == Self.requestID)
        #expect(hold.items.map(\.held) == [4, 1])
        #expect(hold.items.map(\.metered) == [true, false])
        #expect(hold.context.subject == "203.0.113.7")
        #expect(hold.context.route == "/api/chat")
        #expect(hold.expiresAt == hold.createdAt + 3_600_000)
    }

    @Test func aRouteWithoutSettleHoldsNothing() throws {
        let allowed = auth("/api/plain")
        #expect(allowed.status == 204)
        #expect(header(allowed, "X-Charge-Hold") == nil)
        #expect(try openHolds().isEmpty)
    }

    @Test func aDenialHoldsNothing() throws {
        #expect(auth("/api/chat", id: "a1").status == 204)
        #expect(auth("/api/chat", id: "a2").status == 204)
        let denied = auth("/api/chat", id: "a3")
        #expect(header(denied, "X-Charge-Status") == "402")
        #expect(header(denied, "X-Charge-Hold") == nil)
        #expect(Set(try openHolds().map(\.id)) == ["a1", "a2"])
    }

    @Test func anIdempotentRepeatOpensNoSecondHold() throws {
        #expect(header(auth("/api/chat", id: "first", key: "k1"), "X-Charge-Hold") == "first")
        let repeated = auth("/api/chat", id: "second", key: "k1")
        #expect(repeated.status == 204)
        #expect(header(repeated, "X-Charge-Hold") == nil)
        #expect(try openHolds().map(\.id) == ["first"])
    }

    @Test func aRequestWithoutAValidRequestIdIsChargedAsFinal() throws {
        for id in [nil, "not/an:id"] as [String?] {
            let allowed = auth("/api/chat", id: id)
            #expect(allowed.status == 204)
            #expect(header(allowed, "X-Charge-Hold") == nil)
            #expect(allowed.note?.isError == true)
        }
        #expect(try openHolds().isEmpty)
        let state = try store.peek([gate.key(pool: 0, subject: "203.0.113.7")]).states[0]
        #expect(state?.current == Int64(10 - 2 * 4))
    }

    @Test func aRequestWhoseLineCameFirstIsRefusedAndChargesNothing() throws {
        // The client left while the auth request waited: nginx's line (499, nothing sent
        // upstream) reaches the store before the spend; the spend that follows is refused.
        let line = SettleRequest(
            key: gate.keys.hold(id: Self.requestID), id: Self.requestID,
            report: .nginx(ResponseFacts(status: 499, upstreamReached: false, upstreamAnswered: false)), voidTtlMs: gate.voidTtlMs)
        #expect(try store.settle(line) == .voided)
        let refused = auth("/api/chat")
        #expect(refused.status == 403)
        #expect(header(refused, "X-Charge-Status") == "503")
        #expect(header(refused, "X-Charge-Hold") == nil)
        #expect(refused.note?.message.contains("voided") == true)
        #expect(try openHolds().isEmpty)
        #expect(try store.peek([gate.key(pool: 0, subject: "203.0.113.7")]).states[0] == nil)
        // Another request of the subject is charged as usual; the void lasts as long as a hold.
        #expect(auth("/api/chat", id: "other").status == 204)
        clock.advance(gate.voidTtlMs)
        #expect(auth("/api/chat").status == 204)
    }

    @Test func theSameRequestAskedAgainKeepsItsFirstHold() throws {
        // An internal redirect re-runs auth_request with the same $request_id: the first
        // hold stays, the second spend is final.
        #expect(header(auth("/api/chat"), "X-Charge-Hold") == Self.requestID)
        #expect(header(auth("/api/chat"), "X-Charge-Hold") == Self.requestID)
        let holds = try openHolds()
        #expect(holds.count == 1)
        let outcome = try store.settle(
            SettleRequest(
                key: gate.keys.hold(id: Self.requestID), id: Self.requestID,
                report: .nginx(ResponseFacts(status: 500, upstreamReached: true, upstreamAnswered: true))))
        #expect(outcome.label == "refund")
        // One hold given back: 10 - 2 × 4 + 4.
        #expect(try store.peek([gate.key(pool: 0, subject: "203.0.113.7")]).states[0]?.current == 6)
    }

    @Test func aHoldSettlesOnceThenIsADuplicateAndExpiresAfterItsWindow() throws {
        #expect(auth("/api/chat", id: "h1").status == 204)
        #expect(auth("/api/chat", id: "h2").status == 204)
        let facts = ResponseFacts(status: 200, upstreamReached: true, upstreamAnswered: true, amount: .value(1))
        let settle = { (id: String) throws -> SettleOutcome in
            try store.settle(SettleRequest(key: gate.keys.hold(id: id), id: id, report: .nginx(facts)))
        }
        guard case .settled(let first) = try settle("h1") else {
            Issue.record("h1 did not settle")
            return
        }
        #expect(first.differences == [-3, 0])
        #expect(try settle("h1") == .duplicate)
        #expect(try settle("nope") == .unknown)
        clock.advance(3_600_000)
        #expect(try settle("h2") == .expired)
        clock.advance(3_600_000)
        #expect(try settle("h2") == .unknown)
        #expect(try openHolds().isEmpty)
    }
}
