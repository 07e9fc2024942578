extension GateAnalyser {
    /// The precontent phase after an access phase that let the request through uncharged:
    /// `try_files` of the configuration in effect (its own: never inherited, not in an `if` or
    /// `limit_except`) sends it on by its last parameter (`ngx_http_try_files_handler`): a
    /// named location runs its rewrite and access phases, a URI is an internal redirect, `=code`
    /// is that status (and its `error_page`). Its files are taken as absent: a file that exists
    /// under the root is served from disk, not by the app. Where the fallback serves it uncharged
    /// too, the finding stays the first location's. Other traces are kept as they are (a
    /// charged request stays charged wherever try_files sends it).
    func precontent(_ traces: [Trace], _ state: NginxRequestState, conf: Int, _ server: Int, _ probe: GateProbe) -> [Trace] {
        guard let tryFiles = model[conf].first("try_files"), tryFiles.values.count >= 2, let last = tryFiles.values.last else {
            return traces
        }
        return traces.flatMap { trace -> [Trace] in
            guard case .notGated(let finding) = trace.verdict,
                [.noAuthRequest, .authRequestOff, .satisfyAny].contains(finding.kind)
            else { return [trace] }
            // Served uncharged there too: the finding stays where the request came in ungated.
            return tryFilesFallback(last, tryFiles, state, conf: conf, server, probe).map { next in
                next.verdict.isFailure && next.verdict.finding?.kind != .undecidable ? trace : next
            }
        }
    }

    /// The traces of a request that `try_files` (`directive`, in `conf`) sends on by its last
    /// parameter `fallback`.
    func tryFilesFallback(
        _ fallback: String, _ directive: NginxDirective, _ state: NginxRequestState, conf: Int, _ server: Int, _ probe: GateProbe
    ) -> [Trace] {
        if fallback.hasPrefix("=") {
            guard let status = Int(fallback.dropFirst()) else { return [] }
            return answered(status, by: directive, state, conf: conf, server, probe)
        }
        guard let target = state.evaluate(fallback) else {
            let unknown = NginxRequestState.variableNames(in: fallback).first { state.value(of: $0) == nil } ?? "?"
            return [undecided("its last parameter depends on $\(unknown)", at: directive, state, probe)]
        }
        var next = state
        next.isInternal = true
        next.uriChangesLeft -= 1
        guard next.uriChangesLeft > 0 else {
            return [Trace(verdict: .notServed("500: rewrite or internal redirection cycle"), conf: nil)]
        }
        if target.hasPrefix("@") {
            guard let named = model[server].namedLocations[target] else {
                return [Trace(verdict: .notServed("500: no named location \(target) for \(directive.summary())"), conf: conf)]
            }
            return locationPhase(next, named, server, probe)
        }
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        next.uri = String(parts[0])
        if parts.count > 1 { next.args = String(parts[1]) }
        next.rewrites.append(directive)
        return serverRewrite(next, server, probe)
    }
}
