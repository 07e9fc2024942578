/// Segment-wise longest-prefix matching of paths to routes: a trie over path segments, so the
/// cost of a lookup grows with the depth of the path, not with the number of routes.
public struct Router: Sendable {
    private struct Node: Sendable {
        var children: [Substring: Int] = [:]
        /// Routes ending here: (methods, route index), most specific method set first.
        var routes: [(methods: Set<String>?, route: Int)] = []
    }

    private var nodes: [Node] = [Node()]

    /// Builds the trie from routes whose prefixes are already normalised.
    public init(routes: [RouteConfig]) {
        for (index, route) in routes.enumerated() {
            var node = 0
            for segment in URIPath.segments(route.prefix) {
                if let next = nodes[node].children[segment] {
                    node = next
                } else {
                    nodes.append(Node())
                    nodes[node].children[segment] = nodes.count - 1
                    node = nodes.count - 1
                }
            }
            nodes[node].routes.append((route.methods, index))
        }
    }

    /// The index of the route with the longest prefix matching `path` whose methods include
    /// `method`; nil when none does. Among routes with the same prefix, the first in config
    /// order that accepts the method wins.
    public func match(path: String, method: String) -> Int? {
        var node = 0
        var best = Self.accepting(nodes[0].routes, method)
        // Segments split at every `/` byte, as nginx does: splitting by Character would glue a
        // combining mark to the slash before it and let `/api/generate/\u{301}x` miss its route.
        for segment in URIPath.segments(path) {
            guard let next = nodes[node].children[segment] else { break }
            node = next
            if let found = Self.accepting(nodes[node].routes, method) { best = found }
        }
        return best
    }

    private static func accepting(_ routes: [(methods: Set<String>?, route: Int)], _ method: String) -> Int? {
        for entry in routes where entry.methods?.contains(method) ?? true {
            return entry.route
        }
        return nil
    }
}
