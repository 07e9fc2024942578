import ChargeGateCore

/// The store on a Redis Cluster (SPEC §12; docs/redis.md, "Redis Cluster"): the Redis store's
/// scripts, keys and replies, each script run on the primary of its keys' slot through a
/// `ClusterConnection`.
///
/// One per worker thread, owning its `ClusterConnection` (so not `Sendable`). Keys follow
/// `KeySpace`'s cluster layout (a subject's keys share its tag, a global pool has its own); the
/// event stream and holds of a spend are placed in the slot it runs in (`KeySpace.events(_:tag:)`,
/// `hold(_:id:tag:)`, a tag per slot: `ClusterSlot.tag(forSlot:)`). A spend whose keys share one
/// slot is one script, as on a single node; a route whose pools live in several slots is spent
/// slot by slot (`ClusterSpendPlan`, `+Spend`), a later slot's no giving back what the earlier
/// ones spent. Settlement finds a request's holds through the claim its spend made
/// (`KeySpace.holdClaim`, `+Settle`). Reads that span slots (usage, the event log, open holds)
/// go slot by slot or node by node (`+Reads`).
public final class ClusterStore: ChargeStore {
    /// The connections this store sends on (exposed for diagnostics and tests).
    public let connection: ClusterConnection
    /// Replicas that must acknowledge each spend (`WAIT` on each slot's primary it wrote on);
    /// nil: no WAIT (config `redisMinReplicas`, `redisReplicaWaitMs`).
    public let replicaWait: RedisStore.ReplicaWait?
    /// The key space of the config this store was made for: where step holds go.
    public let keys: KeySpace
    /// How long a step hold of a route that does not settle may be given back, in ms: a later
    /// slot answers within a few `redisTimeoutMs`, so a minute is ample (the key lives two).
    public static let stepHoldWindowMs: Int64 = 60_000

    /// What this store did beyond single-slot spends, for tests and metrics.
    public struct Counts: Sendable, Equatable {
        /// Spends that ran in more than one slot.
        public var multiSlotSpends = 0
        /// Earlier slots' charges given back after a later slot's no (or a failure).
        public var givenBack = 0
        /// Give-backs that failed: that slot's charge stays spent (its step hold lapses).
        public var giveBackFailures = 0

        /// All zero.
        public init() {}
    }

    /// What this store did so far.
    public internal(set) var counts = Counts()
    /// Told about give-backs (a failed one leaves a charge spent): nil when nobody counts.
    let observer: (any RedisObserver)?

    /// The script run for spends, peeks and top-offs (`ChargeScript`), and for settlements.
    static let chargeSHA = ChargeScript.sha1
    static let chargeSource = Array(ChargeScript.source.utf8)
    static let settleSHA = SettleScript.sha1
    static let settleSource = Array(SettleScript.source.utf8)

    /// A store on a new cluster connection to `url`'s seeds (nothing connected until the first
    /// use). `url` must be a `redis-cluster://` one (any other has no seeds: every command then
    /// fails `.unavailable`).
    public convenience init(
        url: RedisURL, keys: KeySpace, timeoutMs: Int, observer: (any RedisObserver)? = nil, allowEviction: Bool = false,
        replicaWait: RedisStore.ReplicaWait? = nil
    ) {
        var seeds: [RedisURL.HostPort] = []
        if case .cluster(let listed) = url.endpoint { seeds = listed }
        self.init(
            connection: ClusterConnection(
                seeds: seeds, password: url.password, username: url.username, timeoutMs: timeoutMs, observer: observer,
                allowEviction: allowEviction),
            keys: keys, observer: observer, replicaWait: replicaWait)
    }

    /// A store sending on `connection`.
    public init(
        connection: ClusterConnection, keys: KeySpace, observer: (any RedisObserver)? = nil, replicaWait: RedisStore.ReplicaWait? = nil
    ) {
        self.connection = connection
        self.keys = keys
        self.observer = observer
        self.replicaWait = replicaWait
    }

    // MARK: - Scripts

    /// Runs `ChargeScript` in `slot` with the keys and arguments `fill` appends (numkeys first);
    /// an error reply becomes `.protocolError` with Redis's text.
    func runCharge(slot: Int, _ fill: (inout RESPCommand) throws(StoreError) -> Void) throws(StoreError) -> ClusterConnection.Reply {
        try run(sha: Self.chargeSHA, source: Self.chargeSource, slot: slot, fill)
    }

    /// Runs the script `sha` (`source`) in `slot` as `runCharge` runs `ChargeScript`.
    func run(
        sha: String, source: [UInt8], slot: Int, _ fill: (inout RESPCommand) throws(StoreError) -> Void
    ) throws(StoreError) -> ClusterConnection.Reply {
        var command = RESPCommand()
        command.append(RedisStore.evalshaName)
        command.append(sha)
        try fill(&command)
        let reply = try connection.runScript(&command, sha: sha, source: source, slot: slot)
        if case .error(let message) = reply.value { throw .protocolError(message) }
        return reply
    }

    /// A one-key command on `key`'s slot; an error reply becomes `.protocolError`.
    func command(_ arguments: [String], key: String) throws(StoreError) -> RedisValue {
        let reply = try connection.command(arguments, keys: [key])
        if case .error(let message) = reply.value { throw .protocolError(message) }
        return reply.value
    }

    // MARK: - One key at a time

    /// Adds `amount` (nil: fills) to one bucket in one script run on its slot.
    public func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) {
        let reply = try runCharge(slot: ClusterSlot.slot(forKey: item.key)) { (command: inout RESPCommand) throws(StoreError) in
            try RedisStore.appendTopOff(item, amount: amount, to: &command)
        }
        return try RedisStore.topOffResult(reply.value)
    }

    /// The plan record at `key` (`GET` on its slot); nil when none.
    public func plan(at key: String) throws(StoreError) -> PlanRecord? {
        try RedisStore.planRecord(try command(["GET", key], key: key))
    }

    /// Stores `record` at `key` (`SET`, no expiry).
    public func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) {
        try RedisStore.planStored(try command(["SET", key, record.text], key: key))
    }

    /// Removes the plan record at `key` (`DEL`); whether there was one.
    @discardableResult
    public func clearPlan(at key: String) throws(StoreError) -> Bool {
        try RedisStore.planRemoved(try command(["DEL", key], key: key))
    }
}
