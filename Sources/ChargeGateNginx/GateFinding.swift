/// Why a request under a charged route is not charged (or, on a settled route, never settled),
/// with the place in the configuration at fault.
public struct GateFinding: Sendable, Equatable, CustomStringConvertible {
    /// The kinds of finding.
    public enum Kind: String, Sendable, CaseIterable {
        /// The location that serves it has no `auth_request` in effect.
        case noAuthRequest = "no_auth_request"
        /// `auth_request off` is in effect there (set there or inherited).
        case authRequestOff = "auth_request_off"
        /// `return` or `rewrite` answers it in the rewrite phase, before the access phase.
        case answeredBeforeGate = "answered_before_gate"
        /// `satisfy any` with an `allow` (or `auth_basic`) lets it skip `auth_request`.
        case satisfyAny = "satisfy_any"
        /// `auth_request` points at a location that is not the gate's auth location.
        case authNotGate = "auth_not_gate"
        /// The gate's auth subrequest is answered 2xx without asking the responder.
        case authAnswered = "auth_answered"
        /// The gate is asked about a path (after a rewrite) that no route charges.
        case unrouted
        /// A request the gate denies (403), or whose responder is down (500), is sent by an
        /// `error_page` to content served without a charge.
        case denialServed = "denial_served"
        /// A server without the gate serves it from a backend that a gated server protects.
        case ungatedServer = "ungated_server"
        /// A subrequest (`mirror`) reaches it: nginx runs no access phase for subrequests.
        case subrequest
        /// The analysis cannot follow the configuration here (it does not guess).
        case undecidable
        /// Charged on a route settled by nginx's line (`settle:`), where no settlement line is
        /// in effect: another `access_log` replaced the inherited ones, or `access_log off`.
        case settleLineMissing = "settle_line_missing"
        /// The settlement line in effect there is not sent to the responder's settlement socket.
        case settleLineSocket = "settle_line_socket"
        /// The settlement line in effect there lacks `if=$charge_gate_hold`.
        case settleLineCondition = "settle_line_condition"
        /// `log_format charge_gate_settle` is not the line the responder parses (or logs
        /// another amount header than the config's `amountHeader`).
        case settleFormat = "settle_format"

        /// Whether the finding is about settlement: the request is charged, but its hold is
        /// never settled (it stays charged as held).
        public var isSettlement: Bool {
            switch self {
            case .settleLineMissing, .settleLineSocket, .settleLineCondition, .settleFormat: true
            default: false
            }
        }
    }

    /// The kind.
    public var kind: Kind
    /// The request that shows it.
    public var probe: GateProbe
    /// What happens, naming the locations and directives involved with their file:line.
    public var detail: String
    /// The location or directive at fault.
    public var location: NginxSourceLocation

    /// Creates a finding.
    public init(_ kind: Kind, probe: GateProbe, detail: String, at location: NginxSourceLocation) {
        self.kind = kind
        self.probe = probe
        self.detail = detail
        self.location = location
    }

    /// `GET /api/describe/x.png: location ~ \.png$ (FILE:LINE) has no auth_request`.
    public var description: String { "\(probe): \(detail)" }
}
