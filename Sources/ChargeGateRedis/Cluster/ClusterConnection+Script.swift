import ChargeGateCore

/// Scripts on a cluster (`EVALSHA`, loading on `NOSCRIPT`) and `WAIT` for a node's replicas.
extension ClusterConnection {
    /// Runs a Lua script by its SHA-1 (`EVALSHA sha numkeys keys... arguments...`) on the
    /// primary of its keys' slot (see `command(_:keys:)`). When the node that answers says
    /// `NOSCRIPT` (it did not run the script: a new primary after a failover, a restart,
    /// `SCRIPT FLUSH`), the script is loaded there (`SCRIPT LOAD`, checked to answer `sha`) and
    /// the command routed again from the start (so, to that node again, or through the same
    /// `ASK`); at most once per node, and within the first command's `TRYAGAIN` deadline. A
    /// script's error reply is returned as an `.error` value, as by `command`.
    public func runScript(
        sha: String, source: [UInt8], keys: [[UInt8]], arguments: [[UInt8]]
    ) throws(StoreError) -> Reply {
        let slot = try Self.slot(of: keys)
        var command = RESPCommand()
        command.append("EVALSHA")
        command.append(sha)
        command.append(keys.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return try runScript(&command, sha: sha, source: source, slot: slot)
    }

    /// Runs `command`, an `EVALSHA sha ...` whose keys all live in `slot` (the caller checked
    /// them), as `runScript(sha:source:keys:arguments:)` does. `command` is only read (`inout`:
    /// its buffer is reused).
    public func runScript(_ command: inout RESPCommand, sha: String, source: [UInt8], slot: Int) throws(StoreError) -> Reply {
        let startMs = MonotonicClock.milliseconds()
        var reply = try route(&command, slot: slot, startMs: startMs)
        var loadedOn = Set<RedisURL.HostPort>()
        while case .error(let message) = reply.value, message.hasPrefix("NOSCRIPT"), loadedOn.insert(reply.node).inserted {
            try loadScript(sha: sha, source: source, on: reply.node)
            reply = try route(&command, slot: slot, startMs: startMs)
        }
        return reply
    }

    /// Sends `arguments` to `node` alone, not routed (`SCAN`, `TIME`: commands about one node);
    /// an error reply is a `.error` value.
    public func command(_ arguments: [String], on node: RedisURL.HostPort) throws(StoreError) -> RedisValue {
        try connection(to: node).command(arguments)
    }

    /// `SCRIPT LOAD source` on `node`'s connection; `.protocolError` unless it answers `sha`.
    /// Loading runs nothing, so a lost connection here spends nothing either.
    func loadScript(sha: String, source: [UInt8], on node: RedisURL.HostPort) throws(StoreError) {
        let reply = try connection(to: node).command([Array("SCRIPT".utf8), Array("LOAD".utf8), source])
        if case .error(let message) = reply { throw .protocolError("SCRIPT LOAD on \(node): \(message)") }
        guard reply.text == sha else {
            throw .protocolError("SCRIPT LOAD on \(node) answered another SHA than \(sha)")
        }
        counts.scriptLoads += 1
    }

    /// `WAIT replicas timeoutMs` on the connection to `node` (the node a command's `Reply`
    /// names: a WAIT acknowledges only the writes of its own connection), returning how many
    /// replicas acknowledged them (`RedisConnection.waitForReplicas`). `.unavailable` when
    /// there is no open connection to `node`.
    public func waitForReplicas(_ replicas: Int, timeoutMs waitMs: Int, on node: RedisURL.HostPort) throws(StoreError) -> Int {
        guard let connection = nodes[node] else { throw .unavailable("no connection to \(node) to WAIT on") }
        return try connection.waitForReplicas(replicas, timeoutMs: waitMs)
    }
}
