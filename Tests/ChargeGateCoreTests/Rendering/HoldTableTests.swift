import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateCore

/// The open holds `charge-gate status` lists under the pools' table.
@Suite struct HoldTableTests {
    static let now: Int64 = 1_700_000_000_000
    static let hour: Int64 = 3_600_000

    // MARK: Open holds

    static func hold(_ id: String, subject: String, age: Int64, items: [(String, Int64)]) -> HoldRecord {
        HoldRecord(
            id: id, createdAt: now - age, expiresAt: now - age + hour, policy: SettlePolicy(),
            context: EventContext(subject: subject, route: "/api/chat", method: "POST", uri: "/api/chat", idempotencyKey: ""),
            items: items.map {
                .init(
                    spend: SpendItem(poolId: $0.0, key: "k", max: 10, intervalMs: nil, cost: $0.1, expires: true), held: $0.1, metered: true
                )
            })
    }

    @Test func openHoldsAreCountedAndTheOldestListed() {
        let holds = [
            Self.hold("4f6c0d1e", subject: "key_live_42", age: 125_000, items: [("credits", 4000), ("calls", 1)]),
            Self.hold("9a", subject: "bo\u{1B}b", age: 30_000, items: [("credits", 4000)]),
            Self.hold("9b", subject: "carol", age: 1_000, items: [("credits", 4000)]),
        ]
        #expect(
            HoldTable.render(holds, shown: 2, now: Self.now) == """
                open holds: 3 (the oldest 2)
                HOLD      SUBJECT      ROUTE      AGE  SETTLE WITHIN  HELD
                4f6c0d1e  key_live_42  /api/chat  3m   58m            credits 4000, calls 1
                9a        bo?b         /api/chat  30s  1h             credits 4000

                """)
        #expect(HoldTable.render(holds, shown: 5, now: Self.now).hasPrefix("open holds: 3\nHOLD"))
        #expect(HoldTable.render([], shown: 5, now: Self.now) == "open holds: 0\n")
        #expect(HoldTable.render(holds, shown: 0, now: Self.now) == "open holds: 3 (the oldest 0)\n")
        let many = Array(repeating: holds[0], count: HoldTable.countLimit)
        #expect(HoldTable.render(many, shown: 1, now: Self.now).hasPrefix("open holds: 10000 or more (the oldest 1)\n"))
    }

    @Test func theMemoryStoreListsOpenHoldsOldestFirst() throws {
        let clock = ManualClock(Self.now)
        let store = MemoryStore(clock: clock)
        var config = GateConfig()
        config.pools = [PoolConfig(id: "credits", capacity: .limited(100), recharge: .none, scope: .subject)]
        config.routes = [RouteConfig(prefix: "/api/f", charges: [.init(poolIndex: 0, cost: 10)], settle: SettlePolicy(by: .app), cost: 10)]
        let gate = Gate(config: config)
        let responder = Responder(store: store, clock: clock)
        for id in ["a1", "a2", "a3"] {
            _ = responder.respond(to: FakeRequest.auth("/api/f", subject: "s", headers: [WireProtocol.Param.requestID: id]), gate: gate)
            clock.advance(60_000)
        }
        _ = try store.settle(SettleRequest(key: gate.keys.hold(id: "a1"), id: "a1", report: .app(amount: nil)))
        _ = try store.settle(SettleRequest(key: gate.keys.hold(id: "a2"), id: "a2", report: .app(amount: 1)))
        let open = try store.openHolds(prefix: gate.keys.holdPrefix, limit: HoldTable.countLimit)
        #expect(open.holds.map(\.id) == ["a3"])
        #expect(HoldTable.render(open.holds, shown: 5, now: open.now).contains("a3    s        /api/f  1m   59m            credits 10"))
    }
}
