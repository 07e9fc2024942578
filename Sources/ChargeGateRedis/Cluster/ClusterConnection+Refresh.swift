import ChargeGateCore

/// Reading the slot map: `CLUSTER SLOTS` from the nodes of the map already read, then the seeds.
extension ClusterConnection {
    /// Reads the slot map again: asks the primaries of the current map, their replicas, then
    /// the seeds, those with an open connection first, for `CLUSTER SLOTS` (each node once,
    /// each within `timeoutMs`; a node whose connection is backing off fails at once, so a dead
    /// node costs a connect timeout at most once per back-off), and takes the first map that
    /// covers every slot, or else the one that covers the most. Connections to nodes that are
    /// in neither the new map nor the seeds are closed. Throws `.unavailable` (each node and
    /// why) when no node gave a map; the current map is then kept, still `refreshDue`.
    public func refresh() throws(StoreError) {
        lastRefreshMs = MonotonicClock.milliseconds()
        var best: ClusterSlotMap?
        var failures: [String] = []
        for node in refreshOrder() {
            let reply: RedisValue
            do throws(StoreError) {
                reply = try connection(to: node).command(["CLUSTER", "SLOTS"])
            } catch {
                failures.append("\(node): \(SentinelDiscovery.reason(error))")
                continue
            }
            let read: ClusterSlotMap
            do throws(StoreError) {
                read = try ClusterSlotMap(clusterSlots: reply, answeredBy: node)
            } catch {
                failures.append("\(node): \(SentinelDiscovery.reason(error))")
                continue
            }
            guard read.coveredSlots > 0 else {
                failures.append("\(node): no slot is served")
                continue
            }
            if read.isComplete {
                best = read
                break
            }
            if read.coveredSlots > (best?.coveredSlots ?? 0) { best = read }
        }
        guard let best else {
            map.markRefreshDue()
            let tried = failures.isEmpty ? "no node to ask (no seeds)" : failures.joined(separator: "; ")
            throw .unavailable("cannot read the cluster's slot map: \(tried)")
        }
        map = best
        counts.refreshes += 1
        closeUnknownNodes()
    }

    /// Reads the map again before a command when it is known to be out of date (never read, a
    /// `MOVED` or `CLUSTERDOWN` seen), at most once per `minRefreshIntervalMs`. A failure is
    /// left to the command's routing (which reads the map again when the slot has no primary).
    func refreshIfDue() {
        guard map.refreshDue else { return }
        if let last = lastRefreshMs {
            let (since, overflow) = MonotonicClock.milliseconds().subtractingReportingOverflow(last)
            if !overflow, since < Self.minRefreshIntervalMs { return }
        }
        do throws(StoreError) {
            try refresh()
        } catch {
            // The routing asks for a refresh itself when it has nowhere to send.
        }
    }

    /// The nodes to ask for the map, each once: the map's primaries, their replicas, the seeds;
    /// those this connection holds an open connection to first (they answered last time).
    func refreshOrder() -> [RedisURL.HostPort] {
        var seen = Set<RedisURL.HostPort>()
        var open: [RedisURL.HostPort] = []
        var others: [RedisURL.HostPort] = []
        let known = map.ranges.map(\.shard)
        for node in known.map(\.primary.address) + known.flatMap({ $0.replicas.map(\.address) }) + seeds
        where seen.insert(node).inserted {
            if nodes[node]?.isConnected == true { open.append(node) } else { others.append(node) }
        }
        return open + others
    }

    /// Closes the connections to nodes that are neither in the map nor seeds.
    private func closeUnknownNodes() {
        var wanted = Set(seeds)
        for range in map.ranges {
            wanted.insert(range.shard.primary.address)
            for replica in range.shard.replicas { wanted.insert(replica.address) }
        }
        for node in nodes.keys where !wanted.contains(node) {
            // The RedisConnection frees its own context when released here.
            nodes[node] = nil
        }
    }
}
