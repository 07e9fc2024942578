import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// `ClusterStore` against a real Redis Cluster (`scripts/with-redis-cluster`): the store-neutral
/// responder tables, spends across slots with their give-back, holds and their settlement, and
/// the reads that span slots (SPEC §12).
extension ClusterTests {
    @Suite("Redis Cluster store")
    struct ClusterStoreTests {
        /// The cluster as a config names it.
        static let url = RedisURL(endpoint: .cluster(seeds: TestCluster.seeds))

        /// A cluster store for `fixture`'s prefix.
        static func store(_ fixture: ClusterFixture, replicaWait: RedisStore.ReplicaWait? = nil) -> ClusterStore {
            ClusterStore(
                url: url, keys: KeySpace(prefix: fixture.prefix, cluster: true), timeoutMs: TestCluster.timeoutMs, replicaWait: replicaWait)
        }

        @Test(
            "every store-neutral responder table answers on the cluster store as on the memory store",
            arguments: ResponderScenario.bothStores)
        func scenario(_ scenario: ResponderScenario) throws {
            let fixture = try ClusterFixture()
            let cluster = scenario.run(keyPrefix: fixture.prefix, redis: Self.url) { _ in Self.store(fixture) }
            let memory = scenario.run(keyPrefix: fixture.prefix) { MemoryStore(clock: $0) }
            for mismatch in cluster.mismatches { Issue.record("cluster store: \(mismatch)") }
            #expect(cluster.answers.count == memory.answers.count)
            for (index, (fromCluster, fromMemory)) in zip(cluster.answers, memory.answers).enumerated() {
                #expect(fromCluster == fromMemory, "answer \(index + 1): the cluster store and the memory store differ")
            }
        }
    }
}

extension ClusterTests.ClusterStoreTests {
    /// The cluster store under the settlement tables (`SettleTables`): keys in the cluster
    /// layout, Redis's clock, holds placed in their slots.
    final class ClusterDriver: SettleTables.Driver {
        let fixture: ClusterFixture
        let cluster: ClusterStore
        var store: any ChargeStore { cluster }

        init() throws {
            fixture = try ClusterFixture()
            cluster = ClusterTests.ClusterStoreTests.store(fixture)
        }

        var prefix: String { fixture.prefix }
        var configHead: String { "redis: \"redis-cluster://\(TestCluster.seeds.map(\.description).joined(separator: ","))\"\n" }
        func now() throws -> Int64 { try cluster.time(on: try cluster.anyPrimary()) }
        /// Each slot's step reads its own primary's clock; here they are one machine's, read a
        /// few ms apart at most.
        var spendStampSlackMs: Int64 { 50 }
        func step() {}
        func advance(_ ms: Int64) { Issue.record("Redis's clock cannot be moved: the row is memory-only") }

        /// Every hold the claim names ends its window now.
        func endWindow(holdKey: String, windowMs: Int64) throws {
            let id = String(holdKey.dropFirst(prefix.count + "#hold:".count))
            let claimKey = KeySpace.holdClaim(holdKey, id: id)
            let text = try #require(try cluster.command(["GET", claimKey], key: claimKey).text)
            for slot in try ClusterStore.claim(text, key: claimKey).slots {
                let key = KeySpace.hold(holdKey, id: id, tag: ClusterSlot.tag(forSlot: slot))
                let now = try self.now()
                guard let raw = try cluster.command(["GET", key], key: key).text else { continue }
                let ended = raw.replacing(try Regex("\"expiresAt\":[0-9]+"), with: "\"expiresAt\":\(now)")
                _ = try cluster.command(["SET", key, ended, "KEEPTTL"], key: key)
            }
        }

        func check(_ expected: SettleTables.ExpiryAt, key: String) throws -> String? {
            let at = try #require(try cluster.command(["PEXPIRETIME", key], key: key).integer)
            switch expected {
            case .never: return at == -1 ? nil : "PEXPIRETIME \(at), expected none"
            case .removed: return at == -2 ? nil : "PEXPIRETIME \(at), expected no key"
            case .at(let time): return (time...(time + 250)).contains(at) ? nil : "PEXPIRETIME \(at), expected \(time)"
            }
        }
    }

    @Test("every settlement table the Redis store passes, the cluster store passes", arguments: SettleTables.all.filter { !$0.memoryOnly })
    func settleRow(_ row: SettleTables.Case) throws {
        let failures = try SettleTables.run(row, on: try ClusterDriver())
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }
}

/// A gate on `yaml` (under the fixture's prefix, on the test cluster) and the store to spend on.
final class ClusterGateFixture {
    let fixture: ClusterFixture
    let store: ClusterStore
    let gate: Gate
    let config: GateConfig

    init(_ yaml: String, timeoutMs: Int = TestCluster.timeoutMs) throws {
        fixture = try ClusterFixture()
        store = ClusterStore(
            url: ClusterTests.ClusterStoreTests.url, keys: KeySpace(prefix: fixture.prefix, cluster: true), timeoutMs: timeoutMs)
        let head =
            "redis: \"redis-cluster://\(TestCluster.seeds.map(\.description).joined(separator: ","))\"\n"
            + "keyPrefix: \"\(fixture.prefix)\"\neventsMaxLen: 1000\n"
        switch ConfigLoader.parse(head + yaml, file: "cluster.yaml") {
        case .success(let parsed): config = parsed
        case .failure(let errors): throw StoreError.protocolError("config: \(errors)")
        }
        gate = Gate(config: config)
    }

    /// The spend of a POST to `path` by `subject`, with the idempotency key `key` and hold id
    /// `hold` when given.
    func request(_ path: String, subject: String, key: String? = nil, hold: String? = nil) throws -> SpendRequest {
        let route = try #require(gate.route(path: path, method: "POST"))
        return SpendRequest(
            items: gate.items(route, subject: subject),
            idempotency: key.map { gate.idempotencyCheck(route, subject: subject, clientKey: $0, method: "POST", uri: path, query: "") },
            eventsKey: gate.eventsKey, eventsMaxLen: config.eventsMaxLen,
            context: EventContext(subject: subject, route: route.prefix, method: "POST", uri: path, idempotencyKey: key ?? ""),
            hold: hold.flatMap { gate.holdRequest(route, id: $0) })
    }

    /// What the pool `pool` holds for `subject` (its key missing: nil).
    func current(_ pool: String, subject: String = "") throws -> Int64? {
        let index = try #require(gate.pools.firstIndex { $0.config.id == pool })
        return try store.peek([gate.key(pool: index, subject: subject)]).states[0]?.current
    }

    /// Every event of the log, merged from every slot's stream.
    func events() throws -> [UsageEvent] {
        try store.events(streams: gate.eventStreams, EventQuery(limit: 10_000)).events
    }
}

extension ClusterTests.ClusterStoreTests {
    /// A global pool (its own slot) beside a per-subject one (the subject's slot).
    static let mixed = """
        pools:
          - id: shared
            maxCharges: 10
            rechargeIntervalHours: 1
          - id: mine
            maxCharges: 1
            rechargeIntervalHours: 1
            per: subject
        routes:
          - prefix: /api
            pools: [shared, mine]
            idempotent: true
        """

    @Test("the keys of a subject share its slot, a global pool has its own, and the route is spent in two steps")
    func layout() throws {
        let f = try ClusterGateFixture(Self.mixed)
        let request = try f.request("/api/x", subject: "alice", key: "k1")
        let subjectSlot = ClusterSlot.slot(forKey: "{alice}")
        #expect(ClusterSlot.slot(forKey: request.items[1].key) == subjectSlot)
        #expect(ClusterSlot.slot(forKey: try #require(request.idempotency).key) == subjectSlot)
        #expect(ClusterSlot.slot(forKey: try #require(request.idempotency).quotaKey) == subjectSlot)
        #expect(ClusterSlot.slot(forKey: request.items[0].key) == ClusterSlot.slot(forKey: "shared"))
        let plan = ClusterSpendPlan(request)
        #expect(plan.steps.map(\.items) == [[0], [1]], "the global slot first, the subject's last")
        #expect(plan.home.slot == subjectSlot)
    }

    @Test("a later slot's no gives back what the earlier slot spent: all or nothing, with the give-back in the log")
    func laterDenialGivesBack() throws {
        let f = try ClusterGateFixture(Self.mixed)
        guard case .allowed(let first) = try f.store.charge(try f.request("/api/x", subject: "alice")).outcome else {
            Issue.record("the first spend was not allowed")
            return
        }
        #expect(first.map(\.remaining) == [9, 0])
        let denied = try f.store.charge(try f.request("/api/x", subject: "alice"))
        guard case .outOfCharge(let item, _) = denied.outcome else {
            Issue.record("the second spend was \(denied.outcome), expected out of charge")
            return
        }
        #expect(item == 1, "the denial names the route's second pool")
        #expect(try f.current("shared") == 9, "the shared pool's charge of the denied request was given back")
        #expect(f.store.counts.givenBack == 1 && f.store.counts.giveBackFailures == 0)
        let shared = try f.events().filter { $0.pool == "shared" }
        #expect(shared.map(\.kind) == [.spend, .spend, .settle], "two spends on the shared pool, then the give-back")
        #expect(shared.map(\.amount) == [1, 1, -1])
        // Another subject spends on: the denial was alice's alone.
        guard case .allowed(let bob) = try f.store.charge(try f.request("/api/x", subject: "bob")).outcome else {
            Issue.record("bob's spend was not allowed")
            return
        }
        #expect(bob.map(\.remaining) == [8, 0])
    }

    @Test("a later slot that does not answer: the request fails, and the earlier slot's charge is given back")
    func laterSlotFailureGivesBack() throws {
        let f = try ClusterGateFixture(Self.mixed, timeoutMs: 300)
        let map = try f.fixture.slotMap()
        let sharedPrimary = try #require(map.primary(forSlot: ClusterSlot.slot(forKey: "shared"))?.address)
        let subject = try #require(
            (0..<1000).lazy.map { "u\($0)" }.first { map.primary(forSlot: ClusterSlot.slot(forKey: $0))?.address != sharedPrimary })
        let home = try #require(map.primary(forSlot: ClusterSlot.slot(forKey: subject))?.address)
        #expect(try f.store.charge(try f.request("/api/x", subject: subject)).outcome.isAllowed)
        #expect(try f.current("shared") == 9)
        let pidText = try #require(f.fixture.info(home, ["INFO", "server"], field: "process_id"))
        let pid = try #require(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
        // Stopped (well within cluster-node-timeout: no failover), the home primary answers
        // nothing: the shared slot has spent, the home step times out.
        #expect(kill(pid, SIGSTOP) == 0)
        let resume = Background(afterMs: 600) { _ = kill(pid, SIGCONT) }
        #expect(throws: StoreError.self) { try f.store.charge(try f.request("/api/x", subject: subject)) }
        resume.join()
        #expect(f.store.counts.givenBack == 1)
        #expect(try f.current("shared") == 9, "the failed request's charge on the shared pool was given back")
    }

    @Test("an idempotent repeat across slots is answered without a second charge, and a key whose spend was denied is decided afresh")
    func repeatsAcrossSlots() throws {
        let f = try ClusterGateFixture(Self.mixed)
        #expect(try f.store.charge(try f.request("/api/x", subject: "alice", key: "order-1")).outcome.isAllowed)
        #expect(try f.store.charge(try f.request("/api/x", subject: "alice", key: "order-1")).outcome == .repeated)
        #expect(try f.current("shared") == 9, "the repeat charged nothing")
        // A new key is denied by alice's pool: the shared slot gives back, nothing is recorded.
        let denied = try f.store.charge(try f.request("/api/x", subject: "alice", key: "order-2")).outcome
        #expect(!denied.isAllowed && denied != .repeated)
        #expect(try f.current("shared") == 9)
        // Once alice has a charge again, the same key spends (it was never recorded).
        let mine = f.gate.item(pool: try #require(f.gate.pools.firstIndex { $0.config.id == "mine" }), cost: 1, subject: "alice")
        _ = try f.store.topOff(mine, amount: nil)
        #expect(try f.store.charge(try f.request("/api/x", subject: "alice", key: "order-2")).outcome.isAllowed)
        #expect(try f.current("shared") == 8)
    }

    @Test("a denial across slots is the route's, as one node decides it: the longest wait, and a pool that never refills wins")
    func denialAcrossSlots() throws {
        let f = try ClusterGateFixture(
            """
            pools:
              - id: fast
                maxCharges: 1
                rechargeIntervalHours: 1
              - id: slow
                maxCharges: 1
                rechargeIntervalHours: 5
                per: subject
              - id: credits
                maxCharges: 1
                recharge: none
                per: subject
            routes:
              - prefix: /api/wait
                pools: [fast, slow]
              - prefix: /api/credits
                pools: [fast, credits]
            """)
        #expect(try f.store.charge(try f.request("/api/wait", subject: "alice")).outcome.isAllowed)
        // The global slot (run first) says no with about an hour; the subject's slot, never run,
        // would wait about five: the denial names the subject's pool and its wait.
        let wait = try f.store.charge(try f.request("/api/wait", subject: "alice")).outcome
        guard case .outOfCharge(let item, let retryAfterMs) = wait else {
            Issue.record("expected out of charge, got \(wait)")
            return
        }
        #expect(item == 1, "the longest wait is the per-subject pool's")
        #expect(retryAfterMs > 4 * 3_600_000)
        #expect(try f.current("fast") == 0, "nothing given back that was not spent")
        // fast is out (a wait, in the slot run first); bob's credits, which never refill, are
        // taken to 0 by hand: the 402 wins over the wait, as on one node.
        let creditsPool = try #require(f.gate.pools.firstIndex { $0.config.id == "credits" })
        _ = try f.store.topOff(f.gate.item(pool: creditsPool, cost: 1, subject: "bob"), amount: -1)
        let credits = try f.store.charge(try f.request("/api/credits", subject: "bob")).outcome
        guard case .insufficientCredits(let creditItem, _, _) = credits else {
            Issue.record("expected insufficient credits, got \(credits)")
            return
        }
        #expect(creditItem == 1, "the pool that never refills wins over the global pool's wait")
    }

    @Test("two global pools in different slots: all or nothing")
    func twoGlobalSlots() throws {
        let f = try ClusterGateFixture(
            """
            pools:
              - id: a
                maxCharges: 5
                rechargeIntervalHours: 1
              - id: b
                maxCharges: 2
                rechargeIntervalHours: 1
            routes:
              - prefix: /api
                pools: [a, b]
            """)
        #expect(ClusterSlot.slot(forKey: "a") != ClusterSlot.slot(forKey: "b"))
        for _ in 0..<2 { #expect(try f.store.charge(try f.request("/api/x", subject: "s")).outcome.isAllowed) }
        for _ in 0..<3 { #expect(!(try f.store.charge(try f.request("/api/x", subject: "s")).outcome.isAllowed)) }
        #expect(try f.current("a") == 3, "a spent only with b")
        #expect(try f.current("b") == 0)
    }

    /// A settled route across two slots.
    static let settled = """
        settleWindowSeconds: 60
        pools:
          - id: shared
            maxCharges: 10
            rechargeIntervalHours: 1
          - id: mine
            maxCharges: 5
            rechargeIntervalHours: 1
            per: subject
        routes:
          - prefix: /api
            pools: [shared, mine]
            settle: {}
        """

    @Test("a settled spend across slots: a 5xx refunds every slot's hold, pools in route order")
    func settlesEverySlot() throws {
        let f = try ClusterGateFixture(Self.settled)
        #expect(try f.store.charge(try f.request("/api/x", subject: "alice", hold: "req1")).outcome.isAllowed)
        #expect(try f.current("shared") == 9)
        let outcome = try f.store.settle(
            SettleRequest(
                key: f.gate.keys.hold(id: "req1"), id: "req1",
                report: .nginx(ResponseFacts(status: 502, upstreamReached: true, upstreamAnswered: true)),
                eventsKey: f.gate.eventsKey, eventsMaxLen: 1000, voidTtlMs: f.gate.voidTtlMs))
        guard case .settled(let settled) = outcome else {
            Issue.record("settled as \(outcome)")
            return
        }
        #expect(settled.differences == [-1, -1])
        #expect(settled.pools.map(\.poolId) == ["shared", "mine"])
        #expect(try f.current("shared") == 10)
        #expect(try f.current("mine", subject: "alice") == nil || (try f.current("mine", subject: "alice")) == 5)
        let again = try f.store.settle(
            SettleRequest(
                key: f.gate.keys.hold(id: "req1"), id: "req1",
                report: .nginx(ResponseFacts(status: 502, upstreamReached: true, upstreamAnswered: true)),
                eventsKey: f.gate.eventsKey, eventsMaxLen: 1000, voidTtlMs: f.gate.voidTtlMs))
        #expect(again == .duplicate, "a hold settles once")
        let (_, holds) = try f.store.openHolds(prefix: f.gate.keys.holdPrefix, limit: 10)
        #expect(holds.isEmpty)
    }

    @Test("nginx's line for a request that never got its answer voids the id: the spend that comes later is refused")
    func voidBeforeSpend() throws {
        let f = try ClusterGateFixture(Self.settled)
        let line = SettleRequest(
            key: f.gate.keys.hold(id: "late1"), id: "late1",
            report: .nginx(ResponseFacts(status: 499, upstreamReached: false, upstreamAnswered: false)),
            eventsKey: f.gate.eventsKey, eventsMaxLen: 1000, voidTtlMs: f.gate.voidTtlMs)
        #expect(try f.store.settle(line) == .voided)
        #expect(try f.store.charge(try f.request("/api/x", subject: "alice", hold: "late1")).outcome == .holdVoided)
        #expect(try f.current("shared") == nil, "nothing was spent")
        #expect(try f.store.settle(line) == .duplicate)
    }

    @Test("nginx's void line after the spend claimed the id refunds every slot's hold")
    func voidAfterSpend() throws {
        let f = try ClusterGateFixture(Self.settled)
        #expect(try f.store.charge(try f.request("/api/x", subject: "alice", hold: "r2")).outcome.isAllowed)
        let (_, open) = try f.store.openHolds(prefix: f.gate.keys.holdPrefix, limit: 10)
        #expect(open.count == 1, "a hold in each slot, listed as the request's one")
        #expect(open.first?.items.map(\.poolId).sorted() == ["mine", "shared"], "both slots' holds found, across primaries")
        let line = SettleRequest(
            key: f.gate.keys.hold(id: "r2"), id: "r2",
            report: .nginx(ResponseFacts(status: 499, upstreamReached: false, upstreamAnswered: false)),
            eventsKey: f.gate.eventsKey, eventsMaxLen: 1000, voidTtlMs: f.gate.voidTtlMs)
        guard case .settled(let settled) = try f.store.settle(line) else {
            Issue.record("not settled")
            return
        }
        #expect(settled.differences == [-1, -1])
        #expect(try f.current("shared") == 10)
    }

    @Test("the event log is every slot's stream merged in id order, each event once, paged without loss")
    func eventsMerge() throws {
        let f = try ClusterGateFixture(
            """
            pools:
              - id: mine
                maxCharges: 100
                rechargeIntervalHours: 1
                per: subject
            routes:
              - prefix: /api
                pools: [mine]
            """)
        let subjects = (0..<24).map { "s\($0)" }
        #expect(Set(subjects.map { ClusterSlot.slot(forKey: "{\($0)}") }).count > 10)
        for round in 0..<3 { for subject in subjects { _ = try f.store.charge(try f.request("/api/x\(round)", subject: subject)) } }
        let all = try f.events()
        #expect(all.count == 72)
        #expect(zip(all, all.dropFirst()).allSatisfy { !EventID.precedes($1.id, $0.id) }, "ids never go back")
        var paged: [UsageEvent] = []
        var after: String?
        for _ in 0..<100 {
            let page = try f.store.events(streams: f.gate.eventStreams, EventQuery(after: after, limit: 7))
            paged += page.events
            guard let next = page.next else { break }
            after = next
        }
        #expect(paged.count == 72, "paging 7 at a time loses and repeats nothing")
        #expect(Set(paged.map { "\($0.id) \($0.context.subject)" }).count == 72)
    }
}

extension SpendOutcome {
    /// Whether it lets the request through with a charge.
    var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }
}
