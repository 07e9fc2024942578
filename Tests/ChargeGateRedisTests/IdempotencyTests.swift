import ChargeGateCore
import ChargeGateRedis
import ChargeGateTestSupport
import Testing

extension RedisTests {
    /// The idempotency record in the Lua script against its Swift twin (`IdempotencyRecord`,
    /// run by the memory store): the same requests give the same outcomes and the same spends,
    /// on a real redis-server.
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

        @Test("events written before the upgrade (prefix + events) are read with the new stream, in id order")
        func legacyStreamIsMerged() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let keys = KeySpace(prefix: fixture.prefix)
            let legacy = try #require(keys.legacyEvents(poolIds: ["p"]))
            func add(_ stream: String, _ id: String, _ pool: String) throws {
                _ = try fixture.run(
                    "XADD", stream, id, "pool", pool, "subject", "s", "amount", "1", "route", "/r", "method", "GET", "uri", "/r", "idem",
                    "", "time", String(id.split(separator: "-")[0]))
            }
            try add(legacy, "100-0", "old1")
            try add(legacy, "300-0", "old2")
            try add(keys.events, "200-0", "new1")
            try add(keys.events, "300-0", "new2")  // the same id in both streams
            try add(keys.events, "400-0", "new3")
            var seen: [String] = []
            var query = EventQuery(limit: 2)
            for _ in 0..<10 {
                let page = try store.events(streams: [keys.events, legacy], query)
                seen += page.events.map(\.pool)
                guard let next = page.next else { break }
                query.after = next
            }
            #expect(seen.count == 5)
            #expect(Array(seen.prefix(2)) == ["old1", "new1"])
            #expect(Set(seen[2...3]) == ["old2", "new2"])
            #expect(seen.last == "new3")
        }
    }
}
