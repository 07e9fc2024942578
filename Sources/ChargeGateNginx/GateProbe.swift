/// One request the analysis sends through the model: a method and nginx's `$uri`.
public struct GateProbe: Sendable, Hashable, CustomStringConvertible {
    /// The method (upper case).
    public var method: String
    /// The path, as nginx would have it after decoding and normalising.
    public var uri: String

    /// Creates a probe.
    public init(method: String, uri: String) {
        self.method = method
        self.uri = uri
    }

    /// `POST /api/generate`.
    public var description: String { "\(method) \(uri)" }
}
