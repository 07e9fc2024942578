/// What a spend needs to apply the subject's plan (docs/config.md, plans) inside the store's atomic step:
/// where the subject's stored plan is, every plan's limits for the request's items, and the
/// plan that holds when none is stored.
public struct PlanChoice: Sendable, Equatable {
    /// One item's limits under one plan.
    public struct Limit: Sendable, Equatable {
        /// The cap; nil: unlimited.
        public var max: Int64?
        /// The recharge interval; nil: none.
        public var intervalMs: Int64?

        /// Creates a limit.
        public init(max: Int64?, intervalMs: Int64?) {
            self.max = max
            self.intervalMs = intervalMs
        }
    }

    /// The subject's plan record key (`KeySpace.plan(subject:)`).
    public var recordKey: String
    /// Every plan's id, in config order.
    public var ids: [String]
    /// `limits[plan][item]`: the items' limits under each plan.
    public var limits: [[Limit]]
    /// The plan when none is stored: nginx's `$charge_gate_plan` when it names one, else the default.
    public var fallback: Int
    /// The default plan: a stored plan the config does not know counts as this one.
    public var defaultPlan: Int
    /// `ids` and `limits` as the Lua script reads them, built once per route: a line per plan,
    /// the id then each item's max and interval, tab-separated (`""` for none).
    public var table: String

    /// Creates a choice; `table` is built from `ids` and `limits` unless given.
    public init(recordKey: String, ids: [String], limits: [[Limit]], fallback: Int, defaultPlan: Int, table: String? = nil) {
        self.recordKey = recordKey
        self.ids = ids
        self.limits = limits
        self.fallback = fallback
        self.defaultPlan = defaultPlan
        self.table = table ?? Self.table(ids: ids, limits: limits)
    }

    /// The script's form of `ids` and `limits` (see `table`).
    public static func table(ids: [String], limits: [[Limit]]) -> String {
        zip(ids, limits).map { id, row in
            ([id] + row.flatMap { [$0.max.map(String.init) ?? "", $0.intervalMs.map(String.init) ?? ""] }).joined(separator: "\t")
        }.joined(separator: "\n")
    }

    /// The plan that holds for `record` (nil: none stored): the stored one when the config
    /// knows it, the default when it does not, else the fallback. The Lua script's twin.
    public func resolve(_ record: PlanRecord?) -> PlanUse {
        PlanUse.resolve(record, ids: ids, fallback: fallback, defaultPlan: defaultPlan)
    }

    /// `items` under the plan `use` names: its caps and intervals, and the stored anchor on
    /// per-subject period pools.
    public func apply(_ use: PlanUse, to items: [SpendItem]) -> [SpendItem] {
        var result = items
        let row = limits.indices.contains(use.index) ? limits[use.index] : []
        for i in result.indices {
            if row.indices.contains(i) {
                result[i].max = row[i].max
                result[i].intervalMs = row[i].intervalMs
            }
            if result[i].expires, result[i].period != nil { result[i].anchor = use.anchor }
        }
        return result
    }
}

/// The plan a spend was decided under, as the store found it.
public struct PlanUse: Sendable, Equatable {
    /// Index of the plan in `PlanChoice.ids`.
    public var index: Int
    /// Whether it is the subject's stored plan (else nginx's or the default).
    public var stored: Bool
    /// A stored plan the config does not know (or an unreadable record, ""), answered with the
    /// default: worth an error log line.
    public var unknownStored: String?
    /// The stored period anchor.
    public var anchor: Int64?

    /// Creates a plan use.
    public init(index: Int, stored: Bool, unknownStored: String? = nil, anchor: Int64? = nil) {
        self.index = index
        self.stored = stored
        self.unknownStored = unknownStored
        self.anchor = anchor
    }

    /// The plan that holds for `record` (nil: none stored) among the plans `ids`: the stored
    /// one when it is one of them, `defaultPlan` when it is not, else `fallback`. The one order
    /// (stored, then nginx's, then the default), for spends (`PlanChoice.resolve`, and its Lua twin) and readers
    /// (`Gate.subjectPlan`).
    public static func resolve(_ record: PlanRecord?, ids: [String], fallback: Int, defaultPlan: Int) -> PlanUse {
        guard let record else { return PlanUse(index: fallback, stored: false) }
        guard let index = ids.firstIndex(of: record.plan) else {
            return PlanUse(index: defaultPlan, stored: false, unknownStored: record.plan, anchor: record.periodAnchor)
        }
        return PlanUse(index: index, stored: true, anchor: record.periodAnchor)
    }
}
