import ChargeGateCore
import Testing

@testable import ChargeGateServer

/// `charge_gate_decisions_total` counts each decision under its denial's label, a shadow route's
/// passed denial under the shadow label, and a 429 answered from a worker's memory also in
/// `charge_gate_denied_from_memory_total`.
@Suite struct GateMetricsTests {
    @Test(
        arguments: [
            (Response.Outcome.allowed(pools: ["a", "b"]), [#"pool="a",outcome="allowed""#, #"pool="b",outcome="allowed""#]),
            (.denied(.outOfCharge(pool: "a", retryAfterMs: 5), pools: ["a"], fromMemory: false), [#"pool="a",outcome="out_of_charge""#]),
            (
                .denied(.insufficientCredits(pool: "c", available: 0, required: 1), pools: ["c"], fromMemory: false),
                [#"pool="c",outcome="insufficient_credits""#]
            ),
            (.denied(.idempotencyKeyReused, pools: ["a", "b"], fromMemory: false), [#"pool="a",outcome="idempotency_key_reused""#]),
            (.denied(.serviceUnavailable, pools: ["a", "b"], fromMemory: false), [#"pool="b",outcome="service_unavailable""#]),
            (
                .shadow(.denied(.outOfCharge(pool: "a", retryAfterMs: 5), pools: ["a"], fromMemory: false)),
                [#"pool="a",outcome="shadow_out_of_charge""#]
            ),
            (
                .shadow(.denied(.insufficientCredits(pool: "c", available: 0, required: 1), pools: ["c"], fromMemory: false)),
                [#"pool="c",outcome="shadow_insufficient_credits""#]
            ),
            (
                .shadow(.denied(.idempotencyKeyReused, pools: ["a"], fromMemory: false)),
                [#"pool="a",outcome="shadow_idempotency_key_reused""#]
            ),
            (.shadow(.denied(.serviceUnavailable, pools: ["a", "b"], fromMemory: false)), [#"pool="b",outcome="shadow_unavailable""#]),
        ] as [(Response.Outcome, [String])])
    func eachDecisionUnderItsLabel(outcome: Response.Outcome, series: [String]) {
        let metrics = GateMetrics()
        metrics.workerCounters().record(outcome)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        for labels in series {
            #expect(text.contains("charge_gate_decisions_total{\(labels)} 1"), "\(labels) in\n\(text)")
        }
        #expect(!text.contains("charge_gate_denied_from_memory_total{"))
    }

    @Test func a429FromMemoryIsAlsoCountedAsSuch() {
        let metrics = GateMetrics()
        let counters = metrics.workerCounters()
        counters.record(.denied(.outOfCharge(pool: "a", retryAfterMs: 5), pools: ["a"], fromMemory: true))
        counters.record(.denied(.outOfCharge(pool: "a", retryAfterMs: 4), pools: ["a"], fromMemory: true))
        counters.record(.denied(.outOfCharge(pool: "a", retryAfterMs: 3), pools: ["a"], fromMemory: false))
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"charge_gate_decisions_total{pool="a",outcome="out_of_charge"} 3"#), "\(text)")
        #expect(text.contains(#"charge_gate_denied_from_memory_total{pool="a"} 2"#), "\(text)")
    }

    @Test func anAllowThatRecordedAHoldCountsAsOpened() {
        let metrics = GateMetrics()
        let counters = metrics.workerCounters()
        counters.record(.allowed(pools: ["a"], held: true))
        counters.record(.allowed(pools: ["a"], held: true))
        counters.record(.allowed(pools: ["a"]))
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"charge_gate_holds_total{outcome="opened"} 2"#), "\(text)")
        #expect(text.contains(#"charge_gate_decisions_total{pool="a",outcome="allowed"} 3"#), "\(text)")
    }

    /// Every settlement series is there from the start, at 0 (a rate over it works before the
    /// first line), and each settle outcome counts under its label.
    @Test func theSettlementSeriesStartAtZeroAndCountEachOutcome() {
        let metrics = GateMetrics()
        var text = String(decoding: metrics.exposition(), as: UTF8.self)
        for result in ["accepted", "too_long", "malformed", "bad_field", "auth_location", "dropped"] {
            #expect(text.contains(#"charge_gate_settle_lines_total{result="\#(result)"} 0"#), "\(result)")
        }
        for outcome in GateMetrics.holdOutcomes {
            #expect(text.contains(#"charge_gate_holds_total{outcome="\#(outcome)"} 0"#), "\(outcome)")
        }
        #expect(text.contains("charge_gate_settle_queue_lines 0"))
        metrics.holdSettled(.expired)
        metrics.holdSettled(.settled(.init(resolution: .amount(5), differences: [3], pools: [])))
        metrics.holdSettled(.settled(.init(resolution: .amount(5), differences: [-3], pools: [])))
        metrics.settleLines(.malformed, count: 4)
        metrics.settleLines(GateMetrics.SettleLineResult(.authLocation))
        metrics.settleQueue(length: 7)
        text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"charge_gate_holds_total{outcome="expired"} 1"#))
        #expect(text.contains(#"charge_gate_holds_total{outcome="overage"} 1"#))
        #expect(text.contains(#"charge_gate_holds_total{outcome="amount"} 1"#))
        #expect(text.contains(#"charge_gate_settle_lines_total{result="malformed"} 4"#))
        #expect(text.contains(#"charge_gate_settle_lines_total{result="auth_location"} 1"#))
        #expect(text.contains("charge_gate_settle_queue_lines 7"))
    }
}
