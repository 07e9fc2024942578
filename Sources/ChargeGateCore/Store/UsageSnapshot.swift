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

/// A subject's plan and where it comes from (stored, nginx's, or the default).
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

extension Gate {
    /// The longest subject an admin may name (`?subject=`, `charge-gate plan`), in bytes; the
    /// key form hashes long ones.
    public static let maxAdminSubjectBytes = 1024

    /// The plan answer of the admin API and `charge-gate plan`:
    /// `{"subject","plan","source","periodAnchor"}` (plan null when no plans are configured).
    public func planJSON(subject: String, plan: SubjectPlan?) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("subject", subject)
        w.key("plan")
        if let plan { w.value(config.plans[plan.index].id) } else { w.null() }
        w.field("source", (plan?.source ?? .default).rawValue)
        w.field("periodAnchor", plan?.anchor)
        w.endObject()
        return w.text
    }

    /// The plan of a subject whose stored record is `record` (nil: none), nginx naming
    /// `nginxPlan`: the store's order (`PlanUse.resolve`). nil without plans.
    public func subjectPlan(record: PlanRecord?, nginxPlan: String?) -> SubjectPlan? {
        guard let defaultPlan = config.defaultPlan else { return nil }
        let nginx = self.nginxPlan(nginxPlan)
        let use = PlanUse.resolve(record, ids: planIDs, fallback: nginx.index, defaultPlan: defaultPlan)
        let source: SubjectPlan.Source = use.stored ? .stored : (record == nil && nginx.fromNginx ? .nginx : .default)
        return SubjectPlan(index: use.index, source: source, anchor: use.anchor)
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
