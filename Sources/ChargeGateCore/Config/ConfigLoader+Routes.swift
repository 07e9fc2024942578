import Yams

extension ConfigLoader.Reader {
    /// The keys of one route.
    static let routeKeys = ["prefix", "pools", "methods", "cost", "idempotent", "mode", "settle"]

    /// The keys of a route's `settle`.
    static let settleKeys = ["refund", "amount", "by"]

    /// The keys of a `{id, cost}` item in a route's `pools`.
    static let chargeKeys = ["id", "cost"]

    /// A route already read, for the duplicate-prefix check.
    private struct SeenRoute {
        var prefix: String
        var methods: Set<String>?
        var line: Int
    }

    /// Reads `routes`: a list of route mappings; absent, null or empty means no routes.
    mutating func readRoutes(_ entry: Entry?) -> [RouteConfig] {
        guard let entry, !Self.isNull(entry.value) else { return [] }
        guard case .sequence(let sequence) = entry.value else {
            fail(entry.value, "routes: expected a list of routes, got \(Self.describe(entry.value))")
            return []
        }
        var routes: [RouteConfig] = []
        var seen: [SeenRoute] = []
        for (index, node) in sequence.enumerated() {
            if let route = readRoute(node, index: index, seen: &seen) { routes.append(route) }
        }
        return routes
    }

    /// Reads one route; nil when anything in it is wrong.
    private mutating func readRoute(_ node: Node, index: Int, seen: inout [SeenRoute]) -> RouteConfig? {
        let path = "routes[\(index)]"
        guard case .mapping(let mapping) = node else {
            fail(node, "\(path): expected a mapping with prefix and pools, got \(Self.describe(node))")
            return nil
        }
        let errorCount = errors.count
        let keys = entries(of: mapping, at: path, allowed: Self.routeKeys)

        var prefix: String?
        var prefixLine = Self.line(node)
        if let entry = keys["prefix"] {
            prefix = self.prefix(entry.value, "\(path).prefix")
            prefixLine = Self.line(entry.value)
        } else {
            fail(node, "\(path).prefix: required")
        }

        var methods: Set<String>?
        var methodsValid = true
        if let entry = keys["methods"] {
            methods = self.methods(entry.value, "\(path).methods")
            methodsValid = methods != nil
        }

        // The route's default cost; nil when it is wrong (then no cost check against it).
        var cost: (value: Int64, line: Int)? = (1, Self.line(node))
        if let entry = keys["cost"] {
            cost = int(entry.value, "\(path).cost", min: 1, max: Self.maxChargesLimit).map { ($0, Self.line(entry.value)) }
        }

        var idempotent = false
        if let entry = keys["idempotent"], let value = bool(entry.value, "\(path).idempotent") {
            idempotent = value
        }

        var mode: GateMode?
        if let entry = keys["mode"] {
            mode = self.mode(entry.value, "\(path).mode")
        }

        var charges: [RouteConfig.Charge] = []
        if let entry = keys["pools"] {
            charges = self.charges(entry.value, "\(path).pools", defaultCost: cost)
        } else {
            fail(node, "\(path).pools: required (list at least one pool id)")
        }

        var settle: SettlePolicy?
        if let entry = keys["settle"] {
            settle = self.settle(entry.value, "\(path).settle")
            if let policy = settle, policy.amount != nil, let cost, !charges.isEmpty, !charges.contains(where: { $0.cost == cost.value }) {
                fail(
                    entry.value,
                    "\(path).settle.amount: no pool of the route costs the route's cost (\(cost.value)), the hold, "
                        + "so none would be settled to the amount (give the metered pools no cost of their own)")
            }
        }

        if let prefix, methodsValid {
            for earlier in seen where earlier.prefix == prefix {
                // The earlier route wins every method it takes: the later one is (partly) dead.
                guard let later = methods else {
                    if earlier.methods == nil {
                        fail(prefixLine, "\(path).prefix: duplicate prefix '\(prefix)' (first at line \(earlier.line))")
                    }
                    continue
                }
                let shadowed = earlier.methods.map { later.intersection($0) } ?? later
                if !shadowed.isEmpty {
                    let names = shadowed.sorted().joined(separator: ", ")
                    fail(prefixLine, "\(path).prefix: duplicate prefix '\(prefix)' for \(names) (first at line \(earlier.line))")
                }
            }
            seen.append(SeenRoute(prefix: prefix, methods: methods, line: prefixLine))
        }

        guard errors.count == errorCount, let prefix else { return nil }
        return RouteConfig(
            prefix: prefix, charges: charges, methods: methods, idempotent: idempotent, mode: mode, settle: settle, cost: cost?.value ?? 1)
    }

    /// A route's `settle`: `{refund, amount, by}`, each optional (an empty mapping refunds 5xx).
    private mutating func settle(_ node: Node, _ path: String) -> SettlePolicy? {
        guard case .mapping(let mapping) = node else {
            fail(node, "\(path): expected a mapping with refund, amount and by, got \(Self.describe(node))")
            return nil
        }
        let errorCount = errors.count
        let keys = entries(of: mapping, at: path, allowed: Self.settleKeys)
        var policy = SettlePolicy()
        if let entry = keys["refund"] {
            policy.refund = refundList(entry.value, "\(path).refund")
        }
        if let entry = keys["amount"] {
            policy.amount = amount(entry.value, "\(path).amount")
        }
        if let entry = keys["by"], let text = string(entry.value, "\(path).by") {
            if let by = SettlePolicy.Settler(rawValue: text) {
                policy.by = by
            } else {
                fail(entry.value, "\(path).by: must be 'nginx' or 'app', got \(Self.quote(text))")
            }
        }
        return errors.count == errorCount ? policy : nil
    }

    /// `refund`: a list of statuses (100-599) or classes (`1xx`-`5xx`); empty: nothing is
    /// refunded by status.
    private mutating func refundList(_ node: Node, _ path: String) -> [SettlePolicy.StatusMatch] {
        guard case .sequence(let sequence) = node else {
            fail(node, "\(path): expected a list of statuses or classes, as [5xx, 429], got \(Self.describe(node))")
            return []
        }
        var matches: [SettlePolicy.StatusMatch] = []
        for (index, item) in sequence.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard case .scalar(let scalar) = item else {
                fail(item, "\(itemPath): expected a status (as 500) or a class (as 5xx), got \(Self.describe(item))")
                continue
            }
            let text = scalar.string
            let bytes = Array(text.utf8)
            let digit: (UInt8) -> Bool = { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            let match: SettlePolicy.StatusMatch?
            if bytes.count == 3, (UInt8(ascii: "1")...UInt8(ascii: "5")).contains(bytes[0]), bytes[1] == UInt8(ascii: "x"),
                bytes[2] == UInt8(ascii: "x")
            {
                match = .statusClass(Int(bytes[0] - UInt8(ascii: "0")))
            } else if bytes.count == 3, bytes.allSatisfy(digit), let value = Int(text), (100...599).contains(value) {
                match = .status(value)
            } else {
                match = nil
            }
            guard let match else {
                fail(item, "\(itemPath): expected a status 100-599 (as 500) or a class 1xx-5xx (as 5xx), got \(Self.quote(text))")
                continue
            }
            if matches.contains(match) {
                fail(item, "\(itemPath): \(match.text) is listed twice")
                continue
            }
            matches.append(match)
        }
        return matches
    }

    /// `amount`: `header`, `{bytesSent: N}` or `{upstreamMs: N}` (N ≥ 1: the unit of one charge).
    private mutating func amount(_ node: Node, _ path: String) -> SettlePolicy.Amount? {
        let expected = "'header', {bytesSent: BYTES} or {upstreamMs: MS}"
        switch node {
        case .scalar(let scalar) where scalar.string == "header":
            return .header
        case .mapping(let mapping):
            let keys = entries(of: mapping, at: path, allowed: ["bytesSent", "upstreamMs"])
            guard keys.count == 1 else {
                if keys.count > 1 { fail(node, "\(path): give one of bytesSent and upstreamMs, not both") }
                if keys.isEmpty && mapping.isEmpty { fail(node, "\(path): expected \(expected), got an empty mapping") }
                return nil
            }
            if let entry = keys["bytesSent"], let unit = int(entry.value, "\(path).bytesSent", min: 1, max: 1 << 40) {
                return .bytesSent(unit: unit)
            }
            if let entry = keys["upstreamMs"], let unit = int(entry.value, "\(path).upstreamMs", min: 1, max: 86_400_000) {
                return .upstreamMs(unit: unit)
            }
            return nil
        default:
            fail(node, "\(path): expected \(expected), got \(Self.describe(node))")
            return nil
        }
    }

    /// A route prefix: starts with `/`, no `?`, `#`, `%`, spaces or control characters;
    /// normalised (`//`, `.`, `..`) and without a trailing `/` unless it is `/`.
    private mutating func prefix(_ node: Node, _ path: String) -> String? {
        guard let text = string(node, path) else { return nil }
        guard text.hasPrefix("/") else {
            fail(node, "\(path): must start with '/', got \(Self.quote(text))")
            return nil
        }
        guard !text.unicodeScalars.contains(where: { "?#%".unicodeScalars.contains($0) || Self.isSpaceOrControl($0) }) else {
            fail(node, "\(path): must not contain '?', '#', '%', spaces or control characters, got \(Self.quote(text))")
            return nil
        }
        var prefix = URIPath.normalize(text)
        if prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        return prefix
    }

    /// A route's `methods`: a non-empty list of distinct `[A-Za-z]+` tokens, upper-cased.
    private mutating func methods(_ node: Node, _ path: String) -> Set<String>? {
        guard case .sequence(let sequence) = node else {
            fail(node, "\(path): expected a list of HTTP methods, as [GET, POST], got \(Self.describe(node))")
            return nil
        }
        guard !sequence.isEmpty else {
            fail(node, "\(path): must list at least one method (leave the key out for every method)")
            return nil
        }
        let errorCount = errors.count
        var methods: Set<String> = []
        for (index, item) in sequence.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let text = string(item, itemPath) else { continue }
            let isToken =
                !text.isEmpty
                && text.utf8.allSatisfy {
                    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0)
                }
            guard isToken else {
                fail(item, "\(itemPath): expected an HTTP method such as GET or POST, got \(Self.describe(item))")
                continue
            }
            let method = text.uppercased()
            if !methods.insert(method).inserted {
                fail(item, "\(itemPath): method \(method) is listed twice")
            }
        }
        return errors.count == errorCount ? methods : nil
    }

    /// A route's `pools`: a non-empty list of pool ids or `{id, cost}` mappings, each pool once,
    /// each cost within the pool's cap.
    private mutating func charges(_ node: Node, _ path: String, defaultCost: (value: Int64, line: Int)?) -> [RouteConfig.Charge] {
        guard case .sequence(let sequence) = node else {
            fail(node, "\(path): expected a list of pool ids, got \(Self.describe(node))")
            return []
        }
        if sequence.isEmpty {
            fail(node, "\(path): must list at least one pool")
        }
        var charges: [RouteConfig.Charge] = []
        var listed: [String: Int] = [:]
        for (index, item) in sequence.enumerated() {
            let itemPath = "\(path)[\(index)]"
            var idNode = item
            var idPath = itemPath
            var cost = defaultCost
            switch item {
            case .scalar:
                break
            case .mapping(let mapping):
                let keys = entries(of: mapping, at: itemPath, allowed: Self.chargeKeys)
                if let entry = keys["cost"] {
                    cost = int(entry.value, "\(itemPath).cost", min: 1, max: Self.maxChargesLimit).map { ($0, Self.line(entry.value)) }
                }
                guard let entry = keys["id"] else {
                    fail(item, "\(itemPath).id: required")
                    continue
                }
                idNode = entry.value
                idPath = "\(itemPath).id"
            default:
                fail(item, "\(itemPath): expected a pool id or {id, cost}, got \(Self.describe(item))")
                continue
            }
            guard let id = string(idNode, idPath) else { continue }
            guard let pool = poolRefs[id] else {
                fail(idNode, "\(itemPath): unknown pool \(Self.quote(id))")
                continue
            }
            if let first = listed[id] {
                fail(idNode, "\(itemPath): pool '\(id)' is listed twice (first as \(path)[\(first)])")
                continue
            }
            listed[id] = index
            guard let cost else { continue }
            if let max = pool.maxCharges, cost.value > max {
                fail(
                    cost.line,
                    "\(itemPath): cost \(cost.value) is more than pool '\(id)' can ever hold (maxCharges \(max)), so the route could never pass"
                )
                continue
            }
            charges.append(RouteConfig.Charge(poolIndex: pool.index, cost: cost.value))
        }
        return charges
    }
}
