/// A gate's auth location in a server (a location that passes `CHARGE_GATE_ROLE auth` to
/// FastCGI), and the auth profile it follows.
public struct GateAuthLocation: Sendable, Equatable {
    /// The block id in the model.
    public var block: Int
    /// How the report names it: `location = /_charge_gate/auth`.
    public var title: String
    /// Where it starts.
    public var location: NginxSourceLocation
    /// The profile its settings make.
    public var profile: GateAuthProfile

    /// Creates an auth location's description.
    public init(block: Int, title: String, location: NginxSourceLocation, profile: GateAuthProfile) {
        self.block = block
        self.title = title
        self.location = location
        self.profile = profile
    }

    /// `keepalive, location = /_charge_gate/auth (FILE:LINE)`.
    public var summary: String { "\(profile.rawValue), \(title) (\(location))" }
}
