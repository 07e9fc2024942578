import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// The memory store's event log is bounded by bytes as well as by count, oldest first.
@Suite struct MemoryStoreTests {
    static let item = SpendItem(poolId: "meter", key: "charge:meter:s", max: nil, intervalMs: nil, cost: 1, expires: true)

    static func context(_ i: Int, uriBytes: Int) -> EventContext {
        EventContext(
            subject: "s", route: "/api/x", method: "POST", uri: "/api/x/" + String(repeating: "u", count: uriBytes) + "\(i)",
            idempotencyKey: "")
    }

    func all(_ store: MemoryStore) throws -> [UsageEvent] {
        try store.events(stream: "e", EventQuery(limit: 1_000_000)).events
    }

    @Test(arguments: [10, 200, 3000])
    func theLogKeepsTheNewestEventsWithinItsByteBound(uriBytes: Int) throws {
        let clock = ManualClock()
        let maxBytes = 20_000
        let store = MemoryStore(clock: clock, eventsMaxBytes: maxBytes)
        for i in 0..<500 {
            _ = try store.spend(
                SpendRequest(items: [Self.item], eventsKey: "e", eventsMaxLen: 1_000_000, context: Self.context(i, uriBytes: uriBytes)))
            clock.advance(1)
            let bytes = try all(store).reduce(0) { $0 + MemoryStore.size(of: $1) }
            #expect(bytes <= maxBytes + maxBytes / 8, "after \(i)")
        }
        let kept = try all(store)
        #expect(!kept.isEmpty)
        #expect(kept.last?.context.uri.hasSuffix("499") == true, "the newest event is kept")
        let ids = kept.compactMap { EventID($0.id) }
        #expect(ids == ids.sorted() && ids.count == kept.count)
        // The newest events, with no gap: trimming only drops the oldest.
        #expect(kept.first.map { Int($0.context.uri.dropFirst(7 + uriBytes)) ?? -1 } == 500 - kept.count)
    }

    @Test func theCountBoundStillHolds() throws {
        let clock = ManualClock()
        let store = MemoryStore(clock: clock)
        for i in 0..<100 {
            _ = try store.spend(SpendRequest(items: [Self.item], eventsKey: "e", eventsMaxLen: 16, context: Self.context(i, uriBytes: 1)))
            clock.advance(1)
        }
        #expect(try all(store).count <= 16 + 16 / 8 + 1)
    }

    @Test func aZeroByteBoundKeepsNoEvents() throws {
        let store = MemoryStore(clock: ManualClock(), eventsMaxBytes: 0)
        for i in 0..<5 {
            _ = try store.spend(SpendRequest(items: [Self.item], eventsKey: "e", eventsMaxLen: 100, context: Self.context(i, uriBytes: 1)))
        }
        #expect(try all(store).isEmpty)
    }
}
