/// Where bucket state lives: the Redis store (one per worker thread, each with its own
/// connection) or the memory store (one shared by every worker of the process).
public protocol ChargeStore: AnyObject {
    /// Spends every item of `request` or none, atomically, with the idempotency record and the
    /// event append decided in the same step.
    func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome
    /// The stored states of `keys` (nil where missing) and the store's clock, without writing.
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?])
    /// Adds `amount` (nil: fills) to one bucket, atomically; returns the new state.
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState)
    /// One page of the event log at `stream`.
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage
}
