import ChargeGateCore
import ChargeGateRedis
import Testing

// Pure: the slot map read from scripted `CLUSTER SLOTS` replies. No Redis is needed.

/// A bulk string.
func bulk(_ text: String) -> RedisValue { .string(Array(text.utf8)) }

/// A node of a `CLUSTER SLOTS` entry: `[host, port, id]` (the id left out when nil).
func slotsNode(_ host: String, _ port: Int64, id: String? = nil, extra: [RedisValue] = []) -> RedisValue {
    .array([bulk(host), .integer(port)] + (id.map { [bulk($0)] } ?? []) + extra)
}

/// One entry of a `CLUSTER SLOTS` reply.
func slotsEntry(_ start: Int64, _ end: Int64, _ nodes: RedisValue...) -> RedisValue {
    .array([.integer(start), .integer(end)] + nodes)
}

/// A node id: 40 hex digits made of `digit`.
func nodeID(_ digit: Character) -> String { String(repeating: digit, count: 40) }

/// What `redis-cli --cluster create` makes of six nodes: three primaries, one replica each.
let threeShards: RedisValue = .array([
    slotsEntry(0, 5460, slotsNode("127.0.0.1", 7000, id: nodeID("a")), slotsNode("127.0.0.1", 7003, id: nodeID("d"))),
    slotsEntry(5461, 10922, slotsNode("127.0.0.1", 7001, id: nodeID("b")), slotsNode("127.0.0.1", 7004, id: nodeID("e"))),
    slotsEntry(10923, 16383, slotsNode("127.0.0.1", 7002, id: nodeID("c")), slotsNode("127.0.0.1", 7005, id: nodeID("f"))),
])

/// The seed node the test maps were read from.
let seedNode = RedisURL.HostPort(host: "10.0.0.9", port: 7000)

private func at(_ port: Int, _ host: String = "127.0.0.1") -> RedisURL.HostPort {
    RedisURL.HostPort(host: host, port: port)
}

/// A malformed reply and a part of the error it must give.
struct BadSlotsReply: Sendable, CustomTestStringConvertible {
    var name: String
    var reply: RedisValue
    var error: String
    var testDescription: String { name }
}

@Suite struct ClusterSlotMapTests {
    @Test func readsThreeShards() throws {
        let map = try ClusterSlotMap(clusterSlots: threeShards, answeredBy: seedNode)
        #expect(map.isComplete && map.coveredSlots == 16384 && !map.refreshDue)
        #expect(map.primary(forSlot: 0)?.address == at(7000))
        #expect(map.primary(forSlot: 5460)?.address == at(7000))
        #expect(map.primary(forSlot: 5461)?.address == at(7001))
        #expect(map.primary(forSlot: 12182)?.address == at(7002))  // "foo"
        #expect(map.primary(forSlot: 12182)?.id == nodeID("c"))
        #expect(map.replicas(forSlot: 16383).map(\.address) == [at(7005)])
        #expect(map.primary(forSlot: 16384) == nil && map.primary(forSlot: -1) == nil)
        #expect(map.replicas(forSlot: 99999).isEmpty)
        #expect(map.primaries.map(\.address) == [at(7000), at(7001), at(7002)])
        #expect(map.ranges.map(\.slots) == [0...5460, 5461...10922, 10923...16383])
        #expect(map.uncoveredRanges.isEmpty)
        #expect(map.shards.count == 3)
    }

    @Test func oneShardOverSeveralRangesIsOneShard() throws {
        let a = slotsNode("127.0.0.1", 7000, id: nodeID("a"))
        let b = slotsNode("127.0.0.1", 7001, id: nodeID("b"))
        let map = try ClusterSlotMap(
            clusterSlots: .array([slotsEntry(0, 99, a), slotsEntry(200, 299, a), slotsEntry(100, 199, b)]), answeredBy: seedNode)
        #expect(map.shards.count == 2)
        #expect(map.ranges.map(\.slots) == [0...99, 100...199, 200...299])
        #expect(map.primaries.map(\.address) == [at(7000), at(7001)])
        #expect(map.uncoveredRanges == [300...16383])
        #expect(!map.isComplete && map.coveredSlots == 300)
    }

    @Test func redis7MetadataAndOldRepliesWithoutIDs() throws {
        // Redis 7 appends a map of networking metadata (RESP2: a flat array) to each node.
        let withMetadata = RedisValue.array([
            slotsEntry(0, 16383, slotsNode("10.0.0.1", 7000, id: nodeID("0"), extra: [.array([bulk("hostname"), bulk("node-1")])]))
        ])
        let map = try ClusterSlotMap(clusterSlots: withMetadata, answeredBy: seedNode)
        #expect(map.primary(forSlot: 1) == ClusterSlotMap.Node(address: at(7000, "10.0.0.1"), id: nodeID("0")))
        // Redis 3 gives [host, port] only.
        let old = try ClusterSlotMap(clusterSlots: .array([slotsEntry(0, 16383, slotsNode("10.0.0.1", 7000))]), answeredBy: seedNode)
        #expect(old.primary(forSlot: 1) == ClusterSlotMap.Node(address: at(7000, "10.0.0.1"), id: nil))
        #expect(old.isComplete)
    }

    @Test func anUnknownEndpointIsTheNodeThatAnswered() throws {
        // `cluster-preferred-endpoint-type unknown-endpoint`: a null host; an empty one alike.
        let reply = RedisValue.array([
            slotsEntry(0, 8191, .array([.null, .integer(7001), bulk(nodeID("1"))])),
            slotsEntry(8192, 16383, slotsNode("", 7002, id: nodeID("2")), slotsNode("::1", 7003, id: nodeID("3"))),
        ])
        let map = try ClusterSlotMap(clusterSlots: reply, answeredBy: seedNode)
        #expect(map.primary(forSlot: 0)?.address == at(7001, "10.0.0.9"))
        #expect(map.primary(forSlot: 9000)?.address == at(7002, "10.0.0.9"))
        #expect(map.replicas(forSlot: 9000).map(\.address) == [at(7003, "::1")])
    }

    /// Replies captured from two Redis 7.0.15 nodes (`--cluster-enabled yes`, joined with
    /// `CLUSTER MEET`, slots split with `CLUSTER ADDSLOTSRANGE`), read through hiredis's shapes.
    @Test func repliesOfARealRedis7() throws {
        let first = "cd9759d273cd983882b357b1473b5c341dc9538e"
        let second = "591753052b496fa468c26412ff77cae0ee86b8ab"
        // cluster-preferred-endpoint-type ip (the default): the metadata is an empty array.
        let ip = RedisValue.array([
            slotsEntry(0, 8191, slotsNode("127.0.0.1", 50353, id: first, extra: [.array([])])),
            slotsEntry(8192, 16383, slotsNode("127.0.0.1", 36467, id: second, extra: [.array([])])),
        ])
        let map = try ClusterSlotMap(clusterSlots: ip, answeredBy: seedNode)
        #expect(map.isComplete && map.primaries.map(\.address) == [at(50353), at(36467)])
        #expect(map.primary(forSlot: ClusterSlot.slot(forKey: "foo"))?.id == second)
        // unknown-endpoint: a null host, the ip in the metadata; the node asked stands in.
        let unknown = RedisValue.array([
            slotsEntry(0, 8191, .array([.null, .integer(50353), bulk(first), .array([bulk("ip"), bulk("127.0.0.1")])])),
            slotsEntry(8192, 16383, .array([.null, .integer(36467), bulk(second), .array([bulk("ip"), bulk("127.0.0.1")])])),
        ])
        let behindABalancer = try ClusterSlotMap(clusterSlots: unknown, answeredBy: at(6000, "lb.internal"))
        #expect(behindABalancer.primaries.map(\.address) == [at(50353, "lb.internal"), at(36467, "lb.internal")])
        // hostname without cluster-announce-hostname: "?", refused.
        let noHostname = RedisValue.array([
            slotsEntry(0, 16383, .array([bulk("?"), .integer(50353), bulk(first), .array([bulk("ip"), bulk("127.0.0.1")])]))
        ])
        #expect(
            throws: StoreError.protocolError("CLUSTER SLOTS: range 0 (slots 0...16383): the primary is not [host, port, id...] well formed")
        ) {
            try ClusterSlotMap(clusterSlots: noHostname, answeredBy: seedNode)
        }
        // A lone node that never met another one does not know its own address: "".
        let lone = RedisValue.array([slotsEntry(0, 16383, slotsNode("", 50353, id: first, extra: [.array([])]))])
        #expect(try ClusterSlotMap(clusterSlots: lone, answeredBy: at(50353)).primary(forSlot: 0)?.address == at(50353))
    }

    @Test func anEmptyReplyIsAMapWithoutSlots() throws {
        let map = try ClusterSlotMap(clusterSlots: .array([]), answeredBy: seedNode)
        #expect(map.coveredSlots == 0 && !map.isComplete && map.primaries.isEmpty && map.ranges.isEmpty)
        #expect(map.uncoveredRanges == [0...16383])
        #expect(ClusterSlotMap().refreshDue && ClusterSlotMap().uncoveredRanges == [0...16383])
    }

    static let badReplies: [BadSlotsReply] = [
        BadSlotsReply(
            name: "an error reply", reply: .error("ERR This instance has cluster support disabled"),
            error: "CLUSTER SLOTS: answered ERR This instance has cluster support disabled"),
        BadSlotsReply(name: "a string", reply: bulk("0 16383"), error: "not an array"),
        BadSlotsReply(name: "null", reply: .null, error: "not an array"),
        BadSlotsReply(name: "an entry that is a string", reply: .array([bulk("x")]), error: "range 0 is not an array"),
        BadSlotsReply(
            name: "an entry without a node", reply: .array([.array([.integer(0), .integer(5)])]), error: "range 0 is not an array"),
        BadSlotsReply(
            name: "a start beyond 16383", reply: .array([slotsEntry(0, 16384, slotsNode("h", 1))]),
            error: "range 0 has a start or end that is not an integer within 0...16383"),
        BadSlotsReply(
            name: "a negative start", reply: .array([slotsEntry(-1, 5, slotsNode("h", 1))]),
            error: "range 0 has a start or end that is not an integer"),
        BadSlotsReply(
            name: "a huge end", reply: .array([slotsEntry(0, .max, slotsNode("h", 1))]),
            error: "range 0 has a start or end that is not an integer"),
        BadSlotsReply(
            name: "a start as a string",
            reply: .array([.array([bulk("0"), .integer(5), slotsNode("h", 1)])]), error: "range 0 has a start or end"),
        BadSlotsReply(
            name: "start after end", reply: .array([slotsEntry(100, 99, slotsNode("h", 1))]),
            error: "range 0 starts at 100, after its end 99"),
        BadSlotsReply(
            name: "overlapping ranges",
            reply: .array([slotsEntry(0, 100, slotsNode("h", 1)), slotsEntry(50, 60, slotsNode("g", 2))]),
            error: "range 1 (slots 50...60) overlaps an earlier one at slot 50"),
        BadSlotsReply(
            name: "the same range twice",
            reply: .array([slotsEntry(7, 7, slotsNode("h", 1)), slotsEntry(7, 7, slotsNode("h", 1))]),
            error: "range 1 (slots 7...7) overlaps"),
        BadSlotsReply(
            name: "port 0", reply: .array([slotsEntry(0, 5, slotsNode("h", 0))]),
            error: "range 0 (slots 0...5): the primary is not [host, port, id...] well formed"),
        BadSlotsReply(name: "port 65536", reply: .array([slotsEntry(0, 5, slotsNode("h", 65536))]), error: "the primary is not"),
        BadSlotsReply(
            name: "a port as a string", reply: .array([slotsEntry(0, 5, .array([bulk("h"), bulk("7000")]))]), error: "the primary is not"),
        BadSlotsReply(name: "a host '?'", reply: .array([slotsEntry(0, 5, slotsNode("?", 7000))]), error: "the primary is not"),
        BadSlotsReply(name: "a host with a space", reply: .array([slotsEntry(0, 5, slotsNode("a b", 7000))]), error: "the primary is not"),
        BadSlotsReply(
            name: "a host as an integer", reply: .array([slotsEntry(0, 5, .array([.integer(1), .integer(7000)]))]),
            error: "the primary is not"),
        BadSlotsReply(
            name: "a host too long", reply: .array([slotsEntry(0, 5, slotsNode(String(repeating: "h", count: 256), 7000))]),
            error: "the primary is not"),
        BadSlotsReply(name: "a node of one field", reply: .array([slotsEntry(0, 5, .array([bulk("h")]))]), error: "the primary is not"),
        BadSlotsReply(name: "a node that is a string", reply: .array([slotsEntry(0, 5, bulk("h:1"))]), error: "the primary is not"),
        BadSlotsReply(
            name: "a short node id", reply: .array([slotsEntry(0, 5, slotsNode("h", 1, id: "abc"))]), error: "the primary is not"),
        BadSlotsReply(
            name: "an upper-case node id", reply: .array([slotsEntry(0, 5, slotsNode("h", 1, id: nodeID("A")))]),
            error: "the primary is not"),
        BadSlotsReply(
            name: "a node id as an integer", reply: .array([slotsEntry(0, 5, .array([bulk("h"), .integer(1), .integer(3)]))]),
            error: "the primary is not"),
        BadSlotsReply(
            name: "a bad replica", reply: .array([slotsEntry(0, 5, slotsNode("h", 1), slotsNode("g", 2), slotsNode("f", -3))]),
            error: "range 0 (slots 0...5): the replica 2 is not"),
        BadSlotsReply(
            name: "a bad later entry", reply: .array([slotsEntry(0, 5, slotsNode("h", 1)), .null]), error: "range 1 is not an array"),
        BadSlotsReply(
            name: "more entries than slots",
            reply: .array(Array(repeating: slotsEntry(0, 0, slotsNode("h", 1)), count: 16385)),
            error: "16385 ranges, more than there are slots"),
    ]

    @Test(arguments: badReplies)
    func refusesAMalformedReply(_ c: BadSlotsReply) {
        #expect {
            try ClusterSlotMap(clusterSlots: c.reply, answeredBy: seedNode)
        } throws: { error in
            guard let error = error as? StoreError, case .protocolError(let text) = error else { return false }
            return text.hasPrefix("CLUSTER SLOTS: ") && text.contains(c.error)
        }
    }

    @Test func aMovedCorrectsOneSlotAndAsksForARefresh() throws {
        var map = try ClusterSlotMap(clusterSlots: threeShards, answeredBy: seedNode)
        // To a known primary: its shard, replicas and id included.
        map.moved(slot: 100, to: at(7001))
        #expect(map.refreshDue)
        #expect(map.primary(forSlot: 100) == ClusterSlotMap.Node(address: at(7001), id: nodeID("b")))
        #expect(map.replicas(forSlot: 100).map(\.address) == [at(7004)])
        #expect(map.primary(forSlot: 99)?.address == at(7000) && map.primary(forSlot: 101)?.address == at(7000))
        #expect(map.ranges.map(\.slots) == [0...99, 100...100, 101...5460, 5461...10922, 10923...16383])
        // To a new node (a replica promoted): a shard of its own, no replicas known yet.
        map.moved(slot: 12182, to: at(7005))
        #expect(map.primary(forSlot: 12182) == ClusterSlotMap.Node(address: at(7005)))
        #expect(map.replicas(forSlot: 12182).isEmpty)
        #expect(map.shards.count == 4 && map.isComplete)
        // Out of range: nothing.
        let before = map
        map.moved(slot: 16384, to: at(1))
        map.moved(slot: -1, to: at(1))
        #expect(map == before)
    }

    @Test func aMovedCoversASlotThatHadNoShard() throws {
        var map = try ClusterSlotMap(clusterSlots: .array([slotsEntry(0, 16382, slotsNode("h", 1))]), answeredBy: seedNode)
        #expect(!map.isComplete && map.uncoveredRanges == [16383...16383])
        map.moved(slot: 16383, to: at(2, "g"))
        #expect(map.isComplete && map.primary(forSlot: 16383)?.address == at(2, "g"))
        var empty = ClusterSlotMap()
        empty.moved(slot: 5, to: at(3))
        #expect(empty.coveredSlots == 1 && empty.ranges.count == 1)
    }

    @Test func manyMovesToNewNodesStayBounded() {
        var map = ClusterSlotMap()
        // Every slot to a node of its own, three times over: the shards that lost their slot go.
        for round in 0..<3 {
            for slot in ClusterSlot.all {
                map.moved(slot: slot, to: at(1 + (slot + round * 16384) % 65535, "n"))
            }
        }
        #expect(map.shards.count <= 2 * ClusterSlot.count)
        #expect(map.isComplete && map.ranges.count == ClusterSlot.count)
        #expect(map.primary(forSlot: 0)?.address == at(1 + 2 * 16384, "n"))
        #expect(map.primary(forSlot: 16383)?.address == at(1 + (16383 + 2 * 16384) % 65535, "n"))
    }

    @Test func markRefreshDue() throws {
        var map = try ClusterSlotMap(clusterSlots: threeShards, answeredBy: seedNode)
        #expect(!map.refreshDue)
        map.markRefreshDue()
        #expect(map.refreshDue && map.isComplete)
    }
}
