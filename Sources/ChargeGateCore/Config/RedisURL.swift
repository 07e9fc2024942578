/// A parsed `redis://`, `unix://`, `redis-sentinel://` or `redis-cluster://` URL.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// Where the server is.
    public enum Endpoint: Sendable, Equatable {
        /// TCP host and port.
        case tcp(host: String, port: Int)
        /// A unix socket path.
        case unix(path: String)
        /// Whichever node the sentinels name as the master of `master`, asked in order
        /// (docs/config.md, `redis`; docs/redis.md, "Failover with Sentinel").
        case sentinel(sentinels: [HostPort], master: String)
        /// A Redis Cluster, its slot map first read from these seed nodes (SPEC §12;
        /// docs/redis.md, "Redis Cluster"). Database 0 only.
        case cluster(seeds: [HostPort])
    }

    /// A TCP address: a host name or IP address and a port.
    public struct HostPort: Sendable, Hashable, CustomStringConvertible {
        /// Host name or address (an IPv6 address without brackets).
        public var host: String
        /// Port, 1-65535.
        public var port: Int

        /// Creates an address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port`, with an IPv6 address in brackets.
        public var description: String {
            host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// The port a sentinel listens on when the URL names none.
    public static let defaultSentinelPort = 26379

    /// The server.
    public var endpoint: Endpoint
    /// Database number (SELECT), default 0.
    public var db: Int
    /// Password for AUTH, if any. Never printed.
    public var password: String?
    /// User name for AUTH (Redis 6 ACL), if any.
    public var username: String?
    /// Password for AUTH on the sentinels (the config's `sentinelPassword`), if any; only with
    /// a `.sentinel` endpoint. Never printed.
    public var sentinelPassword: String?

    /// Creates a URL from its parts.
    public init(endpoint: Endpoint, db: Int = 0, password: String? = nil, username: String? = nil, sentinelPassword: String? = nil) {
        self.endpoint = endpoint
        self.db = db
        self.password = password
        self.username = username
        self.sentinelPassword = sentinelPassword
    }

    /// Whether the master is found through sentinels.
    public var isSentinel: Bool {
        if case .sentinel = endpoint { return true }
        return false
    }

    /// Whether the store is a Redis Cluster (keys laid out by hash tag: `KeySpace`).
    public var isCluster: Bool {
        if case .cluster = endpoint { return true }
        return false
    }

    /// This URL, carrying `other`'s sentinel password when it is a sentinel URL without one
    /// (a `--redis` override keeps the config's `sentinelPassword`).
    public func inheritingSentinelPassword(from other: RedisURL?) -> RedisURL {
        guard isSentinel, sentinelPassword == nil, let password = other?.sentinelPassword else { return self }
        var url = self
        url.sentinelPassword = password
        return url
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`, `unix:///path[?db=N][&password=P]` or
    /// `redis-sentinel://[:password@]host[:port][,host[:port]...]/master[?db=N]`. Throws a message
    /// fit for `FILE:LINE: message`; no message repeats the URL, a password, a parameter's value
    /// or an unknown parameter's text (`?hunter2` may be a password without its name). A
    /// parameter given twice, a `%` not followed by two hex digits and a user name or password
    /// that is not UTF-8 once decoded are refused.
    public init(parsing text: String) throws(ConfigMessage) {
        if text.hasPrefix("redis-cluster://") {
            self = try Self.cluster(parsing: Substring(text.dropFirst("redis-cluster://".count)))
            return
        }
        if text.hasPrefix("redis-sentinel://") {
            self = try Self.sentinel(parsing: Substring(text.dropFirst("redis-sentinel://".count)))
            return
        }
        if text.hasPrefix("unix://") {
            var rest = Substring(text.dropFirst("unix://".count))
            var db = 0
            var password: String?
            if let q = rest.firstIndex(of: "?") {
                let parameters = try Self.parameters(
                    rest[rest.index(after: q)...], known: ["db", "password"], scheme: "unix://", unknown: "is neither db nor password")
                if let value = parameters["db"] {
                    guard let n = Int(value), n >= 0 else { throw ConfigMessage("redis: db must be a whole number >= 0") }
                    db = n
                }
                if let value = parameters["password"] { password = try Self.decoded(value, "the password") }
                rest = rest[..<q]
            }
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw ConfigMessage("redis: unix:// URL needs an absolute socket path, as unix:///run/redis/redis.sock")
            }
            self.init(endpoint: .unix(path: String(rest)), db: db, password: password)
            return
        }
        guard text.hasPrefix("redis://") else {
            throw ConfigMessage(
                "redis: expected redis://host:port/db, unix:///path/to/redis.sock, redis-sentinel://host:port,host:port/master "
                    + "or redis-cluster://host:port,host:port")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        var password: String?
        var username: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = userinfo[..<colon]
                username = user.isEmpty ? nil : try Self.decoded(user, "the user name")
                password = try Self.decoded(userinfo[userinfo.index(after: colon)...], "the password")
            } else {
                password = try Self.decoded(userinfo, "the password")
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
        let address = try Self.hostPort(rest, defaultPort: 6379)
        self.init(endpoint: .tcp(host: address.host, port: address.port), db: db, password: password, username: username)
    }

    /// `host[:port]` or `[v6][:port]`.
    private static func hostPort(_ text: Substring, defaultPort: Int) throws(ConfigMessage) -> HostPort {
        var host = String(text)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw ConfigMessage("redis: unterminated [ in host") }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw ConfigMessage("redis: port must be 1-65535") }
                port = p
            } else if !after.isEmpty {
                throw ConfigMessage("redis: expected :port after ]")
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
        return HostPort(host: host, port: port)
    }

    /// The part of a `redis-sentinel://` URL after the scheme.
    private static func sentinel(parsing text: Substring) throws(ConfigMessage) -> RedisURL {
        let example = "as redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster"
        var rest = text
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard userinfo.first == ":" else {
                throw ConfigMessage("redis: redis-sentinel:// takes a password only, written :PASSWORD@ (no user name)")
            }
            let decoded = try Self.decoded(userinfo.dropFirst(), "the password")
            guard !decoded.isEmpty else { throw ConfigMessage("redis: empty password (leave out :@ for none)") }
            password = decoded
        }
        var db = 0
        if let q = rest.firstIndex(of: "?") {
            let parameters = try Self.parameters(
                rest[rest.index(after: q)...], known: ["db"], scheme: "redis-sentinel://", unknown: "is not db")
            if let value = parameters["db"] {
                guard let n = Int(value), n >= 0 else { throw ConfigMessage("redis: db must be a whole number >= 0") }
                db = n
            }
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw ConfigMessage("redis: redis-sentinel:// URL needs /MASTER-NAME after the sentinels, \(example)")
        }
        let master = rest[rest.index(after: slash)...]
        guard !master.isEmpty else {
            throw ConfigMessage("redis: redis-sentinel:// URL needs /MASTER-NAME after the sentinels, \(example)")
        }
        let nameBytes = master.utf8
        guard nameBytes.count <= 128, nameBytes.allSatisfy(Self.isMasterNameByte) else {
            throw ConfigMessage("redis: master name must be 1-128 of A-Z a-z 0-9 . _ -")
        }
        var sentinels: [HostPort] = []
        for item in rest[..<slash].split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw ConfigMessage("redis: empty sentinel address in the list, \(example)") }
            let address = try hostPort(item, defaultPort: defaultSentinelPort)
            guard !sentinels.contains(address) else { throw ConfigMessage("redis: sentinel \(address) is listed twice") }
            sentinels.append(address)
        }
        return RedisURL(endpoint: .sentinel(sentinels: sentinels, master: String(master)), db: db, password: password)
    }

    /// The part of a `redis-cluster://` URL after the scheme: `[:password@]host:port[,host:port...]`
    /// (the seed nodes, each port given: a cluster has no default one worth guessing), nothing
    /// after them (a cluster has only database 0).
    private static func cluster(parsing text: Substring) throws(ConfigMessage) -> RedisURL {
        let example = "as redis-cluster://127.0.0.1:7000,127.0.0.1:7001"
        var rest = text
        var password: String?
        var username: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = userinfo.firstIndex(of: ":") else {
                throw ConfigMessage("redis: redis-cluster:// takes :PASSWORD@ or USER:PASSWORD@ before the nodes")
            }
            let user = userinfo[..<colon]
            username = user.isEmpty ? nil : try Self.decoded(user, "the user name")
            let decoded = try Self.decoded(userinfo[userinfo.index(after: colon)...], "the password")
            guard !decoded.isEmpty else { throw ConfigMessage("redis: empty password (leave out :@ for none)") }
            password = decoded
        }
        guard !rest.contains("/"), !rest.contains("?") else {
            throw ConfigMessage("redis: redis-cluster:// takes only the seed nodes (a cluster has database 0 alone), \(example)")
        }
        var seeds: [HostPort] = []
        for item in rest.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw ConfigMessage("redis: empty node address in the list, \(example)") }
            guard item.last.map({ $0 != "]" }) ?? false, item.contains(":") else {
                throw ConfigMessage("redis: every cluster node needs its port, \(example)")
            }
            let address = try hostPort(item, defaultPort: 6379)
            guard !seeds.contains(address) else { throw ConfigMessage("redis: cluster node \(address) is listed twice") }
            seeds.append(address)
        }
        return RedisURL(endpoint: .cluster(seeds: seeds), password: password, username: username)
    }

    /// The `name=value` pairs of the query `text` of a `scheme` URL (empty pairs skipped; a
    /// name without `=` has the value `""`): each a name of `known`, each at most once. The
    /// messages name a known parameter, or an unknown one by its place (`unknown` says what it
    /// is not), never a value or an unknown name.
    private static func parameters(
        _ text: Substring, known: [String], scheme: String, unknown: String
    ) throws(ConfigMessage) -> [String: Substring] {
        var found: [String: Substring] = [:]
        for (place, pair) in text.split(separator: "&").enumerated() {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = known.first(where: { $0 == parts[0] }) else {
                throw ConfigMessage("redis: \(scheme) URL: parameter \(place + 1) \(unknown) (its text is not shown: it may be a secret)")
            }
            guard found[name] == nil else { throw ConfigMessage("redis: \(scheme) URL: \(name) is given twice; give it once") }
            found[name] = parts.count > 1 ? parts[1] : ""
        }
        return found
    }

    /// `text` %-decoded; `what` (`the password`, `the user name`) names it in a message, which
    /// never shows it: a `%` not followed by two hex digits, or bytes that are not UTF-8 once
    /// decoded, are refused rather than taken as written (a password would then be wrong in a
    /// way no message could show).
    private static func decoded(_ text: some StringProtocol, _ what: String) throws(ConfigMessage) -> String {
        let utf8 = Array(text.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            guard utf8[i] == UInt8(ascii: "%") else {
                bytes.append(utf8[i])
                i += 1
                continue
            }
            guard i + 2 < utf8.count, let hi = PercentDecoding.hexValue(utf8[i + 1]), let lo = PercentDecoding.hexValue(utf8[i + 2]) else {
                throw ConfigMessage("redis: \(what) has an invalid %-escape (write % itself as %25)")
            }
            bytes.append(hi << 4 | lo)
            i += 3
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw ConfigMessage("redis: \(what) is not UTF-8 text once %-decoded")
        }
        return decoded
    }

    private static func isMasterNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
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
        case .sentinel(let sentinels, let master):
            let list = sentinels.map(\.description).joined(separator: ",")
            return "redis-sentinel://\(password == nil ? "" : ":***@")\(list)/\(master)?db=\(db)"
        case .cluster(let seeds):
            return "redis-cluster://\(auth)\(seeds.map(\.description).joined(separator: ","))"
        }
    }
}
