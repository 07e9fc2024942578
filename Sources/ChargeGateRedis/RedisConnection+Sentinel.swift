import ChargeGateCore

/// Driving Sentinel discovery: each new connection asks the sentinels for the master
/// (`SentinelDiscovery` decides, this performs its steps), and an answer that says the node is
/// no master sends the next command back to the sentinels.
extension RedisConnection {
    /// Whether an error reply says the node cannot take writes as a master: `READONLY` (a
    /// replica; also inside a script's error) or `MASTERDOWN` (a replica whose master is gone).
    public static func meansNotMaster(_ message: String) -> Bool {
        message.hasPrefix("READONLY") || message.hasPrefix("MASTERDOWN") || message.contains("-READONLY")
            || message.contains("-MASTERDOWN")
    }

    /// Connects to the master the sentinels name (checked with `ROLE`), then checks the eviction
    /// policy (unless `allowEviction`) and tells the watch; refused when the watch heard of a
    /// failover meanwhile.
    func openMaster(sentinels: [RedisURL.HostPort], name: String, watch: MasterWatch) throws(StoreError) {
        let found = try discover(sentinels: sentinels, name: name, watch: watch)
        guard context.isOpen else { throw .unavailable("no connection after discovery") }
        if !allowEviction {
            try requireNoEviction()
        }
        guard let generation = watch.connected(found) else {
            drop()
            throw .unavailable("a failover was reported while asking the sentinels; asking again")
        }
        master = found
        self.generation = generation
    }

    /// One discovery round (`SentinelDiscovery`), performed: on `.found` the checked node's
    /// connection is `context`.
    func discover(sentinels: [RedisURL.HostPort], name: String, watch: MasterWatch) throws(StoreError) -> SentinelDiscovery.Master {
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
                    try openNode(at: .tcp(host: node.host, port: node.port))
                    var role = RESPCommand([Array("ROLE".utf8)])
                    answer = .success(try context.send(&role))
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
                throw .unavailable(context.scrub(why))
            }
        }
    }

    /// The connection to one sentinel (its own `RedisConnection`: lazy, backing off when down),
    /// authenticated with `sentinelPassword`.
    func sentinelConnection(_ sentinel: RedisURL.HostPort) -> RedisConnection {
        if let made = sentinelConnections[sentinel] { return made }
        let made = RedisConnection(
            url: RedisURL(endpoint: .tcp(host: sentinel.host, port: sentinel.port), password: url.sentinelPassword),
            timeoutMs: timeoutMs, allowEviction: true)
        sentinelConnections[sentinel] = made
        return made
    }
}
