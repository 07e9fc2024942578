import ChargeGateCore

extension RedisStore {
    public func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome {
        throw .unavailable("settlement is not built for the Redis store yet")
    }

    public func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) {
        throw .unavailable("settlement is not built for the Redis store yet")
    }
}
