import ChargeGateCore
import ChargeGateRedis
import Foundation
import ChargeGateTestSupport
import Testing

extension RedisTests {
    /// The Redis store's contract beyond the shared table: races, expiry, the key format, script
    /// caching, top-off, peek and the event log (the legacy stream included). Idempotency is in
    /// IdempotencyTests.swift.
    @Suite("Redis store")
    struct Store {
        // MARK: Key format and expiry

        @Test("the key holds exactly {\"current\":N,\"lastUpdatedAt\":MS}")
        func keyFormat() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 3_600_000, cost: 2, expires: false)
            let result = try store.charge(SpendRequest(items: [item], context: context()))
            guard case .allowed(let results) = result.outcome else {
                Issue.record("spend should pass")
                return
            }
            #expect(results.map(\.remaining) == [3])
            #expect(try fixture.get(item.key) == #"{"current":3,"lastUpdatedAt":\#(result.now)}"#)
            #expect(try fixture.pttl(item.key) == -1, "a global pool never expires")
        }

        @Test("a per-subject key expires when its pool would be full again")
        func perSubjectTTL() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            // From full: 3 charges missing at 10 s each.
            let fresh = SpendItem(poolId: "a", key: fixture.prefix + "a:s1", max: 5, intervalMs: 10_000, cost: 3, expires: true)
            var t0 = try fixture.time()
            _ = try store.spend(SpendRequest(items: [fresh], context: context()))
            var ttl = try fixture.pttl(fresh.key)
            var elapsed = try fixture.time() - t0
            #expect(ttl <= 30_000 && ttl >= 30_000 - elapsed - 1, "PTTL \(ttl)")

            // Partial progress: {1, t0-2500} at 1 s: earns 2, spends 1 -> {2, t0-500}; full at
            // t0-500 + 3 s.
            let partial = SpendItem(poolId: "b", key: fixture.prefix + "b:s1", max: 5, intervalMs: 1000, cost: 1, expires: true)
            t0 = try fixture.time()
            try fixture.setState(partial.key, current: 1, lastUpdatedAt: t0 - 2500)
            _ = try store.spend(SpendRequest(items: [partial], context: context()))
            ttl = try fixture.pttl(partial.key)
            elapsed = try fixture.time() - t0
            #expect(ttl <= 2500 && ttl >= 2500 - elapsed - 1, "PTTL \(ttl)")
            #expect(try store.peek([partial.key]).states == [BucketState(current: 2, lastUpdatedAt: t0 - 500)])

            // An unlimited per-subject meter never expires.
            let meter = SpendItem(poolId: "m", key: fixture.prefix + "m:s1", max: nil, intervalMs: nil, cost: 1, expires: true)
            _ = try store.spend(SpendRequest(items: [meter], context: context()))
            #expect(try fixture.pttl(meter.key) == -1)

            // The memory store's twin: present 1 ms before the TTL, gone at it.
            let clock = ManualClock(1_763_000_000_000)
            let memory = MemoryStore(clock: clock)
            _ = try memory.spend(SpendRequest(items: [fresh], context: context()))
            clock.advance(29_999)
            #expect(try memory.peek([fresh.key]).states[0] != nil)
            clock.advance(1)
            #expect(try memory.peek([fresh.key]).states[0] == nil)
        }

        @Test("a corrupt key is a protocol error naming the key, and nothing is written")
        func corruptKey() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let good = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 60_000, cost: 1, expires: false)
            let bad = SpendItem(poolId: "b", key: fixture.prefix + "b", max: 5, intervalMs: 60_000, cost: 1, expires: false)
            for garbage in [
                "not json", #"{"current":1.5,"lastUpdatedAt":1}"#, #"{"current":1}"#, "[1,2]", #"{"current":"1","lastUpdatedAt":1}"#,
            ] {
                try fixture.run("SET", bad.key, garbage)
                do {
                    _ = try store.spend(SpendRequest(items: [good, bad], context: context()))
                    Issue.record("spend accepted \(garbage)")
                } catch {
                    guard case .protocolError(let text) = error else {
                        Issue.record("expected protocolError, got \(error)")
                        continue
                    }
                    #expect(text.contains(bad.key))
                }
                #expect(try fixture.get(good.key) == nil, "a failed spend wrote another pool")
                #expect(throws: StoreError.self) { try store.peek([good.key, bad.key]) }
                #expect(throws: StoreError.self) { try store.topOff(bad, amount: 1) }
            }
            // A key of the wrong type is an error too, and the connection stays usable.
            try fixture.run("DEL", bad.key)
            try fixture.run("RPUSH", bad.key, "x")
            #expect(throws: StoreError.self) { try store.spend(SpendRequest(items: [bad], context: context())) }
            #expect(try store.peek([good.key]).states == [nil])
        }

        // MARK: Races

        @Test("200 concurrent spends from 8 connections on a pool of 50: exactly 50 pass")
        func concurrentSpends() throws {
            let fixture = try RedisFixture()
            let url = fixture.url
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 50, intervalMs: 3_600_000, cost: 1, expires: false)
            let request = SpendRequest(items: [item], context: context())
            let results = Collector<Result<SpendOutcome, StoreError>>()
            let stores = StoreBox(count: 8, url: url)
            raceThreads(8, prepare: { index in stores.warm(index) }) { index in
                for _ in 0..<25 { results.append(stores.spend(index, request)) }
            }
            let outcomes = try results.all.map { try $0.get() }
            #expect(outcomes.count == 200)
            let allowed = outcomes.compactMap { outcome -> Int64? in
                if case .allowed(let results) = outcome { return results[0].remaining }
                return nil
            }
            #expect(allowed.count == 50)
            #expect(Set(allowed) == Set(0..<50), "each remaining count is reported exactly once")
            #expect(
                outcomes.allSatisfy {
                    if case .allowed = $0 { return true } else if case .outOfCharge(0, _) = $0 { return true } else { return false }
                })
            #expect(try fixture.store().peek([item.key]).states.first??.current == 0)
        }

        // MARK: Script cache

        @Test("the script's SHA-1 is the one Redis computes, and NOSCRIPT after SCRIPT FLUSH recovers")
        func noscript() throws {
            let fixture = try RedisFixture()
            #expect(try fixture.run("SCRIPT", "LOAD", ChargeScript.source).text == ChargeScript.sha1)
            let store = fixture.store()
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 60_000, cost: 1, expires: false)
            let request = SpendRequest(items: [item], context: context())
            _ = try store.spend(request)
            try fixture.run("SCRIPT", "FLUSH")
            #expect(try fixture.run("SCRIPT", "EXISTS", ChargeScript.sha1).elements == [.integer(0)])
            guard case .allowed(let results) = try store.spend(request) else {
                Issue.record("spend after SCRIPT FLUSH should pass")
                return
            }
            #expect(results.map(\.remaining) == [3], "spent exactly once per call")
            #expect(try fixture.run("SCRIPT", "EXISTS", ChargeScript.sha1).elements == [.integer(1)])
            // peek and top-off go through the same script.
            try fixture.run("SCRIPT", "FLUSH")
            #expect(try store.peek([item.key]).states.first??.current == 3)
            try fixture.run("SCRIPT", "FLUSH")
            #expect(try store.topOff(item, amount: 1).state.current == 4)
        }

        // MARK: Top-off and peek

        @Test("top-off fills or adds capped at max, like Bucket.topOff; a full per-subject key is deleted")
        func topOff() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 60_000, cost: 1, expires: false)
            var t0 = try fixture.time()
            try fixture.setState(item.key, current: 1, lastUpdatedAt: t0 - 5000)
            var result = try store.topOff(item, amount: 2)
            #expect(result.state == BucketState(current: 3, lastUpdatedAt: t0 - 5000))
            result = try store.topOff(item, amount: 10)
            #expect(result.state == BucketState(current: 5, lastUpdatedAt: result.now))
            try fixture.setState(item.key, current: 0, lastUpdatedAt: t0)
            result = try store.topOff(item, amount: nil)
            #expect(result.state == BucketState(current: 5, lastUpdatedAt: result.now))
            #expect(try fixture.get(item.key) == #"{"current":5,"lastUpdatedAt":\#(result.now)}"#)

            // Per subject: a partial top-off expires when full again; a fill removes the key.
            let subject = SpendItem(poolId: "b", key: fixture.prefix + "b:s1", max: 5, intervalMs: 10_000, cost: 1, expires: true)
            t0 = try fixture.time()
            try fixture.setState(subject.key, current: 0, lastUpdatedAt: t0 - 1000)
            result = try store.topOff(subject, amount: 2)
            #expect(result.state == BucketState(current: 2, lastUpdatedAt: t0 - 1000))
            let ttl = try fixture.pttl(subject.key)
            let want = t0 - 1000 + 3 * 10_000 - result.now
            #expect(ttl <= want && ttl >= want - 5, "PTTL \(ttl), want \(want)")
            result = try store.topOff(subject, amount: nil)
            #expect(result.state.current == 5)
            #expect(try fixture.run("EXISTS", subject.key).integer == 0)

            // Same answers from the memory store.
            let clock = ManualClock(t0)
            let memory = MemoryStore(clock: clock)
            let memoryFill = try memory.topOff(subject, amount: nil)
            #expect(memoryFill.state == BucketState(current: 5, lastUpdatedAt: t0))
            #expect(try memory.peek([subject.key]).states == [nil])
        }

        @Test("peek reads states and Redis's clock without writing")
        func peek() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let t0 = try fixture.time()
            try fixture.setState(fixture.prefix + "a", current: 2, lastUpdatedAt: t0 - 10)
            let result = try store.peek([fixture.prefix + "missing", fixture.prefix + "a"])
            let t1 = try fixture.time()
            #expect(result.now >= t0 && result.now <= t1)
            #expect(result.states == [nil, BucketState(current: 2, lastUpdatedAt: t0 - 10)])
            #expect(try fixture.run("EXISTS", fixture.prefix + "missing").integer == 0)
            #expect(try store.peek([]).states.isEmpty)
        }

        @Test("a database number in the URL is selected")
        func selectsDatabase() throws {
            let fixture = try RedisFixture()
            var url = fixture.url
            url.db = 3
            let store = RedisStore(url: url, timeoutMs: TestRedis.timeoutMs)
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 60_000, cost: 1, expires: false)
            _ = try store.spend(SpendRequest(items: [item], context: context()))
            #expect(try fixture.get(item.key) == nil, "written to db 0")
            var db3 = fixture.url
            db3.db = 3
            let other = RedisConnection(url: db3, timeoutMs: TestRedis.timeoutMs)
            #expect(try other.command(["GET", item.key]).text != nil)
            _ = try other.command(["DEL", item.key])
        }

        // MARK: Events

        @Test("every spend appends one event per pool; paging returns each exactly once, like the memory store")
        func events() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let clock = ManualClock(1_763_000_000_000)
            let memory = MemoryStore(clock: clock)
            let stream = fixture.prefix + "events"
            let a = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 1000, intervalMs: 60_000, cost: 1, expires: false)
            let b = SpendItem(poolId: "b", key: fixture.prefix + "b", max: 1000, intervalMs: 60_000, cost: 2, expires: false)
            var spends = 0
            let denied = SpendItem(poolId: "z", key: fixture.prefix + "z", max: 1, intervalMs: 60_000, cost: 5, expires: false)
            for index in 0..<13 {
                let items = index % 3 == 0 ? [a] : [a, b]
                let request = SpendRequest(
                    items: items, eventsKey: stream, eventsMaxLen: 10_000,
                    context: context(subject: index % 2 == 0 ? "s1" : "s2", idem: "i\(index)"))
                _ = try store.spend(request)
                _ = try memory.spend(request)
                clock.advance(1)
                spends += items.count
                // A denial records nothing.
                let no = SpendRequest(items: [denied], eventsKey: stream, eventsMaxLen: 10_000, context: context())
                _ = try store.spend(no)
                _ = try memory.spend(no)
            }
            #expect(try fixture.run("XLEN", stream).integer == Int64(spends))

            func pages(_ query: EventQuery, _ source: ChargeStore) throws -> [[UsageEvent]] {
                var result: [[UsageEvent]] = []
                var query = query
                for _ in 0..<100 {
                    let page = try source.events(stream: stream, query)
                    result.append(page.events)
                    guard let next = page.next else { return result }
                    query.after = next
                }
                Issue.record("paging did not end")
                return result
            }
            func strip(_ events: [UsageEvent]) -> [String] {
                events.map {
                    "\($0.pool) \($0.amount) \($0.context.subject) \($0.context.route) \($0.context.method) \($0.context.uri) \($0.context.idempotencyKey)"
                }
            }

            let everything = try pages(EventQuery(limit: 1000), store).flatMap { $0 }
            #expect(everything.count == spends)
            #expect(Set(everything.map(\.id)).count == spends)
            let ids = everything.compactMap { EventID($0.id) }
            #expect(ids.count == everything.count)
            #expect(zip(ids, ids.dropFirst()).allSatisfy { pair in pair.0 < pair.1 }, "ids increase")

            for query in [
                EventQuery(limit: 3), EventQuery(limit: 1), EventQuery(pool: "b", limit: 2), EventQuery(subject: "s2", limit: 4),
                EventQuery(pool: "a", subject: "s1", limit: 5), EventQuery(limit: spends), EventQuery(pool: "nope", limit: 3),
                EventQuery(limit: Int.max),
            ] {
                let redisPages = try pages(query, store)
                let memoryPages = try pages(query, memory)
                #expect(redisPages.map(strip) == memoryPages.map(strip), "query \(query)")
                let flat = redisPages.flatMap { $0 }
                #expect(Set(flat.map(\.id)).count == flat.count, "an event came twice")
                let want = everything.filter { event in
                    (query.pool.map { $0 == event.pool } ?? true) && (query.subject.map { $0 == event.context.subject } ?? true)
                }
                #expect(flat == want)
            }

            // since / until bound by the event's time.
            let middle = everything[everything.count / 2].time
            let since = try pages(EventQuery(since: middle, limit: 4), store).flatMap { $0 }
            #expect(since == everything.filter { $0.time >= middle })
            let until = try pages(EventQuery(until: middle, limit: 4), store).flatMap { $0 }
            #expect(until == everything.filter { $0.time <= middle })
            #expect(try store.events(stream: fixture.prefix + "no-stream", EventQuery()) == EventPage(events: [], next: nil))
            let pastTheEnd = EventQuery(after: "\(Int64.max)-\(Int64.max)", limit: 5)
            #expect(try store.events(stream: stream, pastTheEnd) == EventPage(events: [], next: nil))
            #expect(try store.events(stream: stream, EventQuery(limit: 0)).events.isEmpty)

            // The recorded fields.
            let first = try #require(everything.first)
            #expect(first.pool == "a" && first.amount == 1)
            #expect(first.context == context(subject: "s1", idem: "i0"))
            #expect(EventID(first.id)?.ms ?? 0 >= first.time)
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
