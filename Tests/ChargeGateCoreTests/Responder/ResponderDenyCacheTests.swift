import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The worker's deny cache: floods answered from memory, never an allow, per subject and route,
/// forgotten on reload and top-off, never for routes with credits.
@Suite struct ResponderDenyCacheTests: ResponderSuite {
    let fixture = ResponderFixture()

    @Test func aFloodOnAnEmptyPoolIsAnsweredFromMemory() {
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache(maxAgeMs: 1000))
        for _ in 0..<2 { #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204) }
        let first = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(header(first, "X-Charge-Status") == "429")
        #expect(counting.spends == 3)
        clock.advance(400)
        for _ in 0..<1000 {
            let denied = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
            #expect(header(denied, "X-Charge-Status") == "429")
        }
        #expect(counting.spends == 3)
        let cached = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(
            header(cached, "X-Charge-Body")
                == #"{"error":"out_of_charge","retryAfterMs":\#(2 * Self.hour - 400),"poolId":"generate-image"}"#)
        #expect(cached.note == nil)
        // Trusted for at most a second: then the store is asked again, and its denial's log
        // line accounts for the ones answered from memory.
        clock.advance(600)
        let relearned = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate)
        #expect(counting.spends == 4)
        #expect(relearned.note?.field(.deniedFromMemoryBefore) == "1001")
        #expect(relearned.note?.message == "denied out_of_charge")
        #expect(relearned.note?.field(.pool) == "generate-image")
        #expect(relearned.note?.field(.subject) == "203.0.113.7")
    }

    @Test func theDenyCacheNeverAllowsAndEndsWhenChargesAreBack() {
        var config = Self.config()
        config.pools[0] = PoolConfig(
            id: "generate-image", capacity: .limited(1), recharge: .every(intervalMs: 300), rechargeIntervalHours: 300.0 / 3_600_000)
        let gate = Gate(config: config)
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache(maxAgeMs: 10_000))
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(header(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate), "X-Charge-Status") == "429")
        clock.advance(299)
        #expect(header(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate), "X-Charge-Status") == "429")
        #expect(counting.spends == 2)
        clock.advance(1)
        #expect(responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
        #expect(counting.spends == 3)
    }

    @Test func idempotentRetriesAndOtherSubjectsAlwaysAskTheStore() {
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache())
        let keyed = FakeRequest.auth("/api/read", method: "GET", subject: "alice", headers: ["HTTP_IDEMPOTENCY_KEY": "r1"])
        #expect(responder.respond(to: keyed, gate: gate).status == 204)
        for _ in 0..<2 {
            #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET", subject: "alice"), gate: gate).status == 204)
        }
        #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET", subject: "alice"), gate: gate).status == 403)
        let asked = counting.spends
        // The repeat of an allowed request is still allowed: the cache is not consulted.
        #expect(responder.respond(to: keyed, gate: gate).status == 204)
        #expect(counting.spends == asked + 1)
        // Another subject's bucket is its own: not denied by alice's entry.
        #expect(responder.respond(to: FakeRequest.auth("/api/read", method: "GET", subject: "bob"), gate: gate).status == 204)
    }

    @Test func aReloadForgetsCachedDenials() {
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache())
        for _ in 0..<3 { _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: gate) }
        let reloaded = Gate(config: Self.config())
        _ = responder.respond(to: FakeRequest.auth("/api/generate"), gate: reloaded)
        #expect(counting.spends == 4)
    }

    @Test func aTopOffClearsEveryWorkersCachedDenials() {
        let epoch = DenyEpoch()
        let counting = CountingStore(store)
        let worker1 = Responder(store: counting, clock: clock, denials: DenyCache(epoch: epoch))
        let worker2 = Responder(store: counting, clock: clock, denials: DenyCache(epoch: epoch))
        for _ in 0..<3 { _ = worker1.respond(to: FakeRequest.auth("/api/generate"), gate: gate) }
        #expect(worker1.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 403)
        let topped = worker2.respond(
            to: FakeRequest.endpoint("topoff", method: "POST", token: "s3cret", body: #"{"poolId":"generate-image"}"#), gate: gate)
        #expect(topped.status == 200)
        #expect(worker1.respond(to: FakeRequest.auth("/api/generate"), gate: gate).status == 204)
    }

    @Test func routesWithCreditsAlwaysAskTheStoreSoA402CanWin() {
        // /api/paid spends api-calls (3 per 36 s, per subject) and credits (10, cost 5).
        let counting = CountingStore(store)
        let responder = Responder(store: counting, clock: clock, denials: DenyCache())
        let paid = FakeRequest.auth("/api/paid", subject: "carol")
        let read = FakeRequest.auth("/api/read", method: "GET", subject: "carol")
        #expect(responder.respond(to: paid, gate: gate).status == 204)
        for _ in 0..<2 { #expect(responder.respond(to: read, gate: gate).status == 204) }
        #expect(header(responder.respond(to: paid, gate: gate), "X-Charge-Status") == "429")
        // Credits drop from 5 to 0 by a spend elsewhere: the next answer must be the 402.
        _ = try? store.topOff(gate.item(pool: 2, cost: 0, subject: "carol"), amount: nil)
        let asked = counting.spends
        #expect(header(responder.respond(to: paid, gate: gate), "X-Charge-Status") == "429")
        #expect(counting.spends == asked + 1)
    }
}
