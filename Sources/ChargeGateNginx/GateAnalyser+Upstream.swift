import ChargeGateCore

extension GateAnalyser {
    /// Where the app gets a request: the backend a `proxy_pass` names and the path it sends.
    struct UpstreamRequest: Equatable {
        /// `http://app` (the `proxy_pass` target without its URI part).
        var backend: String
        /// The path the backend gets (without arguments).
        var path: String
        /// What decides the path: the `proxy_pass`, or the `rewrite` whose `$uri` it passes.
        var directive: NginxDirective
    }

    /// A gated probe of a route and where the app gets it.
    struct ChargedTarget {
        /// The charged request.
        var probe: GateProbe
        /// Where the app gets it.
        var upstream: UpstreamRequest
        /// The configuration that served it.
        var conf: Int
    }

    /// At most this many client paths tried per location when looking for another path to a
    /// route's upstream path.
    static let maximumMappedCandidates = 8

    /// The path the app gets from the `proxy_pass` of `conf` for a request in `state`, as
    /// `ngx_http_proxy_create_request` builds it: without a URI part, `$uri` (the client's path
    /// when no rewrite changed it); with one, the URI part in place of the location's name
    /// (`valid_location`), or `$uri` whole after a `rewrite … break`; with variables, the value
    /// as it is. nil for another `*_pass`, or a value the analysis cannot evaluate.
    func upstreamRequest(conf: Int, state: NginxRequestState) -> UpstreamRequest? {
        guard let pass = pass(of: conf), pass.name == "proxy_pass", let written = pass.values.first else { return nil }
        let hasVariables = written.contains("$")
        guard let value = hasVariables ? state.evaluate(written) : written, let (backend, uriPart) = Self.splitPass(value) else {
            return nil
        }
        var path: String
        var directive = pass
        if uriPart.isEmpty || !state.validLocation {
            path = state.uri
            if let rewrite = state.rewrites.last { directive = rewrite }
        } else if hasVariables {
            path = uriPart
        } else {
            var location = conf
            if model[location].kind == .condition, let parent = model[location].parent { location = parent }
            guard let (modifier, name) = model[location].locationSpec, !modifier.isRegex, modifier != .named else { return nil }
            let uri = Array(state.uri.utf8)
            let skip = min(name.utf8.count, uri.count)
            path = uriPart + String(decoding: uri[skip...], as: UTF8.self)
        }
        if let question = path.firstIndex(of: "?") { path = String(path[..<question]) }
        return UpstreamRequest(backend: backend, path: path, directive: directive)
    }

    /// `http://app/api/` as (`http://app`, `/api/`); a unix socket's path is part of the backend
    /// (`http://unix:/run/app.sock:/api/`). nil without `://`.
    static func splitPass(_ value: String) -> (backend: String, uriPart: String)? {
        guard let scheme = value.range(of: "://") else { return nil }
        let rest = value[scheme.upperBound...]
        var end: String.Index
        if rest.hasPrefix("unix:") {
            let path = rest.dropFirst(5)
            end = path.firstIndex(of: ":") ?? path.endIndex
            if end < path.endIndex { return (String(value[..<end]), String(path[path.index(after: end)...])) }
            return (value, "")
        }
        end = rest.firstIndex(of: "/") ?? rest.endIndex
        return (String(value[..<end]), String(value[end...]))
    }

    /// Whether two `proxy_pass` backends are the same servers: the same text, or an address in
    /// common (an `upstream`'s `server`s, else the host with its port, 80 or 443 by default).
    func sameBackend(_ a: String, _ b: String) -> Bool {
        a == b || !backendAddresses(a).isDisjoint(with: backendAddresses(b))
    }

    private func backendAddresses(_ backend: String) -> Set<String> {
        guard !backend.contains("$"), let scheme = backend.range(of: "://") else { return [] }
        let host = String(backend[scheme.upperBound...])
        if host.hasPrefix("unix:") { return [host] }
        let upstream = (0..<model.blocks.count).first { id in
            model[id].kind == .other("upstream") && model[id].opening?.values.first == host
        }
        let port = backend.hasPrefix("https") ? 443 : 80
        let addresses = upstream.map { id in model[id].own("server").compactMap { $0.values.first } } ?? [host]
        return Set(
            addresses.map { address in
                let hasPort = address.contains(":") && !address.hasSuffix("]")
                return address.hasPrefix("unix:") || hasPort ? address : address + ":\(port)"
            })
    }

    /// Remembers where the app gets a gated probe of `route`.
    func noteChargedTarget(_ trace: Trace, _ probe: GateProbe, route: Int) {
        guard case .gated(_, let charged) = trace.verdict, charged == route, let conf = trace.conf, let state = trace.state,
            let upstream = upstreamRequest(conf: conf, state: state)
        else { return }
        seen.chargedTargets[route, default: []].append(ChargedTarget(probe: probe, upstream: upstream, conf: conf))
    }

    /// Each route's line in each gated server, with a probe added when another client path
    /// reaches the app where a charged request of the route does, uncharged (a gated location
    /// whose `proxy_pass` URI or `rewrite … break` maps a path no route names onto the route's
    /// upstream path; an ungated one that does the same).
    func addingMappedProbes(_ lines: [GateRouteResult], servers: [GateServer]) -> [GateRouteResult] {
        var lines = lines
        for server in servers where server.usesGate {
            for (index, route) in routes.enumerated() {
                guard let targets = seen.chargedTargets[index], !targets.isEmpty,
                    let line = lines.firstIndex(where: {
                        $0.server.block == server.block && $0.prefix == route.prefix && $0.methods == route.methods.map { $0.sorted() }
                    }),
                    let result = mappedProbe(targets, in: server.block)
                else { continue }
                lines[line].probes.append(result)
            }
        }
        return lines
    }

    /// The first client path in `server` (tried from each location that proxies to a target's
    /// backend) that the app gets as a target's path while the request is not charged.
    private func mappedProbe(_ targets: [ChargedTarget], in server: Int) -> GateRouteResult.ProbeResult? {
        var tried = Set<GateProbe>()
        var done = Set<String>()
        for target in targets where done.insert(target.upstream.backend + " " + target.upstream.path).inserted {
            for location in model.locations(in: server) {
                guard let pass = pass(of: location), pass.name == "proxy_pass", let backend = backend(of: location),
                    sameBackend(backend, target.upstream.backend)
                else { continue }
                for uri in mappedCandidates(location, pass: pass, path: target.upstream.path) {
                    let probe = GateProbe(method: target.probe.method, uri: uri)
                    guard URIPath.normalize(uri) == uri, tried.count < Self.maximumProbes, tried.insert(probe).inserted else { continue }
                    let trace = trace(probe, in: server)
                    guard case .notGated(let finding) = trace.verdict, let conf = trace.conf, let state = trace.state,
                        let upstream = upstreamRequest(conf: conf, state: state), sameBackend(upstream.backend, target.upstream.backend),
                        upstream.path == target.upstream.path
                    else { continue }
                    return GateRouteResult.ProbeResult(
                        probe: probe, verdict: .notGated(mappedFinding(finding, trace, upstream, target, probe)))
                }
            }
        }
        return nil
    }

    private func mappedFinding(
        _ finding: GateFinding, _ trace: Trace, _ upstream: UpstreamRequest, _ target: ChargedTarget, _ probe: GateProbe
    ) -> GateFinding {
        let (title, location) = describeConf(trace.conf ?? target.conf)
        let (gatedTitle, gatedLocation) = describeConf(target.conf)
        var detail =
            "\(title) (\(location)) passes it to \(upstream.backend) as \(upstream.path) (\(upstream.directive.summary()) "
            + "(\(upstream.directive.location))), as \(gatedTitle) (\(gatedLocation)) passes the charged \(target.probe), but "
        if finding.kind == .unrouted, let asked = trace.asked {
            detail += "the gate is asked about \(probe.method) \(asked), which no route charges" + (trace.state.map(assumed) ?? "")
            return GateFinding(.unrouted, probe: probe, detail: detail, at: upstream.directive.location)
        }
        detail += finding.detail
        return GateFinding(finding.kind, probe: probe, detail: detail, at: finding.location)
    }

    /// Client paths that a location may pass to the backend as `path`: the location's name
    /// followed by what `path` has beyond the `proxy_pass` URI part, beyond the literal start of
    /// each `rewrite` replacement in it, and beyond each `/` of `path`.
    private func mappedCandidates(_ location: Int, pass: NginxDirective, path: String) -> [String] {
        guard let (modifier, name) = model[location].locationSpec else { return [] }
        switch modifier {
        case .exact: return [name]
        case .prefix, .noRegex: break
        case .regex, .regexCaseless, .named: return []
        }
        var out: [String] = []
        func add(_ candidate: String) {
            if out.count < Self.maximumMappedCandidates && !out.contains(candidate) { out.append(candidate) }
        }
        var literalStarts: [String] = []
        if let value = pass.values.first, !value.contains("$"), let (_, uriPart) = Self.splitPass(value), !uriPart.isEmpty {
            literalStarts.append(uriPart)
        }
        for block in [location] + model.descendants(of: location) where block == location || model[block].kind == .condition {
            for directive in model[block].own("rewrite") where directive.values.count >= 2 {
                let replacement = directive.values[1]
                literalStarts.append(String(replacement[..<(replacement.firstIndex(of: "$") ?? replacement.endIndex)]))
            }
        }
        for start in literalStarts where !start.isEmpty && path.hasPrefix(start) {
            add(name + path.dropFirst(start.count))
        }
        var index = path.startIndex
        while let slash = path[index...].firstIndex(of: "/") {
            let tail = path[path.index(after: slash)...]
            if !tail.isEmpty { add(name.hasSuffix("/") ? name + tail : name + "/" + tail) }
            index = path.index(after: slash)
        }
        return out
    }
}
