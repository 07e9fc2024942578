/// One configuration level of the model: the top level, `http`, a `server`, a `location`, an
/// `if`, or another block (`upstream`, `map`, `limit_except`, …). Directives not set in a block
/// are looked up in its parents (`NginxModel.inherited`), as nginx merges them.
public struct NginxBlock: Sendable {
    /// What the block is.
    public enum Kind: Sendable, Equatable {
        /// The main file's top level.
        case main
        /// `http { }`.
        case http
        /// `server { }` inside `http`.
        case server
        /// `location [modifier] name { }`.
        case location(NginxLocationModifier, String)
        /// `if (…) { }` in a server or location.
        case condition
        /// Any other block, by its directive's name.
        case other(String)
    }

    /// What the block is.
    public var kind: Kind
    /// The directive that opens it (nil for the top level).
    public var opening: NginxDirective?
    /// The enclosing block's id (nil for the top level).
    public var parent: Int?
    /// The block's own directives in order; block directives among them are listed in
    /// `children` by their index here.
    public var directives: [NginxDirective]
    /// The block id of each block directive, by its index in `directives`.
    public var children: [Int: Int] = [:]
    /// Exact and prefix locations directly inside, arranged as nginx searches them.
    public var staticLocations = NginxLocationTree([])
    /// Regex locations directly inside, in config order.
    public var regexLocations: [Int] = []
    /// Named locations (`@name`) directly inside, by name.
    public var namedLocations: [String: Int] = [:]

    /// Creates a block.
    public init(kind: Kind, opening: NginxDirective?, parent: Int?, directives: [NginxDirective]) {
        self.kind = kind
        self.opening = opening
        self.parent = parent
        self.directives = directives
    }

    /// The block's own directives named `name`, in order.
    public func own(_ name: String) -> [NginxDirective] {
        directives.filter { $0.name == name }
    }

    /// The first own directive named `name`.
    public func first(_ name: String) -> NginxDirective? {
        directives.first { $0.name == name }
    }

    /// Where the block starts (its opening directive), if anywhere.
    public var location: NginxSourceLocation? { opening?.location }

    /// The location's modifier and name, for a location.
    public var locationSpec: (modifier: NginxLocationModifier, name: String)? {
        if case .location(let modifier, let name) = kind { return (modifier, name) }
        return nil
    }

    /// How findings name it: `location ^~ /api/`, `if ($x)`, `server`, `http`.
    public var title: String {
        switch kind {
        case .main: return "main"
        case .http: return "http"
        case .server: return "server"
        case .location(let modifier, let name):
            let written = modifier.written
            return written.isEmpty ? "location \(name)" : "location \(written) \(name)"
        case .condition:
            return opening?.summary(limit: 50) ?? "if"
        case .other(let name):
            return name
        }
    }
}
