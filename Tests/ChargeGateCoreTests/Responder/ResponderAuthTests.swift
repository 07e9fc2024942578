import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The auth subrequest: allow, deny with the exact body, routing, HEAD, credits, devBypass, a
/// store that is down, unknown roles. (Idempotent repeats: ResponderIdempotencyTests.)
@Suite struct ResponderAuthTests: ResponderSuite {
    let fixture = ResponderFixture()

    @Test func allowsThenDeniesWithExactBody() {
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        clock.advance(1000)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        clock.advance(500)
        let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(denied.status == 403)
        #expect(header(denied, "X-Charge-Status") == "429")
        let wait = 2 * Self.hour - 1500
        #expect(header(denied, "X-Charge-Body") == #"{"error":"out_of_charge","retryAfterMs":\#(wait),"poolId":"generate-image"}"#)
        #expect(header(denied, "X-Charge-Retry-After") == String((wait + 999) / 1000))
        clock.advance(wait - 1)
        #expect(header(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate), "X-Charge-Status") == "429")
        clock.advance(1)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func unmatchedMethodsAndPathsPass() {
        for _ in 0..<5 {
            #expect(responder.respond(to: FakeRequest.auth("/api/generate", method: "GET"), gate: gate).status == 204)
            #expect(responder.respond(to: FakeRequest.auth("/api/generated"), gate: gate).status == 204)
        }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func anEncodedQuestionMarkInNginxsPathIsPartOfThePath() {
        for _ in 0..<5 {
            #expect(responder.respond(to: FakeRequest.auth("/api/generate?a"), gate: gate).status == 204)
            #expect(responder.respond(to: FakeRequest.auth("/api/generate#b"), gate: gate).status == 204)
        }
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate/?a"), gate: gate).status == 204)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 403)
    }

    @Test func headIsChargedLikeGet() {
        for _ in 0..<3 { #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "HEAD"), gate: gate).status == 204) }
        #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET"), gate: gate).status == 403)
    }

    @Test func rawRequestURIIsNormalisedWhenNginxSendsNoURI() {
        var request = FakeRequest.auth("")
        request.params["REQUEST_URI"] = "/api/x/..//%67enerate?q=1"
        #expect(responder.respond(to: request, gate: gate).status == 204)
        #expect(responder.respond(to: request, gate: gate).status == 204)
        #expect(responder.respond(to: request, gate: gate).status == 403)
    }

    @Test func creditsAnswer402AndSubjectsDoNotShare() {
        let a = FakeRequest.auth("/api/paid", subject: "alice")
        #expect(responder.respond(to: a, gate: gate).status == 204)
        #expect(responder.respond(to: a, gate: gate).status == 204)
        let denied = responder.respond(to: a, gate: gate)
        #expect(header(denied, "X-Charge-Status") == "402")
        #expect(
            header(denied, "X-Charge-Body") == #"{"error":"insufficient_credits","poolId":"credits","availableBalance":0,"required":5}"#)
        #expect(header(denied, "X-Charge-Retry-After") == nil)
        #expect(responder.respond(to: FakeRequest.auth("/api/paid", subject: "bob"), gate: gate).status == 204)
    }

    @Test func devBypassNeverDenies() {
        let bypass = Gate(config: Self.config(devBypass: true))
        for _ in 0..<10 {
            #expect(Responder(store: DownStore(), clock: clock).respond(to: FakeRequest.auth("/api/generate"), gate: bypass).status == 204)
        }
    }

    @Test func storeDownFailsClosed() {
        let response = Responder(store: DownStore(), clock: clock).respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(response.status == 403)
        #expect(header(response, "X-Charge-Status") == "503")
        #expect(header(response, "X-Charge-Body") == #"{"error":"service_unavailable"}"#)
        #expect(Responder(store: DownStore(), clock: clock).respond(to: FakeRequest.endpoint("usage"), gate: gate).status == 503)
    }

    @Test(arguments: [nil, "", "bogus"] as [String?])
    func unknownRoleIsDenied(role: String?) {
        var request = FakeRequest.auth("/nothing/charged/here")
        request.params["CHARGE_GATE_ROLE"] = role
        let response = responder.respond(to: request, gate: gate)
        #expect(response.status == 403)
        #expect(header(response, "X-Charge-Status") == "503")
    }
}
