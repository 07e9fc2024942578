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
    /// The outcomes of several slots are one: settled when any settled (differences and pools
    /// slot after slot, in the spend's order), else the first slot's.
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
        guard let list = claimed.text else { throw .protocolError("unexpected hold claim at key \(claimKey)") }
        if list == Self.voidClaim { return .duplicate }
        let slots = try Self.slots(list, key: claimKey)
        var outcomes: [SettleOutcome] = []
        for slot in slots {
            let tag = ClusterSlot.tag(forSlot: slot)
            var placed = request
            placed.key = KeySpace.hold(request.key, id: request.id, tag: tag)
            placed.eventsKey = request.eventsKey.map { KeySpace.events($0, tag: tag) }
            outcomes.append(try settleOne(placed, slot: slot))
        }
        return Self.merged(outcomes)
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

    /// The slots a claim names (`S,S,...`, each 0 ..< 16384, at most one per pool and the home).
    static func slots(_ list: String, key: String) throws(StoreError) -> [Int] {
        var slots: [Int] = []
        for part in list.split(separator: ",", omittingEmptySubsequences: false) {
            guard let slot = Int(part), ClusterSlot.all.contains(slot), !slots.contains(slot), slots.count < 256 else {
                throw .protocolError("corrupt hold claim at key \(key)")
            }
            slots.append(slot)
        }
        return slots
    }

    /// Several slots' outcomes as one (see `settle(_:)`).
    static func merged(_ outcomes: [SettleOutcome]) -> SettleOutcome {
        var merged: SettleOutcome.Settled?
        for outcome in outcomes {
            guard case .settled(let settled) = outcome else { continue }
            guard var sum = merged else {
                merged = settled
                continue
            }
            sum.differences += settled.differences
            sum.pools += settled.pools
            if let now = settled.now { sum.now = Swift.max(sum.now ?? now, now) }
            merged = sum
        }
        if let merged { return .settled(merged) }
        return outcomes.first ?? .unknown
    }
}
