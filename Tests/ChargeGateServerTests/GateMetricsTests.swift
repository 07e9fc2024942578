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
}
