/// One directive of nginx's configuration: its name, its arguments, where it is written and,
/// for a block directive (`http`, `server`, `location`, `if`, …), the directives inside.
public struct NginxDirective: Sendable, Equatable, CustomStringConvertible {
    /// The first word (`location`, `auth_request`, …).
    public var name: String
    /// The other words.
    public var args: [NginxToken]
    /// The file and line of the first word.
    public var location: NginxSourceLocation
    /// The directives between `{` and `}`; nil for a directive ended by `;`.
    public var block: [NginxDirective]?

    /// Creates a directive.
    public init(name: String, args: [NginxToken], location: NginxSourceLocation, block: [NginxDirective]? = nil) {
        self.name = name
        self.args = args
        self.location = location
        self.block = block
    }

    /// The argument texts.
    public var values: [String] { args.map(\.text) }

    /// The directive as one line, at most `limit` characters (longer ones end in `…`), without
    /// its block: `return 200 "done"`.
    public func summary(limit: Int = 60) -> String {
        let text = ([name] + args.map(\.description)).joined(separator: " ")
        guard text.count > limit else { return text }
        return String(text.prefix(limit - 1)) + "…"
    }

    /// `summary()`.
    public var description: String { summary() }
}
