import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The responder's arithmetic on what a store answers is overflow-safe on its own (the Redis
/// store also refuses such replies): a wait near `Int64.max` or below 0, charges and times at
/// the ends of `Int64`, give an answer, never a trap.
@Suite struct ResponderStoreAnswerTests {
    static let now: Int64 = 1_700_000_000_000

    static func gate() -> Gate {
        var config = GateConfig()
        config.edgeDenySeconds = 5
        config.pools = [
            PoolConfig(id: "p", capacity: .limited(5), recharge: .every(intervalMs: 3_600_000), rechargeIntervalHours: 1)
        ]
        config.routes = [RouteConfig(prefix: "/api", charges: [.init(poolIndex: 0, cost: 1)])]
        return Gate(config: config)
    }

    static func ask(_ outcome: SpendOutcome, storeNow: Int64 = now, clock: Int64 = now) -> Response {
        let responder = Responder(store: AnsweringStore(.success(outcome), now: storeNow), clock: ManualClock(clock), denials: DenyCache())
        return responder.respond(to: FakeRequest.auth("/api/x"), gate: gate())
    }

    static func header(_ response: Response, _ name: String) -> String? {
        response.headers.first { $0.name == name }?.value
    }

    @Test(
        arguments: [
            (Int64.max, "9223372036854776", "@\(now / 1000 + 4)"),
            (Int64.max - 500, "9223372036854776", "@\(now / 1000 + 4)"),
            (9_223_372_036_854_775_000, "9223372036854775", "@\(now / 1000 + 4)"),
            (-5, "0", "0"),
            (Int64.min, "0", "0"),
        ] as [(Int64, String, String)])
    func aWaitAtTheEndsOfInt64(wait: Int64, retryAfter: String, edge: String) {
        let response = Self.ask(.outOfCharge(item: 0, retryAfterMs: wait))
        #expect(Self.header(response, "X-Charge-Status") == "429")
        #expect(Self.header(response, "X-Charge-Retry-After") == retryAfter)
        #expect(Self.header(response, "X-Charge-Body") == #"{"error":"out_of_charge","retryAfterMs":\#(max(0, wait)),"poolId":"p"}"#)
        #expect(Self.header(response, "X-Accel-Expires") == edge)
    }

    @Test(
        arguments: [
            (Int64.max, Int64?.some(Int64.max)), (Int64.min, Int64?.some(Int64.min)), (-3, Int64?.some(now + 3_600_000)),
            (2, Int64?.some(Int64.max)), (2, Int64?.some(Int64.min)), (2, Int64?.none),
        ] as [(Int64, Int64?)])
    func chargesAndTimesAtTheEndsOfInt64(remaining: Int64, fullAt: Int64?) {
        let response = Self.ask(.allowed([ItemResult(remaining: remaining, fullAt: fullAt)]))
        #expect(response.status == 204)
        #expect(Self.header(response, "X-Charge-RateLimit")?.hasPrefix(#""p";r=\#(remaining)"#) == true)
    }

    @Test func theDenyCacheHoldsAWaitNearInt64MaxAtTheEndOfTime() {
        let cache = DenyCache(maxAgeMs: .max)
        cache.remember("k", poolId: "p", retryAfterMs: .max, now: Self.now)
        #expect(cache.denial(for: "k", now: Self.now)?.retryAfterMs == .max - Self.now)
        #expect(cache.denial(for: "k", now: .max) == nil)
    }

    @Test(
        arguments: [
            (Int64.max, 9_223_372_036_854_776), (1, 1), (999, 1), (1000, 1), (1001, 2), (0, 0), (-1, 0), (Int64.min, 0),
        ] as [(Int64, Int64)])
    func secondsRoundUpWithoutOverflow(ms: Int64, seconds: Int64) {
        #expect(Gate.seconds(ms) == seconds)
    }
}
