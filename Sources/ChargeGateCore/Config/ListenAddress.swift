/// Where the responder listens.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// A unix socket path.
    case unix(path: String)
    /// A TCP `host:port`.
    case tcp(host: String, port: Int)
    /// The listening socket on file descriptor 0 (spawn-fcgi, systemd socket activation).
    case inherit

    /// Parses `/path`, `host:port` or `inherit`; nil when none fits.
    public init?(parsing text: String) {
        if text == "inherit" {
            self = .inherit
        } else if text.hasPrefix("/") {
            self = .unix(path: text)
        } else if let colon = text.lastIndex(of: ":"),
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        {
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { return nil }
            self = .tcp(host: host, port: port)
        } else {
            return nil
        }
    }

    /// The address as written in the config.
    public var description: String {
        switch self {
        case .unix(let path): return path
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .inherit: return "inherit"
        }
    }
}
