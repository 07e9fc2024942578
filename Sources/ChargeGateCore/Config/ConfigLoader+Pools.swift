import Yams

extension ConfigLoader.Reader {
    /// The keys of one pool.
    static let poolKeys = ["id", "maxCharges", "rechargeIntervalHours", "recharge", "period", "label", "group", "per"]
    /// The longest full refill a pool may have, in ms (`Limits.exactInteger`).
    static let maxRefillMs = Limits.exactInteger

    /// The largest `maxCharges` (and route cost).
    static let maxChargesLimit = Limits.maxCharges

    /// The longest recharge interval, in hours (100 years).
    static let maxIntervalHours: Double = 876_000

    /// Reads `pools`: a non-empty list of pool mappings. Registers every pool with a valid,
    /// unique id in `poolRefs`, so routes can name it even when the rest of it is wrong.
    mutating func readPools(_ entry: Entry?, mappingLine: Int) -> [PoolConfig] {
        guard let entry else {
            fail(mappingLine, "pools: required (list at least one pool)")
            return []
        }
        guard case .sequence(let sequence) = entry.value else {
            fail(entry.value, "pools: expected a list of pools, got \(Self.describe(entry.value))")
            return []
        }
        if sequence.isEmpty {
            fail(entry.value, "pools: must list at least one pool")
        }
        var pools: [PoolConfig] = []
        for (index, node) in sequence.enumerated() {
            if let pool = readPool(node, index: index) { pools.append(pool) }
        }
        return pools
    }

    /// Reads one pool; nil when anything in it is wrong.
    private mutating func readPool(_ node: Node, index: Int) -> PoolConfig? {
        let path = "pools[\(index)]"
        guard case .mapping(let mapping) = node else {
            fail(node, "\(path): expected a mapping with id and maxCharges, got \(Self.describe(node))")
            return nil
        }
        let errorCount = errors.count
        let keys = entries(of: mapping, at: path, allowed: Self.poolKeys)

        var id: String?
        if let entry = keys["id"] {
            id = poolID(entry.value, "\(path).id")
        } else {
            fail(node, "\(path).id: required")
        }

        var capacity: PoolConfig.Capacity?
        if let entry = keys["maxCharges"] {
            capacity = self.capacity(entry.value, "\(path).maxCharges")
        } else {
            fail(node, "\(path).maxCharges: required (a whole number >= 1, or 'unlimited')")
        }

        if let id {
            var max: Int64?
            if case .limited(let value) = capacity { max = value }
            let line = keys["id"].map { Self.line($0.value) } ?? Self.line(node)
            poolRefs[id] = PoolRef(index: index, line: line, maxCharges: max)
        }

        var period: BillingPeriod?
        if let entry = keys["period"], let text = string(entry.value, "\(path).period") {
            if let value = BillingPeriod(rawValue: text) {
                period = value
            } else {
                fail(entry.value, "\(path).period: must be 'day', 'week' or 'month', got \(Self.quote(text))")
            }
            for other in ["rechargeIntervalHours", "recharge"] where keys[other] != nil {
                fail(
                    entry.line,
                    "\(path).period: not allowed with \(other) (a period pool is whole again at each period start, nothing comes back in between)"
                )
            }
        }

        var rechargeNone = false
        if let entry = keys["recharge"], keys["period"] == nil {
            if capacity == .unlimited {
                fail(entry.line, "\(path).recharge: not allowed for an unlimited pool")
            } else if let text = string(entry.value, "\(path).recharge") {
                if text == "none" {
                    rechargeNone = true
                } else {
                    fail(entry.value, "\(path).recharge: the only allowed value is 'none', got \(Self.quote(text))")
                }
            }
        }

        var hours: Double?
        var intervalMs: Int64?
        if let entry = keys["rechargeIntervalHours"], keys["period"] == nil {
            if capacity == .unlimited {
                fail(entry.line, "\(path).rechargeIntervalHours: not allowed for an unlimited pool")
            } else if rechargeNone {
                fail(entry.line, "\(path).rechargeIntervalHours: not allowed with 'recharge: none'")
            } else if let value = intervalHours(entry.value, "\(path).rechargeIntervalHours") {
                hours = value.hours
                intervalMs = value.ms
                // A full refill (maxCharges x interval) must fit 2^53 ms (about 285,000 years):
                // every time the gate computes stays an exact integer, in Swift and in Lua.
                if case .limited(let max)? = capacity {
                    let product = max.multipliedReportingOverflow(by: value.ms)
                    if product.overflow || product.partialValue > Self.maxRefillMs {
                        fail(
                            entry.value,
                            "\(path).rechargeIntervalHours: maxCharges x rechargeIntervalHours is too long a refill (more than 2^53 ms, about 285,000 years)"
                        )
                    }
                }
            }
        } else if case .limited = capacity, keys["recharge"] == nil, keys["period"] == nil {
            fail(node, "\(path).rechargeIntervalHours: required for a limited pool (or 'recharge: none' for one that never refills)")
        }

        var label: String?
        if let entry = keys["label"] {
            label = string(entry.value, "\(path).label")
        }
        var group = ""
        if let entry = keys["group"], let text = string(entry.value, "\(path).group") {
            group = text
        }
        var scope = PoolConfig.Scope.global
        if let entry = keys["per"], let text = string(entry.value, "\(path).per") {
            if let value = PoolConfig.Scope(rawValue: text) {
                scope = value
            } else {
                fail(entry.value, "\(path).per: must be 'global' or 'subject', got \(Self.quote(text))")
            }
        }

        guard errors.count == errorCount, let id, let capacity else { return nil }
        let recharge: PoolConfig.Recharge
        if let period {
            recharge = .period(period)
        } else if case .limited = capacity, let intervalMs {
            recharge = .every(intervalMs: intervalMs)
        } else {
            recharge = .none
        }
        return PoolConfig(
            id: id, capacity: capacity, recharge: recharge, rechargeIntervalHours: hours,
            label: label, group: group, scope: scope)
    }

    /// A pool id: `[A-Za-z0-9._-]{1,64}`, not used by an earlier pool.
    private mutating func poolID(_ node: Node, _ path: String) -> String? {
        guard let text = string(node, path) else { return nil }
        if text.isEmpty {
            fail(node, "\(path): must not be empty")
        } else if text.utf8.count > 64 {
            fail(node, "\(path): must be at most 64 characters, got \(text.utf8.count)")
        } else if !SafeToken.isPoolID(text) {
            fail(node, "\(path): may only use letters, digits, '.', '_' and '-', got \(Self.quote(text))")
        } else if let first = poolRefs[text] {
            fail(node, "\(path): duplicate pool id '\(text)' (first at line \(first.line))")
        } else {
            return text
        }
        return nil
    }

    /// `maxCharges`: a whole number in 1...10^15, or `unlimited`.
    mutating func capacity(_ node: Node, _ path: String) -> PoolConfig.Capacity? {
        guard case .scalar(let scalar) = node else {
            fail(node, "\(path): expected a whole number or 'unlimited', got \(Self.describe(node))")
            return nil
        }
        if scalar.string == "unlimited" { return .unlimited }
        if scalar.style != .plain || Self.wholeNumber(scalar.string).isNotWhole {
            fail(node, "\(path): expected a whole number or 'unlimited', got \(Self.describe(node))")
            return nil
        }
        return int(node, path, min: 1, max: Self.maxChargesLimit).map { .limited($0) }
    }

    /// `rechargeIntervalHours`: a number > 0 and <= 876000 that is at least 1 ms.
    mutating func intervalHours(_ node: Node, _ path: String) -> (hours: Double, ms: Int64)? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let hours = Self.decimal(scalar.string) else {
            fail(node, "\(path): expected a number of hours, got \(Self.describe(node))")
            return nil
        }
        let text = scalar.string
        guard hours > 0 else {
            fail(node, "\(path): must be a number > 0, got \(text)")
            return nil
        }
        guard hours <= Self.maxIntervalHours else {
            fail(node, "\(path): must be at most 876000 (100 years), got \(text)")
            return nil
        }
        let ms = (hours * 3_600_000).rounded()
        guard ms >= 1 else {
            fail(node, "\(path): must be at least 1 millisecond, got \(text)")
            return nil
        }
        return (hours, Int64(ms))
    }
}
