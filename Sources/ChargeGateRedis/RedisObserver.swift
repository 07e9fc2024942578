import ChargeGateCore

/// What a `RedisConnection` reports as it works, for metrics. Called on the connection's own
/// thread; implementations must be cheap and thread-safe (one observer serves every worker).
public protocol RedisObserver: Sendable {
    /// A command was written and its reply read, in `nanoseconds`.
    func roundTrip(nanoseconds: UInt64)
    /// A command could not be completed (no connection, timeout, I/O or protocol error).
    func failed(_ error: StoreError)
    /// A connection was made; `reconnect` when one had been made before on this connection.
    func connected(reconnect: Bool)
    /// A spend was answered 503 because fewer than `wanted` replicas acknowledged it in time.
    func replicasMissing(acknowledged: Int, wanted: Int)
    /// Cluster mode: an earlier slot's charges of a multi-slot spend were given back after a
    /// later slot said no (or failed); `failed` when the give-back itself failed (that charge
    /// stays spent until its hold lapses).
    func clusterGiveBack(failed: Bool)
}

extension RedisObserver {
    /// Default: not counted.
    public func replicasMissing(acknowledged: Int, wanted: Int) {}
    /// Default: not counted.
    public func clusterGiveBack(failed: Bool) {}
}
