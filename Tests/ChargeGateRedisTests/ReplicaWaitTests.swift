import ChargeGateCore
import ChargeGateRedis
import Synchronization
import Testing

/// Counts what a store reports.
final class ReplicaCounter: RedisObserver {
    let missing = Mutex<[String]>([])
    func roundTrip(nanoseconds: UInt64) {}
    func failed(_ error: StoreError) {}
    func connected(reconnect: Bool) {}
    func replicasMissing(acknowledged: Int, wanted: Int) { missing.withLock { $0.append("\(acknowledged)/\(wanted)") } }
}

extension RedisTests {
    /// `redisMinReplicas` / `redisReplicaWaitMs` against the test server, which has no replica:
    /// every spend that writes is answered `.unavailable` after WAIT, and one that writes
    /// nothing never waits (docs/redis.md, "Failover with Sentinel").
    @Suite("Replica acknowledgement (WAIT)")
    struct ReplicaWait {
        @Test("an allowed spend without enough replicas is unavailable, and counted")
        func allowedWithoutReplicas() throws {
            let fixture = try RedisFixture()
            let counter = ReplicaCounter()
            let store = RedisStore(
                url: fixture.url, timeoutMs: TestRedis.timeoutMs, observer: counter,
                replicaWait: RedisStore.ReplicaWait(replicas: 1, timeoutMs: 20))
            let item = SpendItem(poolId: "w", key: fixture.prefix + "w", max: 1, intervalMs: 3_600_000, cost: 1, expires: false)
            let start = monotonicMs()
            #expect(throws: StoreError.unavailable("spend not acknowledged by 1 replica within 20 ms (0 did)")) {
                try store.spend(SpendRequest(items: [item], context: context()))
            }
            #expect(monotonicMs() - start >= 18)
            // The spend itself ran on the master: the pool is empty now (a 503, never a free pass).
            #expect(try fixture.get(item.key)?.hasPrefix(#"{"current":0,"#) == true)
            // A denial writes nothing, so it does not wait: the exact 429.
            guard case .outOfCharge = try store.spend(SpendRequest(items: [item], context: context())) else {
                Issue.record("the second spend should be out of charge")
                return
            }
            #expect(counter.missing.withLock { $0 } == ["0/1"])
        }

        @Test("WAIT longer than half the command timeout still gets its answer")
        func longWait() throws {
            let fixture = try RedisFixture()
            let store = RedisStore(
                url: fixture.url, timeoutMs: 100, replicaWait: RedisStore.ReplicaWait(replicas: 2, timeoutMs: 180))
            let item = SpendItem(poolId: "l", key: fixture.prefix + "l", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)
            #expect(throws: StoreError.unavailable("spend not acknowledged by 2 replicas within 180 ms (0 did)")) {
                try store.spend(SpendRequest(items: [item], context: context()))
            }
            // The connection is still fine, with its normal timeout again.
            #expect(try store.connection.command(["PING"]) == .status("PONG"))
        }

        @Test("no WAIT when redisMinReplicas is 0")
        func off() {
            #expect(RedisStore.ReplicaWait(replicas: 0, timeoutMs: 50) == nil)
            #expect(RedisStore.ReplicaWait(replicas: 1, timeoutMs: 0)?.timeoutMs == 1)
        }
    }
}
