import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// The Redis store on a real redis-server as the twin of the memory store's settlement: the
/// shared tables (`SettleTables`, which `SettlementStoreTests` runs on the memory store), the
/// hold record the spend script writes against `HoldRecord.opened`, and `settle_item` against
/// `Bucket.settle` over random pools, plans, stored states and differences.
extension RedisTests {
    @Suite("Settlement in the script")
    struct SettleInScript {
        /// The Redis store under the tables: its clock is Redis's; a window ends by rewriting the
        /// record's `expiresAt`; expiries are read with `PEXPIRETIME`.
        final class RedisDriver: SettleTables.Driver {
            let fixture: RedisFixture
            let store: any ChargeStore

            init() throws {
                fixture = try RedisFixture()
                store = fixture.store()
            }

            var prefix: String { fixture.prefix }
            func now() throws -> Int64 { try fixture.time() }
            func step() {}
            func advance(_ ms: Int64) { Issue.record("Redis's clock cannot be moved: the row is memory-only") }

            func endWindow(holdKey: String, windowMs: Int64) throws {
                let raw = try #require(try fixture.get(holdKey))
                let ended = raw.replacing(try Regex("\"expiresAt\":[0-9]+"), with: "\"expiresAt\":\(try fixture.time())")
                try fixture.run("SET", holdKey, ended, "KEEPTTL")
            }

            /// Redis counts a `PX` from its clock at the `SET`, a little after the script read
            /// `TIME`: an expiry within 250 ms after the one computed is the same.
            func check(_ expected: SettleTables.ExpiryAt, key: String) throws -> String? {
                let at = try #require(try fixture.run("PEXPIRETIME", key).integer)
                switch expected {
                case .never: return at == -1 ? nil : "PEXPIRETIME \(at), expected none"
                case .removed: return at == -2 ? nil : "PEXPIRETIME \(at), expected no key"
                case .at(let time): return (time...(time + 250)).contains(at) ? nil : "PEXPIRETIME \(at), expected \(time)"
                }
            }
        }

        static let rows = SettleTables.all.filter { !$0.memoryOnly }

        @Test(arguments: rows)
        func row(_ row: SettleTables.Case) throws {
            let failures = try SettleTables.run(row, on: try RedisDriver())
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }

        /// A random settle policy.
        static func randomPolicy(_ rng: inout SplitMix) -> SettlePolicy {
            let matches: [SettlePolicy.StatusMatch] = [.statusClass(5), .statusClass(4), .status(429), .status(200), .status(101)]
            let refund = matches.filter { _ in Int.random(in: 0..<3, using: &rng) == 0 }
            let amounts: [SettlePolicy.Amount?] = [nil, .header, .bytesSent(unit: 1_048_576), .upstreamMs(unit: 1000)]
            return SettlePolicy(
                refund: refund, amount: amounts.randomElement(using: &rng) ?? nil, by: Bool.random(using: &rng) ? .nginx : .app)
        }

        @Test("150 random spends: the record the script stores is HoldRecord.opened of the memory store's, times aside")
        func theRecordIsOpenedsTwin() throws {
            let fixture = try RedisFixture()
            let redis = fixture.store()
            var rng = SplitMix(state: 0x5EED_0040)
            var compared = 0
            for index in 0..<150 {
                let now = try fixture.time()
                let c = PlanScript.randomCase(&rng, prefix: fixture.prefix, now: now, index: index)
                let memory = MemoryStore(clock: ManualClock(now))
                if let record = c.record, let choice = c.choice {
                    try fixture.run("SET", choice.recordKey, record)
                    try memory.setPlan(PlanRecord(text: record), at: choice.recordKey)
                }
                let id = "h\(index)"
                let hold = HoldRequest(
                    key: fixture.prefix + "#hold:" + id, id: id, policy: Self.randomPolicy(&rng),
                    metered: c.items.map { _ in Bool.random(using: &rng) }, windowMs: Int64.random(in: 1...3600, using: &rng) * 1000)
                let ctx = EventContext(
                    subject: "s1", route: "/api/\"quoted\"\\", method: "POST", uri: "/api/x\n\u{1}é/<b>", idempotencyKey: "k\(index)")
                let request = SpendRequest(items: c.items, context: ctx, plan: c.choice, hold: hold)
                let there = try redis.charge(request)
                let here = try memory.charge(request)
                guard case .allowed(let left) = there.outcome, case .allowed(let expected) = here.outcome else {
                    #expect(Idempotency.kind(there.outcome) == Idempotency.kind(here.outcome), "\(c.description)")
                    continue
                }
                #expect(left.map(\.remaining) == expected.map(\.remaining), "\(c.description)")
                let stored = try #require(try redis.openHolds(prefix: fixture.prefix + "#hold:" + id, limit: 2).holds.first)
                var reference = try #require(try memory.openHolds(prefix: fixture.prefix + "#hold:" + id, limit: 2).holds.first)
                #expect(stored.createdAt >= now && stored.expiresAt == stored.createdAt + hold.windowMs)
                // The reference at the script's clock (the periods of its items too). A pool that does
                // not track its cap is sent without baseMax and largestMax (they count only in a
                // rebase), so its record has none.
                let spent = reference.items.map { item in
                    var spend = item.spend
                    if !spend.tracksLimit { (spend.baseMax, spend.largestMax) = (nil, nil) }
                    return spend
                }
                reference = HoldRecord.opened(hold, items: spent, context: reference.context, now: stored.createdAt)
                #expect(stored == reference, "\(c.description)")
                let ttl = try fixture.pttl(hold.key)
                #expect(ttl <= hold.keyTtlMs && ttl > hold.keyTtlMs - 1000, "the hold lives two windows")
                compared += 1
            }
            #expect(compared > 60, "too few allowed spends to compare: \(compared)")
        }

        @Test("300 random settlements: each pool is written as Bucket.settle says at the script's clock")
        func settleItemIsBucketSettlesTwin() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            var rng = SplitMix(state: 0x5EED_0030)
            var settledCount = 0
            for index in 0..<300 {
                let now = try fixture.time()
                let c = PlanScript.randomCase(&rng, prefix: fixture.prefix, now: now, index: index)
                if let record = c.record, let choice = c.choice { try fixture.run("SET", choice.recordKey, record) }
                let id = "r\(index)"
                let hold = HoldRequest(
                    key: fixture.prefix + "#hold:" + id, id: id, policy: SettlePolicy(amount: .header, by: .app),
                    metered: c.items.map { _ in Bool.random(using: &rng) }, windowMs: 60_000)
                guard case .allowed = try store.spend(SpendRequest(items: c.items, context: context(), plan: c.choice, hold: hold)) else {
                    continue
                }
                // Another writer meanwhile (an admin, a state written under another plan), and
                // sometimes a hold whose period is over.
                for (item, seed) in zip(c.items, c.seeds) where Int.random(in: 0..<3, using: &rng) == 0 {
                    if let seed { try fixture.run("SET", item.key, seed) } else { try fixture.run("DEL", item.key) }
                }
                if Bool.random(using: &rng), let raw = try fixture.get(hold.key), raw.contains("periodStart") {
                    let older = raw.replacing(try Regex("\"periodStart\":([0-9]+)")) { match in
                        "\"periodStart\":\((Int64(match.output[1].substring ?? "") ?? 0) - 86_400_000)"
                    }
                    try fixture.run("SET", hold.key, older, "KEEPTTL")
                }
                let raw = try #require(try fixture.get(hold.key))
                let record = try #require(HoldRecord(stored: raw))
                let keys = record.items.map(\.spend.key)
                let before = try store.peek(keys).states
                let amount: Int64? = Int.random(in: 0..<5, using: &rng) == 0 ? nil : Int64.random(in: 0...8, using: &rng)
                let request = SettleRequest(key: hold.key, id: id, report: .app(amount: amount))
                let run = try store.runScript(store.settleScript) { (command: inout RESPCommand) throws(StoreError) in
                    RedisStore.appendSettle([request][...], to: &command)
                }
                let reply = try #require(run.elements?.first)
                let scriptNow = try #require(reply.elements?[SettleLayout.Head.now.index].integer)
                guard case .settled(let settled) = try RedisStore.settleResult(reply) else {
                    Issue.record("case \(index): not settled")
                    continue
                }
                settledCount += 1
                let after = try store.peek(keys).states
                let description = "\(c.description) amount \(amount.map(String.init) ?? "refund") metered \(hold.metered) record \(record)"
                for (i, item) in record.items.enumerated() {
                    let difference = amount.map { item.metered ? $0 - item.held : 0 } ?? -item.held
                    #expect(settled.differences[i] == difference, "\(description)")
                    let expected = Bucket.settle(
                        item.spend, state: before[i], difference: difference, periodStart: item.periodStart, now: scriptNow)
                    let pttl = try fixture.pttl(item.spend.key)
                    guard let expected else {
                        #expect(after[i] == before[i] && settled.pools[i].state == before[i], "nothing written: \(description)")
                        continue
                    }
                    if expected.removesKey {
                        #expect(after[i] == nil && settled.pools[i].state == nil && pttl == -2, "\(description)")
                        continue
                    }
                    #expect(after[i] == expected.state && settled.pools[i].state == expected.state, "pool \(i): \(description)")
                    if let ttl = expected.ttlMs {
                        #expect(pttl <= ttl && pttl >= ttl - 1000, "pool \(i): PTTL \(pttl), want \(ttl): \(description)")
                    } else {
                        #expect(pttl == -1, "pool \(i): PTTL \(pttl), want none: \(description)")
                    }
                }
            }
            #expect(settledCount > 100, "too few settlements: \(settledCount)")
        }

        // MARK: The hold's key and the spends without one

        @Test("a route without settle writes no hold and events without the new fields; a settled one keeps the record's TTL")
        func keysAndFields() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "a", key: fixture.prefix + "a", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            let stream = fixture.prefix + "#events"
            _ = try store.spend(SpendRequest(items: [item], eventsKey: stream, eventsMaxLen: 100, context: context()))
            #expect(try fixture.run("KEYS", fixture.prefix + "#hold:*").elements == [])
            let entries = try #require(try fixture.run("XRANGE", stream, "-", "+").elements)
            let fields = try #require(entries.first?.elements?.last?.elements).enumerated().filter { $0.offset % 2 == 0 }.compactMap(
                \.element.text)
            #expect(fields == ["pool", "subject", "amount", "route", "method", "uri", "idem", "time"], "next-charge's fields, no more")
            #expect(
                try fixture.get(item.key)
                    == #"{"current":4,"lastUpdatedAt":\#(try #require(try store.peek([item.key]).states[0]).lastUpdatedAt)}"#)

            let hold = HoldRequest(key: fixture.prefix + "#hold:h1", id: "h1", policy: SettlePolicy(), metered: [true], windowMs: 600_000)
            _ = try store.spend(SpendRequest(items: [item], eventsKey: stream, eventsMaxLen: 100, context: context(), hold: hold))
            #expect(try fixture.pttl(hold.key) > 1_199_000)
            try fixture.run("PEXPIRE", hold.key, "500000")
            guard case .settled = try store.settle(SettleRequest(key: hold.key, id: "h1", report: .app(amount: nil))) else {
                Issue.record("the hold should settle")
                return
            }
            let ttl = try fixture.pttl(hold.key)
            #expect(ttl <= 500_000 && ttl > 499_000, "settling keeps the record's TTL")
            #expect(try fixture.get(hold.key)?.hasPrefix(#"{"status":"settled","id":"h1","#) == true)
        }

        @Test("open holds: oldest first, bounded, none settled or past its window, a glob in the prefix matched literally")
        func openHolds() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let prefix = fixture.prefix + "[x]*?\\"
            let keys = KeySpace(prefix: prefix)
            let item = SpendItem(poolId: "p", key: prefix + "p", max: nil, intervalMs: nil, cost: 1, expires: false)
            func spend(_ id: String, keys: KeySpace) throws {
                let hold = HoldRequest(key: keys.hold(id: id), id: id, policy: SettlePolicy(), metered: [true], windowMs: 60_000)
                _ = try store.spend(SpendRequest(items: [item], context: context(), hold: hold))
                usleep(2000)  // distinct createdAt
            }
            for id in ["a", "b", "c", "d"] { try spend(id, keys: keys) }
            try spend("other", keys: KeySpace(prefix: fixture.prefix + "[x]"))  // what an unescaped `*` would match
            try spend("e", keys: KeySpace(prefix: fixture.prefix + "x*?\\"))  // what an unescaped `[x]` would match
            _ = try store.settle(SettleRequest(key: keys.hold(id: "b"), id: "b", report: .app(amount: 1)))
            #expect(try store.openHolds(prefix: keys.holdPrefix, limit: 10).holds.map(\.id) == ["a", "c", "d"])
            #expect(try store.openHolds(prefix: keys.holdPrefix, limit: 2).holds.map(\.id) == ["a", "c"])
            #expect(try store.openHolds(prefix: keys.holdPrefix, limit: 0).holds.isEmpty)
            let raw = try #require(try fixture.get(keys.hold(id: "a")))
            try fixture.run("SET", keys.hold(id: "a"), raw.replacing(try Regex("\"expiresAt\":[0-9]+"), with: "\"expiresAt\":1"), "KEEPTTL")
            let (now, holds) = try store.openHolds(prefix: keys.holdPrefix, limit: 10)
            #expect(holds.map(\.id) == ["c", "d"])
            #expect(abs(now - (try fixture.time())) < 1000)
            // A record that is not one the script writes is an error naming its key.
            try fixture.run("SET", keys.hold(id: "z"), #"{"status":"open"}"#)
            #expect(throws: StoreError.protocolError("corrupt hold record at key \(keys.hold(id: "z"))")) {
                try store.openHolds(prefix: keys.holdPrefix, limit: 10)
            }
        }

        @Test("a corrupt record or bucket is an error, and nothing is written")
        func corruptStateWritesNothing() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "p", key: fixture.prefix + "p", max: 10, intervalMs: nil, cost: 4, expires: false)
            let hold = HoldRequest(key: fixture.prefix + "#hold:h1", id: "h1", policy: SettlePolicy(), metered: [true], windowMs: 60_000)
            _ = try store.spend(SpendRequest(items: [item], context: context(), hold: hold))
            let record = try #require(try fixture.get(hold.key))
            try fixture.run("SET", item.key, "garbage")
            #expect(throws: StoreError.protocolError("CHARGEGATE corrupt bucket state at key \(item.key)")) {
                try store.settle(SettleRequest(key: hold.key, id: "h1", report: .app(amount: nil)))
            }
            #expect(try fixture.get(hold.key) == record, "the hold is still open")
            for bad in [
                "not json", #"{"status":"open","id":1}"#, record.replacingOccurrences(of: #""cost":4"#, with: #""cost":4.5"#),
                record.replacingOccurrences(of: #""by":"nginx""#, with: #""by":"nobody""#),
                record.replacingOccurrences(of: #""expires":false"#, with: #""expires":0"#),
                record.replacingOccurrences(of: #""status":"open""#, with: #""status":"other""#),
            ] {
                try fixture.run("SET", hold.key, bad)
                #expect(throws: StoreError.protocolError("CHARGEGATE corrupt hold record at key \(hold.key)"), "\(bad)") {
                    try store.settle(SettleRequest(key: hold.key, id: "h1", report: .app(amount: nil)))
                }
                #expect(try fixture.get(hold.key) == bad)
                #expect(HoldRecord(stored: bad) == nil, "\(bad)")
            }
        }

        @Test("the settle script is loaded again after SCRIPT FLUSH, and settles once")
        func noscript() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = SpendItem(poolId: "p", key: fixture.prefix + "p", max: 10, intervalMs: nil, cost: 4, expires: false)
            let hold = HoldRequest(key: fixture.prefix + "#hold:h1", id: "h1", policy: SettlePolicy(), metered: [true], windowMs: 60_000)
            _ = try store.spend(SpendRequest(items: [item], context: context(), hold: hold))
            try fixture.run("SCRIPT", "FLUSH")
            let outcome = try store.settle(SettleRequest(key: hold.key, id: "h1", report: .app(amount: 1)))
            #expect(outcome.label == "amount")
            #expect(try fixture.run("SCRIPT", "EXISTS", SettleScript.sha1).elements == [.integer(1)])
            #expect(try store.peek([item.key]).states[0]?.current == 9)
            #expect(try store.settle(SettleRequest(key: hold.key, id: "h1", report: .app(amount: 1))) == .duplicate)
        }

        @Test("events: a settle event reads back with its kind, status and hold; an unknown kind is an error")
        func events() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let stream = fixture.prefix + "#events"
            try fixture.run(
                "XADD", stream, "1-1", "pool", "p", "amount", "-3", "time", "1", "kind", "settle", "status", "502", "hold", "h9")
            let events = try store.events(stream: stream, EventQuery(limit: 10)).events
            #expect(events.map(\.kind) == [.settle] && events.map(\.status) == [502] && events.map(\.context.hold) == ["h9"])
            #expect(events.map(\.amount) == [-3])
            try fixture.run("XADD", stream, "1-2", "pool", "p", "amount", "1", "time", "1", "kind", "refund")
            #expect(throws: StoreError.protocolError("malformed usage event 1-2")) {
                try store.events(stream: stream, EventQuery(limit: 10))
            }
        }
    }
}
