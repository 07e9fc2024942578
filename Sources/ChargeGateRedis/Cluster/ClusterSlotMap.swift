import ChargeGateCore

/// Which node serves each of the 16384 slots: read from a `CLUSTER SLOTS` reply, kept up to date
/// by `MOVED` redirects between two full reads. A value: no I/O, no lock.
///
/// `CLUSTER SLOTS` answers one entry per range of slots: `[start, end, primary, replica...]`,
/// each node `[host, port, node-id, metadata...]` (the id since Redis 4, the metadata map
/// since Redis 7; both optional here, anything after the id ignored). The reply is read
/// strictly: every range within 0...16383 with `start <= end`, no two ranges overlapping, every
/// port in 1...65535, every host well formed (`ClusterRedirect.host`) — a null or empty host
/// means the node that answered (`cluster-preferred-endpoint-type unknown-endpoint`), a `?`
/// (a node preferring a host name it was not given) is refused — and every node id 40 lowercase
/// hex digits. Anything else is a `.protocolError` that names the entry, never a trap. A map
/// that does not cover every slot is valid (`isComplete` says so): a cluster being set up, or
/// one that lost a shard.
public struct ClusterSlotMap: Sendable, Equatable {
    /// One node as `CLUSTER SLOTS` names it.
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        /// Where to connect.
        public var address: RedisURL.HostPort
        /// The node's id (40 hex digits), when the reply gave it (a node learnt from a `MOVED`
        /// has none).
        public var id: String?

        /// Creates a node.
        public init(address: RedisURL.HostPort, id: String? = nil) {
            self.address = address
            self.id = id
        }

        /// The address (the id is left out: addresses are what logs and errors show).
        public var description: String { address.description }
    }

    /// A primary and its replicas: who serves a slot.
    public struct Shard: Sendable, Hashable {
        /// The node every command for the shard's slots is sent to.
        public var primary: Node
        /// Its replicas, in the reply's order (none for a primary learnt from a `MOVED`).
        public var replicas: [Node]

        /// Creates a shard.
        public init(primary: Node, replicas: [Node] = []) {
            self.primary = primary
            self.replicas = replicas
        }
    }

    /// A run of consecutive slots served by one shard.
    public struct SlotRange: Sendable, Equatable {
        /// The slots, within 0...16383.
        public var slots: ClosedRange<Int>
        /// Who serves them.
        public var shard: Shard

        /// Creates a range.
        public init(slots: ClosedRange<Int>, shard: Shard) {
            self.slots = slots
            self.shard = shard
        }
    }

    /// The shards, each once; a shard that lost its last slot to a `MOVED` may stay listed until
    /// the next refresh (or until the list grows to 32768 and is compacted).
    public private(set) var shards: [Shard]
    /// How many of the 16384 slots have a shard.
    public private(set) var coveredSlots: Int
    /// Whether the map is known to be out of date (a `MOVED` corrected it, a `CLUSTERDOWN`
    /// was seen, or it was never read): the driver reads `CLUSTER SLOTS` again when it can.
    public private(set) var refreshDue: Bool

    /// Per slot, the index of its shard in `shards`, or `Self.none`.
    private var owners: [UInt16]
    /// The index in `shards` of the (first) shard of each primary.
    private var shardByPrimary: [RedisURL.HostPort: Int]
    private static let none = UInt16.max
    /// `moved` compacts `shards` when it reaches this many (indexes stay below `none`).
    private static let maxShards = 2 * ClusterSlot.count

    /// An empty map, with a refresh due: no slot is served until `CLUSTER SLOTS` is read.
    public init() {
        shards = []
        coveredSlots = 0
        refreshDue = true
        owners = Array(repeating: Self.none, count: ClusterSlot.count)
        shardByPrimary = [:]
    }

    /// Reads a `CLUSTER SLOTS` reply (RESP2, as hiredis 0.14 gives it) sent to `answeredBy`,
    /// whose host stands in for a null or empty one. Throws `.protocolError` for an error reply
    /// (a node without cluster support: `ERR This instance has cluster support disabled`) and
    /// for any malformed shape, naming the entry.
    public init(clusterSlots reply: RedisValue, answeredBy: RedisURL.HostPort) throws(StoreError) {
        self.init()
        let entries: [RedisValue]
        switch reply {
        case .array(let items): entries = items
        case .error(let message): throw Self.malformed("answered \(Self.clip(message))")
        default: throw Self.malformed("the reply is not an array")
        }
        guard entries.count <= ClusterSlot.count else { throw Self.malformed("\(entries.count) ranges, more than there are slots") }
        var shardIndex: [Shard: UInt16] = [:]
        for (number, entry) in entries.enumerated() {
            let (slots, shard) = try Self.entry(entry, number: number, answeredBy: answeredBy)
            let index: UInt16
            if let known = shardIndex[shard] {
                index = known
            } else {
                index = UInt16(truncatingIfNeeded: shards.count)  // below 16384: one shard per entry at most
                shardIndex[shard] = index
                if shardByPrimary[shard.primary.address] == nil { shardByPrimary[shard.primary.address] = shards.count }
                shards.append(shard)
            }
            for slot in slots {
                guard owners[slot] == Self.none else {
                    throw Self.malformed(
                        "range \(number) (slots \(slots.lowerBound)...\(slots.upperBound)) overlaps an earlier one at slot \(slot)")
                }
                owners[slot] = index
            }
            coveredSlots += slots.count
        }
        refreshDue = false
    }

    // MARK: - Questions

    /// Whether every one of the 16384 slots has a primary.
    public var isComplete: Bool { coveredSlots == ClusterSlot.count }

    /// The shard serving `slot`, or nil (no shard, or a slot outside 0...16383).
    public func shard(forSlot slot: Int) -> Shard? {
        guard ClusterSlot.all.contains(slot) else { return nil }
        let index = owners[slot]
        guard index != Self.none, Int(index) < shards.count else { return nil }
        return shards[Int(index)]
    }

    /// The primary serving `slot`: where a command on its keys is sent. Nil when none does.
    public func primary(forSlot slot: Int) -> Node? {
        shard(forSlot: slot)?.primary
    }

    /// The replicas of `slot`'s primary (empty when there is none, or none is known).
    public func replicas(forSlot slot: Int) -> [Node] {
        shard(forSlot: slot)?.replicas ?? []
    }

    /// The distinct primaries that serve at least one slot, in the order of their first slot.
    public var primaries: [Node] {
        var seen = Set<RedisURL.HostPort>()
        return ranges.compactMap { seen.insert($0.shard.primary.address).inserted ? $0.shard.primary : nil }
    }

    /// The map as runs of consecutive slots with the same shard, in slot order (uncovered slots
    /// left out): for status pages and for comparing maps.
    public var ranges: [SlotRange] {
        var result: [SlotRange] = []
        var start = 0
        while start < ClusterSlot.count {
            let index = owners[start]
            var end = start
            while end + 1 < ClusterSlot.count, owners[end + 1] == index { end += 1 }
            if index != Self.none, Int(index) < shards.count {
                result.append(SlotRange(slots: start...end, shard: shards[Int(index)]))
            }
            start = end + 1
        }
        return result
    }

    /// The runs of slots no shard serves, in slot order.
    public var uncoveredRanges: [ClosedRange<Int>] {
        var result: [ClosedRange<Int>] = []
        var start: Int?
        for slot in ClusterSlot.all {
            if owners[slot] == Self.none {
                if start == nil { start = slot }
            } else if let first = start {
                result.append(first...(slot - 1))
                start = nil
            }
        }
        if let first = start { result.append(first...(ClusterSlot.count - 1)) }
        return result
    }

    // MARK: - Changes

    /// Applies a `MOVED`: `slot` is now served by `node` (the shard whose primary it is, or a
    /// new shard without replicas), and a refresh is due (the rest of the map may have moved
    /// with it: a failover moves every slot of a shard, a resharding many). A slot outside
    /// 0...16383 changes nothing.
    public mutating func moved(slot: Int, to node: RedisURL.HostPort) {
        guard ClusterSlot.all.contains(slot) else { return }
        refreshDue = true
        let index: Int
        if let known = shardByPrimary[node] {
            index = known
        } else {
            if shards.count >= Self.maxShards { compact() }
            index = shards.count
            shardByPrimary[node] = index
            shards.append(Shard(primary: Node(address: node)))
        }
        if owners[slot] == Self.none { coveredSlots += 1 }
        owners[slot] = UInt16(truncatingIfNeeded: index)  // below maxShards: compact() leaves at most 16384
    }

    /// Marks the map as out of date (after a `CLUSTERDOWN`, say), without changing a slot.
    public mutating func markRefreshDue() {
        refreshDue = true
    }

    /// Drops the shards that serve no slot (only `moved` leaves such), renumbering the others.
    private mutating func compact() {
        var renumbered = Array(repeating: Self.none, count: shards.count)
        var kept: [Shard] = []
        for slot in ClusterSlot.all where owners[slot] != Self.none {
            let old = Int(owners[slot])
            guard old < shards.count else { continue }
            if renumbered[old] == Self.none {
                renumbered[old] = UInt16(truncatingIfNeeded: kept.count)
                kept.append(shards[old])
            }
            owners[slot] = renumbered[old]
        }
        shards = kept
        shardByPrimary = [:]
        for (index, shard) in kept.enumerated() where shardByPrimary[shard.primary.address] == nil {
            shardByPrimary[shard.primary.address] = index
        }
    }

    // MARK: - Reading the reply

    /// One entry: `[start, end, primary, replica...]`.
    private static func entry(_ value: RedisValue, number: Int, answeredBy: RedisURL.HostPort) throws(StoreError) -> (
        ClosedRange<Int>, Shard
    ) {
        guard let items = value.elements, items.count >= 3 else {
            throw malformed("range \(number) is not an array of start, end and at least one node")
        }
        guard let start = slotNumber(items[0]), let end = slotNumber(items[1]) else {
            throw malformed("range \(number) has a start or end that is not an integer within 0...16383")
        }
        guard start <= end else { throw malformed("range \(number) starts at \(start), after its end \(end)") }
        var nodes: [Node] = []
        for (position, item) in items.dropFirst(2).enumerated() {
            guard let node = node(item, answeredBy: answeredBy) else {
                let role = position == 0 ? "primary" : "replica \(position)"
                throw malformed("range \(number) (slots \(start)...\(end)): the \(role) is not [host, port, id...] well formed")
            }
            nodes.append(node)
        }
        guard let primary = nodes.first else { throw malformed("range \(number) has no primary") }
        return (start...end, Shard(primary: primary, replicas: Array(nodes.dropFirst())))
    }

    /// One node: `[host, port]`, then optionally the id, then anything (Redis 7's metadata).
    private static func node(_ value: RedisValue, answeredBy: RedisURL.HostPort) -> Node? {
        guard let fields = value.elements, fields.count >= 2 else { return nil }
        let host: String
        switch fields[0] {
        case .null: host = answeredBy.host
        case .string(let bytes) where bytes.isEmpty: host = answeredBy.host
        case .string(let bytes):
            guard let text = ClusterRedirect.host(bytes) else { return nil }
            host = text
        default: return nil
        }
        guard case .integer(let portValue) = fields[1], (1...65535).contains(portValue) else { return nil }
        var id: String?
        if fields.count >= 3 {
            guard case .string(let bytes) = fields[2], isNodeID(bytes) else { return nil }
            id = String(decoding: bytes, as: UTF8.self)
        }
        return Node(address: RedisURL.HostPort(host: host, port: Int(portValue)), id: id)
    }

    /// A slot number as an integer reply, within 0...16383.
    private static func slotNumber(_ value: RedisValue) -> Int? {
        guard case .integer(let number) = value, number >= 0, number < Int64(ClusterSlot.count) else { return nil }
        return Int(number)
    }

    /// 40 lowercase hex digits, as Redis makes node ids.
    private static func isNodeID(_ bytes: [UInt8]) -> Bool {
        bytes.count == 40
            && bytes.allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
    }

    private static func malformed(_ why: String) -> StoreError {
        .protocolError("CLUSTER SLOTS: \(why)")
    }

    private static func clip(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(80)) + "..."
    }
}
