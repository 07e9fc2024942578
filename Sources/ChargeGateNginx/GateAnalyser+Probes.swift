import ChargeGateCore

extension GateAnalyser {
    /// The requests tried for route `index` in `server`: its prefix, the prefix with `/`, a
    /// path below it, the prefix with a query string and with an escape; the name of each exact or prefix location under it (and a path below
    /// each prefix one); paths under it that the server's regexes (locations, `rewrite`,
    /// `if (… ~ …)`) match; each with the route's methods, or GET, POST and the methods the
    /// server's conditions name when the route has none. Only requests the router gives to this
    /// route are kept.
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
        for variant in Self.rawVariants(of: prefix) where seen.insert(variant).inserted { uris.append(variant) }
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
        for (pattern, caseless) in regexSources(in: server) {
            guard case .success(let regex) = regexes.regex(pattern, caseless: caseless) else { continue }
            for sample in NginxRegexSampler.samples(pattern) {
                let candidates =
                    sample.hasPrefix("/")
                    ? [sample, prefix + sample]
                    : [prefix + "/x" + sample, prefix + "/" + sample, prefix + sample]
                for candidate in candidates where regex.match(candidate) != nil { add(candidate) }
            }
        }
        let methods = probeMethods(routes[index], in: server)
        var probes: [GateProbe] = []
        for uri in uris {
            let path = URIPath.fromRequestURI(uri)
            for method in methods where router.match(path: path, method: method == "HEAD" ? "GET" : method) == index {
                probes.append(GateProbe(method: method, uri: uri))
                if probes.count == Self.maximumProbes { return probes }
            }
        }
        return probes
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
                } else if directive.name == "if", values.count >= 3 {
                    let operation = values[values.count - 2]
                    if operation.contains("~"), let last = values.last {
                        out.append((last.hasSuffix(")") ? String(last.dropLast()) : last, operation.hasSuffix("*")))
                    }
                }
            }
        }
        return out
    }

    /// The route's methods, or GET, POST and those the server's `$request_method` conditions
    /// name; HEAD too when the route charges GET and a condition names HEAD.
    private func probeMethods(_ route: RouteConfig, in server: Int) -> [String] {
        var named = Set<String>()
        for id in [server] + model.descendants(of: server) {
            for directive in model[id].directives where directive.name == "if" {
                let values = directive.values
                guard values.contains(where: { $0.contains("$request_method") }) else { continue }
                for value in values.dropFirst() {
                    var word = ""
                    for scalar in value.unicodeScalars {
                        if scalar.value >= 65 && scalar.value <= 90 {
                            word.unicodeScalars.append(scalar)
                        } else {
                            if word.count >= 3 { named.insert(word) }
                            word = ""
                        }
                    }
                    if word.count >= 3 { named.insert(word) }
                }
            }
        }
        if let methods = route.methods {
            var out = methods
            if methods.contains("GET") && named.contains("HEAD") { out.insert("HEAD") }
            return out.sorted()
        }
        return Array(named.union(["GET", "POST"])).sorted()
    }
}
