import ChargeGateCore

/// The probes beyond a route's paths and the locations' names: the paths that conditions and
/// maps on `$uri` name, `//` where nginx does not merge slashes, a newline where PCRE's `.`
/// decides, the other case where a case-insensitive location gates, a method no condition
/// names; and the line's verdict when a route has more probes than the analysis tries, or a
/// regex on the path gives the sampler nothing to try.
extension GateAnalyser {
    /// The variables whose value is the request's path (a condition or a map on them names
    /// paths).
    static let pathVariables: Set<String> = ["$uri", "$document_uri", "$request_uri"]

    /// Methods a condition may leave out: the first that no condition names is probed.
    static let otherMethods = ["PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"]

    /// The subject, the operator and the operand of an `if`, without its parentheses (which
    /// nginx lets be glued to the first and last word).
    static func conditionWords(_ values: [String]) -> [String] {
        var words = values
        guard !words.isEmpty else { return [] }
        if words[0] == "(" { words.removeFirst() } else if words[0].hasPrefix("(") { words[0].removeFirst() }
        guard !words.isEmpty else { return [] }
        if words[words.count - 1] == ")" {
            words.removeLast()
        } else if words[words.count - 1].hasSuffix(")") {
            words[words.count - 1].removeLast()
        }
        return words
    }

    /// The entries of the `map` blocks over a path variable (a key, or a `~`/`~*` regex, and
    /// its value).
    private func pathMapEntries() -> [NginxDirective] {
        var out: [NginxDirective] = []
        for id in 0..<model.blocks.count {
            guard case .other("map") = model[id].kind, let values = model[id].opening?.values, values.count == 2,
                Self.pathVariables.contains(values[0])
            else { continue }
            out += model[id].directives.filter { !["default", "hostnames", "volatile", "include"].contains($0.name) }
        }
        return out
    }

    /// The regexes of the `map` keys over a path variable (`~re` and `~*re`).
    func pathMapRegexes() -> [(String, Bool)] {
        pathMapEntries().compactMap { entry in
            guard entry.name.hasPrefix("~") else { return nil }
            let caseless = entry.name.hasPrefix("~*")
            return (String(entry.name.dropFirst(caseless ? 2 : 1)), caseless)
        }
    }

    /// The paths that `if ($uri = …)` (or `!=`, or `$document_uri`, `$request_uri`) conditions in
    /// `server` and the string keys of `map`s over those variables name: the key as written and
    /// in lower case (nginx compares map keys ignoring case).
    func pathLiterals(in server: Int) -> [String] {
        var out: [String] = []
        for id in [server] + model.descendants(of: server) {
            for directive in model[id].directives where directive.name == "if" {
                let words = Self.conditionWords(directive.values)
                guard words.count == 3, Self.pathVariables.contains(words[0]), words[1] == "=" || words[1] == "!=",
                    !words[2].contains("$")
                else { continue }
                out.append(String(words[2].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]))
            }
        }
        for entry in pathMapEntries() where !entry.name.hasPrefix("~") {
            let key = entry.name.hasPrefix("\\") ? String(entry.name.dropFirst()) : entry.name
            let path = String(key.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
            out.append(path)
            out.append(Self.asciiLowercased(path))
        }
        return out
    }

    /// The methods that conditions on `$request_method` and maps over it name (their operand's
    /// words, in upper case).
    func namedMethods(in server: Int) -> Set<String> {
        var named = Set<String>()
        func words(_ text: String) {
            var word = ""
            for scalar in text.unicodeScalars {
                if scalar.properties.isAlphabetic && scalar.isASCII {
                    word.unicodeScalars.append(scalar)
                } else {
                    if word.count >= 3 { named.insert(word.uppercased()) }
                    word = ""
                }
            }
            if word.count >= 3 { named.insert(word.uppercased()) }
        }
        for id in [server] + model.descendants(of: server) {
            for directive in model[id].directives where directive.name == "if" {
                let condition = Self.conditionWords(directive.values)
                guard condition.count == 3, condition[0] == "$request_method" else { continue }
                words(condition[2])
            }
        }
        for id in 0..<model.blocks.count {
            guard case .other("map") = model[id].kind, model[id].opening?.values.first == "$request_method" else { continue }
            for entry in model[id].directives where !["default", "hostnames", "volatile", "include"].contains(entry.name) {
                words(entry.name)
            }
        }
        return named
    }

    // MARK: merge_slashes

    /// Whether nginx merges `//` in the paths of requests to `server`: `merge_slashes` as in
    /// effect in the server whose configuration nginx parses the request line with, before it
    /// picks a server by name (`ngx_http_process_request_uri`): the default server of the
    /// address; on an `ssl` address, the server the client names in SNI, which may be any server
    /// there (the Host header then picks the one that serves it).
    func mergesSlashes(_ server: Int) -> Bool {
        for address in listens(of: server).map(\.address) {
            let parsers = listensSSL(address) ? servers(listeningOn: address) : [defaultServer(for: address) ?? server]
            for parser in parsers where model.inherited("merge_slashes", from: parser)?.values.first == "off" { return false }
        }
        return true
    }

    /// A server's listen addresses, as nginx compares them (`8080` is `*:8080`, no `listen` is
    /// `*:80`), each with whether it says `default_server` and whether it says `ssl`.
    private func listens(of server: Int) -> [(address: String, isDefault: Bool, ssl: Bool)] {
        let own = model[server].own("listen").compactMap { directive -> (String, Bool, Bool)? in
            guard let first = directive.values.first else { return nil }
            var address = first
            if address.allSatisfy(\.isNumber) {
                address = "*:" + address
            } else if address.hasPrefix("0.0.0.0:") {
                address = "*:" + address.dropFirst(8)
            } else if !address.hasPrefix("unix:") && !address.contains("]") && !address.contains(":") {
                address += ":80"
            }
            let flags = directive.values.dropFirst()
            return (address, flags.contains("default_server") || flags.contains("default"), flags.contains("ssl"))
        }
        return own.isEmpty ? [("*:80", false, false)] : own
    }

    /// The servers that listen on `address`, in config order.
    private func servers(listeningOn address: String) -> [Int] {
        model.servers.filter { listens(of: $0).contains { $0.address == address } }
    }

    /// Whether any server's `listen` of `address` says `ssl` (nginx's is one socket per address).
    private func listensSSL(_ address: String) -> Bool {
        model.servers.contains { listens(of: $0).contains { $0.address == address && $0.ssl } }
    }

    /// The server nginx parses requests to `address` with: the first that says
    /// `default_server` there, else the first that listens there.
    private func defaultServer(for address: String) -> Int? {
        let candidates = servers(listeningOn: address)
        return candidates.first { listens(of: $0).contains { $0.address == address && $0.isDefault } } ?? candidates.first
    }

    /// `uri` with one of its slashes doubled, each in turn from the last: what a client sends
    /// to reach past a location name where nginx keeps `//`.
    static func unmerged(_ uri: String) -> [String] {
        let bytes = Array(uri.utf8)
        var out: [String] = []
        for index in bytes.indices.reversed() where bytes[index] == UInt8(ascii: "/") {
            out.append(String(decoding: bytes[..<index] + [UInt8(ascii: "/")] + bytes[index...], as: UTF8.self))
        }
        return out
    }

    // MARK: case

    /// `text` with its ASCII letters in lower case.
    static func asciiLowercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// `text` with its ASCII letters in upper case.
    static func asciiUppercased(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self)
    }

    /// The case-insensitive (`~*`) locations of a server.
    private func caselessLocations(in server: Int) -> [(id: Int, regex: NginxRegex)] {
        model.locations(in: server).compactMap { id in
            guard let (modifier, pattern) = model[id].locationSpec, modifier == .regexCaseless,
                case .success(let regex) = regexes.regex(pattern, caseless: true)
            else { return nil }
            return (id, regex)
        }
    }

    /// The other case of each probe that a `~*` location matches (`/API/GENERATE` for
    /// `/api/generate`): the responder's routes are case-sensitive, such a location is not.
    func caseVariants(of probes: [GateProbe], in server: Int) -> [GateProbe] {
        let locations = caselessLocations(in: server)
        guard !locations.isEmpty else { return [] }
        var out: [GateProbe] = []
        var seen = Set(probes.map(\.self))
        for probe in probes where probe.caseOf == nil && locations.contains(where: { $0.regex.match(probe.uri) != nil }) {
            let upper = Self.asciiUppercased(probe.uri)
            var variant = GateProbe(method: probe.method, uri: upper == probe.uri ? Self.asciiLowercased(probe.uri) : upper)
            variant.caseOf = probe.uri
            guard variant.uri != probe.uri, seen.insert(variant).inserted else { continue }
            out.append(variant)
        }
        return out
    }

    /// How a probe's trace counts in its line: as it is, except a case variant, which counts
    /// only when a case-insensitive location takes it to the gate, the gate passes it as a path
    /// no route charges, and it goes to the backend that serves the path it is a variant of,
    /// charged (`traced`: the traces so far); then it is the finding. Nil when it does not count.
    func counted(_ trace: Trace, for probe: GateProbe, traced: [GateProbe: Trace]) -> Trace? {
        guard let original = probe.caseOf else { return trace }
        guard case .notGated(let finding) = trace.verdict, finding.kind == .unrouted, let conf = trace.conf,
            let charged = traced[GateProbe(method: probe.method, uri: original)], case .gated = charged.verdict,
            let chargedConf = charged.conf, let backend = backend(of: conf), backend == self.backend(of: chargedConf)
        else { return nil }
        var id = conf
        if model[id].kind == .condition, let parent = model[id].parent { id = parent }
        guard let (modifier, _) = model[id].locationSpec, modifier == .regexCaseless else { return nil }
        let (title, location) = describeConf(id)
        let note =
            " (routes are case-sensitive; \(title) (\(location)) passes every case of \(GateProbe.target(original)) to \(backend))"
        var detail = finding.detail
        if let end = detail.range(of: "which no route charges")?.upperBound {
            detail.insert(contentsOf: note, at: end)
        } else {
            detail += note
        }
        return Trace(verdict: .notGated(GateFinding(.unrouted, probe: probe, detail: detail, at: location)), conf: conf)
    }

    // MARK: regexes without samples

    /// UNDECIDED for route `index` in `server` when a regex that decides on the path (a
    /// location's, a `rewrite`'s, an `if` or a `map` on a path variable) gives the sampler
    /// nothing to try (a backreference, `\p{…}`), unless the literal start of an anchored one
    /// rules out every path under the route: the paths it matches are not probed.
    func unsampledRegexes(for index: Int, in server: Int) -> [GateRouteResult.ProbeResult] {
        let prefix = routes[index].prefix
        for (pattern, caseless, what, at) in pathRegexes(in: server)
        where NginxRegexSampler.samples(pattern).isEmpty && Self.mayMatch(pattern, caseless: caseless, under: prefix) {
            let probe = GateProbe(method: routes[index].methods?.sorted().first ?? "GET", uri: prefix)
            let detail = "cannot guess the paths that \(what) (\(at)) matches (a backreference, \\p{…}): they are not probed"
            return [
                GateRouteResult.ProbeResult(
                    probe: probe, verdict: .undecided(GateFinding(.undecidable, probe: probe, detail: detail, at: at)))
            ]
        }
        return []
    }

    /// The regexes of a server that decide on the path, each with how findings name it.
    private func pathRegexes(in server: Int) -> [(String, Bool, String, NginxSourceLocation)] {
        var out: [(String, Bool, String, NginxSourceLocation)] = []
        for id in [server] + model.descendants(of: server) {
            if let (modifier, name) = model[id].locationSpec, modifier.isRegex, let at = model[id].location {
                out.append((name, modifier == .regexCaseless, "the regex of \(model[id].title)", at))
            }
            for directive in model[id].directives {
                if directive.name == "rewrite", let first = directive.values.first {
                    out.append((first, false, directive.summary(), directive.location))
                } else if directive.name == "if" {
                    let words = Self.conditionWords(directive.values)
                    if words.count == 3, Self.pathVariables.contains(words[0]), words[1].contains("~") {
                        out.append((words[2], words[1].hasSuffix("*"), directive.summary(), directive.location))
                    }
                }
            }
        }
        for entry in pathMapEntries() where entry.name.hasPrefix("~") {
            let caseless = entry.name.hasPrefix("~*")
            out.append((String(entry.name.dropFirst(caseless ? 2 : 1)), caseless, "the map key \(entry.name)", entry.location))
        }
        return out
    }

    /// Whether `pattern` may match a path under `prefix`: not when it is anchored (`^`) and its
    /// literal start leads away from the route.
    static func mayMatch(_ pattern: String, caseless: Bool, under prefix: String) -> Bool {
        let scalars = Array(pattern.unicodeScalars)
        guard scalars.first == "^" else { return true }
        var literal = ""
        var index = 1
        while index < scalars.count {
            let c = scalars[index]
            if c == "\\", index + 1 < scalars.count, !NginxPCRE.ByteSet.alnum.members[Int(min(scalars[index + 1].value, 0xFF))] {
                literal.unicodeScalars.append(scalars[index + 1])
                index += 2
                continue
            }
            if "\\.^$|?*+()[]{}".unicodeScalars.contains(c) {
                // A quantifier applies to the literal's last character.
                if "?*{".unicodeScalars.contains(c), !literal.isEmpty { literal.removeLast() }
                break
            }
            literal.unicodeScalars.append(c)
            index += 1
        }
        let start = caseless ? asciiLowercased(literal) : literal
        let route = caseless ? asciiLowercased(prefix) : prefix
        return start == route || start.hasPrefix(route.hasSuffix("/") ? route : route + "/") || (route + "/").hasPrefix(start)
    }

    // MARK: the cap

    /// The line's result when a route has more probes than `maximumProbes`: UNDECIDED, naming
    /// the first probe not tried, never gated.
    func capReached(_ next: GateProbe, in server: GateServer) -> GateRouteResult.ProbeResult {
        let detail =
            "not tried: more than \(Self.maximumProbes) requests to try for this route in this server (the analysis's cap, "
            + "GateAnalyser.maximumProbes); the ones not tried are not known to be gated"
        return GateRouteResult.ProbeResult(
            probe: next, verdict: .undecided(GateFinding(.undecidable, probe: next, detail: detail, at: server.location)))
    }
}
