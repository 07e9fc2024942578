import Yams

extension ConfigLoader.Reader {
    /// The keys of one plan.
    static let planKeys = ["id", "label", "pools", "upgradeUrl"]
    /// The keys a plan may set on one pool.
    static let planPoolKeys = ["maxCharges", "rechargeIntervalHours"]

    /// Reads `plans`: a list of plan mappings (docs/config.md, plans); absent or null means none. `pools`
    /// are the pools read so far (a plan naming a pool that failed is not reported twice).
    mutating func readPlans(_ entry: Entry?, pools: [PoolConfig], routes: [RouteConfig]) -> [PlanConfig] {
        guard let entry, !Self.isNull(entry.value) else { return [] }
        guard case .sequence(let sequence) = entry.value else {
            fail(entry.value, "plans: expected a list of plans, got \(Self.describe(entry.value))")
            return []
        }
        if sequence.isEmpty {
            fail(entry.value, "plans: must list at least one plan (leave the key out for none)")
        }
        var plans: [PlanConfig] = []
        var seen: [String: Int] = [:]
        for (index, node) in sequence.enumerated() {
            if let plan = readPlan(node, index: index, pools: pools, routes: routes, seen: &seen) { plans.append(plan) }
        }
        return plans
    }

    /// `defaultPlan`: required when plans are given, and one of them; nil without plans.
    mutating func readDefaultPlan(_ entry: Entry?, plans: [PlanConfig], plansEntry: Entry?) -> Int? {
        let given = plansEntry.map { !Self.isNull($0.value) } ?? false
        guard let entry else {
            if given, let plansEntry {
                fail(plansEntry.line, "defaultPlan: required when plans are given (the plan of a subject nothing else names)")
            }
            return nil
        }
        guard let id = string(entry.value, "defaultPlan") else { return nil }
        guard given else {
            fail(entry.value, "defaultPlan: no plans are given (add plans, or leave defaultPlan out)")
            return nil
        }
        if let index = plans.firstIndex(where: { $0.id == id }) { return index }
        // When no plan could be read, their errors say enough.
        if !plans.isEmpty {
            let known = plans.map(\.id).joined(separator: ", ")
            fail(entry.value, "defaultPlan: unknown plan \(Self.quote(id))" + (known.isEmpty ? "" : " (plans: \(known))"))
        }
        return nil
    }

    /// Reads one plan; nil when anything in it is wrong.
    private mutating func readPlan(
        _ node: Node, index: Int, pools: [PoolConfig], routes: [RouteConfig], seen: inout [String: Int]
    ) -> PlanConfig? {
        let path = "plans[\(index)]"
        guard case .mapping(let mapping) = node else {
            fail(node, "\(path): expected a mapping with id and pools, got \(Self.describe(node))")
            return nil
        }
        let errorCount = errors.count
        let keys = entries(of: mapping, at: path, allowed: Self.planKeys)

        var id: String?
        if let entry = keys["id"], let text = string(entry.value, "\(path).id") {
            let line = Self.line(entry.value)
            if text.isEmpty || text.utf8.count > 64 || !SafeToken.isPoolID(text) {
                fail(entry.value, "\(path).id: must be 1 to 64 letters, digits, '.', '_' or '-', got \(Self.quote(text))")
            } else if let first = seen[text] {
                fail(entry.value, "\(path).id: duplicate plan id '\(text)' (first at line \(first))")
            } else {
                seen[text] = line
                id = text
            }
        } else if keys["id"] == nil {
            fail(node, "\(path).id: required")
        }

        var label: String?
        if let entry = keys["label"] {
            label = string(entry.value, "\(path).label")
        }

        var upgradeUrl: String?
        if let entry = keys["upgradeUrl"] {
            upgradeUrl = upgradeURL(entry.value, "\(path).upgradeUrl")
        }

        var overrides: [Int: PlanConfig.Override] = [:]
        if let entry = keys["pools"], !Self.isNull(entry.value) {
            if case .mapping(let poolMapping) = entry.value {
                var seenPools: [String: Int] = [:]
                for (keyNode, value) in poolMapping {
                    guard case .scalar(let scalar) = keyNode else {
                        fail(keyNode, "\(path).pools: keys must be pool ids, got \(Self.describe(keyNode))")
                        continue
                    }
                    let poolID = originalName(scalar.string)
                    let poolPath = "\(path).pools.\(Self.sanitize(poolID))"
                    if let first = seenPools[poolID] {
                        fail(keyNode, "\(poolPath): duplicate key (first at line \(first))")
                        continue
                    }
                    seenPools[poolID] = Self.line(keyNode)
                    guard let ref = poolRefs[poolID] else {
                        fail(keyNode, "\(poolPath): unknown pool \(Self.quote(poolID))")
                        continue
                    }
                    // A pool that failed is reported where it is defined.
                    guard let pool = pools.first(where: { $0.id == poolID }) else { continue }
                    guard pool.scope == .subject else {
                        fail(keyNode, "\(poolPath): pool '\(poolID)' is global; plans set per-subject pools only ('per: subject')")
                        continue
                    }
                    guard let override = readOverride(value, poolPath, pool: pool) else { continue }
                    overrides[ref.index] = override
                    // As for a pool's own cap: a route must be able to pass under every plan.
                    if case .limited(let max)? = override.capacity {
                        for (r, route) in routes.enumerated() {
                            for charge in route.charges where charge.poolIndex == ref.index && charge.cost > max {
                                fail(
                                    value,
                                    "\(poolPath).maxCharges: \(max) is less than the cost of routes[\(r)] (\(charge.cost)), so that route could never pass under this plan"
                                )
                            }
                        }
                    }
                }
            } else {
                fail(entry.value, "\(path).pools: expected a mapping of pool ids to limits, got \(Self.describe(entry.value))")
            }
        }

        guard errors.count == errorCount, let id else { return nil }
        return PlanConfig(id: id, label: label, overrides: overrides, upgradeUrl: upgradeUrl)
    }

    /// What a plan sets on `pool`: `maxCharges` and, for a pool that refills, `rechargeIntervalHours`.
    private mutating func readOverride(_ node: Node, _ path: String, pool: PoolConfig) -> PlanConfig.Override? {
        guard case .mapping(let mapping) = node else {
            fail(node, "\(path): expected a mapping with maxCharges and/or rechargeIntervalHours, got \(Self.describe(node))")
            return nil
        }
        let errorCount = errors.count
        let keys = entries(of: mapping, at: path, allowed: Self.planPoolKeys)
        var override = PlanConfig.Override()
        if let entry = keys["maxCharges"] {
            override.capacity = capacity(entry.value, "\(path).maxCharges")
        }
        if let entry = keys["rechargeIntervalHours"] {
            if pool.period != nil {
                fail(entry.line, "\(path).rechargeIntervalHours: not allowed for a period pool (its period sets when charges come back)")
            } else if pool.isCredits {
                fail(entry.line, "\(path).rechargeIntervalHours: not allowed for a pool with 'recharge: none'")
            } else if let value = intervalHours(entry.value, "\(path).rechargeIntervalHours") {
                override.interval = (value.ms, value.hours)
            }
        } else if case .limited? = override.capacity, pool.capacity == .unlimited, pool.period == nil {
            fail(node, "\(path).rechargeIntervalHours: required to limit an unlimited pool (how fast charges come back)")
        }
        if mapping.isEmpty {
            fail(node, "\(path): give maxCharges and/or rechargeIntervalHours")
        }
        guard errors.count == errorCount else { return nil }
        // The same bound as a pool's: a full refill must fit 2^53 ms.
        var max = pool.maxCharges
        switch override.capacity {
        case .limited(let value)?: max = value
        case .unlimited?: max = nil
        case nil: break
        }
        let interval = override.interval?.ms ?? pool.intervalMs
        if let max, let interval {
            let product = max.multipliedReportingOverflow(by: interval)
            if product.overflow || product.partialValue > Self.maxRefillMs {
                fail(node, "\(path): maxCharges x rechargeIntervalHours is too long a refill (more than 2^53 ms, about 285,000 years)")
                return nil
            }
        }
        return override
    }
}
