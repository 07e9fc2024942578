import ChargeGateCore
import ChargeGateRedis
import ChargeGateTestSupport
import Testing

extension RedisTests {
    /// The idempotency record in the Lua script against its Swift twin (`IdempotencyRecord`,
    /// run by the memory store): the same requests give the same outcomes and the same spends,
    /// on a real redis-server. A repeat or a reused key spends nothing and records no event, a
    /// denied request leaves no record, racing repeats spend once, and the records a subject
    /// creates are bounded. Through the responder: `ResponderScenario.idempotency`
    /// (ResponderScenarioTests.swift).
    @Suite("Idempotency in Redis")
    struct Idempotency {
        /// One step: which request (its fingerprint text) with which key.
        struct Step: Sendable {
            var request: String
            var key: String
        }

        static func kind(_ outcome: SpendOutcome) -> String {
            switch outcome {
            case .allowed(let results): return "allowed \(results.map(\.remaining))"
            case .repeated: return "repeated"
            case .keyReused: return "reused"
            case .holdVoided: return "voided"
            case .outOfCharge: return "out"
            case .insufficientCredits: return "credits"
            }
        }

        /// A pool of 4: fresh, repeats up to 2, then afresh; another request with a used key is
        /// refused; the denial of a key leaves no record.
        static let steps: [Step] = [
            Step(request: "A", key: "k1"), Step(request: "A", key: "k1"), Step(request: "A", key: "k1"),
            Step(request: "A", key: "k1"), Step(request: "B", key: "k1"), Step(request: "B", key: "k2"),
            Step(request: "A", key: "k2"), Step(request: "B", key: "k2"), Step(request: "C", key: "k3"),
            Step(request: "C", key: "k4"), Step(request: "C", key: "k4"), Step(request: "D", key: "k3"),
        ]
        static let expected = [
            "allowed [3]", "repeated", "repeated", "allowed [2]", "reused", "allowed [1]",
            "reused", "repeated", "allowed [0]", "out", "out", "reused",
        ]

        @Test("the script and the memory store decide the same sequence alike")
        func twins() throws {
            let fixture = try RedisFixture()
            let redis = fixture.store()
            let memory = MemoryStore(clock: ManualClock(try fixture.time()))
            let item = SpendItem(poolId: "p", key: fixture.prefix + "p", max: 4, intervalMs: 3_600_000, cost: 1, expires: false)
            for (store, name) in [(redis as ChargeStore, "redis"), (memory, "memory")] {
                var got: [String] = []
                for step in Self.steps {
                    let check = idempotency(fixture.prefix + name, key: step.key, request: step.request, maxRepeats: 2)
                    let request = SpendRequest(
                        items: [SpendItem(poolId: "p", key: item.key + name, max: 4, intervalMs: 3_600_000, cost: 1, expires: false)],
                        idempotency: check, context: context(idem: step.key))
                    got.append(Self.kind(try store.spend(request)))
                }
                #expect(got == Self.expected, "\(name)")
            }
            // The record: fingerprint and repeats, with the TTL kept across repeats.
            let record = try fixture.run("GET", idempotency(fixture.prefix + "redis", key: "k1").key).text
            #expect(record == String(SHA256.hex("A").prefix(32)) + ":2")
            let ttl = try fixture.pttl(idempotency(fixture.prefix + "redis", key: "k1").key)
            #expect(ttl > 50_000 && ttl <= 60_000)
            // k4 was denied: no record.
            #expect(try fixture.run("EXISTS", idempotency(fixture.prefix + "redis", key: "k4").key).integer == 0)
        }

        @Test("a reused key spends nothing and records no event")
        func reusedKeyWritesNothing() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "p", key: fixture.prefix + "p", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            let stream = fixture.prefix + "#events"
            let first = SpendRequest(
                items: [item], idempotency: idempotency(fixture.prefix, key: "K1", request: "/a"), eventsKey: stream, eventsMaxLen: 100,
                context: context(idem: "K1"))
            _ = try store.spend(first)
            for i in 0..<5 {
                let other = SpendRequest(
                    items: [item], idempotency: idempotency(fixture.prefix, key: "K1", request: "/other-\(i)"), eventsKey: stream,
                    eventsMaxLen: 100, context: context(idem: "K1"))
                #expect(Self.kind(try store.spend(other)) == "reused")
            }
            #expect(try store.peek([item.key]).states.first??.current == 4)
            #expect(try fixture.run("XLEN", stream).integer == 1)
        }

        @Test("a subject creates at most maxRecords records per TTL window")
        func recordsAreBoundedPerSubject() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let meter = SpendItem(poolId: "m", key: fixture.prefix + "m:s1", max: nil, intervalMs: nil, cost: 1, expires: false)
            for i in 0..<20 {
                let request = SpendRequest(
                    items: [meter], idempotency: idempotency(fixture.prefix, key: "k\(i)", maxRecords: 7), context: context(idem: "k\(i)"))
                #expect(Self.kind(try store.spend(request)) == "allowed [\(i + 1)]")
            }
            let records = try fixture.run("KEYS", fixture.prefix + "#idem:*").elements?.count
            #expect(records == 7)
            let quota = KeySpace(prefix: fixture.prefix).idempotencyQuota(subject: "s1")
            #expect(try fixture.run("GET", quota).text == "20")
            let ttl = try fixture.pttl(quota)
            #expect(ttl > 50_000 && ttl <= 60_000)
        }

        @Test("a record that is not FINGERPRINT:REPEATS is an error, and nothing is spent")
        func corruptRecord() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "p", key: fixture.prefix + "p", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            let check = idempotency(fixture.prefix, key: "K")
            _ = try fixture.run("SET", check.key, "1763000000000")
            #expect(throws: StoreError.self) { try store.spend(SpendRequest(items: [item], idempotency: check, context: context())) }
            #expect(try fixture.run("EXISTS", item.key).integer == 0)
        }

        @Test("an idempotent repeat is allowed without spending; a denied one is decided afresh")
        func idempotencyRepeat() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            let check = idempotency(fixture.prefix, key: "k1")
            let idem = check.key
            let request = SpendRequest(
                items: [item], idempotency: check,
                eventsKey: fixture.prefix + "events", eventsMaxLen: 1000, context: context(idem: "k1"))
            guard case .allowed = try store.spend(request) else {
                Issue.record("first spend should pass")
                return
            }
            guard case .repeated = try store.spend(request) else {
                Issue.record("the repeat should be .repeated")
                return
            }
            #expect(try store.peek([item.key]).states.first??.current == 4)
            #expect(try fixture.run("XLEN", fixture.prefix + "events").integer == 1, "a repeat recorded an event")
            let ttl = try fixture.pttl(idem)
            #expect(ttl > 55_000 && ttl <= 60_000)

            // A denied request leaves no record: once the pool has charges it is charged.
            let empty = SpendItem(poolId: "b", key: fixture.prefix + "b", max: 1, intervalMs: 3_600_000, cost: 1, expires: false)
            try fixture.setState(empty.key, current: 0, lastUpdatedAt: try fixture.time())
            let check2 = idempotency(fixture.prefix, key: "k2")
            let idem2 = check2.key
            let denied = SpendRequest(items: [empty], idempotency: check2, context: context(idem: "k2"))
            guard case .outOfCharge = try store.spend(denied) else {
                Issue.record("spend on an empty pool should be denied")
                return
            }
            #expect(try fixture.run("EXISTS", idem2).integer == 0)
            _ = try store.topOff(empty, amount: nil)
            guard case .allowed(let results) = try store.spend(denied) else {
                Issue.record("the retry after the top-off should be charged")
                return
            }
            #expect(results.map(\.remaining) == [0])
        }

        @Test("20 threads racing one idempotency key with 19 repeats allowed: exactly one spend")
        func idempotencyRace() throws {
            let fixture = try RedisFixture()
            let url = fixture.url
            let prefix = fixture.prefix
            let item = SpendItem(poolId: "a", key: prefix + "a", max: 100, intervalMs: 3_600_000, cost: 3, expires: false)
            let request = SpendRequest(
                items: [item], idempotency: idempotency(prefix, key: "race", maxRepeats: 19),
                eventsKey: prefix + "events", eventsMaxLen: 1000, context: context(idem: "race"))
            let results = Collector<Result<SpendOutcome, StoreError>>()
            let stores = StoreBox(count: 20, url: url)
            raceThreads(20, prepare: { index in stores.warm(index) }) { index in
                results.append(stores.spend(index, request))
            }
            let outcomes = try results.all.map { try $0.get() }
            #expect(outcomes.count == 20)
            #expect(outcomes.filter { if case .allowed = $0 { return true } else { return false } }.count == 1)
            #expect(outcomes.filter { if case .repeated = $0 { return true } else { return false } }.count == 19)
            #expect(try fixture.store().peek([item.key]).states.first??.current == 97)
            #expect(try fixture.run("XLEN", prefix + "events").integer == 1)
        }
    }
}
