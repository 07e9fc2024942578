import ChargeGateCore

extension GateAnalyser {
    /// The requests tried for route `index` in `server`: its prefix, the prefix with `/`, a
    /// path below it, the prefix with a query string and with an escape; the name of each exact or prefix location under it (and a path below
    /// each prefix one); paths under it that the server's regexes (locations, `rewrite`,
    /// `if (… ~ …)`, `map` keys) match, and the same with a newline where the regex has a `.`;
    /// the paths that `if ($uri = …)` and `map $uri` keys name; the route's and the locations'
    /// paths with a `//` where nginx does not merge slashes; each with the route's methods, or
    /// GET, POST, the methods the server's conditions name and one they do not when the route
    /// has none. Only requests the router gives to this route are kept; then the other case of
    /// those that a `~*` location matches. At most `maximumProbes` + 1: the analysis tries
    /// `maximumProbes` and says UNDECIDED when there are more.
    func probes(for index: Int, in server: Int) -> [GateProbe] {
        let prefix = routes[index].prefix
        var uris: [String] = []
        var seen = Set<String>()
        func add(_ uri: String) {
            guard URIPath.normalize(uri) == uri, isUnder(uri, prefix), seen.insert(uri).inserted else { return }
            uris.append(uri)
        }
        if prefix == "/" {
            add("/")
            add("/x")
        } else {
            add(prefix)
            add(prefix + "/")
            add(prefix + "/x")
        }
        // As sent, not as nginx routes them: a query string, an escape (see rawVariants).
        var rawTargets = Set<String>()
        for variant in Self.rawVariants(of: prefix) where seen.insert(variant).inserted {
            uris.append(variant)
            rawTargets.insert(variant)
        }
        for id in model.locations(in: server) {
            guard let (modifier, name) = model[id].locationSpec else { continue }
            switch modifier {
            case .exact:
                add(name)
            case .prefix, .noRegex:
                add(name)
                add(name.hasSuffix("/") ? name + "x" : name + "/x")
            case .regex, .regexCaseless, .named:
                break
            }
        }
        let named = uris
        // `.` sampled as a mark: as "x" the regex must match; with a newline there (which PCRE's
        // `.` does not match), the path may go elsewhere.
        let dot = "\u{E000}"
        let words = prefix.split(separator: "/").map(String.init).filter { $0.count >= 2 }
        for (pattern, caseless) in regexSources(in: server) + pathMapRegexes() {
            guard case .success(let regex) = regexes.regex(pattern, caseless: caseless) else { continue }
            for marked in NginxRegexSampler.samples(pattern, dot: dot, prefer: words) {
                let sample = marked.replacing(dot, with: "x")
                let heads = sample.hasPrefix("/") ? ["", prefix] : [prefix + "/x", prefix + "/", prefix]
                for head in heads {
                    for fold in caseless ? [false, true] : [false] {
                        let folded = { (text: String) in fold ? Self.asciiLowercased(text) : text }
                        guard regex.match(folded(head + sample)) != nil else { continue }
                        add(folded(head + sample))
                        guard marked.contains(dot) else { continue }
                        for newline in ["x\ny", "\n"] { add(folded(head + marked.replacing(dot, with: newline))) }
                    }
                }
            }
        }
        for path in pathLiterals(in: server) { add(path) }
        if !mergesSlashes(server) {
            for uri in named {
                for variant in Self.unmerged(uri) where isUnder(URIPath.normalize(variant), prefix) && seen.insert(variant).inserted {
                    uris.append(variant)
                }
            }
        }
        let methods = probeMethods(routes[index], in: server)
        var probes: [GateProbe] = []
        for uri in uris {
            // A raw variant is a request target as sent (its path is nginx's decoding of it);
            // every other is already the path.
            let raw = rawTargets.contains(uri)
            let path = raw ? URIPath.fromRequestURI(uri) : uri
            for method in methods where router.match(path: path, method: method == "HEAD" ? "GET" : method) == index {
                probes.append(GateProbe(method: method, uri: path, rawTarget: raw ? uri : nil))
            }
        }
        probes += caseVariants(of: probes, in: server)
        return Array(probes.prefix(Self.maximumProbes + 1))
    }

    /// Whether the router would give `uri` to a route with `prefix` (segment-wise).
    private func isUnder(_ uri: String, _ prefix: String) -> Bool {
        prefix == "/" || uri == prefix || uri.hasPrefix(prefix.hasSuffix("/") ? prefix : prefix + "/")
    }

    /// The regexes of a server: its regex locations, its `rewrite`s, its `if (… ~ re)`s.
    private func regexSources(in server: Int) -> [(String, Bool)] {
        var out: [(String, Bool)] = []
        for id in [server] + model.descendants(of: server) {
            if let (modifier, name) = model[id].locationSpec, modifier.isRegex {
                out.append((name, modifier == .regexCaseless))
            }
            for directive in model[id].directives {
                let values = directive.values
                if directive.name == "rewrite", let first = values.first {
                    out.append((first, false))
                } else if directive.name == "if" {
                    let words = Self.conditionWords(values)
                    if words.count == 3, words[1].contains("~") {
                        out.append((words[2], words[1].hasSuffix("*")))
                    }
                }
            }
        }
        return out
    }

    /// The route's methods, or GET, POST, those the server's `$request_method` conditions (and
    /// maps) name, negated or not, and one they do not name; HEAD too when the route charges GET
    /// and a condition names HEAD.
    private func probeMethods(_ route: RouteConfig, in server: Int) -> [String] {
        let named = namedMethods(in: server)
        if let methods = route.methods {
            var out = methods
            if methods.contains("GET") && named.contains("HEAD") { out.insert("HEAD") }
            return out.sorted()
        }
        var out = named.union(["GET", "POST"])
        if !named.isEmpty, let other = Self.otherMethods.first(where: { !out.contains($0) }) { out.insert(other) }
        return Array(out).sorted()
    }
}
