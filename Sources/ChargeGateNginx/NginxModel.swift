/// The `http` part of a configuration as nginx builds it: servers, their locations (nested
/// ones too) with nginx's search structures, `if` blocks, the upstream names, and the
/// inheritance of directives from `http` to `server` to `location` to `if`.
public struct NginxModel: Sendable {
    /// Every block; id 0 is the top level.
    public private(set) var blocks: [NginxBlock]
    /// The `server` blocks inside `http`, in order.
    public private(set) var servers: [Int] = []
    /// The `http` block, if any.
    public private(set) var http: Int?
    /// `upstream NAME { }` blocks, by name.
    public private(set) var upstreams: [String: NginxSourceLocation] = [:]
    /// `map` blocks of `http`, by the variable they define (without `$`).
    public private(set) var maps: [String: NginxMap] = [:]
    /// The main file.
    public let mainFile: String

    /// The directives that make a location proxy (and so turn on nginx's auto redirect).
    public static let passDirectives: Set<String> = [
        "proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "memcached_pass", "grpc_pass",
    ]

    /// Builds the model of `configuration`.
    public init(_ configuration: NginxConfiguration) {
        mainFile = configuration.mainFile
        blocks = [NginxBlock(kind: .main, opening: nil, parent: nil, directives: configuration.directives)]
        addChildren(of: 0)
    }

    private mutating func addChildren(of parent: Int) {
        let parentKind = blocks[parent].kind
        for (index, directive) in blocks[parent].directives.enumerated() {
            guard let body = directive.block else { continue }
            let kind: NginxBlock.Kind
            switch (parentKind, directive.name) {
            case (.main, "http") where http == nil:
                kind = .http
            case (.http, "server"):
                kind = .server
            case (.server, "location"), (.location, "location"):
                guard let (modifier, name) = NginxLocationModifier.parse(directive.values) else { continue }
                kind = .location(modifier, name)
            case (.server, "if"), (.location, "if"):
                kind = .condition
            default:
                kind = .other(directive.name)
            }
            blocks.append(NginxBlock(kind: kind, opening: directive, parent: parent, directives: body))
            let id = blocks.count - 1
            blocks[parent].children[index] = id
            switch kind {
            case .http: http = id
            case .server: servers.append(id)
            case .other("upstream"):
                if let name = directive.args.first?.text, upstreams[name] == nil { upstreams[name] = directive.location }
            case .other("map"):
                let values = directive.values
                if values.count == 2, values[1].hasPrefix("$"), let map = NginxMap(source: values[0], body: body) {
                    maps[String(values[1].dropFirst())] = map
                }
            default: break
            }
            addChildren(of: id)
        }
        if case .server = parentKind { arrangeLocations(of: parent) }
        if case .location = parentKind { arrangeLocations(of: parent) }
    }

    private mutating func arrangeLocations(of parent: Int) {
        var entries: [NginxLocationTree.Entry] = []
        var regexes: [Int] = []
        var named: [String: Int] = [:]
        let children = blocks[parent].children.sorted { $0.key < $1.key }.map(\.value)
        for child in children {
            guard let (modifier, name) = blocks[child].locationSpec else { continue }
            switch modifier {
            case .regex, .regexCaseless:
                regexes.append(child)
            case .named:
                if named[name] == nil { named[name] = child }
            case .exact, .prefix, .noRegex:
                let proxies = blocks[child].directives.contains { Self.passDirectives.contains($0.name) }
                entries.append(
                    NginxLocationTree.Entry(
                        name: Array(name.utf8), exact: modifier == .exact, noRegex: modifier == .noRegex,
                        autoRedirect: name.hasSuffix("/") && proxies, id: child))
            }
        }
        blocks[parent].staticLocations = NginxLocationTree(entries)
        blocks[parent].regexLocations = regexes
        blocks[parent].namedLocations = named
    }

    /// The block with this id.
    public subscript(id: Int) -> NginxBlock { blocks[id] }

    /// The block and its parents, innermost first.
    public func chain(from id: Int) -> [Int] {
        var out: [Int] = []
        var current: Int? = id
        while let block = current {
            out.append(block)
            current = blocks[block].parent
        }
        return out
    }

    /// The server a block is in (itself for a server).
    public func server(of id: Int) -> Int? {
        chain(from: id).first { blocks[$0].kind == .server }
    }

    /// The directive `name` in effect in block `id`: its own, else the nearest parent's
    /// (nginx's merge of a single-value setting: `auth_request`, `satisfy`, …).
    public func inherited(_ name: String, from id: Int) -> NginxDirective? {
        for block in chain(from: id) {
            if let found = blocks[block].first(name) { return found }
        }
        return nil
    }

    /// The list of directives with any of `names` in effect in block `id`: the nearest block's
    /// own, the whole list (nginx's merge of array settings: `allow`/`deny`, `fastcgi_param`,
    /// `error_page`: a block with one of its own inherits none).
    public func inheritedList(_ names: Set<String>, from id: Int) -> [NginxDirective] {
        for block in chain(from: id) {
            let own = blocks[block].directives.filter { names.contains($0.name) }
            if !own.isEmpty { return own }
        }
        return []
    }

    /// Every location in a server, nested ones too, in config order.
    public func locations(in server: Int) -> [Int] {
        var out: [Int] = []
        func walk(_ id: Int) {
            for child in blocks[id].children.sorted(by: { $0.key < $1.key }).map(\.value) where blocks[child].locationSpec != nil {
                out.append(child)
                walk(child)
            }
        }
        walk(server)
        return out
    }

    /// Every block inside `id` (not itself), in config order.
    public func descendants(of id: Int) -> [Int] {
        var out: [Int] = []
        for child in blocks[id].children.sorted(by: { $0.key < $1.key }).map(\.value) {
            out.append(child)
            out += descendants(of: child)
        }
        return out
    }
}
