// ConfigLoader.parse on arbitrary text.
//
// Input: the config file's bytes (decoded as UTF-8, invalid bytes as U+FFFD).
// Invariants: never traps; deterministic; a failure carries >= 1 error, each labelled with the
// file, a line in 0...(lines + 1), a non-empty message, sorted by line; a success is a config
// that passes every rule the loader documents, and compiles into a Gate.
import ChargeGateCore
import FuzzSupport

let file = "fuzz.yaml"

func checkSuccess(_ config: GateConfig, _ text: String) {
    require(!config.pools.isEmpty, "a loaded config has >= 1 pool")
    var ids: Set<String> = []
    for pool in config.pools {
        require(SafeToken.isPoolID(pool.id), "pool ids match [A-Za-z0-9._-]{1,64}", show(pool.id))
        require(ids.insert(pool.id).inserted, "pool ids are unique", show(pool.id))
        switch pool.capacity {
        case .limited(let max):
            require((1...1_000_000_000_000_000).contains(max), "maxCharges is in 1...1e15", "\(max)")
        case .unlimited:
            require(
                (pool.recharge == .none || pool.period != nil) && pool.rechargeIntervalHours == nil,
                "an unlimited pool has no recharge (a period pool keeps its period)")
        }
        switch pool.recharge {
        case .every(let ms):
            require(ms >= 1 && ms <= 876_000 * 3_600_000, "a recharge interval is 1 ms ... 100 years", "\(ms)")
            // Gate and the bucket math multiply these (Int64, trapping; Lua doubles in Redis).
            if let max = pool.maxCharges {
                let refill = max.multipliedReportingOverflow(by: ms)
                require(
                    !refill.overflow && refill.partialValue <= 1 << 53, "a full refill (maxCharges x interval) fits 2^53 ms",
                    "\(pool.id): \(max) x \(ms) ms")
            }
            require(
                pool.rechargeIntervalHours.map { $0 > 0 && ($0 * 3_600_000).rounded() == Double(ms) } ?? false,
                "intervalMs is rechargeIntervalHours in ms")
        case .none:
            require(pool.rechargeIntervalHours == nil, "a pool that never refills has no interval")
        case .period:
            require(pool.rechargeIntervalHours == nil, "a period pool has no interval")
        }
    }
    // Plans: a default exactly when there are plans; ids valid and unique; limits only on
    // per-subject pools, each within the pool rules, never below a route's cost.
    require((config.defaultPlan != nil) == !config.plans.isEmpty, "defaultPlan is given exactly when plans are")
    if let index = config.defaultPlan { require(config.plans.indices.contains(index), "defaultPlan names a plan") }
    var planIDs: Set<String> = []
    for plan in config.plans {
        require(SafeToken.isPoolID(plan.id), "plan ids match [A-Za-z0-9._-]{1,64}", show(plan.id))
        require(planIDs.insert(plan.id).inserted, "plan ids are unique", show(plan.id))
        for (index, override) in plan.overrides {
            require(config.pools.indices.contains(index), "a plan's pools exist")
            let pool = plan.apply(to: config.pools[index], index: index)
            require(config.pools[index].scope == .subject, "plans set per-subject pools only", show(pool.id))
            require(pool.period == config.pools[index].period, "a plan keeps a pool's period")
            if override.interval != nil { require(config.pools[index].period == nil, "no plan interval on a period pool") }
            if let max = pool.maxCharges, let ms = pool.intervalMs {
                let refill = max.multipliedReportingOverflow(by: ms)
                require(!refill.overflow && refill.partialValue <= 1 << 53, "a plan's full refill fits 2^53 ms", "\(max) x \(ms)")
            }
            for route in config.routes {
                for charge in route.charges where charge.poolIndex == index {
                    require(charge.cost <= pool.maxCharges ?? charge.cost, "a plan's cap holds every route's cost")
                }
            }
        }
    }
    // upgradeUrl (top level, each plan's): put into JSON, a header and an href as written.
    for url in [config.upgradeUrl] + config.plans.map(\.upgradeUrl) {
        guard let url else { continue }
        let bytes = Array(url.utf8)
        require((1...1024).contains(bytes.count), "an upgradeUrl is 1...1024 bytes", "\(bytes.count)")
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&()*+,;=%".utf8)
        require(bytes.allSatisfy(allowed.contains), "an upgradeUrl holds URL characters only (no quote, space, '<', '>', '\\')", show(url))
        for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "%") {
            let hex = Set("0123456789abcdefABCDEF".utf8)
            require(i + 2 < bytes.count && hex.contains(bytes[i + 1]) && hex.contains(bytes[i + 2]), "a '%' starts a %XX escape", show(url))
        }
        let path = bytes.first == UInt8(ascii: "/") && (bytes.count == 1 || bytes[1] != UInt8(ascii: "/"))
        let absolute = ["http://", "https://"].contains { scheme in
            url.hasPrefix(scheme) && ![nil, "/", "?", "#"].contains(url.dropFirst(scheme.count).first)
        }
        require(path || absolute, "an upgradeUrl is a '/' path (not '//') or an http(s) URL with a host", show(url))
    }
    var seen: [(prefix: String, methods: Set<String>?)] = []
    for route in config.routes {
        let prefix = route.prefix
        require(prefix.utf8.first == UInt8(ascii: "/"), "route prefixes start with '/'", show(prefix))
        require(
            !prefix.unicodeScalars.contains { "?#% \t\r\n".unicodeScalars.contains($0) || $0.value < 0x20 || $0.value == 0x7f },
            "route prefixes hold no '?', '#', '%', spaces or control characters", show(prefix))
        require(prefix == "/" || prefix.utf8.last != UInt8(ascii: "/"), "route prefixes have no trailing '/'", show(prefix))
        let renormalized = URIPath.normalize(prefix)
        require(sameBytes(renormalized, prefix), "route prefixes are normalised", "\(show(prefix)) -> \(show(renormalized))")
        require(!route.charges.isEmpty, "a route charges >= 1 pool", show(prefix))
        var pools: Set<Int> = []
        for charge in route.charges {
            require(config.pools.indices.contains(charge.poolIndex), "a route's pools exist")
            require(pools.insert(charge.poolIndex).inserted, "a route lists a pool once")
            require(
                charge.cost >= 1 && charge.cost <= (config.pools[charge.poolIndex].maxCharges ?? 1_000_000_000_000_000),
                "a route's cost is 1 ... the pool's maxCharges", "\(charge.cost)")
        }
        if let methods = route.methods {
            require(!methods.isEmpty, "a route's methods are absent or non-empty")
            for method in methods {
                require(
                    !method.isEmpty && method.utf8.allSatisfy { $0 >= 0x41 && $0 <= 0x5a }, "methods are upper-case letters", show(method))
            }
        }
        for earlier in seen where earlier.prefix == prefix {
            let overlap: Bool
            switch (earlier.methods, route.methods) {
            case (nil, _): overlap = true
            case (_?, nil): overlap = false  // the later route takes the methods the earlier leaves
            case (let a?, let b?): overlap = !a.isDisjoint(with: b)
            }
            require(!overlap, "no route is shadowed by an earlier one with the same prefix", show(prefix))
        }
        seen.append((prefix, route.methods))
    }
    if let workers = config.workers { require((1...256).contains(workers), "workers is 1...256") }
    require((1...60_000).contains(config.redisTimeoutMs), "redisTimeoutMs is 1...60000")
    require(config.keyPrefix.utf8.count <= 128, "keyPrefix is at most 128 bytes")
    require(
        !config.keyPrefix.unicodeScalars.contains { $0.properties.isWhitespace || $0.properties.generalCategory == .control },
        "keyPrefix has no spaces or control characters")
    require(config.adminToken.map { !$0.isEmpty } ?? true, "adminToken is absent or non-empty")
    require(
        !config.idempotencyHeader.isEmpty
            && config.idempotencyHeader.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == UInt8(ascii: "-")
            }, "idempotencyHeader is a header name", show(config.idempotencyHeader))
    require(config.idempotencyTtlSeconds >= 1, "idempotencyTtlSeconds >= 1")
    require((1...1_000_000).contains(config.idempotencyMaxRepeats), "idempotencyMaxRepeats is 1...1e6", "\(config.idempotencyMaxRepeats)")
    require(
        (1...1_000_000_000).contains(config.idempotencyMaxKeysPerSubject), "idempotencyMaxKeysPerSubject is 1...1e9",
        "\(config.idempotencyMaxKeysPerSubject)")
    require(config.eventsMaxLen >= 0, "eventsMaxLen >= 0")
    require((0...(1 << 40)).contains(config.memoryEventsMaxBytes), "memoryEventsMaxBytes is 0...2^40", "\(config.memoryEventsMaxBytes)")
    require((0...0o7777).contains(config.socketMode), "socketMode is 0...07777")
    require(config.socketGroup.map { !$0.isEmpty } ?? true, "socketGroup is absent or non-empty")

    // It compiles, and every route is found by its own prefix for a method it takes.
    let gate = Gate(config: config)
    let perPlan = max(1, config.plans.count)
    require(gate.pools.allSatisfy { $0.byPlan.count == perPlan }, "each pool as each plan sets it (the config's own without plans)")
    for route in gate.routes {
        require(route.planChoice.map { $0.limits.count == config.plans.count } ?? true, "plan limits per plan")
        require(route.policies.count == perPlan, "a RateLimit-Policy per plan")
    }
    // (Routes sharing a prefix have disjoint method sets, checked above, and methods are letters:
    // so each route has its own identity in idempotency fingerprints and deny-cache keys.)
    require(gate.eventStreams.isEmpty == (config.eventsMaxLen == 0), "the event log is read unless it is off")
    for key in gate.eventStreams.prefix(1) {
        require(key.utf8.starts(with: (config.keyPrefix + KeySpace.internalMark).utf8), "the event stream is an internal key", show(key))
    }
    for (index, route) in config.routes.enumerated() {
        let method = route.methods?.sorted().first ?? "POST"
        let found = gate.router.match(path: route.prefix, method: method)
        require(
            found.map { config.routes[$0].prefix == route.prefix } ?? false, "a route's own prefix matches it",
            "route \(index) \(show(route.prefix)) \(method): matched \(found.map(String.init) ?? "nil")")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        let result = ConfigLoader.parse(text, file: file)
        require(ConfigLoader.parse(text, file: file) == result, "parse is deterministic")
        switch result {
        case .success(let config):
            checkSuccess(config, text)
        case .failure(let failure):
            require(!failure.errors.isEmpty, "a failure carries >= 1 error")
            // libyaml counts \r, \n, \r\n, U+0085, U+2028 and U+2029 as line breaks.
            var lines = 1
            var previous: Unicode.Scalar = "a"
            for scalar in text.unicodeScalars {
                if ["\n", "\u{85}", "\u{2028}", "\u{2029}"].contains(scalar) && !(scalar == "\n" && previous == "\r") { lines += 1 }
                if scalar == "\r" { lines += 1 }
                previous = scalar
            }
            var last = 0
            for error in failure.errors {
                require(error.file == file, "errors name the file")
                require(
                    error.line >= 0 && error.line <= lines + 1, "an error's line is in 0...(lines + 1)",
                    "line \(error.line) of \(lines): \(show(error.message))")
                require(error.line >= last, "errors are sorted by line")
                last = error.line
                require(!error.message.isEmpty, "an error has a message")
                require(
                    !error.message.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }, "an error message is one line",
                    show(error.message))
            }
        }
    }
}
