import Synchronization

/// The embedded store: bucket state in this process's memory, shared by every worker thread
/// behind one lock. Same contract as the Redis store; state is lost on restart and not shared
/// with other processes.
public final class MemoryStore: ChargeStore, Sendable {
    private struct Entry {
        var state: BucketState
        var expiresAt: Int64?
    }

    /// Something that lives until `expiresAt` (epoch ms).
    private struct Expiring<Value> {
        var value: Value
        var expiresAt: Int64
    }

    /// One event stream, with the bytes its events take (estimated) for the size bound.
    private struct Stream {
        var events: [UsageEvent] = []
        var bytes = 0
    }

    private struct State {
        var buckets: [String: Entry] = [:]
        var idempotency: [String: Expiring<IdempotencyRecord>] = [:]
        var idempotencyQuota: [String: Expiring<Int64>] = [:]
        var streams: [String: Stream] = [:]
        var plans: [String: PlanRecord] = [:]
        var holds: [String: Expiring<HoldRecord>] = [:]
        /// Hold keys voided by a settlement that came before its spend (`SettleOutcome.voided`),
        /// to when.
        var voids: [String: Int64] = [:]
        var lastEventTime: Int64 = 0
        var lastEventSeq: Int64 = 0
        var writesSinceSweep = 0
    }

    private let clock: any GateClock
    private let state = Mutex(State())
    /// The bound on each event stream's size, in (estimated) bytes.
    public let eventsMaxBytes: Int

    /// Bytes an event is counted for besides its strings. Measured: 209 bytes of RSS per event
    /// with 77 bytes of strings (200,000 events), so 160 + the strings errs on the safe side.
    static let eventOverheadBytes = 160

    /// Creates an empty store reading time from `clock`, keeping at most `eventsMaxBytes` of
    /// events per stream (besides `eventsMaxLen`).
    public init(clock: any GateClock, eventsMaxBytes: Int = 64 << 20) {
        self.clock = clock
        self.eventsMaxBytes = Swift.max(0, eventsMaxBytes)
    }

    public func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        let now = clock.nowMs()
        return state.withLock { s in
            var items = request.items
            var context = request.context
            var use: PlanUse?
            if let choice = request.plan {
                let chosen = choice.resolve(s.plans[choice.recordKey])
                items = choice.apply(chosen, to: items)
                context.plan = choice.ids[chosen.index]
                use = chosen
            }
            return SpendResult(decide(&s, request, items: items, context: context, now: now), now: now, plan: use)
        }
    }

    /// The spend itself, under the lock, with the plan applied to `items`.
    private func decide(_ s: inout State, _ request: SpendRequest, items: [SpendItem], context: EventContext, now: Int64) -> SpendOutcome {
        if let hold = request.hold, let until = s.voids[hold.key], until > now { return .holdVoided }
        var decision = IdempotencyRecord.Decision.fresh
        if let check = request.idempotency {
            let live = s.idempotency[check.key].flatMap { $0.expiresAt > now ? $0.value : nil }
            decision = IdempotencyRecord.decide(live, for: check)
            switch decision {
            case .reused:
                return .keyReused
            case .repeated(let record):
                s.idempotency[check.key]?.value = record
                return .repeated
            case .fresh, .exhausted:
                break
            }
        }
        let current = items.map { Self.live(s.buckets[$0.key], now: now) }
        let plan = Bucket.plan(items, states: current, now: now)
        guard case .allowed = plan.outcome else { return plan.outcome }
        for (item, write) in zip(items, plan.writes) {
            s.buckets[item.key] = Entry(state: write.state, expiresAt: write.ttlMs.map { now + $0 })
        }
        if let check = request.idempotency, decision == .fresh {
            var quota =
                s.idempotencyQuota[check.quotaKey].flatMap { $0.expiresAt > now ? $0 : nil }
                ?? Expiring(value: 0, expiresAt: now + check.ttlMs)
            quota.value += 1
            s.idempotencyQuota[check.quotaKey] = quota
            if quota.value <= check.maxRecords {
                s.idempotency[check.key] = Expiring(
                    value: IdempotencyRecord(fingerprint: check.fingerprint, repeats: 0), expiresAt: now + check.ttlMs)
            }
        }
        var context = context
        if let hold = request.hold, s.holds[hold.key].map({ $0.expiresAt <= now }) ?? true {
            context.hold = hold.id
            s.holds[hold.key] = Expiring(
                value: HoldRecord.opened(hold, items: items, context: context, now: now), expiresAt: now.saturatingAdding(hold.keyTtlMs))
        }
        if let stream = request.eventsKey, request.eventsMaxLen > 0 {
            for item in items {
                append(
                    &s, stream: stream, maxLen: request.eventsMaxLen, now: now, pool: item.poolId, amount: item.cost,
                    context: context)
            }
        }
        s.writesSinceSweep += 1
        if s.writesSinceSweep >= 4096 { Self.sweep(&s, now: now) }
        return plan.outcome
    }

    public func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) {
        let now = clock.nowMs()
        return state.withLock { s in (now, keys.map { Self.live(s.buckets[$0], now: now) }) }
    }

    public func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) {
        let now = clock.nowMs()
        return state.withLock { s in
            let live = Self.live(s.buckets[item.key], now: now)
            let topOff = Bucket.topOff(item, state: live, amount: amount, now: now)
            if topOff.removesKey {
                s.buckets[item.key] = nil
            } else {
                s.buckets[item.key] = Entry(state: topOff.state, expiresAt: topOff.ttlMs.map { now + $0 })
            }
            return (now, topOff.state)
        }
    }

    public func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage {
        state.withLock { s in
            let all = s.streams[stream]?.events ?? []
            var start = 0
            if let after = query.after, let key = EventID(after) {
                start = Self.firstIndex(in: all) { (EventID($0.id).map { $0 > key }) ?? false }
            } else if let since = query.since {
                start = Self.firstIndex(in: all) { $0.time >= since }
            }
            var page: [UsageEvent] = []
            var index = start
            while index < all.count && page.count < query.limit {
                let event = all[index]
                index += 1
                if let until = query.until, event.time > until { return EventPage(events: page, next: nil) }
                if let pool = query.pool, event.pool != pool { continue }
                if let subject = query.subject, event.context.subject != subject { continue }
                page.append(event)
            }
            let more = index < all.count && (query.until.map { all[index].time <= $0 } ?? true)
            return EventPage(events: page, next: more ? page.last?.id ?? all[index - 1].id : nil)
        }
    }

    public func plan(at key: String) throws(StoreError) -> PlanRecord? {
        state.withLock { $0.plans[key] }
    }

    public func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) {
        state.withLock { $0.plans[key] = record }
    }

    @discardableResult
    public func clearPlan(at key: String) throws(StoreError) -> Bool {
        state.withLock { $0.plans.removeValue(forKey: key) != nil }
    }

    public func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome {
        let now = clock.nowMs()
        return state.withLock { s in
            guard let entry = s.holds[request.key], entry.expiresAt > now else {
                if let until = s.voids[request.key], until > now { return .duplicate }
                guard request.voids else { return .unknown }
                s.voids[request.key] = now.saturatingAdding(request.voidTtlMs)
                return .voided
            }
            var hold = entry.value
            guard hold.status == .open else { return .duplicate }
            guard now < hold.expiresAt else { return .expired }
            let resolution = Settlement.resolve(request.report, policy: hold.policy)
            if resolution == .ignored { return .ignored }
            hold.status = .settled
            s.holds[request.key]?.value = hold
            let charges = Settlement.charges(resolution, holds: hold.items)
            var differences: [Int64] = []
            var pools: [SettleOutcome.PoolState] = []
            for (index, item) in hold.items.enumerated() {
                let difference = charges.map { $0[index] - item.held } ?? 0
                differences.append(difference)
                let live = Self.live(s.buckets[item.spend.key], now: now)
                guard
                    let settle = Bucket.settle(item.spend, state: live, difference: difference, periodStart: item.periodStart, now: now)
                else {
                    pools.append(.init(poolId: item.poolId, item: item.spend, state: live))
                    continue
                }
                if settle.removesKey {
                    s.buckets[item.spend.key] = nil
                } else {
                    s.buckets[item.spend.key] = Entry(state: settle.state, expiresAt: settle.ttlMs.map { now + $0 })
                }
                pools.append(.init(poolId: item.poolId, item: item.spend, state: settle.removesKey ? nil : settle.state))
            }
            if charges != nil, let stream = request.eventsKey, request.eventsMaxLen > 0 {
                var status: Int?
                if case .nginx(let facts) = request.report { status = facts.status }
                for (item, difference) in zip(hold.items, differences) {
                    append(
                        &s, stream: stream, maxLen: request.eventsMaxLen, now: now, pool: item.poolId, amount: difference,
                        context: hold.context, kind: .settle, status: status)
                }
            }
            return .settled(.init(resolution: resolution, differences: differences, pools: pools, now: now))
        }
    }

    public func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) {
        let now = clock.nowMs()
        return state.withLock { s in
            let open = s.holds.filter { $0.key.hasPrefix(prefix) && $0.value.value.status == .open && $0.value.value.expiresAt > now }
            return (now, open.values.map(\.value).sorted { $0.createdAt < $1.createdAt }.prefix(Swift.max(0, limit)).map { $0 })
        }
    }

    private static func live(_ entry: Entry?, now: Int64) -> BucketState? {
        guard let entry else { return nil }
        if let expiresAt = entry.expiresAt, expiresAt <= now { return nil }
        return entry.state
    }

    /// Appends one event, then trims the oldest (in batches, like Redis's `MAXLEN ~`) once
    /// the stream holds more than `maxLen` events or `eventsMaxBytes` bytes by an eighth.
    private func append(
        _ s: inout State, stream: String, maxLen: Int, now: Int64, pool: String, amount: Int64, context: EventContext,
        kind: UsageEvent.Kind = .spend, status: Int? = nil
    ) {
        if now > s.lastEventTime {
            s.lastEventTime = now
            s.lastEventSeq = 0
        } else {
            s.lastEventSeq += 1
        }
        let event = UsageEvent(
            id: "\(s.lastEventTime)-\(s.lastEventSeq)", time: now, pool: pool, amount: amount, context: context, kind: kind, status: status)
        var log = s.streams.removeValue(forKey: stream) ?? Stream()
        log.events.append(event)
        log.bytes += Self.size(of: event)
        let maxBytes = eventsMaxBytes
        if log.events.count > maxLen + maxLen / 8 + 1 || log.bytes > maxBytes + maxBytes / 8 {
            var drop = Swift.max(0, log.events.count - maxLen)
            var bytes = log.bytes
            for old in log.events.prefix(drop) { bytes -= Self.size(of: old) }
            while bytes > maxBytes && drop < log.events.count {
                bytes -= Self.size(of: log.events[drop])
                drop += 1
            }
            log.events.removeFirst(drop)
            log.bytes = bytes
        }
        s.streams[stream] = log
    }

    /// The bytes `event` is counted as: its strings plus a fixed overhead.
    static func size(of event: UsageEvent) -> Int {
        let c = event.context
        return eventOverheadBytes + event.id.utf8.count + event.pool.utf8.count + c.subject.utf8.count
            + c.route.utf8.count + c.method.utf8.count + c.uri.utf8.count + c.idempotencyKey.utf8.count + c.hold.utf8.count
    }

    private static func sweep(_ s: inout State, now: Int64) {
        s.writesSinceSweep = 0
        s.buckets = s.buckets.filter { $0.value.expiresAt.map { $0 > now } ?? true }
        s.idempotency = s.idempotency.filter { $0.value.expiresAt > now }
        s.idempotencyQuota = s.idempotencyQuota.filter { $0.value.expiresAt > now }
        s.holds = s.holds.filter { $0.value.expiresAt > now }
        s.voids = s.voids.filter { $0.value > now }
    }

    private static func firstIndex(in events: [UsageEvent], where predicate: (UsageEvent) -> Bool) -> Int {
        var low = 0
        var high = events.count
        while low < high {
            let mid = (low + high) / 2
            if predicate(events[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
