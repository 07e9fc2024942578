/// How a `location` matches, as `ngx_http_core_location` reads its arguments: `= /x`, `^~ /x`,
/// `~ re`, `~* re`, `@name` or a plain prefix; the modifier may also be glued to the name
/// (`=/x`, `^~/x`, `~re`, `~*re`).
public enum NginxLocationModifier: Sendable, Hashable {
    /// `location = /x`: this URI only.
    case exact
    /// `location /x`: the longest matching prefix, unless a regex matches.
    case prefix
    /// `location ^~ /x`: a prefix that, when it is the longest, skips the regexes.
    case noRegex
    /// `location ~ re`: a case-sensitive regex, tried in config order.
    case regex
    /// `location ~* re`: a case-insensitive regex.
    case regexCaseless
    /// `location @name`: only reached by `error_page`, `try_files` and the like.
    case named

    /// The modifier and the name of a `location` directive's arguments; nil when nginx would
    /// refuse them.
    public static func parse(_ args: [String]) -> (NginxLocationModifier, String)? {
        if args.count == 2 {
            switch args[0] {
            case "=": return (.exact, args[1])
            case "^~": return (.noRegex, args[1])
            case "~": return (.regex, args[1])
            case "~*": return (.regexCaseless, args[1])
            default: return nil
            }
        }
        guard args.count == 1, let first = args[0].first else { return nil }
        let name = args[0]
        if first == "=" { return (.exact, String(name.dropFirst())) }
        if name.hasPrefix("^~") { return (.noRegex, String(name.dropFirst(2))) }
        if first == "~" {
            let rest = name.dropFirst()
            if rest.first == "*" { return (.regexCaseless, String(rest.dropFirst())) }
            return (.regex, String(rest))
        }
        if first == "@" { return (.named, name) }
        return (.prefix, name)
    }

    /// How the modifier is written before the name (`=`, `^~`, `~`, `~*`; empty otherwise).
    public var written: String {
        switch self {
        case .exact: "="
        case .noRegex: "^~"
        case .regex: "~"
        case .regexCaseless: "~*"
        case .prefix, .named: ""
        }
    }

    /// Whether the name is a regex.
    public var isRegex: Bool { self == .regex || self == .regexCaseless }
}
