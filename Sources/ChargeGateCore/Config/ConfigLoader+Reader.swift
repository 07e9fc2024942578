import Yams

extension ConfigLoader {
    /// One pass over a composed config tree: checks every key, collects every error and
    /// builds the config.
    struct Reader {
        /// One key of a mapping, as read.
        struct Entry {
            /// The key's name (renamed duplicates restored).
            var name: String
            /// The key's line.
            var line: Int
            /// The value node.
            var value: Node
        }

        /// What the routes need to know about a pool.
        struct PoolRef {
            /// Index of the pool in `GateConfig.pools`.
            var index: Int
            /// Line of the pool's id.
            var line: Int
            /// The cap, when it is a valid limited one.
            var maxCharges: Int64?
        }

        /// The file name put into errors.
        let file: String
        /// Original names of keys the duplicate-key pass renamed, by marker number.
        let renamedKeys: [String]
        /// Every error found so far, in the order found.
        private(set) var errors: [ConfigError] = []
        /// Pools with a valid, unique id, by id.
        var poolRefs: [String: PoolRef] = [:]

        /// Creates a reader.
        init(file: String, renamedKeys: [String]) {
            self.file = file
            self.renamedKeys = renamedKeys
        }

        /// The top-level keys.
        static let topKeys = [
            "listen", "workers", "redis", "redisTimeoutMs", "keyPrefix", "devBypass", "adminToken",
            "idempotencyHeader", "idempotencyTtlSeconds", "idempotencyMaxRepeats", "idempotencyMaxKeysPerSubject",
            "eventsMaxLen", "memoryEventsMaxBytes", "socketMode", "socketGroup",
            "pools", "routes",
        ]

        // MARK: - Top level

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
            if let entry = keys["keyPrefix"], let text = string(entry.value, "keyPrefix") {
                if text.utf8.count > 128 {
                    fail(entry.value, "keyPrefix: must be at most 128 bytes, got \(text.utf8.count)")
                } else if text.unicodeScalars.contains(where: Self.isSpaceOrControl) {
                    fail(entry.value, "keyPrefix: must not contain spaces or control characters, got \(Self.quote(text))")
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
            if let entry = keys["idempotencyTtlSeconds"], let value = int(entry.value, "idempotencyTtlSeconds", min: 1, max: nil) {
                config.idempotencyTtlSeconds = Int(value)
            }
            if let entry = keys["idempotencyMaxRepeats"], let value = int(entry.value, "idempotencyMaxRepeats", min: 1, max: 1_000_000) {
                config.idempotencyMaxRepeats = Int(value)
            }
            if let entry = keys["idempotencyMaxKeysPerSubject"],
               let value = int(entry.value, "idempotencyMaxKeysPerSubject", min: 1, max: 1_000_000_000) {
                config.idempotencyMaxKeysPerSubject = Int(value)
            }
            if let entry = keys["eventsMaxLen"], let value = int(entry.value, "eventsMaxLen", min: 0, max: nil) {
                config.eventsMaxLen = Int(value)
            }
            if let entry = keys["memoryEventsMaxBytes"],
               let value = int(entry.value, "memoryEventsMaxBytes", min: 0, max: 1 << 40) {
                config.memoryEventsMaxBytes = Int(value)
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
            config.pools = readPools(keys["pools"], mappingLine: Self.line(root))
            config.routes = readRoutes(keys["routes"])
            return config
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

        // MARK: - Errors

        /// Records an error at `line`.
        mutating func fail(_ line: Int, _ message: String) {
            errors.append(ConfigError(file: file, line: line, message: message))
        }

        /// Records an error at the node's line.
        mutating func fail(_ node: Node, _ message: String) {
            fail(Self.line(node), message)
        }

        /// The node's 1-based line (Yams marks count from 1).
        static func line(_ node: Node) -> Int {
            node.mark?.line ?? 0
        }

        // MARK: - Mappings

        /// `path.name`, or `name` at the top level.
        static func join(_ path: String, _ name: String) -> String {
            path.isEmpty ? name : "\(path).\(name)"
        }

        /// The keys of `mapping`, the first occurrence of each allowed one. Reports unknown keys
        /// (with the closest allowed name), duplicate keys and keys that are not names.
        mutating func entries(of mapping: Node.Mapping, at path: String, allowed: [String]) -> [String: Entry] {
            var result: [String: Entry] = [:]
            var seen: [String: Int] = [:]
            for (keyNode, value) in mapping {
                guard case .scalar(let scalar) = keyNode else {
                    fail(keyNode, "\(path.isEmpty ? "top level" : path): keys must be names, got \(Self.describe(keyNode))")
                    continue
                }
                let name = originalName(scalar.string)
                let keyPath = Self.join(path, Self.sanitize(name))
                let line = Self.line(keyNode)
                if let first = seen[name] {
                    fail(line, "\(keyPath): duplicate key (first at line \(first))")
                    continue
                }
                seen[name] = line
                guard allowed.contains(name) else {
                    if let suggestion = Self.closest(to: name, in: allowed) {
                        fail(line, "\(keyPath): unknown key (did you mean '\(suggestion)'?)")
                    } else {
                        fail(line, "\(keyPath): unknown key")
                    }
                    continue
                }
                result[name] = Entry(name: name, line: line, value: value)
            }
            return result
        }

        /// A key's name, with a rename by the duplicate-key pass undone.
        private func originalName(_ key: String) -> String {
            guard key.hasPrefix(ConfigLoader.renamedKeyMarker) else { return key }
            let rest = key.dropFirst(ConfigLoader.renamedKeyMarker.count)
            guard let end = rest.firstIndex(of: "_"), let number = Int(rest[..<end]),
                renamedKeys.indices.contains(number)
            else { return key }
            return renamedKeys[number]
        }

        /// The allowed name closest to `name` (case-insensitive edit distance <= 2, and less
        /// than the name's length), if any.
        static func closest(to name: String, in allowed: [String]) -> String? {
            let typed = Array(name.lowercased().unicodeScalars)
            guard typed.count <= 64 else { return nil }
            var best: (name: String, distance: Int)?
            for candidate in allowed {
                let distance = editDistance(typed, Array(candidate.lowercased().unicodeScalars))
                if distance <= 2, distance < typed.count, distance < (best?.distance ?? Int.max) {
                    best = (candidate, distance)
                }
            }
            return best?.name
        }

        /// Levenshtein distance.
        private static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
            if a.isEmpty { return b.count }
            var previous = Array(0...b.count)
            var current = previous
            for i in 1...a.count {
                current[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                    current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
                }
                swap(&previous, &current)
            }
            return previous[b.count]
        }

        // MARK: - Scalars

        /// Whether the node is a plain null (`~`, `null`, or nothing at all).
        static func isNull(_ node: Node) -> Bool {
            guard case .scalar(let scalar) = node, scalar.style == .plain else { return false }
            return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
        }

        /// Whether plain `text` reads as a number or a boolean in YAML.
        static func looksTyped(_ text: String) -> Bool {
            if ["true", "false", "True", "False", "TRUE", "FALSE", ".inf", "-.inf", "+.inf", ".nan"].contains(text) {
                return true
            }
            if !wholeNumber(text).isNotWhole { return true }
            return decimal(text) != nil || text.hasPrefix("0x") || text.hasPrefix("0o")
        }

        /// The node as shown after "got": a number as written, text in quotes.
        static func describe(_ node: Node) -> String {
            switch node {
            case .mapping: return "a mapping"
            case .sequence: return "a list"
            case .alias: return "an alias"
            case .scalar(let scalar):
                let text = scalar.string
                if scalar.style == .plain {
                    if text.isEmpty { return "nothing" }
                    if isNull(node) { return "null" }
                    return looksTyped(text) ? sanitize(text) : quote(text)
                }
                return looksTyped(text) ? "\(quote(text)) (a quoted string)" : quote(text)
            }
        }

        /// `'text'`, shortened and with control characters escaped.
        static func quote(_ text: String) -> String {
            "'\(sanitize(text))'"
        }

        /// `text` shortened to 64 characters, with control characters escaped.
        static func sanitize(_ text: String) -> String {
            var result = ""
            var count = 0
            for scalar in text.unicodeScalars {
                if count == 64 {
                    result += "..."
                    break
                }
                count += 1
                switch scalar {
                case "\n": result += "\\n"
                case "\t": result += "\\t"
                case "\r": result += "\\r"
                default:
                    if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
                        result += "\\u{\(String(scalar.value, radix: 16))}"
                    } else {
                        result.unicodeScalars.append(scalar)
                    }
                }
            }
            return result
        }

        /// Whitespace or a control character.
        static func isSpaceOrControl(_ scalar: Unicode.Scalar) -> Bool {
            scalar.properties.isWhitespace || scalar.properties.generalCategory == .control
        }

        /// `[A-Za-z0-9-]`.
        private static func isHeaderByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }

        /// A plain scalar read as a whole number.
        enum WholeNumber {
            /// A whole number that fits in 64 bits.
            case value(Int64)
            /// Decimal digits, but too large for 64 bits.
            case tooLarge
            /// Not a whole number.
            case notWhole

            /// Whether the text was not a whole number at all.
            var isNotWhole: Bool {
                if case .notWhole = self { return true }
                return false
            }
        }

        /// Reads `[-+]?[0-9]+`.
        static func wholeNumber(_ text: String) -> WholeNumber {
            var digits = Substring(text)
            if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
            guard !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
                return .notWhole
            }
            guard let value = Int64(text) else { return .tooLarge }
            return .value(value)
        }

        /// Reads a finite decimal number (`2`, `0.25`, `.5`, `1e-3`).
        static func decimal(_ text: String) -> Double? {
            let allowed = Set("0123456789+-.eE".utf8)
            guard text.utf8.allSatisfy(allowed.contains), text.utf8.contains(where: { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                let value = Double(text), value.isFinite
            else { return nil }
            return value
        }

        /// The node as a string: any scalar but null, its text (a number is taken as written).
        mutating func string(_ node: Node, _ path: String) -> String? {
            guard case .scalar(let scalar) = node, !Self.isNull(node) else {
                fail(node, "\(path): expected a string, got \(Self.describe(node))")
                return nil
            }
            return scalar.string
        }

        /// The node as a whole number in `min...max`: only an unquoted number. A range with no
        /// practical top (nil or >= 10^15) is described by whichever bound was crossed.
        mutating func int(_ node: Node, _ path: String, min: Int64, max: Int64?) -> Int64? {
            guard case .scalar(let scalar) = node, scalar.style == .plain else {
                fail(node, "\(path): expected a whole number, got \(Self.describe(node))")
                return nil
            }
            let text = scalar.string
            let below: Bool
            switch Self.wholeNumber(text) {
            case .notWhole:
                fail(node, "\(path): expected a whole number, got \(Self.describe(node))")
                return nil
            case .tooLarge:
                below = text.hasPrefix("-")
            case .value(let value):
                if value >= min && value <= (max ?? Int64.max) { return value }
                below = value < min
            }
            if let max, max < 1_000_000_000_000_000 {
                fail(node, "\(path): must be a whole number from \(min) to \(max), got \(text)")
            } else if below || max == nil {
                fail(node, "\(path): must be a whole number >= \(min), got \(text)")
            } else {
                fail(node, "\(path): must be at most \(max ?? Int64.max), got \(text)")
            }
            return nil
        }

        /// The node as a boolean: only unquoted `true` or `false`.
        mutating func bool(_ node: Node, _ path: String) -> Bool? {
            if case .scalar(let scalar) = node, scalar.style == .plain {
                if scalar.string == "true" { return true }
                if scalar.string == "false" { return false }
            }
            fail(node, "\(path): expected true or false, got \(Self.describe(node))")
            return nil
        }
    }
}
