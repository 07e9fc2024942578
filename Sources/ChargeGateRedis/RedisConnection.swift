import ChargeGateCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One connection to Redis, over a `RedisContext` (the only Swift owner of the hiredis
/// `redisContext*`).
///
/// One per worker thread (a `redisContext` is not thread-safe, so this class is not `Sendable`).
/// It connects lazily on the first command, reconnects after any I/O error, and backs off after a
/// failed connect (25 ms doubling to 200 ms) so a dead server costs no connect storm and service
/// resumes within a fraction of a second once Redis is back (`RedisConnection+Reconnect`).
///
/// A command is never sent twice: once it may have been written, a failure is reported to the
/// caller (a timeout after the write may mean a script ran). Before writing on a connection that
/// sat idle, its socket is polled: an idle connection is never readable, so a readable one was
/// closed by the server (a restart, `CLIENT KILL`, an idle timeout) and is replaced before
/// anything is written. The password never appears in an error text.
///
/// Unless `allowEviction` is set, every new connection (at start-up and on each reconnect) reads
/// `maxmemory-policy` with `INFO memory` and refuses to serve (`.unavailable`, with the usual
/// back-off) unless it is `noeviction`: an evicted bucket would come back full
/// (`RedisConnection+Eviction`).
///
/// With a `redis-sentinel://` URL, every new connection first asks the sentinels for the master
/// (`SentinelDiscovery`: in order, each within `timeoutMs`, the named node checked with `ROLE`),
/// so a reconnect is a rediscovery (`RedisConnection+Sentinel`). After a connection error, a
/// timeout, or a `READONLY` or `MASTERDOWN` answer the connection is dropped, so the next command
/// rediscovers; and when the process's `MasterWatch` says the workers must leave their master
/// (another worker found a new one, or the sentinel poller saw a failover), the connection is
/// dropped before the next command is written. The command that failed is never sent again: its
/// request gets a 503. `WAIT` for replicas: `RedisConnection+Wait`.
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
    var everConnected = false
    /// Sentinel mode: what the process knows about the master (shared by every worker).
    public let watch: MasterWatch?
    /// Sentinel mode: the master this connection is (or was last) on.
    public internal(set) var master: SentinelDiscovery.Master?
    /// Sentinel mode: the watch's generation when this connection was made.
    var generation = 0
    /// Sentinel mode: one connection per sentinel, made when first asked (sentinel order).
    var sentinelConnections: [RedisURL.HostPort: RedisConnection] = [:]

    /// The hiredis context (closed when not connected); freed with this connection.
    var context: RedisContext
    /// Monotonic ms before which no connect is attempted (after a failed one).
    var retryAt: Int64 = 0
    /// The next back-off delay.
    var backoffMs: Int64 = RedisConnection.firstBackoffMs

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
        self.context = RedisContext(url: url)
        if case .sentinel(_, let name) = url.endpoint {
            // A private watch reports to nobody: its times only order its own record.
            self.watch = watch ?? MasterWatch(masterName: name, clock: MonotonicClock())
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

    /// Whether a context is currently held (it may still turn out to be closed by the server).
    public var isConnected: Bool { context.isOpen }

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
            try ready()
            return try context.send(&command)
        }
        do {
            try ready()
            let start = MonotonicClock.nanoseconds()
            let reply = try context.send(&command)
            observer?.roundTrip(nanoseconds: MonotonicClock.nanoseconds() &- start)
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

    /// Sends `commands` in one round trip (written together, then their replies read in order)
    /// and returns the replies of a prefix: all of them, or those read before a timeout or a
    /// connection error, which is returned with them (`error` is nil exactly when every reply
    /// was read). Error replies are `.error` values, as in `command`. The connection is made
    /// ready (and reconnected) as for one command, before anything is written; nothing is sent
    /// twice. `commands` are only read (`inout`: their buffers are reused).
    public func pipeline(_ commands: inout [RESPCommand]) -> (replies: [RedisValue], error: StoreError?) {
        guard !commands.isEmpty else { return ([], nil) }
        do throws(StoreError) {
            try ready()
        } catch {
            observer?.failed(error)
            if let master { watch?.failed(on: master.address) }
            return ([], error)
        }
        let start = MonotonicClock.nanoseconds()
        let result = context.pipeline(&commands)
        if let error = result.error {
            observer?.failed(error)
            if let master { watch?.failed(on: master.address) }
            return result
        }
        observer?.roundTrip(nanoseconds: MonotonicClock.nanoseconds() &- start)
        if watch != nil,
            result.replies.contains(where: { if case .error(let message) = $0 { Self.meansNotMaster(message) } else { false } })
        {
            // The node is no master (any more): the next command asks the sentinels.
            if let master { watch?.failed(on: master.address) }
            drop()
        }
        return result
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

    /// Frees the context (if any); the next command reconnects.
    func drop() {
        context.close()
    }
}
