import ChargeGateCore

/// Spends on a cluster: one script when every key shares a slot, else slot by slot
/// (`ClusterSpendPlan`), with the claim a settled spend makes first.
extension ClusterStore {
    /// Spends every item or none, to the client (SPEC §12):
    /// - A settled route first claims its hold id (`SET prefix#holdref:{ID} SLOTS NX PX ttl GET`,
    ///   in the id's slot): nginx's line for a request that never got its answer carries the id
    ///   alone, and voids it there (`+Settle`). An id voided first is answered `holdVoided`.
    /// - Every key in one slot: one script, as `RedisStore.charge` runs it (the event and the
    ///   hold in that slot).
    /// - Else each slot in `ClusterSpendPlan`'s order, each but the last recording a hold (the
    ///   route's, or a step hold: `KeySpace.stepHold`); a later slot's no, a failure, or the home
    ///   step's repeat answer gives back every earlier slot (its hold settled as the app's
    ///   refund: §11's give-back, with its events). A responder that dies between the steps
    ///   leaves the earlier slots spent until their holds lapse (counted in the events: a spend
    ///   with a hold and no settlement).
    /// - With `replicaWait`, once every step is allowed, `WAIT` on each primary written on.
    public func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        if request.hold == nil, let slot = ClusterSpendPlan.singleSlot(of: request) {
            // The common case: every key in one slot, no hold to claim: one script, the event
            // stream placed in the slot as the command is written.
            let tag = ClusterSlot.tag(forSlot: slot)
            let reply = try runCharge(slot: slot) { (command: inout RESPCommand) throws(StoreError) in
                try RedisStore.appendSpend(request, to: &command, streamTag: tag)
            }
            let node = reply.node
            let result = try RedisStore.spendResult(reply.value, for: request)
            guard replicaWait != nil else { return result }
            return try waited(result, on: [node])
        }
        let plan = ClusterSpendPlan(request)
        if let hold = request.hold, let voided = try claim(hold, claim: Self.claimText(request, plan)) {
            return voided
        }
        var nodes: [RedisURL.HostPort] = []
        let result: SpendResult
        if plan.isSingle {
            let step = plan.home
            let part = placed(request, slot: step.slot)
            let (reply, node) = try spend(part, slot: step.slot)
            result = try RedisStore.spendResult(reply, for: part)
            nodes.append(node)
        } else {
            counts.multiSlotSpends += 1
            result = try spendInSteps(request, plan, nodes: &nodes)
        }
        return try waited(result, on: nodes)
    }

    /// `result` once every node of `nodes` (the primaries it was written on) has had it
    /// acknowledged by `replicaWait`'s replicas (`WAIT`); fewer in time is `.unavailable`. A
    /// result that wrote nothing is returned as it is.
    private func waited(_ result: SpendResult, on nodes: [RedisURL.HostPort]) throws(StoreError) -> SpendResult {
        guard let replicaWait else { return result }
        switch result.outcome {
        case .allowed, .repeated:
            for node in Set(nodes) {
                let acknowledged = try connection.waitForReplicas(replicaWait.replicas, timeoutMs: replicaWait.timeoutMs, on: node)
                if acknowledged < replicaWait.replicas {
                    observer?.replicasMissing(acknowledged: acknowledged, wanted: replicaWait.replicas)
                    let noun = replicaWait.replicas == 1 ? "replica" : "replicas"
                    throw .unavailable(
                        "spend not acknowledged by \(replicaWait.replicas) \(noun) of \(node) within \(replicaWait.timeoutMs) ms (\(acknowledged) did)"
                    )
                }
            }
            return result
        case .keyReused, .holdVoided, .outOfCharge, .insufficientCredits:
            return result
        }
    }

    /// The event stream `base` placed in `slot` (`KeySpace.events(_:tag:)`).
    func events(_ base: String, slot: Int) -> String {
        KeySpace.events(base, tag: ClusterSlot.tag(forSlot: slot))
    }

    /// `request` with its event stream and hold placed in `slot`.
    func placed(_ request: SpendRequest, slot: Int) -> SpendRequest {
        let tag = ClusterSlot.tag(forSlot: slot)
        var placed = request
        placed.eventsKey = request.eventsKey.map { events($0, slot: slot) }
        if let hold = request.hold {
            placed.hold = HoldRequest(
                key: KeySpace.hold(hold.key, id: hold.id, tag: tag), id: hold.id, policy: hold.policy, metered: hold.metered,
                windowMs: hold.windowMs)
        }
        return placed
    }

    /// Runs the spend script for `request` (every key in `slot`); its reply and the node.
    /// `probe`: op `probe`, the plan and the idempotency decision alone.
    private func spend(_ request: SpendRequest, slot: Int, probe: Bool = false) throws(StoreError) -> (RedisValue, RedisURL.HostPort) {
        let reply = try runCharge(slot: slot) { (command: inout RESPCommand) throws(StoreError) in
            try RedisStore.appendSpend(request, to: &command, probe: probe)
        }
        return (reply.value, reply.node)
    }

    /// Asks the home slot whether `request`'s idempotency key answers a repeat (op `probe`:
    /// nothing written unless it does, a repeat then counted as the spend would count it); nil
    /// when the key is to be decided afresh, else the answer (`repeated` or `keyReused`).
    private func probe(_ request: SpendRequest, home: Int, nodes: inout [RedisURL.HostPort]) throws(StoreError) -> SpendResult? {
        var part = SpendRequest(items: [], idempotency: request.idempotency, context: request.context)
        if let choice = request.plan {
            part.plan = PlanChoice(
                recordKey: choice.recordKey, ids: choice.ids, limits: choice.limits.map { _ in [] }, fallback: choice.fallback,
                defaultPlan: choice.defaultPlan)
        }
        let (reply, node) = try spend(part, slot: home, probe: true)
        if let parts = reply.elements, parts.count > SpendLayout.Head.tag.index,
            parts[SpendLayout.Head.tag.index].text == SpendLayout.Tag.fresh.rawValue
        {
            return nil
        }
        nodes.append(node)  // a repeat was counted there: WAIT covers it
        return try RedisStore.spendResult(reply, for: part)
    }

    /// What a claim holds: each item's slot in route order, then `/` and the home slot
    /// (`S,S,.../H`): where the holds are, and how to put the pools of their settlements back
    /// in route order.
    static func claimText(_ request: SpendRequest, _ plan: ClusterSpendPlan) -> String {
        var slots = [Int](repeating: plan.home.slot, count: request.items.count)
        for step in plan.steps { for place in step.items where slots.indices.contains(place) { slots[place] = step.slot } }
        return slots.map(String.init).joined(separator: ",") + "/" + String(plan.home.slot)
    }

    /// Claims hold id `hold.id` with `claim` (`claimText`); nil when the spend may go on
    /// (claimed now, or by the same request before), else the `holdVoided` answer.
    private func claim(_ hold: HoldRequest, claim text: String) throws(StoreError) -> SpendResult? {
        let key = KeySpace.holdClaim(hold.key, id: hold.id)
        let reply = try connection.command(["SET", key, text, "NX", "PX", String(Swift.max(1, hold.keyTtlMs)), "GET"], keys: [key])
        if case .error(let message) = reply.value { throw .protocolError(message) }
        guard reply.value.text == Self.voidClaim else { return nil }
        return SpendResult(.holdVoided, now: try time(on: reply.node))
    }

    /// The claim's value once nginx's line voided the id.
    static let voidClaim = "void"

    /// The spend of a multi-slot `request`, step by step (`charge(_:)`).
    private func spendInSteps(
        _ request: SpendRequest, _ plan: ClusterSpendPlan, nodes: inout [RedisURL.HostPort]
    ) throws(StoreError) -> SpendResult {
        // A repeat is answered before any slot spends (the memory store checks the key first too);
        // a key decided afresh is decided again, atomically, by the home step.
        if request.idempotency != nil, let answer = try probe(request, home: plan.home.slot, nodes: &nodes) {
            return answer
        }
        // The plan applies to every slot's items: read once here, resolved as the script
        // resolves it; the home step resolves it again from the same record, in its script.
        var planned = request.items
        var resolved: PlanUse?
        if let choice = request.plan, plan.steps.count > 1 {
            let use = choice.resolve(try self.plan(at: choice.recordKey))
            resolved = use
            planned = choice.apply(use, to: request.items)
        }
        var results = [ItemResult?](repeating: nil, count: request.items.count)
        var spent: [(hold: SettleRequest, slot: Int)] = []
        var stepID: String?
        for (index, step) in plan.steps.enumerated() {
            let isHome = index == plan.steps.count - 1
            let tag = ClusterSlot.tag(forSlot: step.slot)
            var part = SpendRequest(
                items: step.items.map { isHome ? request.items[$0] : planned[$0] },
                eventsKey: request.eventsKey.map { events($0, slot: step.slot) }, eventsMaxLen: request.eventsMaxLen,
                context: request.context)
            if isHome {
                part.idempotency = request.idempotency
                if let choice = request.plan {
                    part.plan = PlanChoice(
                        recordKey: choice.recordKey, ids: choice.ids,
                        limits: choice.limits.map { row in
                            step.items.map { row.indices.contains($0) ? row[$0] : PlanChoice.Limit(max: nil, intervalMs: nil) }
                        },
                        fallback: choice.fallback, defaultPlan: choice.defaultPlan)
                }
            } else if let choice = request.plan, let use = resolved, choice.ids.indices.contains(use.index) {
                // Outside the subject's slot the plan resolved above goes as a table of one plan
                // whose record never exists, so that the step's events and hold name it (its
                // limits are the items' own, already that plan's).
                part.plan = PlanChoice(
                    recordKey: keys.absentPlan(tag: tag), ids: [choice.ids[use.index]],
                    limits: [part.items.map { PlanChoice.Limit(max: $0.max, intervalMs: $0.intervalMs) }], fallback: 0, defaultPlan: 0)
            }
            if let hold = request.hold {
                part.hold = HoldRequest(
                    key: KeySpace.hold(hold.key, id: hold.id, tag: tag), id: hold.id, policy: hold.policy,
                    metered: step.items.map { hold.metered.indices.contains($0) && hold.metered[$0] }, windowMs: hold.windowMs)
            } else if !isHome {
                let id = stepID ?? Self.newStepID()
                stepID = id
                part.hold = HoldRequest(
                    key: keys.stepHold(id: id, tag: tag), id: id, policy: SettlePolicy(), metered: step.items.map { _ in false },
                    windowMs: Self.stepHoldWindowMs)
            }
            let outcome: SpendResult
            do throws(StoreError) {
                let (reply, node) = try spend(part, slot: step.slot)
                nodes.append(node)
                outcome = try RedisStore.spendResult(reply, for: part)
            } catch {
                giveBack(spent)
                throw error
            }
            switch outcome.outcome {
            case .allowed(let items):
                for (place, item) in zip(step.items, items) { results[place] = item }
                if !isHome, let hold = part.hold {
                    spent.append(
                        (
                            SettleRequest(
                                key: hold.key, id: hold.id, report: .app(amount: nil), eventsKey: part.eventsKey,
                                eventsMaxLen: request.eventsMaxLen, reportsPools: false), step.slot
                        ))
                }
                if isHome {
                    return SpendResult(
                        .allowed(results.map { $0 ?? ItemResult(remaining: 0, fullAt: nil) }), now: outcome.now, plan: outcome.plan)
                }
            case .outOfCharge(let item, let retryAfterMs):
                giveBack(spent)
                let place = step.items.indices.contains(item) ? step.items[item] : 0
                let denial = SpendResult(.outOfCharge(item: place, retryAfterMs: retryAfterMs), now: outcome.now, plan: outcome.plan)
                return routeDenial(denial, later: plan.steps[(index + 1)...], planned: planned)
            case .insufficientCredits(let item, let available, let required):
                giveBack(spent)
                let place = step.items.indices.contains(item) ? step.items[item] : 0
                let denial = SpendResult(
                    .insufficientCredits(item: place, available: available, required: required), now: outcome.now, plan: outcome.plan)
                return routeDenial(denial, later: plan.steps[(index + 1)...], planned: planned)
            case .repeated, .keyReused, .holdVoided:
                giveBack(spent)
                return outcome
            }
        }
        throw .protocolError("a cluster spend without a home step")
    }

    /// The route's denial as one node decides it (`Bucket.plan`): a pool that never refills
    /// (402) wins, else the longest wait, the first in route order among equals. The slot that
    /// said no (`denial`, its item a place in the route) could not see the slots after it
    /// (`later`, not run): their buckets are read (a peek per slot, nothing written) and decided
    /// at the denying slot's clock. A read that fails keeps `denial`.
    private func routeDenial(_ denial: SpendResult, later: ArraySlice<ClusterSpendPlan.Step>, planned: [SpendItem]) -> SpendResult {
        let places = later.flatMap(\.items).sorted()
        guard !places.isEmpty, places.allSatisfy(planned.indices.contains) else { return denial }
        let states: [BucketState?]
        do throws(StoreError) {
            states = try peek(places.map { planned[$0].key }).states
        } catch {
            return denial
        }
        guard states.count == places.count else { return denial }
        let decided = Bucket.plan(places.map { planned[$0] }, states: states, now: denial.now).outcome
        switch (denial.outcome, decided) {
        case (.insufficientCredits(let item, _, _), .insufficientCredits(let other, let available, let required)) where places[other] < item:
            return SpendResult(
                .insufficientCredits(item: places[other], available: available, required: required), now: denial.now, plan: denial.plan)
        case (.insufficientCredits, _):
            return denial
        case (_, .insufficientCredits(let other, let available, let required)):
            return SpendResult(
                .insufficientCredits(item: places[other], available: available, required: required), now: denial.now, plan: denial.plan)
        case (.outOfCharge(let item, let wait), .outOfCharge(let other, let otherWait))
        where otherWait > wait || (otherWait == wait && places[other] < item):
            return SpendResult(.outOfCharge(item: places[other], retryAfterMs: otherWait), now: denial.now, plan: denial.plan)
        default:
            return denial
        }
    }

    /// Gives back each earlier slot's charges: its hold settled as the app's refund (one
    /// script each; a failure is counted and leaves that slot spent until its hold lapses).
    func giveBack(_ spent: [(hold: SettleRequest, slot: Int)]) {
        for (hold, slot) in spent.reversed() {
            do throws(StoreError) {
                _ = try settleOne(hold, slot: slot)
                counts.givenBack += 1
                observer?.clusterGiveBack(failed: false)
            } catch {
                counts.giveBackFailures += 1
                observer?.clusterGiveBack(failed: true)
            }
        }
    }

    /// A fresh id for the step holds of one spend: `s` and up to 24 hex digits (96 random bits).
    static func newStepID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt32
        let text = String(high, radix: 16) + String(low, radix: 16)
        return "s" + text
    }

    /// Redis's clock on `node` (`TIME`) in epoch ms.
    func time(on node: RedisURL.HostPort) throws(StoreError) -> Int64 {
        try RedisStore.clock(try connection.command(["TIME"], on: node))
    }
}
