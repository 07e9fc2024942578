import ChargeGateCore
import Dispatch
import Foundation
import Testing

@testable import ChargeGateRedis

#if canImport(Glibc)
    import Glibc
#endif

/// `ClusterConnection` against a real Redis Cluster (`scripts/with-redis-cluster`): one test at a
/// time, since some move slots or kill a primary; the test that kills a primary waits until the
/// cluster has failed over and is whole again before it ends.
extension ClusterTests {
    @Suite("Redis Cluster driver")
    struct ClusterDriverTests {
        @Test("commands on keys of many slots go to the primary of each key's slot, and the keys are there")
        func keysReachTheirPrimaries() throws {
            let fixture = try ClusterFixture()
            let map = try fixture.slotMap()
            let cluster = fixture.driver()
            var used = Set<RedisURL.HostPort>()
            let count = 300
            for index in 0..<count {
                let key = "\(fixture.prefix)k\(index)"
                let reply = try cluster.command(["SET", key, "v\(index)"], keys: [key])
                #expect(reply.value == .status("OK"))
                let primary = try #require(map.primary(forSlot: ClusterSlot.slot(forKey: key))?.address)
                #expect(reply.node == primary, "\(key)")
                // There, directly: the key is on that node (another primary would answer MOVED).
                #expect(try fixture.admin(primary).command(["GET", key]).text == "v\(index)", "\(key) on \(primary)")
                used.insert(reply.node)
            }
            #expect(used == Set(map.primaries.map(\.address)), "every primary got some of \(count) keys")
            #expect(cluster.counts.sends == count, "one send per command: no redirect")
            #expect(cluster.counts.moved == 0 && cluster.counts.asks == 0)
            #expect(cluster.counts.refreshes == 1, "the map was read once, before the first command")
            #expect(Set(cluster.connectedNodes).isSubset(of: Set(map.primaries.map(\.address)).union(TestCluster.seeds)))
        }

        @Test("a MOVED after the slot was moved is followed, and corrects the map for that slot")
        func movedIsFollowed() throws {
            let fixture = try ClusterFixture()
            let map = try fixture.slotMap()
            let primaries = map.primaries.map(\.address)
            let source = try #require(primaries.first)
            let target = try #require(primaries.last)
            let key = try fixture.key(on: source, in: map)
            let slot = ClusterSlot.slot(forKey: key)
            let cluster = fixture.driver()
            #expect(try cluster.command(["SET", key, "here"], keys: [key]).node == source)

            try fixture.moveSlot(slot, from: source, to: target)
            defer { try? fixture.moveSlot(slot, from: target, to: source) }

            let before = cluster.counts
            let reply = try cluster.command(["GET", key], keys: [key])
            #expect(reply.value == .string(Array("here".utf8)))
            #expect(reply.node == target)
            #expect(cluster.counts.moved == before.moved + 1)
            #expect(cluster.counts.sends == before.sends + 2, "the old primary, then the new one")
            #expect(cluster.map.primary(forSlot: slot)?.address == target, "the map was corrected for the slot")
            #expect(cluster.map.refreshDue)
            #expect(cluster.counts.refreshes == before.refreshes, "a MOVED alone reads no map")

            // The next command (past the minimum interval) reads the whole map again first.
            Thread.sleep(forTimeInterval: Double(ClusterConnection.minRefreshIntervalMs + 20) / 1000)
            #expect(try cluster.command(["GET", key], keys: [key]).node == target)
            #expect(cluster.counts.refreshes == before.refreshes + 1)
            #expect(!cluster.map.refreshDue)
            #expect(cluster.counts.sends == before.sends + 3)
        }

        @Test("ASK during a migration is followed once (ASKING first), the map unchanged; TRYAGAIN is waited out, then given up")
        func askIsFollowedOnce() throws {
            let fixture = try ClusterFixture()
            let map = try fixture.slotMap()
            let primaries = map.primaries.map(\.address)
            let source = try #require(primaries.first)
            let target = try #require(primaries.dropFirst().first)
            let tag = try fixture.key(on: source, in: map, tagged: true)
            let moving = tag + "a"
            let staying = tag + "b"
            let slot = ClusterSlot.slot(forKey: moving)
            #expect(ClusterSlot.slot(forKey: staying) == slot)
            let cluster = fixture.driver()
            _ = try cluster.command(["SET", moving, "moved"], keys: [moving])
            _ = try cluster.command(["SET", staying, "stayed"], keys: [staying])

            try fixture.beginMove(slot: slot, from: source, to: target, keys: [moving])
            defer {
                try? fixture.finishMove(slot: slot, from: source, to: target)
                try? fixture.moveSlot(slot, from: target, to: source)
            }

            var before = cluster.counts
            let reply = try cluster.command(["GET", moving], keys: [moving])
            #expect(reply.value == .string(Array("moved".utf8)))
            #expect(reply.node == target)
            #expect(cluster.counts.asks == before.asks + 1)
            #expect(cluster.counts.sends == before.sends + 2, "the source, then ASKING + GET on the target in one send")
            #expect(cluster.map.primary(forSlot: slot)?.address == source, "an ASK does not change the map")
            #expect(!cluster.map.refreshDue)

            // A key still on the source is answered there.
            before = cluster.counts
            let stayed = try cluster.command(["GET", staying], keys: [staying])
            #expect(stayed.value == .string(Array("stayed".utf8)) && stayed.node == source)
            #expect(cluster.counts.sends == before.sends + 1)

            // Keys split between the two nodes: TRYAGAIN, waited out within the timeout, then 503.
            let short = fixture.driver(timeoutMs: 300)
            let started = monotonicMs()
            #expect(throws: StoreError.self) { try short.command(["MGET", moving, staying], keys: [moving, staying]) }
            let elapsed = monotonicMs() - started
            #expect(short.counts.tryAgains >= 3, "\(short.counts)")
            #expect(elapsed < 1500, "given up within about the timeout (\(elapsed) ms)")
        }

        @Test("EVALSHA answered NOSCRIPT: the script is loaded on that node and the command sent again, once")
        func noScriptLoadsAndResends() throws {
            let fixture = try ClusterFixture()
            let map = try fixture.slotMap()
            let source = #"return redis.call('INCRBY', KEYS[1], ARGV[1])"#
            let sha = SHA1.hex(Array(source.utf8))
            let key = "\(fixture.prefix)script"
            let primary = try #require(map.primary(forSlot: ClusterSlot.slot(forKey: key))?.address)
            try fixture.run(primary, "SCRIPT", "FLUSH")
            let cluster = fixture.driver()

            let first = try cluster.runScript(sha: sha, source: Array(source.utf8), keys: [Array(key.utf8)], arguments: [Array("5".utf8)])
            #expect(first.value == .integer(5), "the script ran once")
            #expect(first.node == primary)
            #expect(cluster.counts.scriptLoads == 1)
            #expect(cluster.counts.sends == 2)

            let second = try cluster.runScript(sha: sha, source: Array(source.utf8), keys: [Array(key.utf8)], arguments: [Array("5".utf8)])
            #expect(second.value == .integer(10))
            #expect(cluster.counts.scriptLoads == 1 && cluster.counts.sends == 3)

            // A script's own error is the command's answer, not a failure.
            let broken = #"return redis.error_reply('CHARGEGATE nope')"#
            let failed = try cluster.runScript(
                sha: SHA1.hex(Array(broken.utf8)), source: Array(broken.utf8), keys: [Array(key.utf8)], arguments: [])
            #expect(failed.value == .error("CHARGEGATE nope"))
        }

        @Test("keys in different slots are refused before anything is sent or connected")
        func crossSlotIsNeverSent() throws {
            let fixture = try ClusterFixture()
            let cluster = fixture.driver()
            let keys = ["\(fixture.prefix)a", "\(fixture.prefix)b"]
            #expect(ClusterSlot.slot(forKey: keys[0]) != ClusterSlot.slot(forKey: keys[1]))
            #expect {
                try cluster.command(["MGET"] + keys, keys: keys)
            } throws: { error in
                guard case StoreError.protocolError(let why) = error else { return false }
                return why.contains("different cluster slots")
            }
            #expect(throws: StoreError.protocolError("a cluster command needs at least one key")) {
                try cluster.command(["PING"], keys: [])
            }
            #expect(cluster.counts == ClusterConnection.Counts())
            #expect(cluster.connectedNodes.isEmpty)
            #expect(cluster.map.coveredSlots == 0, "not even the map was read")
        }

        @Test("a command that times out after it was written fails and is not sent again (it may have run)")
        func timeoutAfterWritingIsNotResent() throws {
            let fixture = try ClusterFixture()
            let map = try fixture.slotMap()
            let key = "\(fixture.prefix)slow"
            let primary = try #require(map.primary(forSlot: ClusterSlot.slot(forKey: key))?.address)
            let cluster = fixture.driver(timeoutMs: 300)
            #expect(try cluster.command(["INCR", key], keys: [key]).value == .integer(1))

            let sleeper = Background(afterMs: 0) {
                let connection = RedisConnection(url: RedisURL(endpoint: .tcp(host: primary.host, port: primary.port)), timeoutMs: 3000)
                _ = try? connection.command(["DEBUG", "SLEEP", "0.8"])
            }
            defer { sleeper.join() }
            Thread.sleep(forTimeInterval: 0.1)
            let before = cluster.counts
            #expect(throws: StoreError.timeout) { try cluster.command(["INCR", key], keys: [key]) }
            #expect(cluster.counts.sends == before.sends + 1, "never resent")
            #expect(cluster.counts.refreshes == before.refreshes)
            sleeper.join()
            // The written INCR ran once the node woke up: a resend would have counted it twice.
            try fixture.waitUntil("the INCR written before the timeout ran", seconds: 3) {
                try fixture.admin(primary).command(["GET", key]).text == "2"
            }
        }

        @Test("a primary killed while the command is in flight: it fails and is never resent; spending resumes after the failover")
        func killedPrimaryFailsThenResumes() throws {
            let fixture = try ClusterFixture()
            let map = try fixture.slotMap()
            // A primary with a replica (an earlier run of this test may have left one without).
            let shard = try #require(map.ranges.map(\.shard).first { !$0.replicas.isEmpty })
            let primary = shard.primary.address
            let key = try fixture.key(on: primary, in: map)
            let cluster = fixture.driver(timeoutMs: 1000)
            #expect(try cluster.command(["INCR", key], keys: [key]).value == .integer(1))
            #expect(try cluster.waitForReplicas(1, timeoutMs: 1000, on: primary) == 1, "the replica has the first INCR")

            let pidText = try #require(fixture.info(primary, ["INFO", "server"], field: "process_id"))
            let pid = try #require(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
            // Stopped, the node reads nothing: the INCR below is written and waits; then it dies.
            #expect(kill(pid, SIGSTOP) == 0)
            let killer = Background(afterMs: 200) { _ = kill(pid, SIGKILL) }
            let before = cluster.counts
            #expect {
                try cluster.command(["INCR", key], keys: [key])
            } throws: { error in
                guard let error = error as? StoreError else { return false }
                if case .protocolError = error { return false }
                return true
            }
            killer.join()
            #expect(cluster.counts.sends == before.sends + 1, "the INCR that may have run is not sent again")

            // Until a replica takes over the commands fail (503s); then they resume by themselves,
            // and the counter shows the one INCR that the killed primary's replica had.
            let survivors = (map.ranges.flatMap { [$0.shard.primary.address] + $0.shard.replicas.map(\.address) })
                .filter { $0 != primary }
            var failures = 0
            try fixture.waitUntil("spending resumes after the failover", seconds: 20) {
                do {
                    let reply = try cluster.command(["GET", key], keys: [key])
                    #expect(reply.value == .string(Array("1".utf8)), "never twice")
                    #expect(reply.node != primary)
                    return true
                } catch {
                    failures += 1
                    return false
                }
            }
            #expect(failures > 0, "the commands failed until the failover")
            #expect(cluster.map.primary(forSlot: ClusterSlot.slot(forKey: key))?.address != primary)
            #expect(!cluster.connectedNodes.contains(primary), "the dead node's connection is closed")
            // Leave the cluster whole for the next test.
            try fixture.waitUntil("every surviving node says cluster_state:ok", seconds: 20) {
                Set(Set(survivors).map { fixture.info($0, ["CLUSTER", "INFO"], field: "cluster_state") }) == ["ok"]
            }
        }
    }
}
