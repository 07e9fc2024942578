import ChargeGateCore

/// One round of finding the master through Sentinel, as a state machine with no I/O: the
/// driver (`RedisConnection`) performs each step it asks for and feeds the answer back, so the
/// rules can be tested against scripted sentinel answers (docs/redis.md, "Failover with
/// Sentinel").
///
/// The rules, in order for each sentinel of the URL:
/// 1. Ask it `SENTINEL MASTER name` (within `redisTimeoutMs`). An unreachable sentinel, one that
///    does not know the name, or an answer without an address is skipped.
/// 2. A master it sees down (`s_down`, `o_down`) or being failed over is skipped without
///    connecting: asking the next sentinel is quicker than timing out on a dead node.
/// 3. An answer whose `config-epoch` is older than the newest this process has seen is skipped
///    as stale (a sentinel that has not yet heard of the last failover) — unless every sentinel
///    that answered was stale, then the newest of their answers is tried at the end (the
///    sentinels were rebuilt with lower epochs; the process's memory is what is wrong).
/// 4. A master this process knows to be under failover (`avoid`: a sentinel reported it
///    `o_down` or `failover_in_progress` in the newest epoch) is skipped: during a failover the
///    answer is a 503, never a spend on a master about to be demoted.
/// 5. The named node is connected and asked `ROLE`: anything but `master` is skipped (a
///    replica, or an old master not yet reconfigured).
/// A node already rejected in this round is not tried again for a later sentinel.
public struct SentinelDiscovery: Sendable {
    /// What the driver must do next.
    public enum Step: Sendable, Equatable {
        /// Send `SENTINEL MASTER name` to this sentinel; feed the reply to `sentinelAnswered`.
        case askSentinel(RedisURL.HostPort)
        /// Connect to this node (with the data node's AUTH and SELECT) and send `ROLE`; feed
        /// the reply to `roleAnswered`. Keep the connection when the next step is `.found`.
        case checkRole(RedisURL.HostPort)
        /// The master: spend there.
        case found(Master)
        /// No sentinel named a usable master; the text says why, sentinel by sentinel.
        case failed(String)
    }

    /// A master found, with what the sentinel said about it.
    public struct Master: Sendable, Equatable {
        /// The node's address.
        public var address: RedisURL.HostPort
        /// The sentinel's `config-epoch` for the master (grows with every failover).
        public var configEpoch: Int64
        /// The sentinel that named it.
        public var sentinel: RedisURL.HostPort
        /// Found only because every sentinel that answered was older than the newest epoch seen:
        /// its epoch replaces the process's.
        public var fromStaleSentinels: Bool

        /// Creates a record.
        public init(address: RedisURL.HostPort, configEpoch: Int64, sentinel: RedisURL.HostPort, fromStaleSentinels: Bool = false) {
            self.address = address
            self.configEpoch = configEpoch
            self.sentinel = sentinel
            self.fromStaleSentinels = fromStaleSentinels
        }
    }

    /// The sentinels, in the URL's order.
    public let sentinels: [RedisURL.HostPort]
    /// The master's name.
    public let masterName: String
    /// The newest config epoch this process has seen; older answers are stale.
    public let newestEpoch: Int64
    /// A master known to be under failover in the newest epoch, never used.
    public let avoid: RedisURL.HostPort?

    private var index = 0
    private var candidate: Master?
    private var rejected: [RedisURL.HostPort: String] = [:]
    private var reasons: [String] = []
    private var stale: [Master] = []
    private var answered = 0
    private var retryingStale = false

    /// A round over `sentinels` for `masterName`, given the newest config epoch seen so far.
    public init(sentinels: [RedisURL.HostPort], masterName: String, newestEpoch: Int64 = -1, avoid: RedisURL.HostPort? = nil) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.newestEpoch = newestEpoch
        self.avoid = avoid
    }

    /// The first step.
    public mutating func start() -> Step {
        index = 0
        return nextSentinel()
    }

    /// The reply of the sentinel last asked (or why it could not be asked).
    public mutating func sentinelAnswered(_ answer: Result<RedisValue, StoreError>) -> Step {
        guard index < sentinels.count else { return finish() }
        let sentinel = sentinels[index]
        let reply: RedisValue
        switch answer {
        case .failure(let error):
            return skip("\(sentinel): \(Self.reason(error))")
        case .success(let value):
            reply = value
        }
        if case .error(let message) = reply {
            if message.uppercased().contains("NO SUCH MASTER") {
                return skip("\(sentinel): does not know master '\(masterName)'")
            }
            return skip("\(sentinel): answered \(Self.clip(message))")
        }
        guard let fields = Self.masterFields(reply), let ip = fields["ip"], let portText = fields["port"], let port = Int(portText),
            (1...65535).contains(port), !ip.isEmpty
        else {
            return skip("\(sentinel): unexpected answer to SENTINEL MASTER")
        }
        answered += 1
        let address = RedisURL.HostPort(host: ip, port: port)
        let epoch = fields["config-epoch"].flatMap { Int64($0) } ?? 0
        let flags = Self.flags(fields)
        if let down = flags.first(where: { $0 == "s_down" || $0 == "o_down" || $0 == "failover_in_progress" }) {
            return skip(
                "\(sentinel): names \(address), which it sees \(down == "failover_in_progress" ? "being failed over" : "down (\(down))")")
        }
        let master = Master(address: address, configEpoch: epoch, sentinel: sentinel)
        if address == avoid, epoch <= newestEpoch {
            return skip("\(sentinel): names \(address), which is being failed over")
        }
        if epoch < newestEpoch {
            stale.append(master)
            return skip("\(sentinel): names \(address) with config epoch \(epoch), older than \(newestEpoch) seen before")
        }
        return tryCandidate(master)
    }

    /// The `ROLE` reply of the node last named (or why it could not be reached).
    public mutating func roleAnswered(_ answer: Result<RedisValue, StoreError>) -> Step {
        guard let master = candidate else { return finish() }
        candidate = nil
        let why: String
        switch answer {
        case .failure(let error):
            why = "cannot be reached (\(Self.reason(error)))"
        case .success(let reply):
            let role = reply.elements?.first?.text ?? ""
            if role == "master" { return .found(master) }
            if case .error(let message) = reply {
                why = "did not answer ROLE (\(Self.clip(message)))"
            } else {
                why = "is not a master (ROLE \(role.isEmpty ? "unreadable" : Self.clip(role)))"
            }
        }
        rejected[master.address] = why
        return skip("\(master.sentinel): names \(master.address), which \(why)")
    }

    // MARK: - Steps

    private mutating func tryCandidate(_ master: Master) -> Step {
        if let why = rejected[master.address] {
            return skip("\(master.sentinel): names \(master.address), which \(why)")
        }
        candidate = master
        return .checkRole(master.address)
    }

    private mutating func skip(_ reason: String) -> Step {
        reasons.append(reason)
        index += 1
        return nextSentinel()
    }

    private mutating func nextSentinel() -> Step {
        if index < sentinels.count { return .askSentinel(sentinels[index]) }
        return finish()
    }

    /// Past the last sentinel: when every answer was stale, the newest of them is tried once.
    private mutating func finish() -> Step {
        if !retryingStale, !stale.isEmpty, stale.count == answered {
            retryingStale = true
            var newest = stale.max { $0.configEpoch < $1.configEpoch } ?? stale[0]
            newest.fromStaleSentinels = true
            stale = []
            if rejected[newest.address] == nil {
                candidate = newest
                return .checkRole(newest.address)
            }
        }
        let list = reasons.isEmpty ? "no sentinel listed" : reasons.joined(separator: "; ")
        return .failed("no usable master '\(masterName)' from \(sentinels.count) sentinel\(sentinels.count == 1 ? "" : "s"): \(list)")
    }

    // MARK: - Reading answers

    /// The flags of a `SENTINEL MASTER` answer (`master`, `s_down`, `o_down`, ...).
    public static func flags(_ fields: [String: String]) -> [String] {
        (fields["flags"] ?? "").split(separator: ",").map(String.init)
    }

    /// `SENTINEL MASTER`'s flat list of names and values as a dictionary.
    public static func masterFields(_ reply: RedisValue) -> [String: String]? {
        guard let items = reply.elements, items.count % 2 == 0, !items.isEmpty else { return nil }
        var fields: [String: String] = [:]
        var i = 0
        while i + 1 < items.count {
            if let name = items[i].text, let value = items[i + 1].text { fields[name] = value }
            i += 2
        }
        return fields
    }

    /// A store error as a short reason.
    static func reason(_ error: StoreError) -> String {
        switch error {
        case .timeout: return "no answer within redisTimeoutMs"
        case .unavailable(let why): return why
        case .protocolError(let why): return why
        }
    }

    private static func clip(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(80)) + "..."
    }
}
