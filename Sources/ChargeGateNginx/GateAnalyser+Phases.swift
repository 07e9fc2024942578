import ChargeGateCore

extension GateAnalyser {
    /// A probe's verdict and the configuration that served it.
    struct Trace {
        /// The verdict.
        var verdict: GateVerdict
        /// The block whose configuration served it (a location, an `if`, the server).
        var conf: Int?
        /// The request as the content phase gets it, when it is served (for where the app gets it).
        var state: NginxRequestState? = nil
        /// The path the gate is asked about, when no route charges it.
        var asked: String? = nil
    }

    /// What nginx does with `probe` in `server`: the worst of the paths the conditions allow.
    func trace(_ probe: GateProbe, in server: Int) -> Trace {
        seen.budget = Self.pathBudget
        var state = NginxRequestState(path: probe.uri, target: probe.target, method: probe.method)
        state.emptyUntilAccess = emptyUntilAccess
        state.maps = model.maps
        let traces = serverRewrite(state, server, probe)
        return traces.first { $0.verdict.isFailure && $0.verdict.finding?.kind != .undecidable }
            ?? traces.first { $0.verdict.isFailure }
            ?? traces.first { if case .gated = $0.verdict { return true } else { return false } }
            ?? traces.first { if case .gateEndpoint = $0.verdict { return true } else { return false } }
            ?? traces.first
            ?? Trace(verdict: .notServed("no path"), conf: nil)
    }

    /// The rewrite directives of a block, within the probe's budget of paths (conditions that
    /// cannot be evaluated fork, and forks in several blocks multiply).
    func rewrite(_ block: Int, _ state: NginxRequestState, locationLevel: Bool) -> [NginxRewriteOutcome] {
        seen.budget -= 1
        guard seen.budget >= 0 else {
            let opening =
                model[block].opening
                ?? NginxDirective(name: "server", args: [], location: NginxSourceLocation(file: model.mainFile, line: 0))
            return [NginxRewriteOutcome(end: .undecidable("too many paths to follow", opening), state: state, conf: block)]
        }
        let outcomes = rewriter.run(block: block, state: state, locationLevel: locationLevel)
        seen.budget -= outcomes.count
        return outcomes
    }

    // MARK: the main request

    /// The server rewrite phase (also where internal redirects start).
    func serverRewrite(_ state: NginxRequestState, _ server: Int, _ probe: GateProbe) -> [Trace] {
        rewrite(server, state, locationLevel: false).flatMap { outcome -> [Trace] in
            switch outcome.end {
            case .answered(let status, let directive):
                return answered(status, by: directive, outcome.state, conf: server, server, probe)
            case .undecidable(let why, let directive):
                return [undecided(why, at: directive, outcome.state, probe)]
            case .finished:
                var next = outcome.state
                next.uriChanged = false
                return findLocation(next, server, probe)
            }
        }
    }

    /// The find-config phase.
    private func findLocation(_ state: NginxRequestState, _ server: Int, _ probe: GateProbe) -> [Trace] {
        switch matcher.find(state.uri, in: server) {
        case .undecidable(let block, let why):
            let (title, location) = describeConf(block)
            let finding = GateFinding(
                .undecidable, probe: probe, detail: "cannot evaluate the regex of \(title) (\(location)): \(why)", at: location)
            return [Trace(verdict: .undecided(finding), conf: nil)]
        case .autoRedirect(let block):
            let (title, location) = describeConf(block)
            return [Trace(verdict: .notServed("nginx answers 301 to \(state.uri)/ (\(title) (\(location)) proxies)"), conf: block)]
        case .server:
            return precontent(access(state, conf: server, server, probe), state, conf: server, server, probe)
        case .location(let block):
            return locationPhase(state, block, server, probe)
        }
    }

    /// `state` in location `block`: a regex location's captures are `$1`… (and its named ones
    /// variables) from here on; any other location changes nothing.
    func withLocationCaptures(_ state: NginxRequestState, _ block: Int) -> NginxRequestState {
        guard let (modifier, pattern) = model[block].locationSpec, modifier.isRegex,
            case .success(let regex) = regexes.regex(pattern, caseless: modifier == .regexCaseless),
            let captures = regex.match(state.uri)
        else { return state }
        var state = state
        state.captures = captures.numbered
        for (name, value) in captures.named { state.variables[name] = .some(value) }
        return state
    }

    /// A location's rewrite phase, then (again from the search when `$uri` changed) access.
    func locationPhase(_ state: NginxRequestState, _ block: Int, _ server: Int, _ probe: GateProbe) -> [Trace] {
        if model[block].first("internal") != nil && !state.isInternal {
            let (title, location) = describeConf(block)
            return [Trace(verdict: .notServed("404: \(title) (\(location)) is internal"), conf: block)]
        }
        let state = withLocationCaptures(state, block)
        // For a method limit_except does not name, its configuration (which has no rewrite
        // directives) is the one in effect from here on.
        return rewrite(model.limitExcept(of: block, method: state.method) ?? block, state, locationLevel: true).flatMap {
            outcome -> [Trace] in
            switch outcome.end {
            case .answered(let status, let directive):
                return answered(status, by: directive, outcome.state, conf: outcome.conf, server, probe)
            case .undecidable(let why, let directive):
                return [undecided(why, at: directive, outcome.state, probe)]
            case .finished:
                guard outcome.state.uriChanged else {
                    let traces = access(outcome.state, conf: outcome.conf, server, probe)
                    return precontent(traces, outcome.state, conf: outcome.conf, server, probe)
                }
                var next = outcome.state
                next.uriChanged = false
                next.uriChangesLeft -= 1
                guard next.uriChangesLeft > 0 else {
                    return [Trace(verdict: .notServed("500: rewrite or internal redirection cycle"), conf: nil)]
                }
                return findLocation(next, server, probe)
            }
        }
    }

    /// A `return` or redirecting `rewrite`: served uncharged below 300, a redirect below 400,
    /// else a refusal, unless an `error_page` sends it on internally.
    func answered(
        _ status: Int, by directive: NginxDirective, _ state: NginxRequestState, conf: Int, _ server: Int, _ probe: GateProbe
    ) -> [Trace] {
        let what = "\(directive.summary()) (\(directive.location))"
        if status < 300 {
            let detail = "answered \(status) by \(what) before the gate" + assumed(state)
            return [
                Trace(
                    verdict: .notGated(GateFinding(.answeredBeforeGate, probe: probe, detail: detail, at: directive.location)), conf: conf)
            ]
        }
        if status < 400 { return [Trace(verdict: .notServed("redirected (\(status)) by \(what)"), conf: conf)] }
        if status != 444 {
            switch errorPage(for: status, conf: conf, state) {
            case .none: break
            case .unknown(let directive, let variable):
                return [undecided("the error_page target depends on $\(variable)", at: directive, state, probe)]
            case .target(let target, _):
                if let traces = followErrorPage(target, state, server, probe) { return traces }
            }
        }
        return [Trace(verdict: .notServed("refused (\(status)) by \(what)"), conf: conf)]
    }

    func undecided(_ why: String, at directive: NginxDirective, _ state: NginxRequestState, _ probe: GateProbe) -> Trace {
        let detail = "cannot follow \(directive.summary()) (\(directive.location)): \(why)" + assumed(state)
        return Trace(verdict: .undecided(GateFinding(.undecidable, probe: probe, detail: detail, at: directive.location)), conf: nil)
    }

    /// `, reached after rewrite … (FILE:LINE),` when a rewrite changed `$uri`.
    func reachedAfter(_ state: NginxRequestState, comma: Bool = true) -> String {
        guard let rewrite = state.rewrites.last else { return "" }
        return ", reached after \(rewrite.summary()) (\(rewrite.location))" + (comma ? "," : "")
    }

    /// `, when if (…) (FILE:LINE) holds` for each condition this path assumed.
    func assumed(_ state: NginxRequestState) -> String {
        state.assumptions.isEmpty ? "" : ", " + state.assumptions.map(\.description).joined(separator: ", ")
    }

    // MARK: the access phase

    /// `ngx_http_core_access_phase` over the access, auth_basic and auth_request handlers (in
    /// that order, as nginx registers them), then the auth subrequest.
    private func access(_ state: NginxRequestState, conf: Int, _ server: Int, _ probe: GateProbe) -> [Trace] {
        let (title, location) = describeConf(conf)
        if pass(of: conf)?.name == "fastcgi_pass", let role = role(ownParams: model.inheritedList(["fastcgi_param"], from: conf)),
            role != WireProtocol.Role.auth.rawValue
        {
            return [Trace(verdict: .gateEndpoint(role), conf: conf)]
        }
        let satisfyAny = model.inherited("satisfy", from: conf)
        let rules = model.inheritedList(["allow", "deny"], from: conf)
        if satisfyAny?.values.first != "any", let first = rules.first, first.name == "deny", first.values == ["all"] {
            return [Trace(verdict: .notServed("refused (403) by deny all (\(first.location))"), conf: conf)]
        }
        guard let auth = model.inherited("auth_request", from: conf) else {
            let detail = "\(title) (\(location))\(reachedAfter(state)) has no auth_request" + assumed(state)
            return [
                Trace(verdict: .notGated(GateFinding(.noAuthRequest, probe: probe, detail: detail, at: location)), conf: conf, state: state)
            ]
        }
        if auth.values.first == "off" {
            let detail =
                "auth_request off (\(auth.location)) is in effect in \(title) (\(location))\(reachedAfter(state, comma: false))"
                + assumed(state)
            return [Trace(verdict: .notGated(GateFinding(.authRequestOff, probe: probe, detail: detail, at: auth.location)), conf: conf)]
        }
        if let satisfy = satisfyAny, satisfy.values.first == "any" {
            let basic = model.inherited("auth_basic", from: conf).flatMap { $0.values.first == "off" ? nil : $0 }
            if let allow = rules.first(where: { $0.name == "allow" }) ?? basic {
                let detail =
                    "satisfy any (\(satisfy.location)) in \(title) (\(location)) lets clients admitted by \(allow.summary()) "
                    + "(\(allow.location))\(limitExcept(conf, owns: allow)) skip auth_request" + assumed(state)
                return [Trace(verdict: .notGated(GateFinding(.satisfyAny, probe: probe, detail: detail, at: satisfy.location)), conf: conf)]
            }
        }
        let traces = authSubrequest(auth, state, conf: conf, server, probe)
        guard traces.contains(where: { if case .gated = $0.verdict { true } else { false } }) else { return traces }
        return traces + denials(state, conf: conf, server, probe)
    }

    /// The auth subrequest (`ngx_http_subrequest`: an internal request for the `auth_request`
    /// URI, from the server rewrite phase, sharing the variables).
    private func authSubrequest(_ auth: NginxDirective, _ state: NginxRequestState, conf: Int, _ server: Int, _ probe: GateProbe)
        -> [Trace]
    {
        var sub = state
        sub.uri = String((auth.values.first ?? "/").split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        sub.isInternal = true
        sub.uriChanged = false
        return rewrite(server, sub, locationLevel: false).flatMap { outcome -> [Trace] in
            switch outcome.end {
            case .answered(let status, let directive):
                return [authAnswered(status, by: directive, auth, outcome.state, conf: conf, probe)]
            case .undecidable(let why, let directive):
                return [undecided(why, at: directive, outcome.state, probe)]
            case .finished:
                var next = outcome.state
                next.uriChanged = false
                return authLocation(next, auth, main: state, conf: conf, server, probe)
            }
        }
    }

    private func authLocation(
        _ sub: NginxRequestState, _ auth: NginxDirective, main: NginxRequestState, conf: Int, _ server: Int, _ probe: GateProbe
    ) -> [Trace] {
        let notGate = { (reached: String) -> Trace in
            let detail =
                "auth_request \(auth.values.first ?? "") (\(auth.location)) reaches \(reached)\(reachedAfter(sub, comma: false)), "
                + "not the gate's auth location"
            return Trace(verdict: .notGated(GateFinding(.authNotGate, probe: probe, detail: detail, at: auth.location)), conf: conf)
        }
        switch matcher.find(sub.uri, in: server) {
        case .undecidable(let block, let why):
            let (title, location) = describeConf(block)
            let finding = GateFinding(
                .undecidable, probe: probe, detail: "cannot evaluate the regex of \(title) (\(location)): \(why)", at: location)
            return [Trace(verdict: .undecided(finding), conf: conf)]
        case .autoRedirect:
            return [Trace(verdict: .notServed("every request refused: the auth subrequest is answered 301"), conf: conf)]
        case .server:
            let (_, location) = describeConf(server)
            return [notGate("no location of the server (\(location))")]
        case .location(let block):
            return rewrite(block, sub, locationLevel: true).flatMap { outcome -> [Trace] in
                switch outcome.end {
                case .answered(let status, let directive):
                    return [authAnswered(status, by: directive, auth, outcome.state, conf: conf, probe)]
                case .undecidable(let why, let directive):
                    return [undecided(why, at: directive, outcome.state, probe)]
                case .finished:
                    var next = outcome.state
                    if next.uriChanged {
                        next.uriChanged = false
                        next.uriChangesLeft -= 1
                        guard next.uriChangesLeft > 0 else {
                            return [Trace(verdict: .notServed("500: rewrite cycle in the auth subrequest"), conf: conf)]
                        }
                        return authLocation(next, auth, main: main, conf: conf, server, probe)
                    }
                    let (title, location) = describeConf(outcome.conf)
                    let params = model.inheritedList(["fastcgi_param"], from: outcome.conf)
                    guard pass(of: outcome.conf)?.name == "fastcgi_pass", role(ownParams: params) == WireProtocol.Role.auth.rawValue
                    else { return [notGate("\(title) (\(location))")] }
                    seen.authLocations.append(model[outcome.conf].kind == .condition ? (model[outcome.conf].parent ?? block) : outcome.conf)
                    if let verdict = answeredBesideResponder(outcome.conf, probe) { return [Trace(verdict: verdict, conf: conf)] }
                    return [charged(next, params: params, auth, main: main, conf: conf, probe)]
                }
            }
        }
    }

    /// The gate's auth location answered by nginx itself (its `return`).
    private func authAnswered(
        _ status: Int, by directive: NginxDirective, _ auth: NginxDirective, _ state: NginxRequestState, conf: Int, _ probe: GateProbe
    ) -> Trace {
        let what = "\(directive.summary()) (\(directive.location))"
        if status >= 200 && status < 300 {
            let detail =
                "the auth subrequest (auth_request \(auth.values.first ?? "") (\(auth.location))) is answered \(status) by \(what) "
                + "without asking the responder" + assumed(state)
            return Trace(verdict: .notGated(GateFinding(.authAnswered, probe: probe, detail: detail, at: directive.location)), conf: conf)
        }
        if status == 401 || status == 403 {
            return Trace(verdict: .notServed("every request refused: the auth subrequest is answered \(status) by \(what)"), conf: conf)
        }
        return Trace(verdict: .notServed("500: the auth subrequest is answered \(status) by \(what)"), conf: conf)
    }

    /// What the responder is asked about (`CHARGE_GATE_URI`, else the request URI) and whether
    /// a route charges it.
    private func charged(
        _ sub: NginxRequestState, params: [NginxDirective], _ auth: NginxDirective, main: NginxRequestState, conf: Int,
        _ probe: GateProbe
    ) -> Trace {
        var path = fallbackPath(sub, params: params)
        var source = auth.location
        var setBy: NginxDirective?
        if let param = params.first(where: { $0.values.first == WireProtocol.Param.uri }), param.values.count > 1 {
            guard let value = sub.evaluate(param.values[1]) else {
                let unknown = NginxRequestState.variableNames(in: param.values[1]).first { sub.value(of: $0) == nil } ?? "?"
                let setBy = sub.assignedBy[unknown].map { " (\($0.summary()) (\($0.location)))" } ?? ""
                let detail = "cannot tell the charged path: \(param.summary()) (\(param.location)) depends on $\(unknown)\(setBy)"
                return Trace(verdict: .undecided(GateFinding(.undecidable, probe: probe, detail: detail, at: param.location)), conf: conf)
            }
            if !value.isEmpty {
                path = URIPath.normalize(value)
                source = param.location
                setBy = NginxRequestState.variableNames(in: param.values[1]).lazy.compactMap { sub.assignedBy[$0] }.first
            }
        }
        let method = main.method == "HEAD" ? "GET" : main.method
        if let route = router.match(path: path, method: method) {
            return Trace(verdict: .gated(chargedURI: path, route: route), conf: conf, state: main)
        }
        var via = ""
        if let setBy, path != URIPath.normalize(main.uri) {
            // Not what nginx routed: the value a `set` gave the variable (`$request_uri`, …).
            via = " (\(setBy.summary()) (\(setBy.location)))"
            source = setBy.location
        } else if let rewrite = main.rewrites.last {
            via = " (rewritten by \(rewrite.summary()) (\(rewrite.location)))"
            source = rewrite.location
        }
        let detail = "the gate is asked about \(main.method) \(GateProbe.printable(path))\(via), which no route charges" + assumed(main)
        return Trace(
            verdict: .notGated(GateFinding(.unrouted, probe: probe, detail: detail, at: source)), conf: conf, state: main, asked: path)
    }
}
