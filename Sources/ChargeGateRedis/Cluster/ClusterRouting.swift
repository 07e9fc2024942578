import ChargeGateCore

/// Where to send one command on a cluster, and what to do with each answer, as a state machine
/// with no I/O and no clock: the driver performs each step it asks for, passing the time it read
/// (milliseconds, any monotonic origin), so the rules can be tested against scripted answers.
///
/// The command's keys all live in one slot (`ClusterSlot.slot(forKeys:)`). The rules:
/// 1. Send it to the slot's primary in the driver's `ClusterSlotMap`; with no primary there,
///    read the map again first (`.refresh`, once per command).
/// 2. `MOVED slot node`: the slot lives elsewhere. The map is corrected for that slot and marked
///    `refreshDue`; the command is sent to the new node.
/// 3. `ASK slot node`: the slot is being migrated and the keys are on the importing node. Send
///    `ASKING` then the command to that node, once; the map does not change.
/// 4. `TRYAGAIN`: the keys are split by a migration in progress. Wait (5 ms, doubling to 100 ms)
///    and send again to the same node, as long as the wait ends within `redisTimeoutMs` of the
///    start; past it, give up (`.unavailable`).
/// 5. `CLUSTERDOWN`: give up (`.unavailable`, the node's text) and mark the map `refreshDue`.
/// 6. More than `maxRedirects` `MOVED`s and `ASK`s for one command (a loop between nodes that
///    disagree during a resharding): give up (`.unavailable`).
/// 7. A connection error BEFORE the command was written (connect refused, a dead node): the
///    command cannot have run, so read the map again (once per command) and send it to the
///    slot's primary then, unless that is a node that already failed for this command. A failed
///    `ASK` target is given up on (the importing node is the only place the keys are).
/// 8. A connection error or timeout AFTER the command may have been written: give up with that
///    error, never sending again. A spend's script may have run; it must never run twice.
/// 9. Any other reply (a result, or an error that is no redirect: a script error, `NOSCRIPT`,
///    `CROSSSLOT`) is the command's answer, with the node that gave it.
///
/// Why resending after 2–5 is safe: a cluster node decides where a command's keys live before it
/// executes anything (`getNodeByQuery` in Redis's `cluster.c`), and answers `MOVED`, `ASK`,
/// `TRYAGAIN` or `CLUSTERDOWN` instead of running it. A script sent with `EVALSHA` and answered
/// by one of them did NOT run, and spent nothing. A `MOVED` or `ASK` that cannot be read is
/// still such an answer: it ends the command with a `.protocolError`, never a resend.
public struct ClusterRouting: Sendable {
    /// What the driver must do next.
    public enum Step: Sendable, Equatable {
        /// Send the command to this node: first `ASKING` when `asking` (in the same round trip;
        /// its `+OK` is dropped), then the command. Then call `replied` with the command's reply,
        /// `notSent` when nothing could be written, or `lostAfterSending` when the connection
        /// failed or timed out once the command may have been written.
        case send(RedisURL.HostPort, asking: Bool)
        /// Read `CLUSTER SLOTS` (from any node that answers) into the map, then call
        /// `mapRefreshed`, or `refreshFailed` when no node gave a usable map.
        case refresh
        /// Wait until the clock reads `untilMs`, then call `waited`.
        case wait(untilMs: Int64)
        /// The command's answer, from this node: a result, or an error that is no redirect.
        case done(RedisValue, from: RedisURL.HostPort)
        /// Give up: the request gets the fail-closed answer (a 503). Nothing is to be resent.
        case failed(StoreError)
    }

    /// The default bound on `MOVED` and `ASK` redirects for one command.
    public static let defaultMaxRedirects = 5
    /// The first wait after a `TRYAGAIN`, in milliseconds; each next one doubles.
    public static let firstTryAgainWaitMs: Int64 = 5
    /// The longest wait after a `TRYAGAIN`, in milliseconds.
    public static let maxTryAgainWaitMs: Int64 = 100
    /// The most `TRYAGAIN`s followed for one command, whatever the clock says (a clock that
    /// does not move cannot make a command wait for ever).
    public static let maxTryAgains = 100

    /// The slot the command's keys live in.
    public let slot: Int
    /// No `TRYAGAIN` wait may end after this time (the start plus `redisTimeoutMs`).
    public let deadlineMs: Int64
    /// The most `MOVED`s and `ASK`s followed; one more ends the command.
    public let maxRedirects: Int
    /// The `MOVED`s and `ASK`s followed so far.
    public private(set) var redirects = 0
    /// The `TRYAGAIN`s waited out so far.
    public private(set) var tryAgains = 0
    /// Whether the map was read again for this command.
    public private(set) var refreshed = false

    private enum State: Sendable, Equatable {
        case idle
        case sent(RedisURL.HostPort, asking: Bool)
        case refreshing
        case waiting(RedisURL.HostPort, asking: Bool)
        case ended
    }

    private var state = State.idle
    /// The nodes that could not be reached for this command, with why, in order.
    private var unreachable: [(node: RedisURL.HostPort, why: String)] = []

    /// A command on `slot` (0...16383), started when the clock read `nowMs`, whose `TRYAGAIN`
    /// waits must end within `redisTimeoutMs`.
    public init(slot: Int, redisTimeoutMs: Int, nowMs: Int64, maxRedirects: Int = Self.defaultMaxRedirects) {
        self.slot = slot
        let (deadline, overflow) = nowMs.addingReportingOverflow(Int64(max(0, redisTimeoutMs)))
        self.deadlineMs = overflow ? .max : deadline
        self.maxRedirects = max(0, maxRedirects)
    }

    /// The first step: the slot's primary in `map`, or a refresh when it has none.
    public mutating func start(map: ClusterSlotMap) -> Step {
        guard state == .idle else { return misuse("start") }
        guard ClusterSlot.all.contains(slot) else {
            state = .ended
            return .failed(.protocolError("cluster routing: slot \(slot) is not within 0...16383"))
        }
        return sendToPrimary(map)
    }

    /// The reply to the command last sent (after `ASKING`, when asked for). A redirect may
    /// correct `map` (`MOVED`) or mark it `refreshDue` (`CLUSTERDOWN`).
    public mutating func replied(_ reply: RedisValue, map: inout ClusterSlotMap, nowMs: Int64) -> Step {
        guard case .sent(let node, let asking) = state else { return misuse("a reply") }
        guard case .error(let message) = reply else { return end(.done(reply, from: node)) }
        guard let redirect = ClusterRedirect(error: message, answeredBy: node) else {
            if ClusterRedirect.claimsRedirect(message) {
                return end(.failed(.protocolError("\(node) answered an unreadable redirect: \(Self.clip(message))")))
            }
            return end(.done(reply, from: node))
        }
        switch redirect {
        case .moved(let movedSlot, let target), .ask(let movedSlot, let target):
            let isMoved: Bool
            if case .moved = redirect { isMoved = true } else { isMoved = false }
            let word = isMoved ? "MOVED" : "ASK"
            guard movedSlot == slot else {
                return end(.failed(.protocolError("\(node) answered \(word) for slot \(movedSlot); the command's slot is \(slot)")))
            }
            redirects += 1
            guard redirects <= maxRedirects else {
                return end(
                    .failed(.unavailable("slot \(slot): more than \(maxRedirects) redirects (the last: \(word) from \(node) to \(target))"))
                )
            }
            if isMoved { map.moved(slot: slot, to: target) }
            state = .sent(target, asking: !isMoved)
            return .send(target, asking: !isMoved)
        case .tryAgain:
            tryAgains += 1
            let wait = Self.tryAgainWait(number: tryAgains)
            let (until, overflow) = nowMs.addingReportingOverflow(wait)
            guard !overflow, until <= deadlineMs, tryAgains <= Self.maxTryAgains else {
                return end(.failed(.unavailable("slot \(slot): still TRYAGAIN (a migration in progress) after \(tryAgains - 1) retries")))
            }
            state = .waiting(node, asking: asking)
            return .wait(untilMs: until)
        case .clusterDown(let text):
            map.markRefreshDue()
            return end(.failed(.unavailable("\(node) answered \(Self.clip(text))")))
        }
    }

    /// The wait asked for by a `.wait` is over: the command is sent again to the same node (with
    /// `ASKING` again when it went there by an `ASK`).
    public mutating func waited() -> Step {
        guard case .waiting(let node, let asking) = state else { return misuse("the end of a wait") }
        state = .sent(node, asking: asking)
        return .send(node, asking: asking)
    }

    /// Nothing of the command (nor of `ASKING`) was written: the node could not be connected to
    /// (or its connection was known dead before writing). Safe to send elsewhere.
    public mutating func notSent(_ error: StoreError) -> Step {
        guard case .sent(let node, let asking) = state else { return misuse("a send failure") }
        unreachable.append((node, SentinelDiscovery.reason(error)))
        if asking {
            return end(.failed(.unavailable("slot \(slot): the importing node of an ASK cannot be reached: \(unreachableText)")))
        }
        guard !refreshed else {
            return end(.failed(.unavailable("slot \(slot): no primary can be reached: \(unreachableText)")))
        }
        refreshed = true
        state = .refreshing
        return .refresh
    }

    /// The connection failed or timed out once the command may have been written: the command
    /// may have run, so it is never sent again; the error is the command's.
    public mutating func lostAfterSending(_ error: StoreError) -> Step {
        guard case .sent = state else { return misuse("a lost connection") }
        return end(.failed(error))
    }

    /// The map was read again (the driver replaced its map with the new one): the command goes
    /// to the slot's primary there, unless it has none or it already failed for this command.
    public mutating func mapRefreshed(_ map: ClusterSlotMap) -> Step {
        guard state == .refreshing else { return misuse("a refreshed map") }
        return sendToPrimary(map)
    }

    /// No node gave a usable `CLUSTER SLOTS`: the command ends (`.unavailable`).
    public mutating func refreshFailed(_ error: StoreError) -> Step {
        guard state == .refreshing else { return misuse("a failed refresh") }
        let before = unreachable.isEmpty ? "" : "\(unreachableText); "
        return end(.failed(.unavailable("slot \(slot): \(before)the slot map cannot be read: \(SentinelDiscovery.reason(error))")))
    }

    /// The wait after the `number`th `TRYAGAIN` (1, 2, ...): 5 ms doubling, at most 100 ms.
    public static func tryAgainWait(number: Int) -> Int64 {
        var wait = firstTryAgainWaitMs
        var step = 1
        while step < number, wait < maxTryAgainWaitMs {
            wait *= 2
            step += 1
        }
        return min(wait, maxTryAgainWaitMs)
    }

    // MARK: - Steps

    private mutating func sendToPrimary(_ map: ClusterSlotMap) -> Step {
        guard let primary = map.primary(forSlot: slot)?.address else {
            guard !refreshed else { return end(.failed(.unavailable("slot \(slot) is served by no primary in the slot map"))) }
            refreshed = true
            state = .refreshing
            return .refresh
        }
        if unreachable.contains(where: { $0.node == primary }) {
            return end(.failed(.unavailable("slot \(slot): no primary can be reached: \(unreachableText)")))
        }
        state = .sent(primary, asking: false)
        return .send(primary, asking: false)
    }

    private mutating func end(_ step: Step) -> Step {
        state = .ended
        return step
    }

    /// A call that does not follow the last step: a driver bug, answered without a trap.
    private mutating func misuse(_ what: String) -> Step {
        state = .ended
        return .failed(.protocolError("cluster routing: \(what) was not expected now"))
    }

    private var unreachableText: String {
        unreachable.map { "\($0.node): \($0.why)" }.joined(separator: "; ")
    }

    private static func clip(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(80)) + "..."
    }
}
