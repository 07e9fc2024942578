import ChargeGateCore
import ChargeGateRedis
import Dispatch
import Foundation
import Testing

// How the cluster tests find a cluster
// ------------------------------------
// `scripts/with-redis-cluster` starts a throwaway Redis Cluster (3 primaries with a replica
// each, on loopback) and exports its nodes as `CHARGE_GATE_TEST_REDIS_CLUSTER`
// (`127.0.0.1:PORT,...`, primaries first):
//
//     scripts/with-redis-cluster swift test --skip-build --filter ClusterTests
//
// Without it the suite is skipped (scripts/test runs it as a step of its own).

/// Every suite against the test cluster, one test at a time across all of them: some move
/// slots or kill a primary, which another suite running beside them would see.
@Suite(
    "Redis Cluster", .serialized,
    .enabled(if: TestCluster.isConfigured, "needs CHARGE_GATE_TEST_REDIS_CLUSTER (scripts/with-redis-cluster)"))
enum ClusterTests {}

/// The cluster named by the environment.
enum TestCluster {
    /// The seeds from `CHARGE_GATE_TEST_REDIS_CLUSTER`, empty when unset or unreadable.
    static let seeds: [RedisURL.HostPort] = {
        guard let text = ProcessInfo.processInfo.environment["CHARGE_GATE_TEST_REDIS_CLUSTER"] else { return [] }
        var seeds: [RedisURL.HostPort] = []
        for part in text.split(separator: ",") {
            guard let colon = part.lastIndex(of: ":"), let port = Int(part[part.index(after: colon)...]) else { return [] }
            seeds.append(RedisURL.HostPort(host: String(part[..<colon]), port: port))
        }
        return seeds
    }()

    /// Whether the cluster tests can run.
    static let isConfigured = !seeds.isEmpty

    /// The driver's timeout in the ordinary tests.
    static let timeoutMs = 2000
}

/// One test's view of the cluster: a random key prefix, direct connections to each node (for
/// checking where keys are and for moving slots by hand), and the slot map as the nodes say.
final class ClusterFixture {
    /// This test's key prefix (random), so its keys are its own and removed at the end.
    let prefix: String
    /// One direct connection per node, made when first used.
    private var admins: [RedisURL.HostPort: RedisConnection] = [:]

    init() throws {
        try #require(TestCluster.isConfigured, "CHARGE_GATE_TEST_REDIS_CLUSTER is not set")
        prefix = "cgcluster:\(UInt64.random(in: 0...UInt64.max)):"
    }

    deinit {
        // Best effort: remove this test's keys from every primary that answers (one DEL per
        // key: a node refuses a DEL of keys in several slots).
        guard let map = try? slotMap() else { return }
        for primary in map.primaries {
            guard let keys = try? admin(primary.address).command(["KEYS", prefix + "*"]).elements else { continue }
            for case .string(let key) in keys {
                _ = try? admin(primary.address).command([Array("DEL".utf8), key])
            }
        }
    }

    /// A new driver on the test cluster's seeds.
    func driver(timeoutMs: Int = TestCluster.timeoutMs) -> ClusterConnection {
        ClusterConnection(seeds: TestCluster.seeds, timeoutMs: timeoutMs)
    }

    /// A direct connection to `node` (no cluster routing).
    func admin(_ node: RedisURL.HostPort) -> RedisConnection {
        if let made = admins[node] { return made }
        let made = RedisConnection(url: RedisURL(endpoint: .tcp(host: node.host, port: node.port)), timeoutMs: 3000)
        admins[node] = made
        return made
    }

    /// Runs a command directly on `node`; an error reply fails the test.
    @discardableResult
    func run(_ node: RedisURL.HostPort, _ arguments: String...) throws -> RedisValue {
        let reply = try admin(node).command(arguments)
        if case .error(let message) = reply {
            Issue.record("\(node): \(arguments.prefix(3).joined(separator: " ")) answered \(message)")
        }
        return reply
    }

    /// The slot map as the first seed that answers says (read directly, not by the driver).
    func slotMap() throws -> ClusterSlotMap {
        var last: Error?
        for seed in TestCluster.seeds {
            do {
                let map = try ClusterSlotMap(clusterSlots: try admin(seed).command(["CLUSTER", "SLOTS"]), answeredBy: seed)
                if map.isComplete { return map }
            } catch {
                last = error
            }
        }
        throw last ?? StoreError.unavailable("no seed gave a complete slot map")
    }

    /// A key under this test's prefix whose slot `primary` serves in `map`, with `tag` as its
    /// hash tag when given (then every key with that tag shares the slot).
    func key(on primary: RedisURL.HostPort, in map: ClusterSlotMap, tagged: Bool = false) throws -> String {
        for index in 0..<100_000 {
            let key = tagged ? "{\(prefix)t\(index)}" : "\(prefix)k\(index)"
            if map.primary(forSlot: ClusterSlot.slot(forKey: key))?.address == primary { return key }
        }
        throw StoreError.protocolError("no key found for \(primary)")
    }

    /// The node id of `node` (`CLUSTER MYID`).
    func nodeID(_ node: RedisURL.HostPort) throws -> String {
        try #require(try run(node, "CLUSTER", "MYID").text)
    }

    /// Starts moving `slot` from `source` to `target` (both primaries): `IMPORTING` on the
    /// target, `MIGRATING` on the source, then `keys` (all of the slot's when nil) migrated.
    func beginMove(slot: Int, from source: RedisURL.HostPort, to target: RedisURL.HostPort, keys: [String]? = nil) throws {
        try run(target, "CLUSTER", "SETSLOT", String(slot), "IMPORTING", try nodeID(source))
        try run(source, "CLUSTER", "SETSLOT", String(slot), "MIGRATING", try nodeID(target))
        try migrate(slot: slot, from: source, to: target, keys: keys)
    }

    /// Migrates `keys` (all of `slot`'s keys on `source` when nil) to `target`.
    func migrate(slot: Int, from source: RedisURL.HostPort, to target: RedisURL.HostPort, keys: [String]? = nil) throws {
        var moving = keys ?? []
        if keys == nil {
            let listed = try #require(try run(source, "CLUSTER", "GETKEYSINSLOT", String(slot), "1000").elements)
            moving = listed.compactMap(\.text)
        }
        guard !moving.isEmpty else { return }
        try run(source, ["MIGRATE", target.host, String(target.port), "", "0", "5000", "KEYS"] + moving)
    }

    /// Ends a move begun with `beginMove`: the slot's remaining keys migrated, then `NODE` set
    /// on the target, the source and every other primary, and waited for until every primary
    /// agrees (`CLUSTER SLOTS`).
    func finishMove(slot: Int, from source: RedisURL.HostPort, to target: RedisURL.HostPort) throws {
        try migrate(slot: slot, from: source, to: target)
        let targetID = try nodeID(target)
        try run(target, "CLUSTER", "SETSLOT", String(slot), "NODE", targetID)
        try run(source, "CLUSTER", "SETSLOT", String(slot), "NODE", targetID)
        let primaries = try slotMap().primaries.map(\.address)
        for other in primaries where other != source && other != target {
            try run(other, "CLUSTER", "SETSLOT", String(slot), "NODE", targetID)
        }
        try waitUntil("every primary says slot \(slot) is on \(target)") {
            try primaries.allSatisfy { node in
                let map = try ClusterSlotMap(clusterSlots: try admin(node).command(["CLUSTER", "SLOTS"]), answeredBy: node)
                return map.primary(forSlot: slot)?.address == target
            }
        }
    }

    /// Moves `slot` with its keys from `source` to `target`, as `redis-cli --cluster reshard`
    /// does for one slot.
    func moveSlot(_ slot: Int, from source: RedisURL.HostPort, to target: RedisURL.HostPort) throws {
        try beginMove(slot: slot, from: source, to: target)
        try finishMove(slot: slot, from: source, to: target)
    }

    /// Runs a command directly on `node` from an array of arguments.
    @discardableResult
    func run(_ node: RedisURL.HostPort, _ arguments: [String]) throws -> RedisValue {
        let reply = try admin(node).command(arguments)
        if case .error(let message) = reply {
            Issue.record("\(node): \(arguments.prefix(3).joined(separator: " ")) answered \(message)")
        }
        return reply
    }

    /// The value of `name:` in an `INFO`-style reply of `node`, nil when it does not answer.
    func info(_ node: RedisURL.HostPort, _ arguments: [String], field name: String) -> String? {
        guard let text = try? admin(node).command(arguments).text else { return nil }
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix(name + ":") {
            return String(line.dropFirst(name.count + 1))
        }
        return nil
    }

    /// Polls `condition` every 50 ms until it holds (a thrown error counts as not yet), at most
    /// `seconds`; records an issue and throws when it never does.
    func waitUntil(_ what: String, seconds: Double = 10, _ condition: () throws -> Bool) throws {
        let end = monotonicMs() + Int64(seconds * 1000)
        while monotonicMs() < end {
            if (try? condition()) == true { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Issue.record("timed out waiting until \(what)")
        throw StoreError.timeout
    }
}

/// Runs `body` on a thread of its own after `delayMs`; `join` waits for it to end.
final class Background: Sendable {
    private let done = DispatchGroup()

    init(afterMs delayMs: Int, _ body: @escaping @Sendable () -> Void) {
        let done = self.done
        done.enter()
        let thread = Thread {
            if delayMs > 0 { Thread.sleep(forTimeInterval: Double(delayMs) / 1000) }
            body()
            done.leave()
        }
        thread.start()
    }

    /// Waits until `body` has returned (at once when it already has: any number of times).
    func join() {
        done.wait()
    }
}
