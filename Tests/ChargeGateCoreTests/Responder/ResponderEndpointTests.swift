import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The usage and admin endpoints: usage JSON, check, top-off, events.
@Suite struct ResponderEndpointTests: ResponderSuite {
    let fixture = ResponderFixture()

    @Test func usageJSONIsExact() {
        let t = clock.nowMs()
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        let usage = responder.respond(to: FakeRequest.endpoint("usage"), gate: gate)
        #expect(usage.status == 200)
        #expect(header(usage, "Content-Type") == "application/json")
        #expect(
            usage.body
                == #"{"pools":[{"id":"generate-image","label":"Image generation","group":"AI","current":1,"max":2,"rechargeIntervalHours":2,"nextRechargeAt":\#(t + 2 * Self.hour),"fullAt":\#(t + 2 * Self.hour),"availableBalance":1,"usedBalance":1,"balanceLimit":2},{"id":"api-calls","label":"api-calls","group":"","current":3,"max":3,"rechargeIntervalHours":0.01,"nextRechargeAt":null,"fullAt":null,"availableBalance":3,"usedBalance":0,"balanceLimit":3,"subject":"203.0.113.7"},{"id":"credits","label":"credits","group":"","current":10,"max":10,"rechargeIntervalHours":null,"nextRechargeAt":null,"fullAt":null,"availableBalance":10,"usedBalance":0,"balanceLimit":10,"subject":"203.0.113.7"},{"id":"meter","label":"meter","group":"","current":null,"max":null,"rechargeIntervalHours":null,"nextRechargeAt":null,"fullAt":null,"availableBalance":null,"usedBalance":0,"balanceLimit":null,"subject":"203.0.113.7"}]}"#
        )
    }

    @Test func usageForAnotherSubjectNeedsTheToken() {
        #expect(responder.respond(to: FakeRequest.endpoint("usage", query: "subject=bob"), gate: gate).status == 401)
        #expect(responder.respond(to: FakeRequest.endpoint("usage", query: "subject=bob", token: "wrong"), gate: gate).status == 401)
        let ok = responder.respond(to: FakeRequest.endpoint("usage", query: "subject=bob", token: "s3cret"), gate: gate)
        #expect(ok.status == 200)
        #expect(ok.body.contains(#""subject":"bob""#))
    }

    @Test func checkAnswers() {
        let ok = responder.respond(to: FakeRequest.endpoint("check", query: "pools=generate-image,api-calls"), gate: gate)
        #expect(ok.body == #"{"ok":true,"pools":[{"id":"generate-image","available":true},{"id":"api-calls","available":true}]}"#)
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        let empty = responder.respond(to: FakeRequest.endpoint("check", query: "pools=generate-image,meter"), gate: gate)
        #expect(empty.body == #"{"ok":false,"pools":[{"id":"generate-image","available":false},{"id":"meter","available":true}]}"#)
        for query in ["", "pools=", "pools=,,", "other=x"] {
            let bad = responder.respond(to: FakeRequest.endpoint("check", query: query), gate: gate)
            #expect(bad.status == 400)
            #expect(bad.body == #"{"error":"bad_request","message":"pools: give one or more pool ids, as ?pools=a,b"}"#)
        }
        let unknown = responder.respond(to: FakeRequest.endpoint("check", query: "pools=api-calls,nope%22"), gate: gate)
        #expect(unknown.status == 404)
        #expect(unknown.body == #"{"error":"unknown_pool","poolId":"nope\""}"#)
    }

    @Test func usageEndpointsNeverConsume() {
        for _ in 0..<10 {
            _ = responder.respond(to: FakeRequest.endpoint("usage"), gate: gate)
            _ = responder.respond(to: FakeRequest.endpoint("check", query: "pools=generate-image"), gate: gate)
        }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func topOffWithAndWithoutAmount() {
        for _ in 0..<2 { _ = responder.respond(to: FakeRequest.auth("/api/paid", subject: "alice"), gate: gate) }
        #expect(
            responder.respond(
                to: FakeRequest.endpoint("topoff", method: "POST", body: #"{"poolId":"credits","subject":"alice"}"#), gate: gate
            ).status == 401)
        let noToken = Gate(
            config: {
                var c = Self.config()
                c.adminToken = nil
                return c
            }())
        #expect(
            responder.respond(to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: "{}"), gate: noToken).status == 403)
        let added = responder.respond(
            to: FakeRequest.endpoint(
                "topoff", method: "POST", token: "s3cret", body: #"{"poolId":"credits","subject":"alice","amount":3}"#), gate: gate)
        #expect(added.status == 200)
        #expect(added.body.contains(#""current":3,"#))
        let filled = responder.respond(
            to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: #"{"poolId":"credits","subject":"alice"}"#),
            gate: gate)
        #expect(filled.body.contains(#""current":10,"#))
        let cases: [(String, Int)] = [
            ("not json", 400), (#"{"poolId":"nope"}"#, 404), (#"{"poolId":"meter","subject":"a"}"#, 400),
            (#"{"poolId":"credits"}"#, 400), (#"{"poolId":"credits","subject":"a","amount":0}"#, 400),
            (#"{"poolId":"credits","subject":"a","amount":2.5}"#, 400), (#"{"poolId":"generate-image","subject":"a"}"#, 400),
        ]
        for (body, status) in cases {
            #expect(
                responder.respond(to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: body), gate: gate).status
                    == status, "\(body)")
        }
        #expect(responder.respond(to: FakeRequest.endpoint("topoff", method: "GET", token: "s3cret"), gate: gate).status == 405)
    }

    @Test func eventsRecordEverySpendAndPage() {
        var config = Self.config()
        config.eventsMaxLen = 100
        let gate = Gate(config: config)
        for i in 0..<3 {
            _ = responder.respond(
                to: FakeRequest.auth("/api/paid", subject: "s\(i)", headers: ["HTTP_IDEMPOTENCY_KEY": "k\(i)"]), gate: gate)
            _ = responder.respond(
                to: FakeRequest.auth("/api/paid", subject: "s\(i)", headers: ["HTTP_IDEMPOTENCY_KEY": "k\(i)"]), gate: gate)
            clock.advance(1)
        }
        let page = responder.respond(to: FakeRequest.endpoint("events", query: "pool=credits&limit=2", token: "s3cret"), gate: gate)
        #expect(page.status == 200)
        let t = clock.nowMs() - 3
        #expect(
            page.body
                == #"{"events":[{"id":"\#(t)-1","time":\#(t),"pool":"credits","subject":"s0","amount":5,"route":"/api/paid","method":"POST","uri":"/api/paid","idempotencyKey":"k0","plan":"","kind":"spend"},{"id":"\#(t + 1)-1","time":\#(t + 1),"pool":"credits","subject":"s1","amount":5,"route":"/api/paid","method":"POST","uri":"/api/paid","idempotencyKey":"k1","plan":"","kind":"spend"}],"next":"\#(t + 1)-1"}"#
        )
        let rest = responder.respond(
            to: FakeRequest.endpoint("events", query: "pool=credits&after=\(t + 1)-1", token: "s3cret"), gate: gate)
        #expect(rest.body.hasSuffix(#""next":null}"#))
        #expect(rest.body.contains(#""subject":"s2""#))
        #expect(responder.respond(to: FakeRequest.endpoint("events", query: "limit=0", token: "s3cret"), gate: gate).status == 400)
        #expect(responder.respond(to: FakeRequest.endpoint("events"), gate: gate).status == 401)
    }
}
