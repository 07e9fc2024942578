import ChargeGateCore

/// Reads that span slots on a cluster: bucket states slot by slot, the event log merged from
/// every slot's stream, the open holds node by node.
extension ClusterStore {
    /// The states at `keys` and Redis's clock: one peek per slot (each on its primary), the
    /// states in `keys`' order, the clock of the first.
    public func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) {
        var bySlot: [Int: [Int]] = [:]
        var order: [Int] = []
        for (index, key) in keys.enumerated() {
            let slot = ClusterSlot.slot(forKey: key)
            if bySlot[slot] == nil { order.append(slot) }
            bySlot[slot, default: []].append(index)
        }
        var states = [BucketState?](repeating: nil, count: keys.count)
        var now: Int64?
        for slot in order {
            let places = bySlot[slot] ?? []
            let reply = try runCharge(slot: slot) { (command: inout RESPCommand) throws(StoreError) in
                command.append(places.count)
                for place in places { command.append(keys[place]) }
                command.append(RedisStore.peekOp)
            }
            let read = try RedisStore.peekResult(reply.value, count: places.count)
            if now == nil { now = read.now }
            for (place, state) in zip(places, read.states) { states[place] = state }
        }
        guard let now else {
            // No key: the clock of any primary.
            return (try time(on: try anyPrimary()), [])
        }
        return (now, states)
    }

    /// One page of the event log `stream`. A stream placed in a slot (`KeySpace.events(_:tag:)`,
    /// ending in its tag) is read alone; the base (`KeySpace.events`) is every slot's stream,
    /// found with `SCAN ... TYPE stream` on each primary and merged in id order
    /// (`ChargeStore.events(streams:_:)`: ids of two slots' streams may be equal; the page then
    /// keeps every event of its last id, so resuming after it loses none).
    public func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage {
        if stream.hasSuffix("}") {
            return try RedisStore.events(stream: stream, query) { (arguments: [String]) throws(StoreError) in
                try command(arguments, key: stream)
            }
        }
        let streams = try scan(pattern: RedisStore.globEscaped(stream) + ":{*}", type: "stream").sorted()
        guard !streams.isEmpty else { return EventPage(events: [], next: nil) }
        return try events(streams: streams, query)
    }

    /// Up to `limit` open holds under `prefix` (`SCAN` on every primary, each hold read with
    /// `GET` on its slot), oldest first, and the clock of one primary. A request whose route
    /// spans slots has a hold in each: they are listed as one, its items in route order (read
    /// from its claim, which names each item's slot).
    public func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) {
        let now = try time(on: try anyPrimary())
        guard limit > 0 else { return (now, []) }
        var found: [HoldRecord] = []
        var byID: [String: Int] = [:]
        var parts: [String: [(slot: Int, items: [HoldRecord.Item])]] = [:]
        for key in try scan(pattern: RedisStore.globEscaped(prefix) + "*", type: "string") {
            let value = try command(["GET", key], key: key)
            guard !value.isNull, value.text != SpendLayout.holdVoid else { continue }
            guard let text = value.text, let record = HoldRecord(stored: text) else {
                throw .protocolError("corrupt hold record at key \(key)")
            }
            guard record.status == .open && record.expiresAt > now else { continue }
            parts[record.id, default: []].append((ClusterSlot.slot(forKey: key), record.items))
            if let index = byID[record.id] {
                found[index].createdAt = Swift.min(found[index].createdAt, record.createdAt)
            } else {
                byID[record.id] = found.count
                found.append(record)
            }
        }
        for (id, slots) in parts where slots.count > 1 {
            guard let index = byID[id] else { continue }
            found[index].items = try routeOrder(slots, holdKey: prefix + id, id: id)
        }
        found.sort { $0.createdAt < $1.createdAt }
        return (now, Array(found.prefix(limit)))
    }

    /// The items of one request's holds in several slots (`slots`: each slot's items, in route
    /// order within it) in route order, as its claim names each item's slot; in slot order when
    /// the claim is gone or unreadable.
    private func routeOrder(
        _ slots: [(slot: Int, items: [HoldRecord.Item])], holdKey: String, id: String
    ) throws(StoreError) -> [HoldRecord.Item] {
        let claimKey = KeySpace.holdClaim(holdKey, id: id)
        guard let text = try command(["GET", claimKey], key: claimKey).text,
            let claim = try? Self.claim(text, key: claimKey)
        else { return slots.flatMap(\.items) }
        var left = Dictionary(slots.map { ($0.slot, $0.items[...]) }, uniquingKeysWith: { $0 + $1 })
        var items: [HoldRecord.Item] = []
        for slot in claim.items {
            guard let next = left[slot]?.popFirst() else { continue }
            items.append(next)
        }
        for (_, rest) in left { items += rest }  // none, unless the claim and the holds disagree
        return items
    }

    /// Every key of `type` matching `pattern` on every primary (`SCAN`, at most
    /// `RedisStore.holdScanSteps` steps of `holdScanCount` keys per primary).
    func scan(pattern: String, type: String) throws(StoreError) -> [String] {
        if connection.map.coveredSlots == 0 { try connection.refresh() }
        var keys: [String] = []
        for node in connection.map.primaries {
            var cursor = "0"
            var steps = 0
            repeat {
                let reply = try connection.command(
                    ["SCAN", cursor, "MATCH", pattern, "COUNT", String(RedisStore.holdScanCount), "TYPE", type], on: node.address)
                if case .error(let message) = reply { throw .protocolError(message) }
                guard let parts = reply.elements, parts.count == 2, let next = parts[0].text, let entries = parts[1].elements else {
                    throw .protocolError("unexpected SCAN reply")
                }
                for entry in entries {
                    guard let key = entry.text else { throw .protocolError("unexpected SCAN reply") }
                    keys.append(key)
                }
                cursor = next
                steps += 1
            } while cursor != "0" && steps < RedisStore.holdScanSteps
        }
        return keys
    }

    /// A primary of the slot map (read first when there is none).
    func anyPrimary() throws(StoreError) -> RedisURL.HostPort {
        if connection.map.coveredSlots == 0 { try connection.refresh() }
        guard let node = connection.map.primaries.first else { throw .unavailable("the cluster's slot map names no primary") }
        return node.address
    }
}
