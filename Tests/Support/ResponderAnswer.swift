import ChargeGateCore

/// The answer a step must get. Waits and times are masked (`*`, see `MaskedAnswer`) and must
/// be positive (a RateLimit `t` at least 0).
public enum ResponderAnswer: Sendable {
    /// A pass that spent: 204, `X-Charge-Status: 204`, and this `X-Charge-RateLimit` state
    /// (masked: `"pool";r=1;t=*`).
    case allowed(String)
    /// A pass that spent nothing (an idempotent repeat): 204 with no RateLimit pair.
    case repeated
    /// A pass that matched no route: 204, `X-Charge-Status: unrouted`.
    case unrouted
    /// A 429 for `pool`: 403, its body with the wait masked, and an `X-Charge-Retry-After`.
    case outOfCharge(String)
    /// A 402 for `pool`: 403 and its exact body, no `X-Charge-Retry-After`.
    case insufficientCredits(String, available: Int64, required: Int64)
    /// A 422: the idempotency key was first used for another request.
    case keyReused
    /// An endpoint's answer: this status and this body (masked).
    case json(Int, String)

    /// How `answer` differs from this one (empty when it matches).
    func mismatches(_ answer: MaskedAnswer) -> [String] {
        var wrong: [String] = []
        func want(_ what: String, _ expected: String?, _ got: String?) {
            if expected != got { wrong.append("\(what) should be \(expected ?? "absent")") }
        }
        let status = WireProtocol.Header.status
        let body = WireProtocol.Header.body
        let retryAfter = WireProtocol.Header.retryAfter
        switch self {
        case .allowed(let state):
            want("the HTTP status", "204", String(answer.status))
            want(status, "204", answer.header(status))
            want(WireProtocol.Header.rateLimit, state, answer.header(WireProtocol.Header.rateLimit))
        case .repeated:
            want("the HTTP status", "204", String(answer.status))
            want("the headers", "X-Charge-Status: 204; X-Accel-Expires: 0", answer.headers.joined(separator: "; "))
        case .unrouted:
            want("the HTTP status", "204", String(answer.status))
            want(status, WireProtocol.Header.unroutedStatus, answer.header(status))
        case .outOfCharge(let pool):
            want("the HTTP status", "403", String(answer.status))
            want(status, "429", answer.header(status))
            want(body, #"{"error":"out_of_charge","retryAfterMs":*,"poolId":"\#(pool)"}"#, answer.header(body))
            want(retryAfter, "*", answer.header(retryAfter))
        case .insufficientCredits(let pool, let available, let required):
            want("the HTTP status", "403", String(answer.status))
            want(status, "402", answer.header(status))
            want(
                body, #"{"error":"insufficient_credits","poolId":"\#(pool)","availableBalance":\#(available),"required":\#(required)}"#,
                answer.header(body))
            want(retryAfter, nil, answer.header(retryAfter))
        case .keyReused:
            want("the HTTP status", "403", String(answer.status))
            want(status, "422", answer.header(status))
            want(body, #"{"error":"idempotency_key_reused"}"#, answer.header(body))
        case .json(let code, let json):
            want("the HTTP status", String(code), String(answer.status))
            want("the body", json, answer.body)
        }
        for time in answer.times where time.value < (time.name == "t" ? 0 : 1) {
            wrong.append("\(time.name) should be positive, is \(time.value)")
        }
        return wrong
    }
}
