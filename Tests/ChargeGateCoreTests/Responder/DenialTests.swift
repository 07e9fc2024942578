import Testing

@testable import ChargeGateCore

/// Each denial renders itself: the status and body the client gets, the headers that carry it to
/// nginx, its shadow pass, and its metric labels, byte for byte as the snippets, docs and
/// dashboards read them.
@Suite struct DenialTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var denial: Denial
        var status: Int
        var body: String
        var label: String
        var shadowLabel: String
        /// The auth answer's headers after `X-Charge-Body`, under the policy `"p";q=5;w=60`.
        var rest: [String]

        var testDescription: String { denial.code }
    }

    static let rows: [Row] = [
        Row(
            denial: .outOfCharge(pool: "p", retryAfterMs: 1500), status: 429,
            body: #"{"error":"out_of_charge","retryAfterMs":1500,"poolId":"p"}"#, label: "out_of_charge",
            shadowLabel: "shadow_out_of_charge",
            rest: ["X-Charge-Retry-After: 2", #"X-Charge-RateLimit-Policy: "p";q=5;w=60"#, #"X-Charge-RateLimit: "p";r=0;t=2"#]),
        Row(
            denial: .insufficientCredits(pool: "c", available: 1, required: 3), status: 402,
            body: #"{"error":"insufficient_credits","poolId":"c","availableBalance":1,"required":3}"#, label: "insufficient_credits",
            shadowLabel: "shadow_insufficient_credits",
            rest: [#"X-Charge-RateLimit-Policy: "p";q=5;w=60"#, #"X-Charge-RateLimit: "c";r=1"#]),
        Row(
            denial: .idempotencyKeyReused, status: 422, body: #"{"error":"idempotency_key_reused"}"#, label: "idempotency_key_reused",
            shadowLabel: "shadow_idempotency_key_reused", rest: []),
        Row(
            denial: .serviceUnavailable, status: 503, body: #"{"error":"service_unavailable"}"#, label: "service_unavailable",
            shadowLabel: "shadow_unavailable", rest: []),
    ]

    static func lines(_ response: Response) -> [String] {
        response.headers.map { $0.name + ": " + $0.value }
    }

    @Test(arguments: rows)
    func rendersItsAnswers(_ row: Row) {
        let denial = row.denial
        #expect(denial.status == row.status)
        #expect(denial.body == row.body)
        #expect(denial.code == row.label)
        #expect(denial.metricLabel == row.label)
        #expect(denial.shadowMetricLabel == row.shadowLabel)

        let answer = denial.answer(policy: #""p";q=5;w=60"#)
        #expect(answer.status == 403)
        #expect(answer.body.isEmpty)
        #expect(
            Self.lines(answer)
                == ["X-Charge-Status: \(row.status)", "X-Accel-Expires: 0", "X-Charge-Body: \(row.body)"] + row.rest)
        // Without a policy, no RateLimit pair.
        #expect(Self.lines(denial.answer()).allSatisfy { !$0.hasPrefix("X-Charge-RateLimit") })
        #expect(Self.lines(denial.answer(edgeUntil: 42))[1] == "X-Accel-Expires: @42")

        #expect(Self.lines(denial.shadowPass) == ["X-Charge-Status: 204", "X-Accel-Expires: 0", "X-Charge-Shadow: \(row.label)"])
        #expect(denial.shadowPass.status == 204)

        #expect(denial.json.status == row.status)
        #expect(denial.json.body == row.body)
        #expect(Self.lines(denial.json) == ["Content-Type: application/json", "Cache-Control: no-store"])
    }
}
