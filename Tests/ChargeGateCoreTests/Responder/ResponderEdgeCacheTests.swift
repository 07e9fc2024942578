import ChargeGateTestSupport
import Testing

@testable import ChargeGateCore

/// `X-Accel-Expires: @T` on the 429s nginx may answer from its own cache, and `0` (never cache)
/// on every other auth answer, which outranks a `fastcgi_cache_valid` inherited by the auth location.
@Suite struct ResponderEdgeCacheTests: ResponderSuite {
    let fixture = ResponderFixture()

    func edge(_ response: Response) -> String? { header(response, "X-Accel-Expires") }

    func drainGenerate(_ gate: Gate) {
        for _ in 0..<2 { #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204) }
    }

    @Test func a429IsMarkedForAtMostEdgeDenySecondsFromTheStoreAndFromMemory() {
        clock.advance(250)  // 0.25 s into a second: T is counted in whole seconds from now
        drainGenerate(gate)
        let nowSeconds = clock.nowMs() / 1000
        let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(denied, "X-Charge-Status") == "429")
        #expect(edge(denied) == "@\(nowSeconds)", "valid to the end of this second: at most 1 s")
        let fromMemory = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(
            fromMemory.outcome
                == .denied(.outOfCharge(pool: "generate-image", retryAfterMs: 2 * Self.hour), pools: ["generate-image"], fromMemory: true))
        #expect(edge(fromMemory) == "@\(nowSeconds)")
    }

    @Test(arguments: [0, 1, 30])
    func theBoundIsEdgeDenySeconds(seconds: Int) {
        var config = ResponderFixture.config()
        config.edgeDenySeconds = seconds
        let gate = Gate(config: config)
        drainGenerate(gate)
        let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(denied, "X-Charge-Status") == "429")
        #expect(edge(denied) == (seconds == 0 ? "0" : "@\(clock.nowMs() / 1000 + Int64(seconds) - 1)"))
    }

    @Test func neverPastThePoolsNextCharge() {
        // api-calls: 3 charges, one back every 36 s. Spent at .250 of a second, the next charge
        // comes at .250 too, 36 s later: the cached denial may live to the end of the second
        // before it, never into the second in which the request passes again.
        var config = ResponderFixture.config()
        config.edgeDenySeconds = 3600
        let gate = Gate(config: config)
        clock.advance(250)
        let start = clock.nowMs()
        for _ in 0..<3 { #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET"), gate: gate).status == 204) }
        let denied = responder.respond(to: FakeRequest.auth("/api/read", method: "GET"), gate: gate)
        #expect(edge(denied) == "@\((start + 36_000) / 1000 - 1)")
        clock.advance(36_000 - 250)  // the second the charge comes back in
        let last = responder.respond(to: FakeRequest.auth("/api/read", method: "GET"), gate: gate)
        #expect(header(last, "X-Charge-Status") == "429")
        #expect(edge(last) == "0", "the charge comes back within this second: nothing to cache")
    }

    @Test func neverOnAllowsCreditsUnavailableOrRequestsWithTheIdempotencyHeader() {
        #expect(edge(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)) == "0")
        // A route with a credits pool: its 402 and its 429 alike.
        for _ in 0..<2 { _ = responder.respond(to: FakeRequest.auth("/api/paid", subject: "c"), gate: gate) }
        let credits = responder.respond(to: FakeRequest.auth("/api/paid", subject: "c"), gate: gate)
        #expect(header(credits, "X-Charge-Status") == "402")
        #expect(edge(credits) == "0")
        let down = Responder(store: DownStore(), clock: clock).respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(down, "X-Charge-Status") == "503")
        #expect(edge(down) == "0")
        // The header on a route that ignores it (PUT /api/read) still keeps nginx's cache out.
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        let keyed = FakeRequest.auth("/api/read", method: "PUT", headers: ["HTTP_IDEMPOTENCY_KEY": "k"])
        let denied = responder.respond(to: keyed, gate: gate)
        #expect(header(denied, "X-Charge-Status") == "429")
        #expect(edge(denied) == "0")
        #expect(edge(responder.respond(to: FakeRequest.auth("/api/read", method: "PUT"), gate: gate))?.hasPrefix("@") == true)
    }

    @Test func unroutedPassesAndUnknownRolesAreNeverCacheableEither() {
        let unrouted = responder.respond(to: FakeRequest.auth("/nowhere"), gate: gate)
        #expect(unrouted.status == 204)
        #expect(edge(unrouted) == "0")
        #expect(edge(responder.respond(to: FakeRequest(params: [:]), gate: gate)) == "0")
    }
}
