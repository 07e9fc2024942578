/// A `server` block as the report names it.
public struct GateServer: Sendable, Equatable {
    /// The block id in the model.
    public var block: Int
    /// Its `listen` addresses and first `server_name`: `127.0.0.1:8080 localhost`.
    public var label: String
    /// Where it starts.
    public var location: NginxSourceLocation
    /// Whether it uses the gate at all (an `auth_request`, or the gate's auth location).
    public var usesGate: Bool
    /// The gate's auth locations in it, in config order, each with its auth profile.
    public var authLocations: [GateAuthLocation]

    /// Creates a server description.
    public init(block: Int, label: String, location: NginxSourceLocation, usesGate: Bool, authLocations: [GateAuthLocation] = []) {
        self.block = block
        self.label = label
        self.location = location
        self.usesGate = usesGate
        self.authLocations = authLocations
    }
}
