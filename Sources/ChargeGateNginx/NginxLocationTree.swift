/// The static (exact and prefix) locations of one level, arranged and searched exactly as nginx
/// does it (src/http/ngx_http.c: `ngx_http_init_locations`, `ngx_http_join_exact_locations`,
/// `ngx_http_create_locations_list`, `ngx_http_create_locations_tree`; src/http/
/// ngx_http_core_module.c: `ngx_http_core_find_static_location`): the names sorted by
/// `ngx_filename_cmp` (bytes, `/` lowest; an exact one before the prefix one of the same name), each prefix taking the names it
/// starts as its subtree, each level a binary tree around its middle element. The search walks
/// it byte-wise; it also yields nginx's auto redirect (`len + 1 == node len` on a location
/// ending in `/` that proxies), quirks included.
public struct NginxLocationTree: Sendable {
    /// One static location to arrange.
    public struct Entry: Sendable {
        /// Its name (the URI prefix or exact URI), as bytes.
        public var name: [UInt8]
        /// `location = …`.
        public var exact: Bool
        /// `location ^~ …`.
        public var noRegex: Bool
        /// Whether nginx redirects `name` minus its final `/` here (a `*_pass` in the location).
        public var autoRedirect: Bool
        /// What the caller calls it (a block id).
        public var id: Int

        /// Creates an entry.
        public init(name: [UInt8], exact: Bool, noRegex: Bool, autoRedirect: Bool, id: Int) {
            self.name = name
            self.exact = exact
            self.noRegex = noRegex
            self.autoRedirect = autoRedirect
            self.id = id
        }
    }

    /// What the search found, nginx's return codes.
    public enum Result: Sendable, Equatable {
        /// `NGX_OK`: an exact location.
        case exact(Int)
        /// `NGX_AGAIN`: the longest prefix location (nested locations and regexes come next).
        case prefix(Int)
        /// `NGX_DONE`: nginx answers 301 to the URI with a `/` added (this location's name).
        case autoRedirect(Int)
        /// `NGX_DECLINED`: nothing.
        case none
    }

    /// An element of nginx's location queue (`ngx_http_location_queue_t`).
    private struct Item {
        /// The name.
        var name: [UInt8]
        /// The exact location of this name.
        var exact: Entry?
        /// The prefix location of this name.
        var inclusive: Entry?
        /// The names it starts (its subtree).
        var list: [Item] = []
    }

    /// A node of the tree (`ngx_http_location_tree_node_t`).
    private struct Node {
        /// The name without the parent levels' prefix.
        var name: [UInt8]
        /// The exact location.
        var exact: Entry?
        /// The prefix location.
        var inclusive: Entry?
        /// Whether either redirects `name` minus `/` here.
        var autoRedirect: Bool
        /// Smaller names of the level.
        var left: Int?
        /// Greater names of the level.
        var right: Int?
        /// The names this prefix starts, one level down.
        var tree: Int?
    }

    private var nodes: [Node] = []
    private var root: Int?

    /// Arranges `entries` (in config order). A duplicate name of the same kind, which nginx
    /// refuses, is dropped.
    public init(_ entries: [Entry]) {
        var items = entries.map { entry in
            Item(name: entry.name, exact: entry.exact ? entry : nil, inclusive: entry.exact ? nil : entry)
        }
        Self.sort(&items)
        items = Self.joinExact(items)
        items = Self.buildLists(items)
        root = items.isEmpty ? nil : build(items[...], prefix: 0)
    }

    /// `ngx_http_cmp_locations` for static names: `ngx_filename_cmp` over the names and their
    /// terminating NUL (so a shorter prefix comes first, and `/` sorts below every other byte);
    /// an inclusive location after the exact one of the same name.
    private static func compare(_ a: Item, _ b: Item) -> Int {
        let order = filenameCompare(a.name[...], b.name[...], count: min(a.name.count, b.name.count) + 1)
        if order == 0 && a.exact == nil && b.exact != nil { return 1 }
        return order
    }

    /// `ngx_filename_cmp` (src/core/ngx_string.c) of `count` bytes, a missing byte read as the
    /// C string's NUL: equal bytes go on (a NUL ends it, equal); otherwise `/` counts as the
    /// lowest byte ("we need '/' to be the lowest character").
    static func filenameCompare(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>, count: Int) -> Int {
        for index in 0..<count {
            var c1 = index < a.count ? Int(a[a.startIndex + index]) : 0
            var c2 = index < b.count ? Int(b[b.startIndex + index]) : 0
            if c1 == c2 {
                if c1 == 0 { return 0 }
                continue
            }
            if c1 == 0 || c2 == 0 { return c1 - c2 }
            if c1 == 0x2F { c1 = 0 }
            if c2 == 0x2F { c2 = 0 }
            return c1 - c2
        }
        return 0
    }

    /// `ngx_queue_sort`: a stable insertion sort with that comparison.
    private static func sort(_ items: inout [Item]) {
        guard items.count > 1 else { return }
        for index in 1..<items.count {
            let item = items[index]
            var position = index
            while position > 0 && compare(items[position - 1], item) > 0 {
                items[position] = items[position - 1]
                position -= 1
            }
            items[position] = item
        }
    }

    /// `ngx_http_join_exact_locations`: an exact and a prefix location of the same name share
    /// one element.
    private static func joinExact(_ items: [Item]) -> [Item] {
        var out: [Item] = []
        for item in items {
            if var last = out.last, last.name == item.name {
                if last.inclusive == nil && item.inclusive != nil {
                    last.inclusive = item.inclusive
                    out[out.count - 1] = last
                }
                continue
            }
            out.append(item)
        }
        return out
    }

    /// `ngx_http_create_locations_list`: each prefix location takes the following names that
    /// start with its own as its list, recursively.
    private static func buildLists(_ items: [Item]) -> [Item] {
        var out: [Item] = []
        var index = 0
        while index < items.count {
            var item = items[index]
            guard item.inclusive != nil else {
                out.append(item)
                index += 1
                continue
            }
            var end = index + 1
            while end < items.count && items[end].name.count >= item.name.count && items[end].name.starts(with: item.name) {
                end += 1
            }
            if end > index + 1 { item.list = buildLists(Array(items[(index + 1)..<end])) }
            out.append(item)
            index = end
        }
        return out
    }

    /// `ngx_http_create_locations_tree`: the middle element (`ngx_queue_middle`: index n / 2)
    /// as the node, the elements before and after as its left and right, its list one level
    /// down with the node's name as the consumed prefix.
    private mutating func build(_ items: ArraySlice<Item>, prefix: Int) -> Int {
        let middle = items.startIndex + items.count / 2
        let item = items[middle]
        let autoRedirect = (item.exact?.autoRedirect ?? false) || (item.inclusive?.autoRedirect ?? false)
        nodes.append(
            Node(name: Array(item.name.dropFirst(prefix)), exact: item.exact, inclusive: item.inclusive, autoRedirect: autoRedirect))
        let id = nodes.count - 1
        if items.count > 1 {
            let left = build(items[items.startIndex..<middle], prefix: prefix)
            nodes[id].left = left
            if middle + 1 < items.endIndex {
                let right = build(items[(middle + 1)...], prefix: prefix)
                nodes[id].right = right
            }
        }
        if !item.list.isEmpty {
            let tree = build(item.list[...], prefix: item.name.count)
            nodes[id].tree = tree
        }
        return id
    }

    /// `ngx_http_core_find_static_location` for `uri` (compared with `ngx_filename_cmp`, as
    /// the tree was sorted); `noRegex` of the result is the found entry's.
    public func find(_ uri: [UInt8]) -> (result: Result, noRegex: Bool) {
        var node = root
        var offset = 0
        var found: (result: Result, noRegex: Bool) = (.none, false)
        while let index = node {
            let current = nodes[index]
            let remaining = uri.count - offset
            let n = min(remaining, current.name.count)
            let order = Self.filenameCompare(uri[offset...], current.name[...], count: n)
            if order != 0 {
                node = order < 0 ? current.left : current.right
                continue
            }
            if remaining > current.name.count {
                if let inclusive = current.inclusive {
                    found = (.prefix(inclusive.id), inclusive.noRegex)
                    node = current.tree
                    offset += n
                    continue
                }
                node = current.right
                continue
            }
            if remaining == current.name.count {
                if let exact = current.exact { return (.exact(exact.id), exact.noRegex) }
                if let inclusive = current.inclusive { return (.prefix(inclusive.id), inclusive.noRegex) }
                return found
            }
            if remaining + 1 == current.name.count && current.autoRedirect, let entry = current.exact ?? current.inclusive {
                found = (.autoRedirect(entry.id), entry.noRegex)
            }
            node = current.left
        }
        return found
    }
}
