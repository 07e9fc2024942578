import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The store-neutral responder tables (`ResponderScenario`, in the test support target) on the
/// memory store: allow and deny sequences, the endpoints' JSON, idempotent retries, and the
/// tables that move the clock. ChargeGateRedisTests runs `ResponderScenario.bothStores` on the
/// Redis store and compares its answers with these.
@Suite struct ResponderScenarioTests {
    static func check(_ scenario: ResponderScenario) {
        let run = scenario.run(keyPrefix: "charge:") { MemoryStore(clock: $0) }
        for mismatch in run.mismatches { Issue.record("\(mismatch)") }
    }

    @Test(arguments: ResponderScenario.bothStores)
    func onBothStores(_ scenario: ResponderScenario) {
        Self.check(scenario)
    }

    /// Refill timing and the idempotency record's lifetime: these move the manual clock, so
    /// they run here only (the Redis script reads Redis's own clock).
    @Test(arguments: ResponderScenario.memoryOnly)
    func onTheMemoryStoreOnly(_ scenario: ResponderScenario) {
        Self.check(scenario)
    }

    @Test func noTableForBothStoresMovesTheClockAndEveryMemoryOnlyOneDoes() {
        #expect(ResponderScenario.bothStores.allSatisfy { !$0.movesTheClock })
        #expect(ResponderScenario.memoryOnly.allSatisfy { $0.movesTheClock })
        #expect(
            Set((ResponderScenario.bothStores + ResponderScenario.memoryOnly).map(\.name)).count
                == ResponderScenario.bothStores.count + ResponderScenario.memoryOnly.count, "two tables share a name")
    }

    /// What the comparison of two stores ignores: the values of waits and times, never whether
    /// there is one, nor anything else.
    @Test func theMaskHidesOnlyTimes() {
        let denied = MaskedAnswer(
            Response(
                status: 403,
                headers: [
                    ("X-Charge-Status", "429"), ("X-Accel-Expires", "@1700000000"),
                    ("X-Charge-Body", #"{"error":"out_of_charge","retryAfterMs":7198500,"poolId":"p"}"#), ("X-Charge-Retry-After", "7199"),
                    ("X-Charge-RateLimit-Policy", #""p";q=2;w=14400"#), ("X-Charge-RateLimit", #""p";r=0;t=7199, "c";r=5"#),
                ]))
        #expect(
            denied.headers == [
                "X-Charge-Status: 429", "X-Accel-Expires: @*", #"X-Charge-Body: {"error":"out_of_charge","retryAfterMs":*,"poolId":"p"}"#,
                "X-Charge-Retry-After: *", #"X-Charge-RateLimit-Policy: "p";q=2;w=14400"#, #"X-Charge-RateLimit: "p";r=0;t=*, "c";r=5"#,
            ])
        #expect(denied.times.map(\.value) == [1_700_000_000, 7_198_500, 7199, 7199])
        let events = MaskedAnswer(
            Response.json(
                200,
                #"{"events":[{"id":"17-1","time":17,"pool":"1-2x","subject":"s"},{"id":"a-1","time":-3}],"next":"17-1","nextRechargeAt":null}"#
            ))
        #expect(
            events.body
                == #"{"events":[{"id":"*","time":*,"pool":"1-2x","subject":"s"},{"id":"a-1","time":*}],"next":"*","nextRechargeAt":null}"#)
        #expect(events.times.map(\.value) == [17, -3])
        #expect(MaskedAnswer(Response(status: 204, headers: [("X-Accel-Expires", "0")])).headers == ["X-Accel-Expires: 0"])
        // Two answers that differ only in a wait are equal; in anything else they differ.
        func rateLimit(_ state: String) -> MaskedAnswer { MaskedAnswer(Response(status: 204, headers: [("X-Charge-RateLimit", state)])) }
        #expect(rateLimit(#""p";r=1;t=5"#) == rateLimit(#""p";r=1;t=7199"#))
        #expect(rateLimit(#""p";r=1;t=5"#) != rateLimit(#""p";r=0;t=5"#))
        #expect(rateLimit(#""p";r=1;t=5"#) != rateLimit(#""p";r=1"#))
    }
}
