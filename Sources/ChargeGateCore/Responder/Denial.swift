/// A request the gate refuses, by its one name, and everything that name renders: the HTTP
/// status and JSON body the client gets (carried to nginx in `X-Charge-Status` and
/// `X-Charge-Body`), the `X-Charge-Shadow` value when a shadow route passes it instead, and the
/// outcome label metrics count it under.
public enum Denial: Sendable, Equatable {
    /// A recharging pool lacks charges: 429, `pool` the one with the longest wait, which is
    /// `retryAfterMs` (never negative). `upgradeUrl`: where to upgrade, when `pool` is a
    /// per-subject period pool used up for the period (`Gate.upgradeUrl(denial:pool:period:plan:)`).
    case outOfCharge(pool: String, retryAfterMs: Int64, upgradeUrl: String? = nil)
    /// A pool that never refills lacks charges: 402 (waiting would not help). `available` is
    /// what it holds, `required` what the request costs, `upgradeUrl` where to upgrade (or buy
    /// more) when `pool` is per subject.
    case insufficientCredits(pool: String, available: Int64, required: Int64, upgradeUrl: String? = nil)
    /// The idempotency key was first used for another request: 422, nothing spent.
    case idempotencyKeyReused
    /// The store could not answer, or the request cannot be decided: 503, nothing spent.
    case serviceUnavailable

    /// Its name: the body's `error`, a shadow pass's `X-Charge-Shadow`, the log line's
    /// `denied NAME`, and the outcome label of `charge_gate_decisions_total`.
    public var code: String {
        switch self {
        case .outOfCharge: "out_of_charge"
        case .insufficientCredits: "insufficient_credits"
        case .idempotencyKeyReused: "idempotency_key_reused"
        case .serviceUnavailable: "service_unavailable"
        }
    }

    /// The HTTP status the client gets (in `X-Charge-Status` for nginx to answer with).
    public var status: Int {
        switch self {
        case .outOfCharge: 429
        case .insufficientCredits: 402
        case .idempotencyKeyReused: 422
        case .serviceUnavailable: 503
        }
    }

    /// The JSON body the client gets: `{"error":code}`, with the wait and the pool of a 429,
    /// the pool, its balance and the cost of a 402, and last the `upgradeUrl` of either when it
    /// has one.
    public var body: String {
        var w = JSONWriter()
        w.beginObject()
        w.field("error", code)
        switch self {
        case .outOfCharge(let pool, let wait, let upgradeUrl):
            w.field("retryAfterMs", wait)
            w.field("poolId", pool)
            if let upgradeUrl { w.field("upgradeUrl", upgradeUrl) }
        case .insufficientCredits(let pool, let available, let required, let upgradeUrl):
            w.field("poolId", pool)
            w.field("availableBalance", available)
            w.field("required", required)
            if let upgradeUrl { w.field("upgradeUrl", upgradeUrl) }
        case .idempotencyKeyReused, .serviceUnavailable:
            break
        }
        w.endObject()
        return w.text
    }

    /// The pool it names (a 429's or a 402's); nil when it names none.
    public var pool: String? {
        switch self {
        case .outOfCharge(let pool, _, _), .insufficientCredits(let pool, _, _, _): pool
        case .idempotencyKeyReused, .serviceUnavailable: nil
        }
    }

    /// Where to upgrade, as its body says (a 429's or a 402's); nil when it says nothing.
    public var upgradeUrl: String? {
        switch self {
        case .outOfCharge(_, _, let upgradeUrl), .insufficientCredits(_, _, _, let upgradeUrl): upgradeUrl
        case .idempotencyKeyReused, .serviceUnavailable: nil
        }
    }

    /// The outcome label of `charge_gate_decisions_total` when it is answered.
    public var metricLabel: String { code }

    /// The outcome label when a shadow route passes it instead: `shadow_` and its name, and
    /// `shadow_unavailable` for a store outage.
    public var shadowMetricLabel: String {
        self == .serviceUnavailable ? "shadow_unavailable" : "shadow_" + code
    }

    /// The answer to the auth subrequest that carries it to nginx: 403 with its status and body,
    /// `X-Charge-Retry-After` (seconds) for a 429, and, when the route has a `RateLimit-Policy`,
    /// that policy and the pool's state for a 429 or a 402. `X-Accel-Expires` is `@edgeUntil`
    /// when nginx may answer it from its own cache until then, else 0 (never cached).
    public func answer(policy: String = "", edgeUntil: Int64? = nil) -> Response {
        typealias Header = WireProtocol.Header
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(6)
        headers.append((Header.status, String(status)))
        headers.append(edgeUntil.map { (Header.accelExpires, "@" + String($0)) } ?? Header.neverCached)
        headers.append((Header.body, body))
        switch self {
        case .outOfCharge(let pool, let wait, _):
            let seconds = String(Gate.seconds(wait))
            headers.append((Header.retryAfter, seconds))
            if !policy.isEmpty {
                headers.append((Header.rateLimitPolicy, policy))
                headers.append((Header.rateLimit, "\"" + pool + "\";r=0;t=" + seconds))
            }
        case .insufficientCredits(let pool, let available, _, _):
            if !policy.isEmpty {
                headers.append((Header.rateLimitPolicy, policy))
                headers.append((Header.rateLimit, "\"" + pool + "\";r=" + String(available)))
            }
        case .idempotencyKeyReused, .serviceUnavailable:
            break
        }
        return Response(status: 403, headers: headers)
    }

    /// The 204 with which a shadow route passes it: `X-Charge-Shadow` names it.
    public var shadowPass: Response {
        Response(
            status: 204,
            headers: [(WireProtocol.Header.status, "204"), WireProtocol.Header.neverCached, (WireProtocol.Header.shadow, code)])
    }

    /// Its answer as JSON, for the usage and admin endpoints, which nginx passes on as they are.
    public var json: Response {
        .json(status, body)
    }
}
