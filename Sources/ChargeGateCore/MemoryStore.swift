import Synchronization

/// The embedded store: bucket state in this process's memory, shared by every worker thread
/// behind one lock. Same contract as the Redis store; state is lost on restart and not shared
/// with other processes.
public final class MemoryStore: ChargeStore, Sendable {
    private struct Entry {
        var state: BucketState
        var expiresAt: Int64?
    }

    private struct State {
        var buckets: [String: Entry] = [:]
        var idempotency: [String: Int64] = [:]
        var events: [String: [UsageEvent]] = [:]
        var lastEventTime: Int64 = 0
        var lastEventSeq: Int64 = 0
        var writesSinceSweep = 0
    }

    private let clock: any GateClock
    private let state = Mutex(State())

    /// Creates an empty store reading time from `clock`.
    public init(clock: any GateClock) {
        self.clock = clock
    }

    public func spend(_ request: SpendRequest) throws(StoreError) -> SpendOutcome {
        let now = clock.nowMs()
        return state.withLock { s in
            if let idem = request.idempotencyKey, let until = s.idempotency[idem], until > now {
                return .repeated(now: now)
            }
            let current = request.items.map { Self.live(s.buckets[$0.key], now: now) }
            let plan = Bucket.plan(request.items, states: current, now: now)
            guard case .allowed = plan.outcome else { return plan.outcome }
            for (item, write) in zip(request.items, plan.writes) {
                s.buckets[item.key] = Entry(state: write.state, expiresAt: write.ttlMs.map { now + $0 })
            }
            if let idem = request.idempotencyKey {
                s.idempotency[idem] = now + request.idempotencyTtlMs
            }
            if let stream = request.eventsKey, request.eventsMaxLen > 0 {
                for item in request.items {
                    Self.append(&s, stream: stream, maxLen: request.eventsMaxLen, now: now, pool: item.poolId, amount: item.cost, context: request.context)
                }
            }
            s.writesSinceSweep += 1
            if s.writesSinceSweep >= 4096 { Self.sweep(&s, now: now) }
            return plan.outcome
        }
    }

    public func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) {
        let now = clock.nowMs()
        return state.withLock { s in (now, keys.map { Self.live(s.buckets[$0], now: now) }) }
    }

    public func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) {
        let now = clock.nowMs()
        return state.withLock { s in
            let max = item.max ?? 0
            let level = Bucket.level(Self.live(s.buckets[item.key], now: now), max: max, intervalMs: item.intervalMs, now: now)
            let new = Bucket.topOff(level, amount: amount, max: max, now: now)
            var expiresAt: Int64?
            if item.expires, let interval = item.intervalMs {
                expiresAt = new.lastUpdatedAt + (max - new.current) * interval
            }
            if let expiresAt, expiresAt <= now {
                s.buckets[item.key] = nil
            } else {
                s.buckets[item.key] = Entry(state: new, expiresAt: expiresAt)
            }
            return (now, new)
        }
    }

    public func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage {
        state.withLock { s in
            let all = s.events[stream] ?? []
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

    private static func live(_ entry: Entry?, now: Int64) -> BucketState? {
        guard let entry else { return nil }
        if let expiresAt = entry.expiresAt, expiresAt <= now { return nil }
        return entry.state
    }

    private static func append(_ s: inout State, stream: String, maxLen: Int, now: Int64, pool: String, amount: Int64, context: EventContext) {
        if now > s.lastEventTime {
            s.lastEventTime = now
            s.lastEventSeq = 0
        } else {
            s.lastEventSeq += 1
        }
        let event = UsageEvent(id: "\(s.lastEventTime)-\(s.lastEventSeq)", time: now, pool: pool, amount: amount, context: context)
        s.events[stream, default: []].append(event)
        if let count = s.events[stream]?.count, count > maxLen + maxLen / 8 + 1 {
            s.events[stream]?.removeFirst(count - maxLen)
        }
    }

    private static func sweep(_ s: inout State, now: Int64) {
        s.writesSinceSweep = 0
        s.buckets = s.buckets.filter { $0.value.expiresAt.map { $0 > now } ?? true }
        s.idempotency = s.idempotency.filter { $0.value > now }
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

/// A stream id `ms-seq`, ordered as Redis orders them.
public struct EventID: Comparable, Sendable {
    /// Milliseconds part.
    public var ms: Int64
    /// Sequence part.
    public var seq: Int64

    /// Parses `ms-seq` (or `ms`, seq 0); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let ms = Int64(parts[0]), ms >= 0 else { return nil }
        let seq = parts.count == 2 ? Int64(parts[1]) : 0
        guard let seq, seq >= 0 else { return nil }
        self.ms = ms
        self.seq = seq
    }

    public static func < (a: EventID, b: EventID) -> Bool {
        (a.ms, a.seq) < (b.ms, b.seq)
    }
}
