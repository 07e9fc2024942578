/// A condition the analysis could not evaluate (a client header, a file test, …), and which
/// way one path of the analysis took it.
public struct NginxAssumption: Sendable, Equatable, CustomStringConvertible {
    /// The `if` directive.
    public var directive: NginxDirective
    /// Whether this path assumed it true.
    public var holds: Bool

    /// Creates an assumption.
    public init(directive: NginxDirective, holds: Bool) {
        self.directive = directive
        self.holds = holds
    }

    /// `when if ($http_x_debug) (FILE:LINE) holds`.
    public var description: String {
        "when \(directive.summary(limit: 50)) (\(directive.location)) \(holds ? "holds" : "does not hold")"
    }
}
