/// Whether the gate blocks (shadow mode, docs/http.md): `mode` at top level and per route.
public enum GateMode: String, Sendable, Equatable {
    /// Denials are answered (429, 402, 422, 503).
    case enforce
    /// Decided and spent exactly as when enforced, but never blocked: a would-be denial, and a
    /// store outage, pass with `X-Charge-Shadow` and are logged and counted.
    case shadow
}
