/// What happens to one probe in one server.
public enum GateVerdict: Sendable, Equatable {
    /// The responder is asked about `chargedURI`, which route `route` (index in the config)
    /// charges.
    case gated(chargedURI: String, route: Int)
    /// Served without a charge.
    case notGated(GateFinding)
    /// The analysis cannot tell (and says where); counted as a failure, never as gated.
    case undecided(GateFinding)
    /// Not served at all, so nothing to charge: a redirect, a refusal, an internal location.
    case notServed(String)
    /// Served by the responder itself (a usage, admin or metrics location), which never spends.
    case gateEndpoint(String)

    /// Whether this is a failure (`notGated` or `undecided`).
    public var isFailure: Bool {
        switch self {
        case .notGated, .undecided: true
        case .gated, .notServed, .gateEndpoint: false
        }
    }

    /// The finding of a failure.
    public var finding: GateFinding? {
        switch self {
        case .notGated(let finding), .undecided(let finding): finding
        case .gated, .notServed, .gateEndpoint: nil
        }
    }
}
