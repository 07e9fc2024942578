import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateRedis

/// Random sequences of plan changes, spends and time passing on the same buckets: at every
/// step the script decides and writes what the Swift reference does, and what was used stays
/// used. The test keeps its own account of each pool in charges used (`Use`: never as what is
/// left under some cap, so no change of cap can lose any): every decision and every remaining
/// count must be what that account gives, and over the whole sequence the charges allowed under
/// limited plans never exceed what the caps and refills permit.
extension RedisTests.PlanScript {
    static let sequences = 120
    static let stepsPerSequence = 30

    /// One pool of a sequence, with what bounds the use the script may allow from it.
    struct SequencePool {
        /// A refilling bucket, prepaid credits, or a billing period.
        enum Kind { case bucket, credits, period }

        /// The pool's own item (its limits replaced by the plan's at each spend).
        var item: SpendItem
        /// What kind of pool it is under every plan.
        var kind: Kind
        /// The pool's limits under each plan.
        var limits: [PlanChoice.Limit]
        /// What the seeded state had used (counted as `Bucket.rebased` does, at most the
        /// largest cap, at least 0).
        var usedAtStart: Int64
        /// When refills could start counting: the seeded state's `lastUpdatedAt`, or the start.
        var refillsFrom: Int64
        /// Charges allowed under a limited plan since the start (a bucket, credits) or since
        /// the period began (a period pool).
        var allowed: Int64 = 0
        /// What a period pool may allow within the current period.
        var periodBudget: Int64 = 0

        /// The largest cap of any plan (nil: unlimited under every plan).
        var largest: Int64? { limits.compactMap(\.max).max() }
        /// The shortest recharge interval of any plan.
        var fastest: Int64? { limits.compactMap(\.intervalMs).min() }
        /// The test's account of the pool (nil: nothing stored, a full pool).
        var use: Use?
    }

    /// A pool's use in charges: what the stored state must hold, whatever cap it records.
    struct Use: Equatable {
        /// Charges used (under an unlimited cap: the count).
        var used: Int64
        /// The state's `lastUpdatedAt`, as stored (moved back when time is moved on).
        var last: Int64
        /// Written under an unlimited cap: a count, entering a cap as at most the largest one.
        var isCount: Bool
    }

    /// What `use` reads as at `now` under `item` (the plan's limits): charges used after the
    /// change of cap and the refills, the refill clock, and whether the pool is full (a limited
    /// item), or the count (an unlimited one).
    static func read(_ use: Use?, item: SpendItem, largest: Int64?, now: Int64) -> (used: Int64, last: Int64, full: Bool) {
        let window = item.window(at: now)
        guard let use, window.map({ use.last >= $0.start }) ?? true else { return (0, window?.start ?? now, item.max != nil) }
        // A count enters a cap as at most the largest cap (and stays a count under none); what
        // a cap counted is within it.
        var used = use.used
        if let largest, item.max != nil || !use.isCount { used = min(used, largest) }
        guard item.max != nil else { return (max(0, used), now, false) }
        var last = use.last
        if let interval = item.intervalMs, window == nil {
            let earned = max(0, now - last) / interval
            used -= earned
            last += earned * interval
        }
        return used <= 0 ? (0, last, true) : (used, last, false)
    }

    /// Whether `use` is full again at `now` under every plan that limits `pool` (what a key's
    /// expiry must wait for).
    static func fullUnderEveryPlan(_ use: Use, pool: SequencePool, now: Int64) -> Bool {
        if pool.kind == .period {
            return pool.item.window(at: now).map { use.last < $0.start } ?? false
        }
        if use.isCount { return false }  // an unlimited bucket's count never expires
        for limit in pool.limits where limit.max != nil {
            guard let interval = limit.intervalMs else { return false }  // credits never expire
            if min(use.used, pool.largest ?? use.used) > max(0, now - use.last) / interval { return false }
        }
        return true
    }

    /// A pool of sequence `index` with random limits under `plans` plans.
    static func sequencePool(_ rng: inout SplitMix, key: String, index: Int, plans: Int) -> (SequencePool, caps: [Int64?]) {
        let kind: SequencePool.Kind = [.bucket, .bucket, .credits, .period].randomElement(using: &rng) ?? .bucket
        let period: BillingPeriod? = kind == .period ? [.day, .week, .month].randomElement(using: &rng) ?? .day : nil
        let cost = Int64.random(in: 1...2, using: &rng)
        let tracked = Int.random(in: 0..<5, using: &rng) != 0
        let ownMax: Int64? = tracked && Int.random(in: 0..<6, using: &rng) == 0 ? nil : Int64.random(in: cost...10, using: &rng)
        func interval() -> Int64? { kind == .bucket ? Int64.random(in: 1...5, using: &rng) * 60_000 : nil }
        let ownInterval = ownMax == nil ? nil : interval()
        let limits = (0..<plans).map { _ -> PlanChoice.Limit in
            guard tracked else { return PlanChoice.Limit(max: ownMax, intervalMs: ownMax == nil ? nil : interval()) }
            let max: Int64? = Int.random(in: 0..<5, using: &rng) == 0 ? nil : Int64.random(in: cost...10, using: &rng)
            return PlanChoice.Limit(max: max, intervalMs: max == nil ? nil : interval())
        }
        let item = SpendItem(
            poolId: "p\(index)", key: key, max: ownMax, intervalMs: ownInterval, cost: cost, expires: true, period: period,
            tracksLimit: tracked, baseMax: ownMax, largestMax: limits.compactMap(\.max).max(),
            slowestIntervalMs: limits.compactMap(\.intervalMs).max())
        // The caps a state of this pool can have recorded: any plan's (nil: none recorded).
        let caps: [Int64?] = tracked ? [nil] + limits.map { $0.max ?? Bucket.unlimitedMark } : [nil]
        return (SequencePool(item: item, kind: kind, limits: limits, usedAtStart: 0, refillsFrom: 0), caps)
    }

    /// Moves the clock of `pools` forward by `ms`: each state's `lastUpdatedAt` and TTL move
    /// back by `ms` (a key whose TTL ends within `ms` expires), as if that much time had passed.
    /// A period pool's key lives until the end of the period its moved state is in (the
    /// periods themselves are Redis's calendar and do not move).
    static func advance(_ fixture: RedisFixture, pools: [SequencePool], by ms: Int64) throws {
        let now = try fixture.time()
        for pool in pools {
            let key = pool.item.key
            guard let raw = try fixture.get(key) else { continue }
            let pttl = try fixture.pttl(key)
            var left: Int64? = pttl < 0 ? nil : pttl - ms  // nil: no expiry
            if pool.kind == .period, let last = pool.use?.last, let window = pool.item.window(at: last - ms) {
                left = window.end - now
            }
            if let left, left <= 0 {
                try fixture.run("DEL", key)
                continue
            }
            let object = try #require(try JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: Any])
            let current = try #require((object["current"] as? NSNumber)?.int64Value)
            let last = try #require((object["lastUpdatedAt"] as? NSNumber)?.int64Value)
            let cap = (object["max"] as? NSNumber).map { ",\"max\":\($0.int64Value)" } ?? ""
            let value = "{\"current\":\(current),\"lastUpdatedAt\":\(last - ms)\(cap)}"
            if let left {
                try fixture.run("SET", key, value, "PX", String(left))
            } else {
                try fixture.run("SET", key, value)
            }
        }
    }

    @Test("random sequences of plan changes, spends and time: the script is the reference's twin, and what was used stays used")
    func sequencesKeepWhatWasUsed() throws {
        let fixture = try RedisFixture()
        let store = fixture.store()
        var rng = SplitMix(state: 0x5EED_F1A9)
        var checkedFlaps = 0
        for sequence in 0..<Self.sequences {
            let start = try fixture.time()
            let plans = Int.random(in: 2...3, using: &rng)
            let ids = (0..<plans).map { "plan\($0)" }
            var pools: [SequencePool] = []
            var seeds: [String?] = []
            for index in 0..<Int.random(in: 1...2, using: &rng) {
                var (pool, caps) = Self.sequencePool(
                    &rng, key: fixture.prefix + "q\(sequence):p\(index):s1", index: index, plans: plans)
                pool.refillsFrom = start
                var seed: String?
                if Bool.random(using: &rng) {
                    let recorded = caps.randomElement(using: &rng) ?? nil
                    let counted = recorded ?? pool.item.baseMax ?? Bucket.unlimitedMark
                    let current = Int64.random(in: 0...(counted == Bucket.unlimitedMark ? 15 : counted), using: &rng)
                    let ago = Int64.random(in: 0...(pool.kind == .period ? 2 * 3_600_000 : 10 * 60_000), using: &rng)
                    seed = "{\"current\":\(current),\"lastUpdatedAt\":\(start - ago)\(recorded.map { ",\"max\":\($0)" } ?? "")}"
                    // What it had used, as a rebase counts it (a state's own cap: cap - current).
                    var used = counted == Bucket.unlimitedMark ? current : counted - current
                    if pool.item.tracksLimit, let largest = pool.largest { used = min(used, largest) }
                    pool.usedAtStart = max(0, used)
                    pool.refillsFrom = start - ago
                    pool.use = Use(
                        used: counted == Bucket.unlimitedMark ? current : counted - current, last: start - ago,
                        isCount: counted == Bucket.unlimitedMark)
                }
                pool.periodBudget = (pool.largest ?? 0) - pool.usedAtStart
                pools.append(pool)
                seeds.append(seed)
            }
            let keys = pools.map(\.item.key)
            for (key, seed) in zip(keys, seeds) {
                if let seed { try fixture.run("SET", key, seed) }
            }
            let choice = PlanChoice(
                recordKey: fixture.prefix + "q\(sequence):#plan", ids: ids, limits: (0..<plans).map { p in pools.map { $0.limits[p] } },
                fallback: Int.random(in: 0..<plans, using: &rng), defaultPlan: Int.random(in: 0..<plans, using: &rng))
            let request = SpendRequest(items: pools.map(\.item), context: context(), plan: choice)
            var shifted: Int64 = 0  // how far the buckets' clock was moved on
            var history: [String] = []
            var plansSeen = Set<Int>()
            for _ in 0..<Self.stepsPerSequence {
                switch Int.random(in: 0..<20, using: &rng) {
                case 0..<6:
                    let plan = Int.random(in: 0..<plans, using: &rng)
                    try fixture.run("SET", choice.recordKey, "{\"plan\":\"\(ids[plan])\"}")
                    history.append(ids[plan])
                case 6:
                    try fixture.run("DEL", choice.recordKey)
                    history.append("no plan")
                case 7..<11:
                    let ms: Int64
                    switch Int.random(in: 0..<10, using: &rng) {
                    case 0..<5: ms = Int64.random(in: 1..<90_000, using: &rng)
                    case 5..<9: ms = Int64.random(in: 60_000...400_000, using: &rng)
                    default: ms = Int64.random(in: 3_600_000...40 * 3_600_000, using: &rng)
                    }
                    try Self.advance(fixture, pools: pools, by: ms)
                    for i in pools.indices { pools[i].use?.last -= ms }
                    shifted += ms
                    history.append("+\(ms) ms")
                default:
                    for _ in 0..<Int.random(in: 1...5, using: &rng) {
                        let record = try fixture.get(choice.recordKey)
                        let seeded = try store.peek(keys).states
                        let result = try store.charge(request)
                        let states = try store.peek(keys).states
                        let use = choice.resolve(record.map { PlanRecord(text: $0) })
                        let items = choice.apply(use, to: request.items)
                        plansSeen.insert(use.index)
                        let plan = Bucket.plan(items, states: seeded, now: result.now)
                        let trail = "sequence \(sequence) after \(history), pools \(pools.map(\.limits)), seeds \(seeds)"
                        #expect(result.plan == use, "\(trail)")
                        #expect(result.outcome == plan.outcome, "\(trail)")
                        if case .allowed = plan.outcome {
                            #expect(states == plan.writes.map(\.state), "\(trail)")
                            for (item, write) in zip(items, plan.writes) {
                                let pttl = try fixture.pttl(item.key)
                                if let ttl = write.ttlMs {
                                    #expect(pttl <= ttl && pttl >= ttl - 1000, "\(trail): PTTL \(pttl), want \(ttl)")
                                } else {
                                    #expect(pttl == -1, "\(trail): PTTL \(pttl), want none")
                                }
                            }
                        } else {
                            #expect(states == seeded, "a denial wrote something: \(trail)")
                        }
                        // The stored states hold what the accounts say was used; a key that
                        // expired was full again under every plan.
                        for i in pools.indices {
                            let pool = pools[i]
                            switch (seeded[i], pool.use) {
                            case (nil, let use?):
                                #expect(
                                    Self.fullUnderEveryPlan(use, pool: pool, now: result.now + 1000),
                                    "\(pool.item.poolId) expired before it was full under every plan (\(use)): \(trail)")
                                pools[i].use = nil
                            case (let state?, nil):
                                Issue.record("\(pool.item.poolId) has a state \(state) nothing wrote: \(trail)")
                            case (let state?, let use?):
                                let from = state.limit ?? pool.item.baseMax ?? Bucket.unlimitedMark
                                let stored = from == Bucket.unlimitedMark ? state.current : from - state.current
                                let ceiling = pool.largest ?? Int64.max
                                #expect(
                                    max(0, min(stored, ceiling)) == max(0, min(use.used, ceiling)) && state.lastUpdatedAt == use.last
                                        && (from == Bucket.unlimitedMark) == use.isCount,
                                    "\(pool.item.poolId) stores \(state) for \(use): \(trail)")
                            case (nil, nil):
                                break
                            }
                        }
                        // The account's decision: every limited pool holds the cost.
                        let reads = pools.indices.map {
                            Self.read(pools[$0].use, item: items[$0], largest: pools[$0].largest, now: result.now)
                        }
                        let fits = pools.indices.allSatisfy { i in items[i].max.map { $0 - reads[i].used >= items[i].cost } ?? true }
                        if case .allowed(let results) = result.outcome {
                            #expect(fits, "allowed where the account has too little left: \(trail)")
                            for i in pools.indices {
                                let item = items[i]
                                let read = reads[i]
                                if item.max == nil {
                                    pools[i].use = Use(used: read.used + item.cost, last: result.now, isCount: true)
                                } else {
                                    let last = read.full || item.period != nil ? result.now : read.last
                                    pools[i].use = Use(used: read.used + item.cost, last: last, isCount: false)
                                }
                                let left = item.max.map { $0 - read.used - item.cost } ?? read.used + item.cost
                                #expect(
                                    results[i].remaining == left,
                                    "\(item.poolId) remaining \(results[i].remaining), the account says \(left): \(trail)")
                            }
                        } else {
                            #expect(!fits, "denied where the account has enough left (\(result.outcome)): \(trail)")
                        }
                        // A period pool begins a new period when its state is gone or older
                        // than the period: then its whole allowance (at most the largest cap).
                        for i in pools.indices where pools[i].kind == .period {
                            let window = items[i].window(at: result.now)
                            if let window, seeded[i].map({ $0.lastUpdatedAt < window.start }) ?? true {
                                pools[i].allowed = 0
                                pools[i].periodBudget = pools[i].largest ?? 0
                            }
                        }
                        let allowed: Bool
                        if case .allowed = result.outcome { allowed = true } else { allowed = false }
                        history.append(allowed ? "allowed" : "denied")
                        guard allowed else { continue }
                        for i in pools.indices where items[i].max != nil {
                            pools[i].allowed += items[i].cost
                        }
                        // What the caps and refills permit: never more than the largest cap
                        // less what was used at the start, plus a charge per fastest interval
                        // since refills could start (a bucket), or per period (a period pool).
                        for pool in pools {
                            guard let largest = pool.largest else { continue }
                            let permitted: Int64
                            switch pool.kind {
                            case .credits:
                                permitted = largest - pool.usedAtStart
                            case .period:
                                permitted = pool.periodBudget
                            case .bucket:
                                let elapsed = result.now + shifted - pool.refillsFrom
                                permitted = largest - pool.usedAtStart + (pool.fastest.map { elapsed / $0 } ?? 0)
                            }
                            #expect(
                                pool.allowed <= permitted,
                                "\(pool.item.poolId) allowed \(pool.allowed) > \(permitted) permitted: \(trail)")
                        }
                    }
                }
            }
            if plansSeen.count > 1 { checkedFlaps += 1 }
        }
        // Most sequences spend under more than one plan.
        #expect(checkedFlaps > Self.sequences / 2)
    }
}
