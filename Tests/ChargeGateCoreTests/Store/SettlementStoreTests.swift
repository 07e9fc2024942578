import ChargeGateCore
import ChargeGateTestSupport
import Testing

/// The memory store's settlement (`MemoryStore.settle`, the reference) over the shared tables
/// (`SettleTables`): the Redis store runs the same rows in `SettleScriptTests`, so a rule that
/// differs between the two fails one of them.
@Suite struct SettlementStoreTests {
    /// The memory store on a `ManualClock`, which moves a second before each step (so that a
    /// spend's stamp and a settlement's differ) and past a window or a period when a row says.
    final class MemoryDriver: SettleTables.Driver {
        let clock = ManualClock()
        let store: any ChargeStore
        let prefix = "m:"

        init() { store = MemoryStore(clock: clock) }

        func now() -> Int64 { clock.nowMs() }
        func step() { clock.advance(1000) }
        func endWindow(holdKey: String, windowMs: Int64) { clock.advance(windowMs) }
        func advance(_ ms: Int64) { clock.advance(ms) }

        /// Moves the clock to just before and to the expiry, then back.
        func check(_ expected: SettleTables.ExpiryAt, key: String) throws -> String? {
            let saved = clock.nowMs()
            defer { clock.set(saved) }
            func present(at time: Int64) throws -> Bool {
                clock.set(time)
                return try store.peek([key]).states[0] != nil
            }
            switch expected {
            case .removed:
                return try present(at: saved) ? "the key is still there" : nil
            case .never:
                return try present(at: saved + 10 * 365 * 86_400_000) ? nil : "the key expired"
            case .at(let time):
                guard time > saved else { return "expires at \(time), before now (\(saved))" }
                if try !present(at: time - 1) { return "gone before \(time)" }
                return try present(at: time) ? "still there at \(time)" : nil
            }
        }
    }

    @Test(arguments: SettleTables.all)
    func row(_ row: SettleTables.Case) throws {
        let failures = try SettleTables.run(row, on: MemoryDriver())
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    @Test func theTablesCoverEveryOutcome() {
        var labels: Set<String> = []
        for row in SettleTables.all {
            for step in row.steps {
                if case .settle(_, _, let expect) = step { labels.insert(expect.label) }
            }
        }
        #expect(labels == ["refund", "amount", "overage", "stands", "bad_amount", "unknown", "voided", "expired", "duplicate", "ignored"])
    }

    @Test("open holds: oldest first, bounded, none settled or past its window, under the prefix only")
    func openHolds() throws {
        let clock = ManualClock()
        let store = MemoryStore(clock: clock)
        let keys = KeySpace(prefix: "m:")
        let item = SpendItem(poolId: "p", key: "m:p", max: nil, intervalMs: nil, cost: 1, expires: false)
        func spend(_ id: String, prefix: KeySpace = keys) throws {
            clock.advance(1000)
            let hold = HoldRequest(key: prefix.hold(id: id), id: id, policy: SettlePolicy(), metered: [true], windowMs: 60_000)
            _ = try store.charge(
                SpendRequest(
                    items: [item], context: EventContext(subject: "s", route: "/", method: "GET", uri: "/", idempotencyKey: ""), hold: hold)
            )
        }
        for id in ["a", "b", "c", "d"] { try spend(id) }
        try spend("other", prefix: KeySpace(prefix: "n:"))
        _ = try store.settle(SettleRequest(key: keys.hold(id: "b"), id: "b", report: .app(amount: 1)))
        #expect(try store.openHolds(prefix: keys.holdPrefix, limit: 10).holds.map(\.id) == ["a", "c", "d"])
        #expect(try store.openHolds(prefix: keys.holdPrefix, limit: 2).holds.map(\.id) == ["a", "c"])
        clock.advance(57_500)  // now 62.5 s: a's window ended at 61 s, c's ends at 63 s
        #expect(try store.openHolds(prefix: keys.holdPrefix, limit: 10).holds.map(\.id) == ["c", "d"])
    }
}
