extension Gate {
    /// One plan compiled for the request path.
    public struct Plan: Sendable, Equatable {
        /// Its index in the config's plans.
        public let index: Int
        /// Its id.
        public let id: String
        /// What the deny-cache key of a request nginx names this plan for ends with (a denial
        /// under one plan never answers another).
        public let cacheSuffix: String

        /// Compiles plan `index` of `config`.
        init(index: Int, config: GateConfig) {
            self.index = index
            self.id = config.plans[index].id
            self.cacheSuffix = "\n" + String(index)
        }
    }

    /// The plan nginx names for a request (`$charge_gate_plan`) as the gate reads it: the plan
    /// that holds when the subject has none stored.
    public struct NginxPlan: Sendable, Equatable {
        /// The plan's index: nginx's when it names one, else the default (0 without plans).
        public var index: Int
        /// Whether nginx named it (else the default holds).
        public var fromNginx: Bool
        /// What nginx sent when it is not a plan (worth logging); nil otherwise.
        public var unknown: String?

        /// Creates one.
        public init(index: Int, fromNginx: Bool, unknown: String? = nil) {
            self.index = index
            self.fromNginx = fromNginx
            self.unknown = unknown
        }

        /// Without plans: plan 0, the config's own pools.
        public static let none = NginxPlan(index: 0, fromNginx: false)
    }

    /// The plan nginx names (`$charge_gate_plan`, as sent) when it is one, else the default.
    public func nginxPlan(_ name: String?) -> NginxPlan {
        let defaultPlan = config.defaultPlan ?? 0
        guard let name, !name.isEmpty else { return NginxPlan(index: defaultPlan, fromNginx: false) }
        if let index = config.planIndex(id: name) { return NginxPlan(index: index, fromNginx: true) }
        return NginxPlan(index: defaultPlan, fromNginx: false, unknown: name)
    }

    /// The plan lookup a spend on `route` by `subject` makes in the store; nil without plans
    /// or when no pool of the route is per subject. `fallback` is the plan when none is stored.
    public func planChoice(_ route: Route, subject: String, fallback: Int) -> PlanChoice? {
        guard let compiled = route.planChoice else { return nil }
        return PlanChoice(
            recordKey: keys.plan(subject: subject), ids: compiled.ids, limits: compiled.limits, fallback: fallback,
            defaultPlan: compiled.defaultPlan, table: compiled.table)
    }

    /// The plan of a subject whose stored record is `record` (nil: none), nginx naming
    /// `nginxPlan`: the store's order (`PlanUse.resolve`). nil without plans.
    public func subjectPlan(record: PlanRecord?, nginxPlan: String?) -> SubjectPlan? {
        guard let defaultPlan = config.defaultPlan else { return nil }
        let nginx = self.nginxPlan(nginxPlan)
        let use = PlanUse.resolve(record, ids: plans.map(\.id), fallback: nginx.index, defaultPlan: defaultPlan)
        let source: SubjectPlan.Source = use.stored ? .stored : (record == nil && nginx.fromNginx ? .nginx : .default)
        return SubjectPlan(index: use.index, source: source, anchor: use.anchor)
    }

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

    /// The error line for a plan name that is not a plan (a stale stored record, a typo in
    /// nginx's map): the subject got the default plan, `use` as the store found it. nil when
    /// every name was a plan.
    func unknownPlanNote(_ use: PlanUse?, nginx: NginxPlan, subject: String) -> Response.Note? {
        var fields: [(key: LogKey, value: String)] = []
        if let stored = use?.unknownStored {
            fields.append((.unknownStoredPlan, SafeToken.key(for: stored)))
        } else if use?.stored != true, let name = nginx.unknown {
            fields.append((.unknownNginxPlan, SafeToken.key(for: name)))
        }
        guard !fields.isEmpty else { return nil }
        let plan = plans.indices.contains(use?.index ?? -1) ? plans[use?.index ?? 0].id : ""
        return .init(
            isError: true, message: "unknown plan: the default plan applies",
            fields: fields + [(.plan, plan), (.subject, subject)])
    }
}
