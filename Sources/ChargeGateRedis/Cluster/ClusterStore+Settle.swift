import ChargeGateCore

/// Settlement on a cluster: a request's holds are found through the claim its spend made
/// (`KeySpace.holdClaim`: the slots its holds are in), each settled by settle.lua in its slot.
extension ClusterStore {
    /// Settles the holds of `request.id` (SPEC §11 on a cluster):
    /// - nginx's line saying nothing was delivered voids the id where it is claimed (`SET
    ///   prefix#holdref:{ID} void NX PX ttl GET`): when no spend claimed it yet, the spend that
    ///   comes later is refused (`voided`); when one did, each of its slots is settled with the
    ///   line, which voids a hold its spend has not written yet (settle.lua) and refunds one it
    ///   has.
    /// - Any other report reads the claim (`unknown` without one) and settles each slot's hold.
    /// The outcomes of several slots are one: `voided` when a slot was voided (the spend,
    /// midway, is then refused), else settled when any settled (the settled slots' differences
    /// and pools in route order), else the first slot's. A failure in a later slot
    /// is thrown after the earlier ones settled: the retry finds those `duplicate` and settles
    /// the rest.
    public func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome {
        let claimKey = KeySpace.holdClaim(request.key, id: request.id)
        let claimed: RedisValue
        if request.voids {
            claimed = try command(
                ["SET", claimKey, Self.voidClaim, "NX", "PX", String(Swift.max(1, request.voidTtlMs)), "GET"], key: claimKey)
            if claimed.isNull { return .voided }
        } else {
            claimed = try command(["GET", claimKey], key: claimKey)
            if claimed.isNull { return .unknown }
        }
        guard let text = claimed.text else { throw .protocolError("unexpected hold claim at key \(claimKey)") }
        if text == Self.voidClaim { return .duplicate }
        let claim = try Self.claim(text, key: claimKey)
        var outcomes: [Int: SettleOutcome] = [:]
        for slot in claim.slots {
            let tag = ClusterSlot.tag(forSlot: slot)
            var placed = request
            placed.key = KeySpace.hold(request.key, id: request.id, tag: tag)
            placed.eventsKey = request.eventsKey.map { events($0, slot: slot) }
            outcomes[slot] = try settleOne(placed, slot: slot)
        }
        return Self.merged(outcomes, claim: claim)
    }

    /// A claim read back: each item's slot in route order, and the slots to settle (each once:
    /// the items' in route order, then the home slot).
    struct Claim: Equatable {
        var items: [Int]
        var slots: [Int]
    }

    /// Settles one hold whose keys (hold, stream) are placed in `slot`: one run of settle.lua.
    func settleOne(_ request: SettleRequest, slot: Int) throws(StoreError) -> SettleOutcome {
        let reply = try run(sha: Self.settleSHA, source: Self.settleSource, slot: slot) { (command: inout RESPCommand) throws(StoreError) in
            RedisStore.appendSettle([request][...], to: &command)
        }
        guard let replies = reply.value.elements, replies.count == 1 else { throw .protocolError("unexpected settle reply") }
        if case .error(let message) = replies[0] { throw .protocolError(message) }
        return try RedisStore.settleResult(replies[0], pools: request.reportsPools)
    }

    /// The claim `text` (`S,S,.../H`: `ClusterStore.claimText`), each slot 0 ..< 16384, at
    /// most 256 items; anything else is a `.protocolError` naming `key`.
    static func claim(_ text: String, key: String) throws(StoreError) -> Claim {
        let halves = text.split(separator: "/", omittingEmptySubsequences: false)
        func slot(_ part: Substring) throws(StoreError) -> Int {
            guard let slot = Int(part), ClusterSlot.all.contains(slot) else { throw .protocolError("corrupt hold claim at key \(key)") }
            return slot
        }
        guard halves.count == 2 else { throw .protocolError("corrupt hold claim at key \(key)") }
        let home = try slot(halves[1])
        var items: [Int] = []
        if !halves[0].isEmpty {
            for part in halves[0].split(separator: ",", omittingEmptySubsequences: false) {
                guard items.count < 256 else { throw .protocolError("corrupt hold claim at key \(key)") }
                items.append(try slot(part))
            }
        }
        var slots: [Int] = []
        for slot in items + [home] where !slots.contains(slot) { slots.append(slot) }
        return Claim(items: items, slots: slots)
    }

    /// Each slot's outcome as one (see `settle(_:)`): the settled slots' differences and pools
    /// put back in route order (each slot's hold lists its items in route order).
    static func merged(_ outcomes: [Int: SettleOutcome], claim: Claim) -> SettleOutcome {
        // A slot voided: the spend had not reached it, and now never will (it is refused there
        // and gives the earlier slots back, which this settlement may already have refunded):
        // nothing is charged for the request, as when the line comes before the spend.
        if outcomes.values.contains(.voided) { return .voided }
        var settled: [Int: SettleOutcome.Settled] = [:]
        for (slot, outcome) in outcomes { if case .settled(let one) = outcome { settled[slot] = one } }
        guard let first = claim.slots.lazy.compactMap({ settled[$0] }).first else {
            return claim.slots.first.flatMap { outcomes[$0] } ?? .unknown
        }
        var merged = SettleOutcome.Settled(resolution: first.resolution, differences: [], pools: [], now: first.now)
        var taken: [Int: Int] = [:]
        for slot in claim.items {
            guard let one = settled[slot] else { continue }
            let index = taken[slot, default: 0]
            taken[slot] = index + 1
            if one.differences.indices.contains(index) { merged.differences.append(one.differences[index]) }
            if one.pools.indices.contains(index) { merged.pools.append(one.pools[index]) }
            if let now = one.now { merged.now = Swift.max(merged.now ?? now, now) }
        }
        return .settled(merged)
    }
}
