import ChargeGateCore

extension GateAnalyser {
    /// How an internal request (a subrequest, an error page's redirect) ends, without the
    /// access phase.
    enum InternalEnding {
        /// nginx answers it in the rewrite phase (`return`, a redirecting `rewrite`).
        case answered(Int, NginxDirective)
        /// The content phase of this configuration serves it, in this state.
        case served(conf: Int, state: NginxRequestState)
        /// A 301 from the location search, a rewrite cycle, or what the analysis cannot follow.
        case other
    }

    /// A subrequest for `uri` with `method` from a client request for `mainURI` (its
    /// `$request_uri`).
    func subrequestState(_ uri: String, method: String, mainURI: String) -> NginxRequestState {
        var state = NginxRequestState(uri: mainURI, method: method)
        state.uri = uri
        state.isInternal = true
        state.emptyUntilAccess = emptyUntilAccess
        state.maps = model.maps
        return state
    }

    /// The endings of an internal request for `state.uri` (`ngx_http_subrequest`, an internal
    /// redirect): the server rewrite phase, the location search, the location's rewrite phase
    /// (again after `$uri` changes), and no access phase: nginx runs none for subrequests. The
    /// caller sets the path budget.
    func followInternal(_ state: NginxRequestState, in server: Int) -> [InternalEnding] {
        rewrite(server, state, locationLevel: false).flatMap { outcome -> [InternalEnding] in
            switch outcome.end {
            case .answered(let status, let directive): return [.answered(status, directive)]
            case .undecidable: return [.other]
            case .finished:
                var next = outcome.state
                next.uriChanged = false
                return followLocation(next, in: server)
            }
        }
    }

    private func followLocation(_ state: NginxRequestState, in server: Int) -> [InternalEnding] {
        switch matcher.find(state.uri, in: server) {
        case .undecidable, .autoRedirect: return [.other]
        case .server: return [.served(conf: server, state: state)]
        case .location(let block): return followRewrite(state, block, in: server)
        }
    }

    /// A location's (or a named location's) rewrite phase for an internal request.
    func followRewrite(_ state: NginxRequestState, _ block: Int, in server: Int) -> [InternalEnding] {
        let state = withLocationCaptures(state, block)
        return rewrite(block, state, locationLevel: true).flatMap { outcome -> [InternalEnding] in
            switch outcome.end {
            case .answered(let status, let directive): return [.answered(status, directive)]
            case .undecidable: return [.other]
            case .finished:
                guard outcome.state.uriChanged else { return [.served(conf: outcome.conf, state: outcome.state)] }
                var next = outcome.state
                next.uriChanged = false
                next.uriChangesLeft -= 1
                guard next.uriChangesLeft > 0 else { return [.other] }
                return followLocation(next, in: server)
            }
        }
    }

    /// The `*_pass` that serves a request in `conf` from a backend (not one of the gate's own
    /// endpoints, whose `fastcgi_param` names a role).
    func contentPass(_ conf: Int) -> NginxDirective? {
        guard let pass = pass(of: conf) else { return nil }
        if pass.name == "fastcgi_pass", role(ownParams: model.inheritedList(["fastcgi_param"], from: conf)) != nil { return nil }
        return pass
    }

    /// A client path that the location search gives to `location` (its name, a path below it,
    /// a sample of its regex).
    func clientURI(reaching location: Int, in server: Int) -> String? {
        guard let (modifier, name) = model[location].locationSpec else { return nil }
        let candidates: [String]
        switch modifier {
        case .exact: candidates = [name]
        case .prefix, .noRegex: candidates = [name, name.hasSuffix("/") ? name + "x" : name + "/x"]
        case .regex, .regexCaseless:
            candidates = NginxRegexSampler.samples(name).flatMap { $0.hasPrefix("/") ? [$0] : ["/x" + $0, "/" + $0] }
        case .named: return nil
        }
        return candidates.first { URIPath.normalize($0) == $0 && matcher.find($0, in: server) == .location(location) }
    }

    // MARK: mirror, auth_request, add_before_body / add_after_body

    /// A subrequest that a directive in effect in a location makes for each request there.
    struct SubrequestSource {
        /// `mirror`, `auth_request`, `add_before_body` or `add_after_body`.
        var directive: NginxDirective
        /// The URI, without arguments.
        var target: String
        /// What it does, for findings: `sends a copy of it as`.
        var what: String
        /// Whether the subrequest has the client's method (a mirror's), else GET.
        var clientMethod: Bool
    }

    /// The subrequests a location makes for each request (`mirror`: a copy, with the client's
    /// method; `auth_request` to anything but the gate: GET; `add_before_body` /
    /// `add_after_body`: GET, for 200 answers of `addition_types`).
    func subrequestSources(_ location: Int) -> [SubrequestSource] {
        func path(_ directive: NginxDirective) -> String {
            String((directive.values.first ?? "").split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        }
        var out: [SubrequestSource] = []
        for mirror in model.inheritedList(["mirror"], from: location) where (mirror.values.first ?? "off") != "off" {
            out.append(SubrequestSource(directive: mirror, target: path(mirror), what: "sends a copy of it as", clientMethod: true))
        }
        if let auth = model.inherited("auth_request", from: location), (auth.values.first ?? "off") != "off" {
            out.append(SubrequestSource(directive: auth, target: path(auth), what: "asks, before serving it,", clientMethod: false))
        }
        for name in ["add_before_body", "add_after_body"] {
            guard let addition = model.inherited(name, from: location), !path(addition).isEmpty else { continue }
            out.append(
                SubrequestSource(
                    directive: addition, target: path(addition), what: "adds to its answer (200, of addition_types)", clientMethod: false))
        }
        return out
    }

    /// Each route's line in each gated server, with a probe added when a subrequest (`mirror`,
    /// `auth_request`, `add_before_body`, `add_after_body`) reaches the route (or where the app
    /// gets a charged request of it) from a request that is not charged for the route.
    func addingSubrequestProbes(_ lines: [GateRouteResult], servers: [GateServer]) -> [GateRouteResult] {
        var lines = lines
        for server in servers where server.usesGate {
            for (index, route) in routes.enumerated() {
                guard
                    let line = lines.firstIndex(where: {
                        $0.server.block == server.block && $0.prefix == route.prefix && $0.methods == route.methods.map { $0.sorted() }
                    }),
                    let result = subrequestProbe(index, in: server.block)
                else { continue }
                lines[line].probes.append(result)
            }
        }
        return lines
    }

    /// The first client request in `server` whose subrequest (made by a directive in effect in
    /// its location) reaches the app for route `index` without the gate, and that is not charged
    /// for the route itself.
    private func subrequestProbe(_ index: Int, in server: Int) -> GateRouteResult.ProbeResult? {
        let routeMethods = routes[index].methods.map { $0.sorted() } ?? ["GET"]
        for location in model.locations(in: server) {
            let sources = subrequestSources(location)
            guard !sources.isEmpty, let entry = clientURI(reaching: location, in: server) else { continue }
            for source in sources {
                for method in source.clientMethod ? routeMethods : ["GET"] {
                    seen.budget = Self.pathBudget
                    for ending in followInternal(subrequestState(source.target, method: method, mainURI: entry), in: server) {
                        guard case .served(let conf, let state) = ending, let pass = contentPass(conf) else { continue }
                        let upstream = upstreamRequest(conf: conf, state: state)
                        let mapped = upstream.flatMap { request in
                            seen.chargedTargets[index]?.first {
                                sameBackend($0.upstream.backend, request.backend) && $0.upstream.path == request.path
                            }
                        }
                        let routed = router.match(path: source.target, method: method) == index
                        guard routed || mapped != nil else { continue }
                        let probe = GateProbe(method: source.clientMethod ? method : "GET", uri: entry)
                        switch trace(probe, in: server).verdict {
                        case .gated(_, let route) where route == index: continue
                        case .notServed, .gateEndpoint: continue
                        default: break
                        }
                        let (title, place) = describeConf(location)
                        let (subTitle, subPlace) = describeConf(conf)
                        var detail =
                            "\(source.directive.summary()) (\(source.directive.location)) in effect in \(title) (\(place)) \(source.what) "
                            + "the subrequest \(method) \(source.target), which \(subTitle) (\(subPlace)) passes to "
                        if !routed, let upstream, let mapped {
                            let (gatedTitle, gatedPlace) = describeConf(mapped.conf)
                            detail +=
                                "\(upstream.backend) as \(upstream.path), as \(gatedTitle) (\(gatedPlace)) passes the charged \(mapped.probe)"
                        } else {
                            detail += pass.values.first ?? pass.name
                        }
                        detail += ": nginx runs no access phase for subrequests, so the gate is never asked"
                        return GateRouteResult.ProbeResult(
                            probe: probe,
                            verdict: .notGated(GateFinding(.subrequest, probe: probe, detail: detail, at: source.directive.location)))
                    }
                }
            }
        }
        return nil
    }

    // MARK: SSI

    /// One warning per `ssi on` in effect in a gated server from which a GET subrequest (an
    /// `<!--# include virtual -->`) reaches a charged route's backend: the analysis cannot see
    /// the content, so this is a warning (it fails `--strict`), not a verdict.
    func ssiWarnings(_ servers: [GateServer]) -> [GateWarning] {
        var warnings: [GateWarning] = []
        var done = Set<String>()
        for server in servers where server.usesGate {
            var reached: [String]?
            for conf in [server.block] + model.descendants(of: server.block)
            where conf == server.block || model[conf].locationSpec != nil || model[conf].kind == .condition {
                guard let ssi = model.inherited("ssi", from: conf), ssi.values.first == "on",
                    done.insert("\(server.block) \(ssi.location)").inserted
                else { continue }
                let routes = reached ?? ssiReachable(server.block)
                reached = routes
                guard !routes.isEmpty else { continue }
                let owner =
                    model.chain(from: conf).first { id in
                        model[id].directives.contains { $0.name == "ssi" && $0.location == ssi.location }
                    } ?? conf
                let place = model[owner].kind == .server ? "server \(server.label)" : "\(describeConf(owner).0) (\(describeConf(owner).1))"
                warnings.append(
                    GateWarning(
                        .ssiSubrequest,
                        "ssi on (\(ssi.location)) in \(place): an <!--# include virtual=... --> in what nginx serves there is a GET "
                            + "subrequest, and nginx runs no access phase for subrequests: " + routes.joined(separator: "; ")
                            + " (check-nginx cannot see the content: keep charged paths out of it, or turn SSI off there)",
                        at: ssi.location))
            }
        }
        return warnings
    }

    /// `GET /api/describe reaches location /api/ (FILE:LINE), which passes it to http://app
    /// uncharged` for each route that charges GET and that a GET subrequest reaches a backend of.
    private func ssiReachable(_ server: Int) -> [String] {
        var out: [String] = []
        for (index, route) in routes.enumerated() where router.match(path: route.prefix, method: "GET") == index {
            seen.budget = Self.pathBudget
            for ending in followInternal(subrequestState(route.prefix, method: "GET", mainURI: "/"), in: server) {
                guard case .served(let conf, _) = ending, let pass = contentPass(conf) else { continue }
                let (title, place) = describeConf(conf)
                out.append(
                    "GET \(route.prefix) reaches \(title) (\(place)), which passes it to \(pass.values.first ?? pass.name) uncharged")
                break
            }
        }
        return out
    }
}
