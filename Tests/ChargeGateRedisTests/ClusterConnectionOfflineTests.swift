import ChargeGateCore
import ChargeGateRedis
import Testing

/// What the driver does before any node answers: these need no cluster, and always run.
@Suite("Redis Cluster driver, no node reachable")
struct ClusterConnectionOfflineTests {
    /// Port 1 on loopback: nothing listens there, so a connect is refused at once.
    static let nowhere = [RedisURL.HostPort(host: "127.0.0.1", port: 1)]

    @Test("keys in different slots, or none, are refused without reading the map")
    func refusedBeforeConnecting() {
        let cluster = ClusterConnection(seeds: Self.nowhere, timeoutMs: 200)
        #expect(throws: StoreError.self) { try cluster.command(["MGET", "a", "b"], keys: ["a", "b"]) }
        #expect(throws: StoreError.protocolError("a cluster command needs at least one key")) { try cluster.command(["PING"], keys: []) }
        #expect(cluster.counts == ClusterConnection.Counts())
        #expect(cluster.connectedNodes.isEmpty)
    }

    @Test("no seed answers: the command fails unavailable, naming the seed, with nothing sent")
    func noSeedAnswers() {
        let cluster = ClusterConnection(seeds: Self.nowhere, timeoutMs: 200)
        #expect {
            try cluster.command(["GET", "a"], keys: ["a"])
        } throws: { error in
            guard case StoreError.unavailable(let why) = error else { return false }
            return why.contains("127.0.0.1:1") && why.contains("slot map")
        }
        #expect(cluster.counts.sends == 0)
        #expect(cluster.counts.refreshes == 0)
        #expect(cluster.map.refreshDue)
    }
}
