import ChargeGateCore
import Testing

@testable import ChargeGateRedis

/// How a spend is cut into slots (`ClusterSpendPlan`), the slot tags, and the hold claim's
/// text and merge: no I/O.
@Suite struct ClusterSpendPlanTests {
    /// An item on `key`, per-subject when `subject`.
    static func item(_ key: String, subject: Bool = false) -> SpendItem {
        SpendItem(poolId: "p", key: key, max: 5, intervalMs: 1000, cost: 1, expires: subject)
    }

    static let context = EventContext(subject: "alice", route: "/api", method: "POST", uri: "/api/x", idempotencyKey: "")

    /// Keys and the steps they make (each step's items), the home last.
    @Test(arguments: [
        (["c:a:{alice}", "c:b:{alice}"], [true, true], [[0, 1]]),
        (["c:{shared}"], [false], [[0]]),
        (["c:{shared}", "c:a:{alice}"], [false, true], [[0], [1]]),
        (["c:a:{alice}", "c:{shared}"], [true, false], [[1], [0]]),
        (["c:{x}", "c:{shared}"], [false, false], [[1], [0]]),  // slot("shared") 2585 < slot("x") 16287: x is home (first item)
        (["c:{x}", "c:{x}"], [false, false], [[0, 1]]),
    ])
    func steps(keys: [String], subject: [Bool], expected: [[Int]]) {
        let request = SpendRequest(items: zip(keys, subject).map { Self.item($0, subject: $1) }, context: Self.context)
        let plan = ClusterSpendPlan(request)
        #expect(plan.steps.map(\.items) == expected)
        #expect(plan.isSingle == (expected.count == 1))
        for step in plan.steps { for place in step.items { #expect(ClusterSlot.slot(forKey: keys[place]) == step.slot) } }
    }

    @Test("singleSlot: the one slot of a spend whose keys share it, nil when they span slots, as the steps say")
    func singleSlot() {
        let idem = IdempotencyCheck(
            key: "c:#idem:{alice}:ab", fingerprint: "f", ttlMs: 1000, maxRepeats: 1, quotaKey: "c:#idemq:{alice}", maxRecords: 10)
        let cases: [(SpendRequest, Int?)] = [
            (
                SpendRequest(
                    items: [Self.item("c:a:{alice}", subject: true), Self.item("c:b:{alice}", subject: true)], context: Self.context),
                ClusterSlot.slot(forKey: "alice")
            ),
            (
                SpendRequest(items: [Self.item("c:a:{alice}", subject: true)], idempotency: idem, context: Self.context),
                ClusterSlot.slot(forKey: "alice")
            ),
            (SpendRequest(items: [Self.item("c:{shared}")], context: Self.context), ClusterSlot.slot(forKey: "shared")),
            (SpendRequest(items: [Self.item("c:{shared}")], idempotency: idem, context: Self.context), nil),
            (SpendRequest(items: [Self.item("c:{shared}"), Self.item("c:a:{alice}", subject: true)], context: Self.context), nil),
        ]
        for (request, expected) in cases {
            #expect(ClusterSpendPlan.singleSlot(of: request) == expected)
            let plan = ClusterSpendPlan(request)
            #expect(plan.isSingle == (expected != nil))
            if let expected { #expect(plan.home.slot == expected) }
        }
    }

    @Test("the idempotency record makes the subject's slot home even with global pools alone: an empty home step runs last")
    func idempotencyIsHome() {
        let request = SpendRequest(
            items: [Self.item("c:{shared}")],
            idempotency: IdempotencyCheck(
                key: "c:#idem:{alice}:ab", fingerprint: "f", ttlMs: 1000, maxRepeats: 1, quotaKey: "c:#idemq:{alice}", maxRecords: 10),
            context: Self.context)
        let plan = ClusterSpendPlan(request)
        #expect(plan.steps.map(\.items) == [[0], []])
        #expect(plan.home.slot == ClusterSlot.slot(forKey: "alice"))
    }

    @Test("every slot has a tag that hashes to it")
    func everySlotHasItsTag() {
        for slot in ClusterSlot.all {
            let tag = ClusterSlot.tag(forSlot: slot)
            #expect(!tag.isEmpty && tag.count <= 4)
            if ClusterSlot.slot(forKey: "x:{" + tag + "}:y") != slot { Issue.record("slot \(slot): tag \(tag) hashes elsewhere") }
        }
    }

    @Test("a claim names each item's slot in route order then the home; settlement puts the pools back in that order")
    func claimRoundTrip() throws {
        let request = SpendRequest(
            items: [Self.item("c:{shared}"), Self.item("c:a:{alice}", subject: true), Self.item("c:{x}")], context: Self.context)
        let plan = ClusterSpendPlan(request)
        let text = ClusterStore.claimText(request, plan)
        let s = ClusterSlot.slot(forKey: "shared")
        let a = ClusterSlot.slot(forKey: "alice")
        let x = ClusterSlot.slot(forKey: "x")
        #expect(text == "\(s),\(a),\(x)/\(a)")
        let claim = try ClusterStore.claim(text, key: "k")
        #expect(claim.items == [s, a, x] && claim.slots == [s, a, x])
        func settled(_ differences: [Int64]) -> SettleOutcome {
            .settled(SettleOutcome.Settled(resolution: .refund(.status), differences: differences, pools: [], now: 5))
        }
        let merged = ClusterStore.merged([x: settled([-3]), s: settled([-1]), a: settled([-2])], claim: claim)
        guard case .settled(let one) = merged else {
            Issue.record("not settled: \(merged)")
            return
        }
        #expect(one.differences == [-1, -2, -3], "route order, whatever order the slots answered in")
        #expect(ClusterStore.merged([s: .duplicate, a: .duplicate, x: .duplicate], claim: claim) == .duplicate)
        // nginx's void line midway through a spend: the first slot's hold refunded, the home slot
        // voided (its spend will be refused): the request is voided, not a refund of a hold that
        // was never opened whole.
        #expect(ClusterStore.merged([s: settled([-1]), a: .voided, x: .voided], claim: claim) == .voided)
    }

    @Test(arguments: ["", "1,2", "1/x", "16384/1", "-1/2", "1,,2/3", "1/2/3"])
    func corruptClaimsAreRefused(_ text: String) {
        #expect(throws: StoreError.protocolError("corrupt hold claim at key k")) { try ClusterStore.claim(text, key: "k") }
    }
}
