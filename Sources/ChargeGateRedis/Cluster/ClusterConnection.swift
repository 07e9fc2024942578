import ChargeGateCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One worker's connections to a Redis Cluster: it performs `ClusterRouting`'s steps for each
/// command (SPEC §12).
///
/// It holds one `RedisConnection` per node it has talked to (each the one owner of its hiredis
/// context: made lazily on the first send there, reconnecting and backing off as any
/// `RedisConnection` does, closed when the node leaves the slot map and when this connection is
/// dropped) and a `ClusterSlotMap` read with `CLUSTER SLOTS` from the nodes it knows, then the
/// seeds (`+Refresh`). Like `RedisConnection` it is one per thread, not `Sendable`.
///
/// A command names its keys; they must share one slot (`ClusterSlot.slot(forKeys:)`), else it
/// is refused before anything is sent or connected. Then, step by step as `ClusterRouting` says:
/// send to the slot's primary, follow `MOVED` (the map corrected) and `ASK` (`ASKING` and the
/// command in one round trip), wait out `TRYAGAIN`, read the map again when a node cannot be
/// reached. Each send reports one of three outcomes: a reply; nothing written (the node could
/// not be connected to: the command cannot have run, so the routing may send it elsewhere); or
/// a connection lost or timed out once the command may have been written (it may have run: the
/// command fails and is never sent again, so a spend never runs twice). `runScript` adds
/// `NOSCRIPT`: the script is loaded on the node that answered and the command routed again
/// (`+Script`).
///
/// Error replies that are no redirect (a script's error, `NOSCRIPT` from `command`, `WRONGTYPE`)
/// are returned as `.error` values, as `RedisConnection.command` returns them. Failures are
/// thrown: `.unavailable` (no node reachable, `CLUSTERDOWN`, too many redirects, a lost
/// connection), `.timeout` (a command that may have run), `.protocolError` (keys in different
/// slots, an unreadable redirect or slot map). Only cluster database 0 exists: no `SELECT`.
public final class ClusterConnection {
    /// A command's answer and the node that gave it (where a `WAIT` for its replicas goes).
    public struct Reply: Sendable, Equatable {
        /// The reply: a result, or an error reply that is no redirect.
        public var value: RedisValue
        /// The node that answered.
        public var node: RedisURL.HostPort

        /// Creates a reply.
        public init(value: RedisValue, node: RedisURL.HostPort) {
            self.value = value
            self.node = node
        }
    }

    /// What this connection did since it was made, for metrics and tests.
    public struct Counts: Sendable, Equatable {
        /// Commands handed to a node's connection (each `ASKING` + command pair is one).
        public var sends = 0
        /// `MOVED` replies followed or given up on.
        public var moved = 0
        /// `ASK` replies followed or given up on.
        public var asks = 0
        /// `TRYAGAIN` replies.
        public var tryAgains = 0
        /// `CLUSTER SLOTS` reads that gave a map.
        public var refreshes = 0
        /// Scripts loaded after a `NOSCRIPT`.
        public var scriptLoads = 0

        /// All zero.
        public init() {}
    }

    /// The nodes the slot map is first read from (after the nodes of a map already read).
    public let seeds: [RedisURL.HostPort]
    /// Connect and command timeout for every node, in milliseconds; also the bound on the
    /// `TRYAGAIN` waits of one command.
    public let timeoutMs: Int
    /// Told about every node connection's round trips, failures and (re)connects.
    public let observer: (any RedisObserver)?
    /// Whether a node that may evict keys is served anyway (see `RedisConnection`); when false,
    /// each new node connection checks `maxmemory-policy`.
    public let allowEviction: Bool
    /// The most `MOVED`s and `ASK`s followed for one command.
    public let maxRedirects: Int
    /// The map is not read again because of `refreshDue` sooner than this after the last read
    /// (a resharding answers many `MOVED`s; each already corrects its slot).
    public static let minRefreshIntervalMs: Int64 = 100

    /// Which node serves each slot, as last read and corrected.
    public internal(set) var map = ClusterSlotMap()
    /// What this connection did so far.
    public internal(set) var counts = Counts()

    /// The password every node is authenticated with, if any.
    let password: String?
    /// The ACL user name sent with `password`, if any.
    let username: String?
    /// One connection per node, made on the first send there.
    var nodes: [RedisURL.HostPort: RedisConnection] = [:]
    /// Monotonic ms of the last map read (successful or not), nil before the first.
    var lastRefreshMs: Int64?

    /// Stores the configuration; nothing is connected until the first command. `seeds` must
    /// not be empty for a command to find the cluster. `password` (with `username`, for an ACL
    /// user) authenticates every node.
    public init(
        seeds: [RedisURL.HostPort], password: String? = nil, username: String? = nil, timeoutMs: Int,
        observer: (any RedisObserver)? = nil, allowEviction: Bool = false, maxRedirects: Int = ClusterRouting.defaultMaxRedirects
    ) {
        self.seeds = seeds
        self.password = password
        self.username = username
        self.timeoutMs = Swift.max(1, timeoutMs)
        self.observer = observer
        self.allowEviction = allowEviction
        self.maxRedirects = Swift.max(0, maxRedirects)
    }

    /// The nodes a connection is currently held to, in no order.
    public var connectedNodes: [RedisURL.HostPort] {
        nodes.compactMap { $0.value.isConnected ? $0.key : nil }
    }

    /// Closes every node connection and forgets them; the map is kept. The next command
    /// connects again.
    public func close() {
        // Each RedisConnection frees its own context when it is released here.
        nodes.removeAll()
    }

    /// Runs `command` on the primary of its keys' slot and returns its reply with the node that
    /// gave it. `keys` are the command's keys (every key it reads or writes); they must share
    /// one slot. `command` is only read (`inout`: its buffer is reused).
    public func command(_ command: inout RESPCommand, keys: [[UInt8]]) throws(StoreError) -> Reply {
        let slot = try Self.slot(of: keys)
        return try route(&command, slot: slot, startMs: MonotonicClock.milliseconds())
    }

    /// Runs a command of binary-safe arguments whose keys are `keys` (see `command(_:keys:)`).
    public func command(_ arguments: [[UInt8]], keys: [[UInt8]]) throws(StoreError) -> Reply {
        var encoded = RESPCommand(arguments)
        return try command(&encoded, keys: keys)
    }

    /// Runs a command of text arguments whose keys are `keys` (see `command(_:keys:)`).
    public func command(_ arguments: [String], keys: [String]) throws(StoreError) -> Reply {
        try command(arguments.map { Array($0.utf8) }, keys: keys.map { Array($0.utf8) })
    }

    /// The one slot of `keys`: `.protocolError` when there is no key or they are in different
    /// slots (a cluster would answer `CROSSSLOT`; nothing is sent).
    public static func slot(of keys: [[UInt8]]) throws(StoreError) -> Int {
        guard let first = keys.first else { throw .protocolError("a cluster command needs at least one key") }
        guard let slot = ClusterSlot.slot(forKeys: keys) else {
            let firstSlot = ClusterSlot.slot(forKey: first)
            let other = keys.first { ClusterSlot.slot(forKey: $0) != firstSlot } ?? first
            throw .protocolError(
                "keys in different cluster slots (\(Self.shown(first)) in \(firstSlot), \(Self.shown(other)) in "
                    + "\(ClusterSlot.slot(forKey: other))): not sent")
        }
        return slot
    }

    // MARK: - The routing loop

    /// Performs `ClusterRouting`'s steps for one command on `slot`, started at `startMs`.
    func route(_ command: inout RESPCommand, slot: Int, startMs: Int64) throws(StoreError) -> Reply {
        refreshIfDue()
        var routing = ClusterRouting(slot: slot, redisTimeoutMs: timeoutMs, nowMs: startMs, maxRedirects: maxRedirects)
        var step = routing.start(map: map)
        while true {
            switch step {
            case .send(let node, let asking):
                counts.sends += 1
                switch connection(to: node).attempt(&command, asking: asking) {
                case .replied(let value):
                    count(value, from: node)
                    step = routing.replied(value, map: &map, nowMs: MonotonicClock.milliseconds())
                case .notSent(let error):
                    step = routing.notSent(error)
                case .lost(let error):
                    step = routing.lostAfterSending(error)
                }
            case .refresh:
                do throws(StoreError) {
                    try refresh()
                    step = routing.mapRefreshed(map)
                } catch {
                    step = routing.refreshFailed(error)
                }
            case .wait(let untilMs):
                Self.sleep(untilMs: untilMs)
                step = routing.waited()
            case .done(let value, let node):
                return Reply(value: value, node: node)
            case .failed(let error):
                throw error
            }
        }
    }

    /// The connection to `node`, made (not connected) when there is none yet.
    func connection(to node: RedisURL.HostPort) -> RedisConnection {
        if let made = nodes[node] { return made }
        let made = RedisConnection(
            url: RedisURL(endpoint: .tcp(host: node.host, port: node.port), password: password, username: username),
            timeoutMs: timeoutMs, observer: observer, allowEviction: allowEviction)
        nodes[node] = made
        return made
    }

    /// Counts a redirect in `reply` (the routing decides what to do with it).
    private func count(_ reply: RedisValue, from node: RedisURL.HostPort) {
        guard case .error = reply, let redirect = ClusterRedirect(reply, answeredBy: node) else { return }
        switch redirect {
        case .moved: counts.moved += 1
        case .ask: counts.asks += 1
        case .tryAgain: counts.tryAgains += 1
        case .clusterDown: break
        }
    }

    /// Sleeps until the monotonic clock reads `untilMs` (at once when it already does).
    static func sleep(untilMs: Int64) {
        while true {
            let (left, overflow) = untilMs.subtractingReportingOverflow(MonotonicClock.milliseconds())
            guard !overflow, left > 0 else { return }
            var wanted = timespec(tv_sec: Int(left / 1000), tv_nsec: Int(left % 1000) * 1_000_000)
            var remaining = timespec()
            _ = nanosleep(&wanted, &remaining)
        }
    }

    /// A key as shown in an error: its first 40 bytes as text.
    private static func shown(_ key: [UInt8]) -> String {
        let text = String(decoding: key.prefix(40), as: UTF8.self)
        return key.count > 40 ? "'\(text)...'" : "'\(text)'"
    }
}
