/// The whole configuration nginx runs, from an `nginx -T` output: the main file (the dump's
/// first) parsed, with every `include` replaced by the directives of the files it names, as
/// `ngx_conf_include` reads them: a relative name is taken from the main file's directory
/// (nginx's conf prefix), a name with `*`, `?` or `[` is a glob over the dumped files (none
/// matching is fine), any other name must be in the dump. Every directive keeps the file and
/// line it was written at. A setting nginx refuses to see twice in one block (`satisfy`,
/// `auth_request`, …) makes it unreadable, as it makes nginx -t fail.
public struct NginxConfiguration: Sendable {
    /// Includes nested deeper than this are refused (an include loop; nginx would recurse
    /// until it runs out of file descriptors).
    public static let maximumIncludeDepth = 64

    /// The main file's path.
    public var mainFile: String
    /// The main file's directives, includes resolved.
    public var directives: [NginxDirective]

    /// Reads `dump`.
    public init(dump: NginxDump) throws(NginxParseError) {
        guard let main = dump.files.first else { throw NginxParseError("the dump has no files") }
        var parsed: [String: [NginxDirective]] = [:]
        for file in dump.files {
            parsed[file.path] = try NginxParser.parse(file.bytes, file: file.path)
        }
        let prefix: String
        if let slash = main.path.utf8.lastIndex(of: UInt8(ascii: "/")) {
            prefix = String(main.path[...slash])
        } else {
            prefix = ""
        }
        let resolver = Resolver(parsed: parsed, paths: dump.files.map(\.path), prefix: prefix)
        mainFile = main.path
        directives = try resolver.resolve(parsed[main.path] ?? [], depth: 0)
        if let duplicate = Self.duplicate(in: directives) { throw duplicate }
    }

    private struct Resolver {
        /// Every file of the dump, parsed, by path.
        let parsed: [String: [NginxDirective]]
        /// The dump's paths, for globs.
        let paths: [String]
        /// nginx's conf prefix: the main file's directory, with its `/`.
        let prefix: String

        /// `directives` with every `include` replaced by the included files' directives.
        func resolve(_ directives: [NginxDirective], depth: Int) throws(NginxParseError) -> [NginxDirective] {
            var out: [NginxDirective] = []
            for directive in directives {
                if directive.name == "include" && directive.block == nil && directive.args.count == 1 {
                    guard depth < NginxConfiguration.maximumIncludeDepth else {
                        throw NginxParseError("includes nested too deeply (an include loop?)", at: directive.location)
                    }
                    for path in try files(of: directive) {
                        out += try resolve(parsed[path] ?? [], depth: depth + 1)
                    }
                    continue
                }
                var copy = directive
                if let block = directive.block {
                    copy.block = try resolve(block, depth: depth)
                }
                out.append(copy)
            }
            return out
        }

        private func files(of include: NginxDirective) throws(NginxParseError) -> [String] {
            let name = include.args[0].text
            let full = name.hasPrefix("/") ? name : prefix + name
            if NginxGlob.isPattern(full) {
                return NginxGlob(full).matches(in: paths)
            }
            guard parsed[full] != nil else {
                throw NginxParseError("included file \(full) is not in the nginx -T output", at: include.location)
            }
            return [full]
        }
    }
}
