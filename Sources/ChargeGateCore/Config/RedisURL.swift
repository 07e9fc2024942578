/// A parsed `redis://` or `unix://` URL.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// Where the server is.
    public enum Endpoint: Sendable, Equatable {
        /// TCP host and port.
        case tcp(host: String, port: Int)
        /// A unix socket path.
        case unix(path: String)
    }

    /// The server.
    public var endpoint: Endpoint
    /// Database number (SELECT), default 0.
    public var db: Int
    /// Password for AUTH, if any. Never printed.
    public var password: String?
    /// User name for AUTH (Redis 6 ACL), if any.
    public var username: String?

    /// Creates a URL from its parts.
    public init(endpoint: Endpoint, db: Int = 0, password: String? = nil, username: String? = nil) {
        self.endpoint = endpoint
        self.db = db
        self.password = password
        self.username = username
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]` or `unix:///path[?db=N][&password=P]`.
    /// Throws a message fit for `FILE:LINE: message`.
    public init(parsing text: String) throws(ConfigMessage) {
        if text.hasPrefix("unix://") {
            var rest = Substring(text.dropFirst("unix://".count))
            var db = 0
            var password: String?
            if let q = rest.firstIndex(of: "?") {
                for pair in rest[rest.index(after: q)...].split(separator: "&") {
                    let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    let name = parts[0]
                    let value = parts.count > 1 ? String(parts[1]) : ""
                    switch name {
                    case "db":
                        guard let n = Int(value), n >= 0 else { throw ConfigMessage("redis: db must be a whole number >= 0") }
                        db = n
                    case "password":
                        password = PercentDecoding.decode(value)
                    default:
                        throw ConfigMessage("redis: unknown parameter '\(name)' in unix:// URL")
                    }
                }
                rest = rest[..<q]
            }
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw ConfigMessage("redis: unix:// URL needs an absolute socket path, as unix:///run/redis/redis.sock")
            }
            self.init(endpoint: .unix(path: String(rest)), db: db, password: password)
            return
        }
        guard text.hasPrefix("redis://") else {
            throw ConfigMessage("redis: expected redis://host:port/db or unix:///path/to/redis.sock")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        var password: String?
        var username: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = userinfo[..<colon]
                username = user.isEmpty ? nil : PercentDecoding.decode(String(user))
                password = PercentDecoding.decode(String(userinfo[userinfo.index(after: colon)...]))
            } else {
                password = PercentDecoding.decode(String(userinfo))
            }
        }
        var db = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            if !dbText.isEmpty {
                guard let n = Int(dbText), n >= 0 else { throw ConfigMessage("redis: database must be a whole number >= 0") }
                db = n
            }
            rest = rest[..<slash]
        }
        var host = String(rest)
        var port = 6379
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw ConfigMessage("redis: unterminated [ in host") }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw ConfigMessage("redis: port must be 1-65535") }
                port = p
            }
            host = inner
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                throw ConfigMessage("redis: port must be 1-65535")
            }
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw ConfigMessage("redis: missing host") }
        self.init(endpoint: .tcp(host: host, port: port), db: db, password: password, username: username)
    }

    /// The URL with any password masked, for logs and errors.
    public var description: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        switch endpoint {
        case .tcp(let host, let port):
            let h = host.contains(":") ? "[\(host)]" : host
            return "redis://\(auth)\(h):\(port)/\(db)"
        case .unix(let path):
            return "unix://\(path)?db=\(db)" + (password == nil ? "" : "&password=***")
        }
    }
}
