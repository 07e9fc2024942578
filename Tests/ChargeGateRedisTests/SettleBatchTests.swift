import ChargeGateCore
import ChargeGateTestSupport
import Testing

@testable import ChargeGateRedis

/// `RedisStore.settle(_:)` for a batch: one pipelined round trip whose outcomes, pool states and
/// events are those of the same settlements one at a time; `NOSCRIPT` mid-batch, a corrupt
/// hold among good ones, a round trip cut short, and a retry that applies nothing twice.
extension RedisTests {
    @Suite("Settlement batches")
    struct SettleBatch {
        /// Opens holds `ids` (each a spend of 100 from a pool of 1000 credits) on `store`.
        static func open(_ ids: [String], on store: RedisStore, prefix: String) throws -> SpendItem {
            let item = SpendItem(poolId: "a", key: prefix + "a", max: 100_000, intervalMs: 3_600_000, cost: 100, expires: false)
            for id in ids {
                let hold = HoldRequest(key: prefix + "#hold:" + id, id: id, policy: SettlePolicy(), metered: [true], windowMs: 600_000)
                let outcome = try store.spend(
                    SpendRequest(items: [item], eventsKey: prefix + "#events", eventsMaxLen: 1000, context: context(), hold: hold))
                guard case .allowed = outcome else { throw StoreError.protocolError("spend refused: \(outcome)") }
            }
            return item
        }

        /// A mixed batch: amounts (0 included), none (the app's refund), a duplicate of the
        /// first, an unknown hold.
        static func requests(prefix: String) -> [SettleRequest] {
            let ids = ["h1", "h2", "h3", "h1", "nosuch", "h4", "h5"]
            let amounts: [Int64?] = [250, 0, nil, 10, 5, 100, 90]
            return zip(ids, amounts).map { id, amount in
                SettleRequest(
                    key: prefix + "#hold:" + id, id: id, report: .app(amount: amount), eventsKey: prefix + "#events", eventsMaxLen: 1000)
            }
        }

        static func summary(_ result: Result<SettleOutcome, StoreError>) -> String {
            switch result {
            case .success(.settled(let settled)): return "settled \(settled.resolution) \(settled.differences)"
            case .success(let outcome): return outcome.label
            case .failure(let error): return "\(error)"
            }
        }

        static func settleEvents(_ fixture: RedisFixture, _ store: RedisStore) throws -> [Int64] {
            try store.events(stream: fixture.prefix + "#events", EventQuery()).events.filter { $0.kind == .settle }.map(\.amount)
        }

        @Test("nginx's lines ask for no pools: the record is not decoded, the outcome and differences are the same")
        func linesAskForNoPools() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = try Self.open(["h1", "h2"], on: store, prefix: fixture.prefix)
            func request(_ id: String, pools: Bool) -> SettleRequest {
                SettleRequest(
                    key: fixture.prefix + "#hold:" + id, id: id,
                    report: .nginx(ResponseFacts(status: 500, upstreamReached: true, upstreamAnswered: true)),
                    reportsPools: pools)
            }
            guard case .settled(let full) = try store.settle(request("h1", pools: true)),
                case .settled(let bare) = try store.settle([request("h2", pools: false)])[0].get()
            else {
                Issue.record("not settled")
                return
            }
            #expect(full.pools.map(\.item.key) == [item.key])
            #expect(bare.pools.isEmpty)
            #expect(bare.resolution == full.resolution && bare.differences == full.differences && bare.differences == [-100])
            // A reply whose pool fields do not add up is still refused without the record.
            let short = RedisValue.array([
                .string(Array("settled".utf8)), .integer(1), .string(Array("amount".utf8)), .integer(250), .string([]),
            ])
            #expect(throws: StoreError.self) { try RedisStore.settleResult(short, pools: false) }
        }

        @Test("a batch goes in script runs of up to SettleLayout.chunk holds sharing a stream")
        func runsAreChunksOfOneStream() {
            func request(_ stream: String?, _ maxLen: Int = 100) -> SettleRequest {
                SettleRequest(key: "k", id: "h", report: .app(amount: 1), eventsKey: stream, eventsMaxLen: maxLen)
            }
            let chunk = SettleLayout.chunk
            #expect(
                RedisStore.settleRuns(Array(repeating: request("e"), count: 2 * chunk + 3)) == [
                    0..<chunk, chunk..<(2 * chunk), (2 * chunk)..<(2 * chunk + 3),
                ])
            #expect(
                RedisStore.settleRuns([request("e"), request("e"), request("f"), request(nil), request("e", 0), request("e")]) == [
                    0..<2, 2..<3, 3..<5, 5..<6,
                ])
            #expect(RedisStore.settleRuns([request("e")]) == [0..<1])
            #expect(RedisStore.settleRuns([]).isEmpty)
        }

        @Test("40 lines (three script runs): each hold settled as alone, one answer each in order")
        func fortyLinesThreeRuns() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let ids = (1...40).map { "r\($0)" }
            let item = try Self.open(ids, on: store, prefix: fixture.prefix)
            let requests = ids.enumerated().map { index, id in
                SettleRequest(
                    key: fixture.prefix + "#hold:" + id, id: id, report: .app(amount: index % 2 == 0 ? nil : 40),
                    eventsKey: fixture.prefix + "#events",
                    eventsMaxLen: 1000, reportsPools: false)
            }
            let got = try store.settle(requests).map(Self.summary)
            #expect(
                got
                    == ids.indices.map {
                        $0 % 2 == 0 ? "settled refund(ChargeGateCore.Settlement.RefundReason.app) [-100]" : "settled amount(40) [-60]"
                    }, "\(got)")
            #expect(try store.peek([item.key]).states[0]?.current == 100_000 - 20 * 40)
            #expect(try Self.settleEvents(fixture, store).count == 40)
        }

        @Test("a batch answers, charges and logs as the same settlements one at a time (and as the memory store's batch)")
        func batchIsOneByOne() throws {
            let ids = ["h1", "h2", "h3", "h4", "h5"]
            let single = try RedisFixture()
            let batched = try RedisFixture()
            let one = single.store()
            let many = batched.store()
            let item1 = try Self.open(ids, on: one, prefix: single.prefix)
            let item2 = try Self.open(ids, on: many, prefix: batched.prefix)
            let expected = Self.requests(prefix: single.prefix).map { request in
                Self.summary(Result { () throws(StoreError) in try one.settle(request) })
            }
            let got = try many.settle(Self.requests(prefix: batched.prefix)).map(Self.summary)
            #expect(got == expected)
            #expect(got.count == 7)
            #expect(got[3] == "duplicate" && got[4] == "unknown")
            #expect(try one.peek([item1.key]).states[0]?.current == (try many.peek([item2.key]).states[0]?.current))
            #expect(try Self.settleEvents(single, one) == (try Self.settleEvents(batched, many)))
            let logged = try Self.settleEvents(batched, many)
            #expect(logged.sorted() == [-100, -100, -10, 0, 150], "\(logged)")

            // The memory store's batch (the protocol's default) answers the same.
            let memory = MemoryStore(clock: ManualClock(1_763_000_000_000))
            let prefix = "m:"
            let item = SpendItem(poolId: "a", key: prefix + "a", max: 100_000, intervalMs: 3_600_000, cost: 100, expires: false)
            for id in ids {
                let hold = HoldRequest(key: prefix + "#hold:" + id, id: id, policy: SettlePolicy(), metered: [true], windowMs: 600_000)
                _ = try memory.spend(
                    SpendRequest(items: [item], eventsKey: prefix + "#events", eventsMaxLen: 1000, context: context(), hold: hold))
            }
            #expect(try memory.settle(Self.requests(prefix: prefix)).map(Self.summary) == expected)
        }

        @Test("a flushed script cache: the batch loads the script and settles every line once")
        func noscriptMidBatch() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            _ = try Self.open(["h1", "h2", "h3", "h4", "h5"], on: store, prefix: fixture.prefix)
            // The store's connection has run the script (the spends' script, and settle.lua via
            // a first batch); then the cache is flushed: every EVALSHA answers NOSCRIPT.
            _ = try store.settle([SettleRequest(key: fixture.prefix + "#hold:none", id: "none", report: .app(amount: 1))])
            try fixture.run("SCRIPT", "FLUSH")
            let got = try store.settle(Self.requests(prefix: fixture.prefix)).map(Self.summary)
            #expect(got.filter { $0.hasPrefix("settled") }.count == 5, "\(got)")
            #expect(got[3] == "duplicate" && got[4] == "unknown")
            let logged = try Self.settleEvents(fixture, store)
            #expect(logged.sorted() == [-100, -100, -10, 0, 150], "\(logged)")
            #expect(try fixture.run("SCRIPT", "EXISTS", SettleScript.sha1).elements?.first?.integer == 1)
        }

        @Test("a corrupt hold in the middle fails alone; the lines around it settle")
        func corruptHoldFailsAlone() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            _ = try Self.open(["h1", "h2", "h3", "h4", "h5"], on: store, prefix: fixture.prefix)
            try fixture.run("SET", fixture.prefix + "#hold:h2", #"{"status":"open"}"#)
            let results = try store.settle(Self.requests(prefix: fixture.prefix))
            guard case .failure(.protocolError) = results[1] else {
                Issue.record("the corrupt hold should fail alone: \(results.map(Self.summary))")
                return
            }
            #expect(results.enumerated().filter { $0.offset != 1 }.allSatisfy { if case .success = $0.element { true } else { false } })
            let logged = try Self.settleEvents(fixture, store)
            #expect(logged.sorted() == [-100, -10, 0, 150], "\(logged)")
        }

        @Test("a batch sent again (its replies lost) applies nothing twice: every line answers duplicate or unknown")
        func retryAppliesNothingTwice() throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let item = try Self.open(["h1", "h2", "h3", "h4", "h5"], on: store, prefix: fixture.prefix)
            _ = try store.settle(Self.requests(prefix: fixture.prefix))
            let after = try store.peek([item.key]).states[0]?.current
            let again = try store.settle(Self.requests(prefix: fixture.prefix)).map(Self.summary)
            #expect(again == ["duplicate", "duplicate", "duplicate", "duplicate", "unknown", "duplicate", "duplicate"])
            #expect(try store.peek([item.key]).states[0]?.current == after)
            #expect(try Self.settleEvents(fixture, store).count == 5)
        }

        @Test("a connection that dies mid-batch: the settlements it ran are applied once, the rest settle on the retry")
        func connectionDiesMidBatch() throws {
            let fixture = try RedisFixture()
            let store = RedisStore(url: fixture.url, timeoutMs: 200)
            let item = try Self.open(["h1", "h2", "h3", "h4", "h5"], on: store, prefix: fixture.prefix)
            let requests = Self.requests(prefix: fixture.prefix)
            // The batch's first two settlements, then a command that blocks past the timeout,
            // then the third: the round trip ends after two replies and the connection is gone.
            func evalsha(_ request: SettleRequest) -> RESPCommand {
                var command = RESPCommand()
                command.append(RedisStore.evalshaName)
                command.append(Array(SettleScript.sha1.utf8))
                RedisStore.appendSettle([request][...], to: &command)
                return command
            }
            var commands = [
                evalsha(requests[0]), evalsha(requests[1]),
                RESPCommand([Array("BLPOP".utf8), Array((fixture.prefix + "never").utf8), Array("2".utf8)]),
                evalsha(requests[2]),
            ]
            let cut = store.connection.pipeline(&commands)
            #expect(cut.replies.count == 2 && cut.error == .timeout, "\(cut)")
            // The whole batch again, as the applier retries it: the two that ran answer
            // duplicate, the rest settle; the pool and the events show each settlement once.
            let again = try store.settle(requests).map(Self.summary)
            #expect(again[0] == "duplicate" && again[1] == "duplicate" && again[3] == "duplicate" && again[4] == "unknown", "\(again)")
            #expect(again.filter { $0.hasPrefix("settled") }.count == 3, "\(again)")
            let logged = try Self.settleEvents(fixture, store)
            #expect(logged.sorted() == [-100, -100, -10, 0, 150], "\(logged)")
            // 5 holds of 100 spent, then settled to 250, 0, refund, 100, 90.
            #expect(try store.peek([item.key]).states[0]?.current == 100_000 - 250 - 0 - 0 - 100 - 90)
        }

        @Test("a pipeline cut short by a timeout returns the replies read before it; the connection serves again after")
        func pipelineCutShort() throws {
            let fixture = try RedisFixture()
            let connection = RedisConnection(url: fixture.url, timeoutMs: 200)
            var commands = [
                RESPCommand([Array("PING".utf8)]),
                RESPCommand([Array("BLPOP".utf8), Array((fixture.prefix + "never").utf8), Array("2".utf8)]),
                RESPCommand([Array("PING".utf8)]),
            ]
            let cut = connection.pipeline(&commands)
            #expect(cut.replies.map(\.text) == ["PONG"])
            #expect(cut.error == .timeout)
            #expect(!connection.isConnected)
            var pings = [RESPCommand([Array("PING".utf8)]), RESPCommand([Array("PING".utf8)])]
            let whole = connection.pipeline(&pings)
            #expect(whole.replies.map(\.text) == ["PONG", "PONG"])
            #expect(whole.error == nil)
        }
    }
}
