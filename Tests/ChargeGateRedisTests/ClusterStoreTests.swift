import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// `ClusterStore` against a real Redis Cluster (`scripts/with-redis-cluster`): the store-neutral
/// responder tables, spends across slots with their give-back, holds and their settlement, and
/// the reads that span slots (SPEC §12).
@Suite(
    "Redis Cluster store", .serialized,
    .enabled(if: TestCluster.isConfigured, "needs CHARGE_GATE_TEST_REDIS_CLUSTER (scripts/with-redis-cluster)"))
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
