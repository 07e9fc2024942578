import ChargeGateCore

extension GateAnalyser {
    /// The `log_format` of the settlement line (charge-gate-http.conf).
    static let settleFormatName = "charge_gate_settle"
    /// The settlement line's fields before the amount, as the responder parses them
    /// (`SettleLine`); the amount's variable follows.
    static let settleFormatHead =
        "cg1|$charge_gate_hold|$charge_gate_origin|$status|$upstream_status|$upstream_bytes_sent|$body_bytes_sent|"
        + "$upstream_response_time|$msec|"
    /// The settlement line's condition (charge-gate-settle.conf).
    static let settleCondition = "if=$charge_gate_hold"

    /// `log_format charge_gate_settle` in the http block, and its format: its strings after the
    /// name (and `escape=`), joined as nginx joins them.
    static func settleFormat(in model: NginxModel) -> (directive: NginxDirective, format: String)? {
        guard let http = model.http else { return nil }
        for directive in model[http].own("log_format") where directive.values.first == settleFormatName {
            var strings = Array(directive.values.dropFirst())
            if strings.first?.hasPrefix("escape=") == true { strings.removeFirst() }
            return (directive, strings.joined())
        }
        return nil
    }

    /// The settlement finding of a probe that `trace` charges on a route settled by nginx's
    /// line (`settle:` with `by: nginx`): the first configuration the request may end in
    /// (`endings`) without the settlement line to the responder, else a `log_format
    /// charge_gate_settle` that is not the responder's. nil when there is none, or the probe
    /// is not charged on such a route.
    func settlementFinding(_ trace: Trace, _ probe: GateProbe, in server: Int) -> GateFinding? {
        guard case .gated(_, let route) = trace.verdict, let policy = routes[route].settle, policy.by == .nginx else { return nil }
        for (conf, via) in endings(of: trace, probe, in: server) {
            if let finding = settleLineFinding(in: conf, via: via, probe) { return finding }
        }
        return settleFormatFinding(probe, amountFromHeader: policy.amount == .header)
    }

    /// The configurations a charged request may end in, where nginx logs it, each with the
    /// directive that sent it there: the one it is charged in or, when that one has `try_files`
    /// (its files taken as absent, as everywhere in the analysis), those its last parameter
    /// sends the request to, followed again (until nginx's limit of internal redirects); and
    /// wherever the `error_page`s its response may take send it (`errorPagesAfterResponse`).
    private func endings(of trace: Trace, _ probe: GateProbe, in server: Int, via: NginxDirective? = nil) -> [(Int, NginxDirective?)] {
        guard let conf = trace.conf else { return [] }
        var out: [(Int, NginxDirective?)] = []
        func add(_ endings: [(Int, NginxDirective?)]) {
            for ending in endings where !out.contains(where: { $0.0 == ending.0 }) { out.append(ending) }
        }
        if let state = trace.state, let tryFiles = model[conf].first("try_files"), tryFiles.values.count >= 2,
            let last = tryFiles.values.last, !last.hasPrefix("=")
        {
            seen.budget = Self.pathBudget
            for next in tryFilesFallback(last, tryFiles, state, conf: conf, server, probe) {
                add(endings(of: next, probe, in: server, via: tryFiles))
            }
            if !out.isEmpty { return out }
        }
        add([(conf, via)])
        guard let state = trace.state, !state.errorPageUsed else { return out }
        for page in errorPagesAfterResponse(conf) {
            seen.budget = Self.pathBudget
            for next in followErrorPage(page.target, state, server, probe) ?? [] {
                add(endings(of: next, probe, in: server, via: page.directive))
            }
        }
        return out
    }

    /// The `error_page`s in effect in `conf` that the response of an allowed request may take
    /// (the first for each status, as nginx uses them): for any status when the
    /// `*_intercept_errors on` of its `*_pass` is in effect (the app's own errors), else for
    /// nginx's own 502 and 504 (the app down or hung).
    private func errorPagesAfterResponse(_ conf: Int) -> [ErrorPageDirective] {
        let intercept = pass(of: conf).map { pass in
            model.inherited(pass.name.replacing("_pass", with: "_intercept_errors"), from: conf)?.values.first == "on"
        }
        let pages = model.inheritedList(["error_page"], from: conf).compactMap(ErrorPageDirective.init)
        let statuses = intercept == true ? Set(pages.flatMap(\.codes)) : [502, 504]
        var out: [ErrorPageDirective] = []
        for status in statuses.sorted() {
            guard let page = pages.first(where: { $0.codes.contains(status) }),
                !out.contains(where: { $0.directive.location == page.directive.location })
            else { continue }
            out.append(page)
        }
        return out
    }

    /// Why configuration `conf` (reached by the `try_files` or `error_page` `via`, if any)
    /// sends no settlement line to the responder (nginx's merge of `access_log`: the nearest
    /// block with any has them all, and `off` among them turns every one off), as a finding
    /// about `probe`; nil when a right one is in effect there.
    private func settleLineFinding(in conf: Int, via: NginxDirective?, _ probe: GateProbe) -> GateFinding? {
        let (title, place) = describeConf(conf)
        let logs = model.inheritedList(["access_log"], from: conf)
        let unsettled = ": its hold is never settled (it stays charged as held)"
        let reached = via.map { ", where \($0.summary()) (\($0.location)) sends it," } ?? ""
        if let off = logs.first(where: { $0.values.first == "off" }) {
            let detail =
                "\(title) (\(place))\(reached) writes no settlement line: access_log off (\(off.location)) is in effect there" + unsettled
            return GateFinding(.settleLineMissing, probe: probe, detail: detail, at: off.location)
        }
        let lines = logs.filter { $0.values.count >= 2 && $0.values[1] == Self.settleFormatName }
        guard !lines.isEmpty else {
            guard let other = logs.first else {
                let detail = "\(title) (\(place))\(reached) writes no settlement line: no access_log is in effect there" + unsettled
                return GateFinding(.settleLineMissing, probe: probe, detail: detail, at: place)
            }
            // A settlement line further out, which this access_log replaces; else none anywhere.
            let replaced = model.chain(from: conf).lazy.flatMap { self.model[$0].own("access_log") }.first {
                $0.values.count >= 2 && $0.values[1] == Self.settleFormatName
            }
            let why =
                replaced.map {
                    "replaces the settlement line (\($0.location)) it would inherit (include charge-gate-settle.conf beside it)"
                }
                ?? "is the only access_log in effect there (include charge-gate-settle.conf in the server)"
            let detail =
                "\(title) (\(place))\(reached) writes no settlement line: \(other.summary()) (\(other.location)) " + why + unsettled
            return GateFinding(.settleLineMissing, probe: probe, detail: detail, at: other.location)
        }
        if lines.contains(where: { reachesSettleSocket($0) && $0.values.dropFirst(2).contains(Self.settleCondition) }) { return nil }
        if let line = lines.first(where: reachesSettleSocket) {
            let condition = line.values.dropFirst(2).first { $0.hasPrefix("if=") }
            let why =
                condition.map { "its condition is \($0), not \(Self.settleCondition): a held request's line is sent only when that is set" }
                ?? "it has no \(Self.settleCondition): nginx sends a line for every request there; the responder refuses those "
                + "without a hold, and they crowd out the held requests' lines in its short queue"
            let detail = "the settlement line \(line.summary()) (\(line.location)) in effect in \(title) (\(place))\(reached): " + why
            return GateFinding(.settleLineCondition, probe: probe, detail: detail, at: line.location)
        }
        let line = lines[0]
        let target = Self.syslogSocket(line.values[0]).map { "the unix socket \($0)" } ?? line.values[0]
        let expected =
            settleSocket.map { "the responder's settlement socket \($0)" } ?? "a unix datagram socket (syslog:server=unix:PATH)"
        let detail =
            "the settlement line \(line.summary()) (\(line.location)) in effect in \(title) (\(place))\(reached) goes to \(target), "
            + "not to " + expected + unsettled
        return GateFinding(.settleLineSocket, probe: probe, detail: detail, at: line.location)
    }

    /// Whether an `access_log` sends to the responder's settlement socket
    /// (`syslog:server=unix:PATH,…`; any PATH when the socket is not known).
    private func reachesSettleSocket(_ line: NginxDirective) -> Bool {
        guard let path = Self.syslogSocket(line.values.first ?? "") else { return false }
        return settleSocket.map { $0 == path } ?? true
    }

    /// The unix socket of an `access_log` target `syslog:server=unix:PATH,…`; nil for any
    /// other target.
    static func syslogSocket(_ target: String) -> String? {
        guard target.hasPrefix("syslog:") else { return nil }
        let server = "server=unix:"
        for parameter in target.dropFirst("syslog:".count).split(separator: ",") where parameter.hasPrefix(server) {
            return String(parameter.dropFirst(server.count))
        }
        return nil
    }

    /// A `log_format charge_gate_settle` that the responder does not parse as the config says:
    /// other fields (every line refused), or, on a route whose amount is the app's header,
    /// another amount variable than the config's `amountHeader` (the amounts never arrive).
    private func settleFormatFinding(_ probe: GateProbe, amountFromHeader: Bool) -> GateFinding? {
        // Without the format, no line names it (nginx refuses an unknown log format).
        guard let (directive, format) = settleFormat, format != Self.settleFormatHead + amountVariable else { return nil }
        let what = "log_format \(Self.settleFormatName) (\(directive.location))"
        guard format.hasPrefix(Self.settleFormatHead) else {
            let detail =
                "\(what) is not the line the responder parses (\(Self.settleFormatHead + amountVariable)): it refuses every "
                + "line, and the holds are never settled"
            return GateFinding(.settleFormat, probe: probe, detail: detail, at: directive.location)
        }
        guard amountFromHeader else { return nil }
        let detail =
            "\(what) logs the amount from \(format.dropFirst(Self.settleFormatHead.count)), but the config's amountHeader is "
            + "\(amountVariable): the app's amounts never arrive, and every hold stands"
        return GateFinding(.settleFormat, probe: probe, detail: detail, at: directive.location)
    }
}
