import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The RateLimit-Policy and RateLimit values carried to the snippets.
@Suite struct ResponderRateLimitTests: ResponderSuite {
    let fixture = ResponderFixture()

    @Test func allowedAnswersCarryTheRateLimitState() {
        let first = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(first, "X-Charge-RateLimit-Policy") == #""generate-image";q=2;w=14400"#)
        #expect(header(first, "X-Charge-RateLimit") == #""generate-image";r=1;t=7200"#)
        clock.advance(1500)
        let second = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        // The first charge comes back 2 h after the first spend: 7200 s - 1.5 s, rounded up.
        #expect(header(second, "X-Charge-RateLimit") == #""generate-image";r=0;t=7199"#)
        let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(denied, "X-Charge-RateLimit-Policy") == #""generate-image";q=2;w=14400"#)
        #expect(header(denied, "X-Charge-RateLimit") == #""generate-image";r=0;t=7199"#)
    }

    @Test func creditsHaveNoWindowAndMetersAreNotListed() {
        let paid = FakeRequest.auth("/api/paid", subject: "dave")
        let allowed = responder.respond(to: paid, gate: gate)
        #expect(header(allowed, "X-Charge-RateLimit-Policy") == #""api-calls";q=3;w=108, "credits";q=10"#)
        #expect(header(allowed, "X-Charge-RateLimit") == #""api-calls";r=2;t=36, "credits";r=5"#)
        _ = responder.respond(to: paid, gate: gate)
        let denied = responder.respond(to: paid, gate: gate)
        #expect(header(denied, "X-Charge-Status") == "402")
        #expect(header(denied, "X-Charge-RateLimit") == #""credits";r=0"#)
    }
}
