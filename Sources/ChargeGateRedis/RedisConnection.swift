import CHiredis
import ChargeGateCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One connection to Redis: the only Swift owner of a hiredis `redisContext*`.
///
/// One per worker thread (a `redisContext` is not thread-safe, so this class is not `Sendable`).
/// It connects lazily on the first command, reconnects after any I/O error, and backs off after a
/// failed connect (25 ms doubling to 200 ms) so a dead server costs no connect storm and service
/// resumes within a fraction of a second once Redis is back.
///
/// A command is never sent twice: once it may have been written, a failure is reported to the
/// caller (a timeout after the write may mean a script ran). Before writing on a connection that
/// sat idle, its socket is polled: an idle connection is never readable, so a readable one was
/// closed by the server (a restart, `CLIENT KILL`, an idle timeout) and is replaced before
/// anything is written. The password never appears in an error text.
///
/// Unless `allowEviction` is set, every new connection (at start-up and on each reconnect) reads
/// `maxmemory-policy` with `INFO memory` and refuses to serve (`.unavailable`, with the usual
/// back-off) unless it is `noeviction`: an evicted bucket would come back full.
///
/// With a `redis-sentinel://` URL, every new connection first asks the sentinels for the master
/// (`SentinelDiscovery`: in order, each within `timeoutMs`, the named node checked with `ROLE`),
/// so a reconnect is a rediscovery. After a connection error, a timeout, or a `READONLY` or
/// `MASTERDOWN` answer the connection is dropped, so the next command rediscovers; and when the
/// process's `MasterWatch` says the workers must leave their master (another worker found a new
/// one, or the sentinel poller saw a failover), the connection is dropped before the next
/// command is written. The command that failed is never sent again: its request gets a 503.
public final class RedisConnection {
    /// Where to connect, with the credentials.
    public let url: RedisURL
    /// Connect and command timeout in milliseconds.
    public let timeoutMs: Int
    /// Told about every round trip, failure and (re)connect, for metrics.
    public let observer: (any RedisObserver)?
    /// Whether a Redis that may evict keys (`maxmemory-policy` other than `noeviction`) is
    /// served anyway. When false, each new connection checks the policy and refuses otherwise.
    public let allowEviction: Bool
    /// Whether a connection was ever made (so the next one is a reconnect).
    private var everConnected = false
    /// Sentinel mode: what the process knows about the master (shared by every worker).
    public let watch: MasterWatch?
    /// Sentinel mode: the master this connection is (or was last) on.
    public private(set) var master: SentinelDiscovery.Master?
    /// Sentinel mode: the watch's generation when this connection was made.
    private var generation = 0
    /// Sentinel mode: one connection per sentinel, made when first asked (sentinel order).
    private var sentinelConnections: [RedisURL.HostPort: RedisConnection] = [:]

    /// The owned context; nil when not connected. Freed with `redisFree` in `drop()`/`deinit`.
    private var context: UnsafeMutablePointer<redisContext>?
    /// Monotonic ms before which no connect is attempted (after a failed one).
    private var retryAt: Int64 = 0
    /// The next back-off delay.
    private var backoffMs: Int64 = RedisConnection.firstBackoffMs

    private static let firstBackoffMs: Int64 = 25
    private static let maxBackoffMs: Int64 = 200

    /// Stores the configuration; nothing is connected until the first command. With
    /// `allowEviction` false (the default), a connection to a Redis whose `maxmemory-policy` is
    /// not `noeviction` is refused.
    /// With a sentinel URL, `watch` is the process's shared one (a private one when nil).
    public init(
        url: RedisURL, timeoutMs: Int, observer: (any RedisObserver)? = nil, allowEviction: Bool = false, watch: MasterWatch? = nil
    ) {
        self.url = url
        self.timeoutMs = Swift.max(1, timeoutMs)
        self.observer = observer
        self.allowEviction = allowEviction
        if case .sentinel(_, let name) = url.endpoint {
            self.watch = watch ?? MasterWatch(masterName: name)
        } else {
            self.watch = nil
        }
        Self.ignoreBrokenPipe
    }

    /// hiredis writes with `write(2)`: a write to a socket the server has just closed raises
    /// SIGPIPE, whose default action kills the process. Once per process, when SIGPIPE still
    /// has its default action, it is ignored so the write fails with EPIPE instead (an I/O
    /// error like any other). A handler someone else installed (libfcgi's) is left alone.
    private static let ignoreBrokenPipe: Void = {
        var current = sigaction()
        guard sigaction(SIGPIPE, nil, &current) == 0 else { return }
        #if os(Linux)
            let isDefault = current.__sigaction_handler.sa_handler == nil
        #else
            let isDefault = current.__sigaction_u.__sa_handler == nil
        #endif
        if isDefault { signal(SIGPIPE, SIG_IGN) }
    }()

    deinit {
        if let context { redisFree(context) }
    }

    /// Whether a context is currently held (it may still turn out to be closed by the server).
    public var isConnected: Bool { context != nil }

    /// Frees the connection, if any. The next command connects again.
    public func close() {
        drop()
    }

    /// Sends one command and returns its reply. An error reply is a `.error` value, not a thrown
    /// error: the connection is fine and the caller decides. Throws `.timeout` when Redis did not
    /// answer within `timeoutMs`, `.unavailable` when it cannot be reached (or the connection is
    /// backing off). `command` is only read; it is `inout` so its buffer is reused, not copied.
    public func command(_ command: inout RESPCommand) throws(StoreError) -> RedisValue {
        if observer == nil && watch == nil {
            let context = try ready()
            return try send(&command, on: context)
        }
        do {
            let context = try ready()
            let start = Self.monotonicNs()
            let reply = try send(&command, on: context)
            observer?.roundTrip(nanoseconds: Self.monotonicNs() &- start)
            if watch != nil, case .error(let message) = reply, Self.meansNotMaster(message) {
                // The node is no master (any more): the next command asks the sentinels.
                if let master { watch?.failed(on: master.address) }
                drop()
            }
            return reply
        } catch {
            observer?.failed(error)
            if let master { watch?.failed(on: master.address) }
            throw error
        }
    }

    /// Whether an error reply says the node cannot take writes as a master: `READONLY` (a
    /// replica; also inside a script's error) or `MASTERDOWN` (a replica whose master is gone).
    public static func meansNotMaster(_ message: String) -> Bool {
        message.hasPrefix("READONLY") || message.hasPrefix("MASTERDOWN") || message.contains("-READONLY")
            || message.contains("-MASTERDOWN")
    }

    /// Sends `WAIT replicas timeoutMs` on the connection the last command went to (never on a new
    /// one: a fresh connection has written nothing, so its WAIT would acknowledge nothing) and
    /// returns how many replicas acknowledged this connection's writes. The socket timeout is
    /// raised for this one reply when `timeoutMs` would not leave room for the round trip.
    public func waitForReplicas(_ replicas: Int, timeoutMs waitMs: Int) throws(StoreError) -> Int {
        guard let context else { throw .unavailable("connection lost before WAIT") }
        var encoded = RESPCommand([Array("WAIT".utf8), Array(String(replicas).utf8), Array(String(waitMs).utf8)])
        let longer = waitMs * 2 > timeoutMs
        if longer { redisSetTimeout(context, Self.timeval(ms: waitMs + timeoutMs)) }
        let reply: RedisValue
        do {
            let start = Self.monotonicNs()
            reply = try send(&encoded, on: context)
            observer?.roundTrip(nanoseconds: Self.monotonicNs() &- start)
        } catch {
            observer?.failed(error)
            if let master { watch?.failed(on: master.address) }
            throw error
        }
        if longer, let current = self.context { redisSetTimeout(current, Self.timeval(ms: timeoutMs)) }
        if case .error(let message) = reply { throw .protocolError("WAIT: \(message)") }
        guard let acknowledged = reply.integer else { throw .protocolError("unexpected WAIT reply") }
        return Int(clamping: acknowledged)
    }

    /// Sends one command of binary-safe arguments.
    public func command(_ arguments: [[UInt8]]) throws(StoreError) -> RedisValue {
        var encoded = RESPCommand(arguments)
        return try command(&encoded)
    }

    /// Sends one command whose arguments are text (sent as their UTF-8 bytes).
    public func command(_ arguments: [String]) throws(StoreError) -> RedisValue {
        try command(arguments.map { Array($0.utf8) })
    }

    // MARK: - Connecting

    /// A context fit to write on: the current one if its socket is quiet, else a new one.
    private func ready() throws(StoreError) -> UnsafeMutablePointer<redisContext> {
        if let context {
            // Nothing was written yet: leaving a master the process has moved away from is safe.
            if let watch, watch.generation != generation {
                drop()
                return try connect()
            }
            if Self.isQuiet(context.pointee.fd) { return context }
            // The server closed (or wrote to) an idle connection: nothing was written yet, so
            // replacing it and sending on the new one is safe.
            drop()
        }
        return try connect()
    }

    /// Whether an idle socket has nothing to read and no hang-up or error pending.
    private static func isQuiet(_ fd: Int32) -> Bool {
        guard fd >= 0 else { return false }
        let events = Int16(truncatingIfNeeded: Int32(POLLIN) | pollRDHUP | Int32(POLLHUP) | Int32(POLLERR))
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let ready = poll(&entry, 1, 0)
        if ready < 0 { return errno == EINTR }
        return ready == 0 || entry.revents == 0
    }

    /// `POLLRDHUP` (Linux only): the peer shut its writing side down.
    #if os(Linux)
        private static let pollRDHUP: Int32 = 0x2000
    #else
        private static let pollRDHUP: Int32 = 0
    #endif

    private func connect() throws(StoreError) -> UnsafeMutablePointer<redisContext> {
        let now = Self.monotonicMs()
        if now < retryAt { throw .unavailable("backing off") }
        do {
            let context = try open()
            backoffMs = Self.firstBackoffMs
            retryAt = 0
            observer?.connected(reconnect: everConnected)
            everConnected = true
            return context
        } catch {
            retryAt = Self.monotonicMs() + backoffMs
            backoffMs = Swift.min(backoffMs * 2, Self.maxBackoffMs)
            throw error
        }
    }

    /// Connects, sets the command timeout, authenticates, selects the database and (unless
    /// `allowEviction`) checks that Redis never evicts keys. With a sentinel URL, the node is
    /// the master the sentinels name (checked with `ROLE`).
    private func open() throws(StoreError) -> UnsafeMutablePointer<redisContext> {
        guard case .sentinel(let sentinels, let name) = url.endpoint, let watch else {
            let made = try openNode()
            if !allowEviction {
                try requireNoEviction(on: made)
            }
            return made
        }
        let found = try discover(sentinels: sentinels, name: name, watch: watch)
        guard let made = context else { throw .unavailable("no connection after discovery") }
        if !allowEviction {
            try requireNoEviction(on: made)
        }
        guard let generation = watch.connected(found) else {
            drop()
            throw .unavailable("a failover was reported while asking the sentinels; asking again")
        }
        master = found
        self.generation = generation
        return made
    }

    /// One discovery round (`SentinelDiscovery`), performed: on `.found` the checked node's
    /// connection is `context`.
    private func discover(sentinels: [RedisURL.HostPort], name: String, watch: MasterWatch) throws(StoreError)
        -> SentinelDiscovery.Master
    {
        let known = watch.snapshot
        var machine = SentinelDiscovery(sentinels: sentinels, masterName: name, newestEpoch: known.newestEpoch, avoid: known.avoid)
        var step = machine.start()
        while true {
            switch step {
            case .askSentinel(let sentinel):
                let answer: Result<RedisValue, StoreError>
                do {
                    answer = .success(try sentinelConnection(sentinel).command(["SENTINEL", "MASTER", name]))
                } catch {
                    answer = .failure(error)
                }
                step = machine.sentinelAnswered(answer)
            case .checkRole(let node):
                let answer: Result<RedisValue, StoreError>
                do {
                    let made = try openNode(at: .tcp(host: node.host, port: node.port))
                    var role = RESPCommand([Array("ROLE".utf8)])
                    answer = .success(try send(&role, on: made))
                } catch {
                    answer = .failure(error)
                }
                step = machine.roleAnswered(answer)
                if case .found = step { continue }
                drop()
            case .found(let master):
                return master
            case .failed(let why):
                drop()
                watch.discoveryFailed(why)
                throw .unavailable(scrub(why))
            }
        }
    }

    /// The connection to one sentinel (its own `RedisConnection`: lazy, backing off when down),
    /// authenticated with `sentinelPassword`.
    private func sentinelConnection(_ sentinel: RedisURL.HostPort) -> RedisConnection {
        if let made = sentinelConnections[sentinel] { return made }
        let made = RedisConnection(
            url: RedisURL(endpoint: .tcp(host: sentinel.host, port: sentinel.port), password: url.sentinelPassword),
            timeoutMs: timeoutMs, allowEviction: true)
        sentinelConnections[sentinel] = made
        return made
    }

    /// Connects to `endpoint` (the URL's own unless given), sets the timeout, authenticates and
    /// selects the database; the new context is `context`.
    private func openNode(at given: RedisURL.Endpoint? = nil) throws(StoreError) -> UnsafeMutablePointer<redisContext> {
        drop()
        let endpoint = given ?? url.endpoint
        let timeout = Self.timeval(ms: timeoutMs)
        let made: UnsafeMutablePointer<redisContext>?
        switch endpoint {
        case .unix(let path):
            made = redisConnectUnixWithTimeout(path, timeout)
        case .tcp(let host, let port):
            made = redisConnectWithTimeout(host, Int32(clamping: port), timeout)
        case .sentinel:
            throw .unavailable("a sentinel URL names no node")
        }
        let place: String
        if case .tcp(let host, let port) = given {
            place = RedisURL.HostPort(host: host, port: port).description
        } else {
            place = "\(url)"
        }
        guard let made else { throw .unavailable("cannot allocate a Redis context") }
        if made.pointee.err != 0 {
            let error = storeError(made, errno: errno, action: "connect to \(place)")
            redisFree(made)
            throw error
        }
        context = made
        if redisSetTimeout(made, timeout) != REDIS_OK {
            let error = storeError(made, errno: errno, action: "set timeout on \(place)")
            drop()
            throw error
        }
        if case .tcp = endpoint {
            _ = redisEnableKeepAlive(made)
        }
        if let password = url.password {
            var auth: [[UInt8]] = [Array("AUTH".utf8)]
            if let username = url.username { auth.append(Array(username.utf8)) }
            auth.append(Array(password.utf8))
            try handshake(auth, on: made, what: "AUTH")
        }
        if url.db != 0 {
            try handshake([Array("SELECT".utf8), Array(String(url.db).utf8)], on: made, what: "SELECT \(url.db)")
        }
        return made
    }

    /// Reads `maxmemory-policy` with `INFO memory`; drops the context and throws `.unavailable`
    /// unless it is `noeviction` (also when it cannot be read: INFO refused or renamed away).
    private func requireNoEviction(on context: UnsafeMutablePointer<redisContext>) throws(StoreError) {
        var encoded = RESPCommand([Array("INFO".utf8), Array("memory".utf8)])
        let reply = try send(&encoded, on: context)
        let advice = "set maxmemory-policy noeviction (or serve --allow-eviction)"
        if case .error(let message) = reply {
            drop()
            throw .unavailable(
                scrub("cannot read maxmemory-policy from Redis at \(url) (INFO memory: \(message)): refusing to serve; \(advice)"))
        }
        guard let policy = reply.text.flatMap(Self.maxmemoryPolicy(fromInfo:)) else {
            drop()
            throw .unavailable(
                scrub(
                    "cannot read maxmemory-policy from Redis at \(url) (INFO memory: no maxmemory_policy line): refusing to serve; \(advice)"
                ))
        }
        if policy != "noeviction" {
            drop()
            let shown = policy.isEmpty ? "(empty)" : String(policy.prefix(64))
            throw .unavailable(scrub("Redis at \(url) has maxmemory-policy \(shown): evicted keys would refill buckets; \(advice)"))
        }
    }

    /// The value of the `maxmemory_policy:` line in `INFO` text (lines end in `\r\n`; the last
    /// one may not), trimmed of surrounding whitespace; nil when there is no such line. An empty
    /// value is `""`: the caller refuses it like any policy other than `noeviction`.
    public static func maxmemoryPolicy(fromInfo info: String) -> String? {
        let field = "maxmemory_policy:"
        for line in info.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            guard line.hasPrefix(field) else { continue }
            let value = line.dropFirst(field.count).drop(while: \.isWhitespace)
            return String(value.reversed().drop(while: \.isWhitespace).reversed())
        }
        return nil
    }

    /// One connect-time command that must not answer an error.
    private func handshake(_ arguments: [[UInt8]], on context: UnsafeMutablePointer<redisContext>, what: String) throws(StoreError) {
        var encoded = RESPCommand(arguments)
        let reply = try send(&encoded, on: context)
        if case .error(let message) = reply {
            drop()
            throw .unavailable("\(what) failed on \(url): \(scrub(message))")
        }
    }

    // MARK: - Sending

    /// Writes one command and reads its reply. On an I/O error the context is dropped (the next
    /// command reconnects) and the error is thrown: the command is never sent again here.
    private func send(_ command: inout RESPCommand, on context: UnsafeMutablePointer<redisContext>) throws(StoreError) -> RedisValue {
        // hiredis copies the encoded bytes into its output buffer; nothing keeps a pointer.
        let queued = command.withEncoded { encoded in
            redisAppendFormattedCommand(context, encoded.baseAddress?.assumingMemoryBound(to: CChar.self), encoded.count)
        }
        if queued != REDIS_OK {
            let error = storeError(context, errno: errno, action: "command")
            drop()
            throw error
        }
        errno = 0
        var raw: UnsafeMutableRawPointer?
        let status = redisGetReply(context, &raw)
        let savedErrno = errno
        if let raw {
            // Ownership: redisGetReply hands us the reply tree; it is copied into a Swift value
            // at once and freed here, exactly once. Nothing keeps a pointer.
            let value = RedisValue(reply: UnsafePointer(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
            if status == REDIS_OK { return value }
        }
        let error =
            context.pointee.err != 0
            ? storeError(context, errno: savedErrno, action: "command")
            : StoreError.unavailable("no reply from \(url)")
        drop()
        throw error
    }

    // MARK: - Errors and housekeeping

    /// The context's C error as a `StoreError`: `.timeout` when the socket timed out, else
    /// `.unavailable`. The text is free of the password.
    private func storeError(_ context: UnsafeMutablePointer<redisContext>, errno code: Int32, action: String) -> StoreError {
        let kind = context.pointee.err
        let text = withUnsafeBytes(of: context.pointee.errstr) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        let lowered = text.lowercased()
        let timedOut =
            kind == REDIS_ERR_IO
            && (code == EAGAIN || code == EWOULDBLOCK || code == ETIMEDOUT
                || lowered.contains("timed out") || lowered.contains("resource temporarily unavailable"))
        if timedOut { return .timeout }
        let what = text.isEmpty ? "error \(kind)" : text
        return .unavailable(scrub("\(action): \(what)"))
    }

    /// `text` with every occurrence of either password replaced by `***`.
    private func scrub(_ text: String) -> String {
        var text = text
        for secret in [url.password, url.sentinelPassword] {
            if let secret, !secret.isEmpty { text = text.replacing(secret, with: "***") }
        }
        return text
    }

    /// Frees the context (if any); the next command reconnects.
    private func drop() {
        if let context {
            redisFree(context)
            self.context = nil
        }
    }

    private static func timeval(ms: Int) -> timeval {
        #if canImport(Glibc)
            return Glibc.timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
        #else
            return Darwin.timeval(tv_sec: ms / 1000, tv_usec: Int32((ms % 1000) * 1000))
        #endif
    }

    private static func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    private static func monotonicNs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
