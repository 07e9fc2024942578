extension GateAnalyser {
    /// The `error_page` nginx uses for a status (`ngx_http_special_response_handler`).
    enum ErrorPage {
        /// None: nginx answers the status itself.
        case none
        /// The target (a URI, `@name` or a URL), evaluated, and its directive.
        case target(String, NginxDirective)
        /// The target depends on a variable the analysis cannot know (a client header…).
        case unknown(NginxDirective, variable: String)
    }

    /// The `error_page` in effect for `status` in configuration `conf`: the first of the
    /// nearest block's list that names the status (a block with any `error_page` inherits none;
    /// within one, the first for a code wins, so one written above an include beats the
    /// snippet's). None once an error page was used (`r->error_page`; recursive_error_pages is
    /// not modelled) or when the request's URI changes are spent.
    func errorPage(for status: Int, conf: Int, _ state: NginxRequestState) -> ErrorPage {
        guard !state.errorPageUsed, state.uriChangesLeft > 0 else { return .none }
        for directive in model.inheritedList(["error_page"], from: conf) {
            let values = directive.values
            guard let target = values.last, values.dropLast().contains(String(status)) else { continue }
            guard let value = state.evaluate(target) else {
                let unknown = NginxRequestState.variableNames(in: target).first { state.value(of: $0) == nil } ?? "?"
                return .unknown(directive, variable: unknown)
            }
            return .target(value, directive)
        }
        return .none
    }

    /// `ngx_http_send_error_page` to `target`: a named location runs its rewrite and access
    /// phases (`ngx_http_named_location`), a URI is an internal redirect from the server rewrite
    /// phase (as GET, unless HEAD); nil for anything else (nginx answers a redirect to it).
    func followErrorPage(_ target: String, _ state: NginxRequestState, _ server: Int, _ probe: GateProbe) -> [Trace]? {
        var next = state
        next.errorPageUsed = true
        next.isInternal = true
        next.validLocation = true
        if target.hasPrefix("@") {
            guard let named = model[server].namedLocations[target] else { return nil }
            next.uriChangesLeft -= 1
            guard next.uriChangesLeft > 0 else {
                return [Trace(verdict: .notServed("500: rewrite or internal redirection cycle"), conf: nil)]
            }
            return locationPhase(next, named, server, probe)
        }
        guard target.hasPrefix("/") else { return nil }
        next.uriChangesLeft -= 1
        guard next.uriChangesLeft > 0 else {
            return [Trace(verdict: .notServed("500: rewrite or internal redirection cycle"), conf: nil)]
        }
        next.uri = String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        if next.method != "HEAD" { next.method = "GET" }
        return serverRewrite(next, server, probe)
    }

    /// Where a request goes that the gate denies (its 403) or cannot ask about (500: the
    /// responder down or hung), by the `error_page` in effect where `auth_request` ran. The
    /// gate's own (`@charge_gate_denied`, `@charge_gate_error`) answer it themselves; any other
    /// that reaches content served without a charge is a finding (`denialServed`), one whose
    /// target cannot be known is undecided. Reaching a gated location again asks the gate
    /// again: not a finding.
    func denials(_ state: NginxRequestState, conf: Int, _ server: Int, _ probe: GateProbe) -> [Trace] {
        // What auth_request_set captured stays as the model has it (empty): never the replayed
        // allow (`204`) of a charged request, which a denied or failed one is not.
        let after = state
        var out: [Trace] = []
        for (status, when) in [(403, "when the gate denies it (403)"), (500, "when the responder is down or hung (500)")] {
            switch errorPage(for: status, conf: conf, after) {
            case .none:
                continue
            case .unknown(let directive, let variable):
                let detail = "cannot follow \(directive.summary()) (\(directive.location)) \(when): its target depends on $\(variable)"
                let finding = GateFinding(.undecidable, probe: probe, detail: detail + assumed(state), at: directive.location)
                out.append(Trace(verdict: .undecided(finding), conf: conf))
            case .target(let target, let directive):
                for trace in followErrorPage(target, after, server, probe) ?? [] {
                    guard let inner = trace.verdict.finding else { continue }
                    let sent = "\(when), \(directive.summary()) (\(directive.location)) sends it on: "
                    if inner.kind == .undecidable {
                        let finding = GateFinding(.undecidable, probe: probe, detail: sent + inner.detail, at: inner.location)
                        out.append(Trace(verdict: .undecided(finding), conf: trace.conf))
                    } else {
                        let finding = GateFinding(.denialServed, probe: probe, detail: sent + inner.detail, at: directive.location)
                        out.append(Trace(verdict: .notGated(finding), conf: trace.conf))
                    }
                }
            }
        }
        return out
    }
}
