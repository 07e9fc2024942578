/// Pools as one subject sees them at one moment: what the usage JSON, the usage page, the
/// availability check and `charge-gate status` show, under the subject's plan.
public struct UsageSnapshot: Sendable {
    /// One pool's part.
    public struct Pool: Sendable {
        /// Its index in the config's pools.
        public var index: Int
        /// The pool as the subject's plan sets it.
        public var config: PoolConfig
        /// Its state brought to `now`, under those limits.
        public var reading: Bucket.Reading
    }

    /// The store's clock (epoch ms).
    public var now: Int64
    /// The subject's plan; nil when no plans are configured.
    public var plan: SubjectPlan?
    /// The pools asked for, in the order asked.
    public var pools: [Pool]
}

/// A subject's plan and where it comes from: its stored plan, else the one nginx names, else
/// the default.
public struct SubjectPlan: Sendable, Equatable {
    /// Where the plan was found.
    public enum Source: String, Sendable {
        /// Stored for the subject through the admin API or the CLI.
        case stored
        /// nginx's `$charge_gate_plan`.
        case nginx
        /// `defaultPlan` (nothing else named a plan, or what did is not one).
        case `default`
    }

    /// Index in the config's plans.
    public var index: Int
    /// Where it comes from.
    public var source: Source
    /// The stored period anchor (epoch ms), if any.
    public var anchor: Int64?

    /// Creates a subject plan.
    public init(index: Int, source: Source, anchor: Int64? = nil) {
        self.index = index
        self.source = source
        self.anchor = anchor
    }
}

extension ChargeStore {
    /// The pools at `indices` (every pool when nil) as `subject` (in key form) sees them under
    /// its plan: the stored plan is read first when plans are configured, then the buckets.
    public func usage(gate: Gate, subject: String, nginxPlan: String?, pools indices: [Int]? = nil) throws(StoreError) -> UsageSnapshot {
        var plan: SubjectPlan?
        if !gate.config.plans.isEmpty {
            plan = gate.subjectPlan(record: try self.plan(at: gate.keys.plan(subject: subject)), nginxPlan: nginxPlan)
        }
        let chosen = indices ?? Array(gate.config.pools.indices)
        let items = chosen.map { gate.item(pool: $0, cost: 0, subject: subject, plan: plan?.index ?? 0, anchor: plan?.anchor) }
        let peeked = try peek(items.map(\.key))
        var pools: [UsageSnapshot.Pool] = []
        pools.reserveCapacity(items.count)
        for (n, index) in chosen.enumerated() {
            pools.append(
                UsageSnapshot.Pool(
                    index: index, config: gate.pool(index, plan: plan?.index ?? 0),
                    reading: Bucket.reading(peeked.states[n], item: items[n], now: peeked.now)))
        }
        return UsageSnapshot(now: peeked.now, plan: plan, pools: pools)
    }
}
