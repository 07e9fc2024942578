import ChargeGateCore

/// Connecting lazily, replacing a connection the server closed, and backing off after a failed
/// connect (25 ms doubling to 200 ms).
extension RedisConnection {
    static let firstBackoffMs: Int64 = 25
    static let maxBackoffMs: Int64 = 200

    /// Makes `context` fit to write on: the current one if its socket is quiet, else a new one.
    func ready() throws(StoreError) {
        if context.isOpen {
            // Nothing was written yet: leaving a master the process has moved away from is safe.
            if let watch, watch.generation != generation {
                drop()
                return try connect()
            }
            if context.isQuiet() { return }
            // The server closed (or wrote to) an idle connection: nothing was written yet, so
            // replacing it and sending on the new one is safe.
            drop()
        }
        try connect()
    }

    /// Opens a new connection unless backing off; a failure sets the next retry time.
    func connect() throws(StoreError) {
        let now = MonotonicClock.milliseconds()
        if now < retryAt { throw .unavailable("backing off") }
        do {
            try open()
            backoffMs = Self.firstBackoffMs
            retryAt = 0
            observer?.connected(reconnect: everConnected)
            everConnected = true
        } catch {
            retryAt = MonotonicClock.milliseconds() + backoffMs
            backoffMs = Swift.min(backoffMs * 2, Self.maxBackoffMs)
            throw error
        }
    }

    /// Connects, sets the command timeout, authenticates, selects the database and (unless
    /// `allowEviction`) checks that Redis never evicts keys. With a sentinel URL, the node is
    /// the master the sentinels name (checked with `ROLE`).
    func open() throws(StoreError) {
        guard case .sentinel(let sentinels, let name) = url.endpoint, let watch else {
            try openNode()
            if !allowEviction {
                try requireNoEviction()
            }
            return
        }
        try openMaster(sentinels: sentinels, name: name, watch: watch)
    }

    /// Connects to `endpoint` (the URL's own unless given), sets the timeout, authenticates and
    /// selects the database; the new connection is `context`.
    func openNode(at given: RedisURL.Endpoint? = nil) throws(StoreError) {
        let place: String
        if case .tcp(let host, let port) = given {
            place = RedisURL.HostPort(host: host, port: port).description
        } else {
            place = "\(url)"
        }
        try context.open(given ?? url.endpoint, timeoutMs: timeoutMs, place: place)
        if let password = url.password {
            var auth: [[UInt8]] = [Array("AUTH".utf8)]
            if let username = url.username { auth.append(Array(username.utf8)) }
            auth.append(Array(password.utf8))
            try handshake(auth, what: "AUTH")
        }
        if url.db != 0 {
            try handshake([Array("SELECT".utf8), Array(String(url.db).utf8)], what: "SELECT \(url.db)")
        }
    }

    /// One connect-time command that must not answer an error.
    func handshake(_ arguments: [[UInt8]], what: String) throws(StoreError) {
        var encoded = RESPCommand(arguments)
        let reply = try context.send(&encoded)
        if case .error(let message) = reply {
            drop()
            throw .unavailable("\(what) failed on \(url): \(context.scrub(message))")
        }
    }
}
