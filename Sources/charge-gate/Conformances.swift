import ArgumentParser
import ChargeGateRedis
import ChargeGateServer
import ChargeGateCore
import Logging

// Conformances the command line adds: log options as arguments, metrics as the Redis
// connections' observer.

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension LineLogHandler.Format: ExpressibleByArgument {}

extension GateMetrics: RedisObserver {
    public func roundTrip(nanoseconds: UInt64) { redisRoundTrip(nanoseconds: nanoseconds) }
    public func failed(_ error: StoreError) { redisFailed(error) }
    public func connected(reconnect: Bool) { redisConnected(reconnect: reconnect) }
    public func replicasMissing(acknowledged: Int, wanted: Int) { redisReplicasMissing() }
    public func clusterGiveBack(failed: Bool) { self.clusterGaveBack(failed: failed) }
}
