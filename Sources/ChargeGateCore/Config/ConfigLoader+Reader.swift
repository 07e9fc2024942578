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
        func originalName(_ key: String) -> String {
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

    }
}
