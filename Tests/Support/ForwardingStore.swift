import ChargeGateCore

/// A test store that wraps a memory store: every `ChargeStore` requirement it does not
/// implement itself goes to `inner` as it is. A test store then states only what it changes
/// (counting spends, failing settlements, answering `.ignored`...). The batch `settle(_:)`
/// keeps `ChargeStore`'s default, one `settle` per line, so that a store that changes the
/// single settlement changes the batch too.
public protocol ForwardingStore: ChargeStore {
    /// The memory store everything else goes to.
    var inner: MemoryStore { get }
}

extension ForwardingStore {
    public func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult { try inner.charge(request) }
    public func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) { try inner.peek(keys) }
    public func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) {
        try inner.topOff(item, amount: amount)
    }
    public func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage { try inner.events(stream: stream, query) }
    public func plan(at key: String) throws(StoreError) -> PlanRecord? { try inner.plan(at: key) }
    public func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) { try inner.setPlan(record, at: key) }
    @discardableResult
    public func clearPlan(at key: String) throws(StoreError) -> Bool { try inner.clearPlan(at: key) }
    public func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome { try inner.settle(request) }
    public func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) {
        try inner.openHolds(prefix: prefix, limit: limit)
    }
}
