/// Where bucket state lives: the Redis store (one per worker thread, each with its own
/// connection) or the memory store (one shared by every worker of the process).
public protocol ChargeStore: AnyObject {
    /// Spends every item of `request` or none, atomically, with the subject's plan, the
    /// idempotency check and record and the event append decided in the same step.
    func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult
    /// The stored states of `keys` (nil where missing) and the store's clock, without writing.
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?])
    /// Adds `amount` (nil: fills) to one bucket, atomically; returns the new state.
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState)
    /// One page of the event log at `stream`.
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage
    /// The plan record at `key`; nil when none is stored.
    func plan(at key: String) throws(StoreError) -> PlanRecord?
    /// Stores `record` at `key` (no expiry), replacing any.
    func setPlan(_ record: PlanRecord, at key: String) throws(StoreError)
    /// Removes the plan record at `key`; whether there was one.
    @discardableResult
    func clearPlan(at key: String) throws(StoreError) -> Bool
    /// Settles one hold, at most once, atomically across its pools, with its settle events
    /// (`Settlement`, `Bucket.settle`).
    func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome
    /// Settles a batch of holds, each as `settle(_:)` would (one atomic settlement per hold);
    /// the Redis store sends the whole batch in one round trip. One result per request, in
    /// order:
    /// - `.success`: the request was answered (settled, or found `duplicate`, `unknown`, ...);
    /// - `.failure(.protocolError)`: the request's own error (a corrupt hold, a script error):
    ///   nothing of it was applied; the others are not affected;
    /// - `.failure` of any other error (a timeout, the connection lost mid-batch): the request
    ///   was not answered. It may or may not have run; the caller retries it, and a retry of
    ///   one that ran answers `duplicate` (a hold settles at most once), so nothing is applied
    ///   twice. Only its first answer is one to count.
    ///
    /// Throws (that error) instead when no request was answered at all.
    func settle(_ requests: [SettleRequest]) throws(StoreError) -> [Result<SettleOutcome, StoreError>]
    /// Up to `limit` open holds whose keys start with `prefix` (`KeySpace.holdPrefix`), and the
    /// store's clock: for `charge-gate status`.
    func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord])
}

extension ChargeStore {
    /// The batch as one `settle(_:)` per request, in order (the contract above): a protocol
    /// error answers its request alone; any other error leaves the rest unanswered (thrown
    /// when it is the first request's).
    public func settle(_ requests: [SettleRequest]) throws(StoreError) -> [Result<SettleOutcome, StoreError>] {
        var results: [Result<SettleOutcome, StoreError>] = []
        results.reserveCapacity(requests.count)
        for request in requests {
            do throws(StoreError) {
                results.append(.success(try settle(request)))
            } catch {
                if case .protocolError = error {
                    results.append(.failure(error))
                    continue
                }
                if results.isEmpty { throw error }
                while results.count < requests.count { results.append(.failure(error)) }
                return results
            }
        }
        return results
    }

    /// The decision of `charge(_:)` alone.
    public func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome {
        try charge(request).outcome
    }
}
