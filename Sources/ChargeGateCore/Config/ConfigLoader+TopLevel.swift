import Yams

extension ConfigLoader.Reader {
    /// The top-level keys.
    static let topKeys = [
        "listen", "workers", "redis", "redisTimeoutMs", "sentinelPassword", "redisMinReplicas", "redisReplicaWaitMs", "keyPrefix",
        "devBypass", "adminToken", "upgradeUrl",
        "idempotencyHeader", "idempotencyTtlSeconds", "idempotencyMaxRepeats", "idempotencyMaxKeysPerSubject",
        "eventsMaxLen", "memoryEventsMaxBytes", "edgeDenySeconds", "socketMode", "socketGroup",
        "mode", "defaultPlan", "plans", "pools", "routes", "settleWindowSeconds", "amountHeader", "settleListen",
    ]

    /// Reads the whole tree; nil when it is not a mapping.
    mutating func readRoot(_ root: Node) -> GateConfig? {
        guard case .mapping(let mapping) = root else {
            fail(root, "expected a mapping of config keys at the top level, got \(Self.describe(root))")
            return nil
        }
        let keys = entries(of: mapping, at: "", allowed: Self.topKeys)
        var config = GateConfig()
        if let entry = keys["listen"], let text = string(entry.value, "listen") {
            if let address = ListenAddress(parsing: text) {
                config.listen = address
            } else {
                fail(entry.value, "listen: expected a unix socket path, host:port or 'inherit', got \(Self.quote(text))")
            }
        }
        if let entry = keys["workers"], let value = int(entry.value, "workers", min: 1, max: 256) {
            config.workers = Int(value)
        }
        if let entry = keys["redis"], !Self.isNull(entry.value), let text = string(entry.value, "redis") {
            do {
                config.redis = try RedisURL(parsing: text)
            } catch {
                // RedisURL's messages never repeat the URL, so no password leaks into them.
                fail(entry.value, error.text.hasPrefix("redis:") ? error.text : "redis: \(error.text)")
            }
        }
        if let entry = keys["redisTimeoutMs"], let value = int(entry.value, "redisTimeoutMs", min: 1, max: 60_000) {
            config.redisTimeoutMs = Int(value)
        }
        if let entry = keys["sentinelPassword"], let text = string(entry.value, "sentinelPassword") {
            // Never repeated in a message: it is a secret.
            if text.isEmpty {
                fail(entry.value, "sentinelPassword: must not be empty (leave the key out when the sentinels need none)")
            } else if let url = config.redis, url.isSentinel {
                config.redis?.sentinelPassword = text
            } else if keys["redis"].map({ !Self.isNull($0.value) }) ?? false, config.redis == nil {
                // The redis URL itself is wrong and reported; nothing more to say here.
            } else {
                fail(entry.value, "sentinelPassword: only used with a redis-sentinel:// URL in redis")
            }
        }
        if let entry = keys["redisMinReplicas"], let value = int(entry.value, "redisMinReplicas", min: 0, max: 100) {
            config.redisMinReplicas = Int(value)
        }
        if let entry = keys["redisReplicaWaitMs"], let value = int(entry.value, "redisReplicaWaitMs", min: 1, max: 60_000) {
            config.redisReplicaWaitMs = Int(value)
        }
        if let entry = keys["keyPrefix"], let text = string(entry.value, "keyPrefix") {
            if text.utf8.count > 128 {
                fail(entry.value, "keyPrefix: must be at most 128 bytes, got \(text.utf8.count)")
            } else if text.unicodeScalars.contains(where: Self.isSpaceOrControl) {
                fail(entry.value, "keyPrefix: must not contain spaces or control characters, got \(Self.quote(text))")
            } else if config.redis?.isCluster == true, text.contains("{") || text.contains("}") {
                // A brace would become (or break) the hash tag that keeps a subject's keys in one slot.
                fail(
                    entry.value,
                    "keyPrefix: must not contain { or } with a redis-cluster:// store (keys take hash tags), got \(Self.quote(text))")
            } else {
                config.keyPrefix = text
            }
        }
        if let entry = keys["devBypass"], let value = bool(entry.value, "devBypass") {
            config.devBypass = value
        }
        if let entry = keys["adminToken"], let text = string(entry.value, "adminToken") {
            if text.isEmpty {
                fail(entry.value, "adminToken: must not be empty (leave the key out to turn the admin endpoints off)")
            } else {
                config.adminToken = text
            }
        }
        if let entry = keys["idempotencyHeader"], let text = string(entry.value, "idempotencyHeader") {
            if !text.isEmpty && text.utf8.allSatisfy(Self.isHeaderByte) {
                config.idempotencyHeader = text
            } else {
                fail(entry.value, "idempotencyHeader: must be an HTTP header name (letters, digits and '-'), got \(Self.quote(text))")
            }
        }
        if let entry = keys["amountHeader"], let text = string(entry.value, "amountHeader") {
            if !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy(Self.isHeaderByte) {
                config.amountHeader = text
            } else {
                fail(
                    entry.value, "amountHeader: must be an HTTP header name (letters, digits and '-', at most 64), got \(Self.quote(text))")
            }
        }
        if let entry = keys["settleWindowSeconds"], let value = int(entry.value, "settleWindowSeconds", min: 1, max: 30 * 86_400) {
            config.settleWindowSeconds = Int(value)
        }
        if let entry = keys["settleListen"], let text = string(entry.value, "settleListen") {
            if text.hasPrefix("/"), text.utf8.count <= 107, !text.unicodeScalars.contains(where: Self.isSpaceOrControl) {
                config.settleListen = text
            } else {
                fail(
                    entry.value,
                    "settleListen: expected an absolute unix socket path (at most 107 bytes, no spaces), got \(Self.quote(text))")
            }
        }
        if let entry = keys["idempotencyTtlSeconds"], let value = int(entry.value, "idempotencyTtlSeconds", min: 1, max: nil) {
            config.idempotencyTtlSeconds = Int(value)
        }
        if let entry = keys["idempotencyMaxRepeats"], let value = int(entry.value, "idempotencyMaxRepeats", min: 1, max: 1_000_000) {
            config.idempotencyMaxRepeats = Int(value)
        }
        if let entry = keys["idempotencyMaxKeysPerSubject"],
            let value = int(entry.value, "idempotencyMaxKeysPerSubject", min: 1, max: 1_000_000_000)
        {
            config.idempotencyMaxKeysPerSubject = Int(value)
        }
        if let entry = keys["eventsMaxLen"], let value = int(entry.value, "eventsMaxLen", min: 0, max: nil) {
            config.eventsMaxLen = Int(value)
        }
        if let entry = keys["memoryEventsMaxBytes"],
            let value = int(entry.value, "memoryEventsMaxBytes", min: 0, max: 1 << 40)
        {
            config.memoryEventsMaxBytes = Int(value)
        }
        if let entry = keys["edgeDenySeconds"], let value = int(entry.value, "edgeDenySeconds", min: 0, max: 3600) {
            config.edgeDenySeconds = Int(value)
        }
        if let entry = keys["socketMode"], let mode = socketMode(entry.value) {
            config.socketMode = mode
        }
        if let entry = keys["socketGroup"], let text = string(entry.value, "socketGroup") {
            if text.isEmpty {
                fail(entry.value, "socketGroup: must not be empty (leave the key out to keep the process's group)")
            } else {
                config.socketGroup = text
            }
        }
        if let entry = keys["mode"], let mode = self.mode(entry.value, "mode") {
            config.mode = mode
        }
        if let entry = keys["upgradeUrl"] {
            config.upgradeUrl = upgradeURL(entry.value, "upgradeUrl")
        }
        config.pools = readPools(keys["pools"], mappingLine: Self.line(root))
        config.routes = readRoutes(keys["routes"])
        if config.settles, config.settleSocketPath == nil {
            fail(
                keys["settleListen"].map { Self.line($0.value) } ?? Self.line(root),
                "settleListen: required when a route has settle: and listen is not a unix socket path "
                    + "(nginx's settlement lines need a unix datagram socket)")
        }
        config.plans = readPlans(keys["plans"], pools: config.pools, routes: config.routes)
        config.defaultPlan = readDefaultPlan(keys["defaultPlan"], plans: config.plans, plansEntry: keys["plans"])
        return config
    }

    /// `mode` (top level or a route's): `enforce` or `shadow`.
    mutating func mode(_ node: Node, _ path: String) -> GateMode? {
        guard let text = string(node, path) else { return nil }
        guard let mode = GateMode(rawValue: text) else {
            fail(node, "\(path): must be 'enforce' or 'shadow', got \(Self.quote(text))")
            return nil
        }
        return mode
    }

    /// `socketMode`: a quoted string of 3 or 4 octal digits.
    private mutating func socketMode(_ node: Node) -> Int? {
        let example = "as \"0660\""
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            fail(node, "socketMode: expected 3-4 octal digits in quotes, \(example), got \(Self.describe(node))")
            return nil
        }
        if scalar.style == .plain && Self.looksTyped(scalar.string) {
            fail(node, "socketMode: write the mode in quotes, \(example) (an unquoted number is ambiguous octal), got \(scalar.string)")
            return nil
        }
        let text = scalar.string
        let octal = text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }
        guard (3...4).contains(text.utf8.count), octal, let mode = Int(text, radix: 8) else {
            fail(node, "socketMode: expected 3-4 octal digits in quotes, \(example), got \(Self.describe(node))")
            return nil
        }
        return mode
    }
}
