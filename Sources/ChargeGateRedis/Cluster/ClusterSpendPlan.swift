import ChargeGateCore

/// How one spend runs on a cluster: its items cut by slot into steps, in a fixed order (SPEC
/// §12, "A route whose pools live in different slots"). No I/O: the cluster store runs it.
///
/// The **home** slot is the subject's: where its idempotency record, its plan record or any of
/// its per-subject buckets live (all share the tag `{SUBJECT}`: `KeySpace`); a spend with none of
/// them is at home in its first item's slot. Every other slot is a step of its own, in ascending
/// slot order, and the home step runs **last**, with the idempotency check, the plan and the
/// hold void check: whatever can still say no without the buckets saying it (a repeat, a reused
/// key, a voided hold) says it after the other slots spent, and their give-back undoes them. A
/// spend whose keys all share one slot is one step: one script, as on a single node.
public struct ClusterSpendPlan: Sendable, Equatable {
    /// One script run: the items (their places in the route) whose buckets live in `slot`.
    public struct Step: Sendable, Equatable {
        /// The slot every key of the step lives in.
        public var slot: Int
        /// The items' places in the request (route order kept within the step).
        public var items: [Int]

        /// Creates a step.
        public init(slot: Int, items: [Int]) {
            self.slot = slot
            self.items = items
        }
    }

    /// The steps in the order they run; the last is the home step (possibly with no item: a
    /// route of global pools whose subject's records are checked at home).
    public let steps: [Step]

    /// The plan for `request`, each key's slot given by `slot`.
    public init(_ request: SpendRequest, slot: (String) -> Int = { ClusterSlot.slot(forKey: $0) }) {
        let home: Int
        if let idempotency = request.idempotency {
            home = slot(idempotency.key)
        } else if let plan = request.plan {
            home = slot(plan.recordKey)
        } else if let item = request.items.first(where: \.expires) ?? request.items.first {
            home = slot(item.key)
        } else {
            home = 0
        }
        // The common case, every bucket in the home slot: one step, no table.
        var slots: [Int] = []
        slots.reserveCapacity(request.items.count)
        for item in request.items { slots.append(slot(item.key)) }
        if slots.allSatisfy({ $0 == home }) {
            self.steps = [Step(slot: home, items: Array(slots.indices))]
            return
        }
        var bySlot: [Int: [Int]] = [:]
        for (index, itemSlot) in slots.enumerated() { bySlot[itemSlot, default: []].append(index) }
        var steps = bySlot.keys.filter { $0 != home }.sorted().map { Step(slot: $0, items: bySlot[$0] ?? []) }
        steps.append(Step(slot: home, items: bySlot[home] ?? []))
        self.steps = steps
    }

    /// The slot every key of `request` lives in (its buckets, and the subject's records when it
    /// has them), or nil when they span slots: the common case, decided without building the
    /// steps (each key's slot computed once).
    public static func singleSlot(of request: SpendRequest, slot: (String) -> Int = { ClusterSlot.slot(forKey: $0) }) -> Int? {
        var common: Int?
        for item in request.items {
            let itemSlot = slot(item.key)
            if let common, common != itemSlot { return nil }
            common = itemSlot
        }
        let home: Int
        if let idempotency = request.idempotency {
            home = slot(idempotency.key)
        } else if let plan = request.plan {
            home = slot(plan.recordKey)
        } else {
            return common ?? 0
        }
        guard common == nil || common == home else { return nil }
        return home
    }

    /// The home step (the last).
    public var home: Step { steps[steps.count - 1] }

    /// Whether the spend runs as one script (every key in one slot).
    public var isSingle: Bool { steps.count == 1 }
}
