/// One request the analysis sends through the model: a method and nginx's `$uri`, and the
/// request target when the probe is about how a client writes it (a query string, an escape).
public struct GateProbe: Sendable, Hashable, CustomStringConvertible {
    /// The method (upper case).
    public var method: String
    /// The path, as nginx would have it after decoding and normalising.
    public var uri: String
    /// The request target as the client sends it, when it is not `uri` written as a target
    /// (`/api/generate?q=1`, `/api/generat%65`); nil otherwise.
    public var rawTarget: String?
    /// For a case variant of a path under the route (`/API/GENERATE`), that path: such a probe
    /// counts only where a case-insensitive location takes it to the gate (`GateAnalyser`).
    var caseOf: String?

    /// Creates a probe.
    public init(method: String, uri: String, rawTarget: String? = nil) {
        self.method = method
        self.uri = uri
        self.rawTarget = rawTarget
    }

    /// The request target a client sends: `rawTarget`, else the path with the bytes that
    /// cannot stand as they are in a request line (controls, space, `%`, `?`, `#`)
    /// percent-encoded, so that nginx decodes it back to `uri` (`/api/generate/x%0Ay`).
    public var target: String { rawTarget ?? Self.target(uri) }

    /// `path` (a path the responder is asked about, as it gets it) for a message: controls,
    /// space and DEL percent-encoded, everything else (`?`, `%`, `#`) as it is.
    public static func printable(_ path: String) -> String {
        guard path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else { return path }
        var out: [UInt8] = []
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in path.utf8 {
            if byte <= 0x20 || byte == 0x7F {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `path` as a request target (see `target`).
    public static func target(_ path: String) -> String {
        var out: [UInt8] = []
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in path.utf8 {
            if byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `POST /api/generate`.
    public var description: String { "\(method) \(target)" }
}
