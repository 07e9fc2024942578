import ChargeGateCore

/// Decides, for every server that uses the gate and every route of the config, whether
/// nginx charges the requests the route covers: it sends probes (the route's prefix, a path
/// below it, the names of locations under it, paths that the configuration's regexes match,
/// for each method that matters) through a model of nginx's phases — server rewrite, location
/// search, location rewrite (again after `$uri` changes), access (`satisfy`, `allow`/`deny`,
/// `auth_request` after inheritance), the auth subrequest's own phases up to the gate's auth
/// location, and the responder's router on the path it is asked about — and reports the first
/// probe that is served without a charge, with the file and line at fault. A server without the
/// gate gets a line when it serves a route from a backend that a gated server protects, else a
/// warning.
public struct GateAnalyser {
    /// nginx's configuration.
    let model: NginxModel
    /// The config's routes.
    let routes: [RouteConfig]
    /// The responder's router over them.
    let router: Router
    /// Where the responder listens (the config's `listen`), compared with the auth location's
    /// `fastcgi_pass`; nil: not compared.
    let listen: ListenAddress?
    /// The responder's settlement socket (the config's `settleSocketPath`), compared with the
    /// settlement line's `syslog:server=unix:`; nil: any unix socket.
    let settleSocket: String?
    /// The variable the settlement line's last field must be (the config's `amountVariable`).
    let amountVariable: String
    /// `log_format charge_gate_settle` of the http block and its format (its strings joined).
    let settleFormat: (directive: NginxDirective, format: String)?
    /// Every regex compiled once.
    let regexes = NginxRegexCache()
    /// nginx's location search.
    let matcher: NginxLocationMatcher
    /// nginx's rewrite phase.
    let rewriter: NginxRewriteSimulator
    /// Variables empty until the access phase (`accessPhaseVariables`).
    let emptyUntilAccess: Set<String>
    /// What the analysis collects on the way.
    let seen = Seen()

    /// What one analysis collects on the way (the gate's auth locations reached), and the
    /// paths the current probe may still follow.
    final class Seen {
        /// The gate's auth locations reached (for the `fastcgi_next_upstream` warning).
        var authLocations: [Int] = []
        /// Where the app gets each gated probe, by route (`GateAnalyser+Upstream`).
        var chargedTargets: [Int: [ChargedTarget]] = [:]
        /// Rewrite runs and paths the current probe may still take.
        var budget = 0
    }

    /// Rewrite-phase runs and paths one probe may take (a configuration needs a handful).
    static let pathBudget = 2048

    /// At most this many probes per route and server; a route with more is UNDECIDED (never
    /// gated), naming the first probe not tried.
    public static let maximumProbes = 96

    /// An analyser of `model` against the config's `routes`; `listen` is where the responder
    /// listens (nil: the auth location's `fastcgi_pass` is not compared with it),
    /// `settleSocket` where it reads settlement lines (nil: not compared), `amountVariable` the
    /// `$upstream_http_*` variable of the config's `amountHeader`.
    public init(
        model: NginxModel, routes: [RouteConfig], listen: ListenAddress? = nil, settleSocket: String? = nil,
        amountVariable: String = GateConfig().amountVariable
    ) {
        self.model = model
        self.routes = routes
        self.listen = listen
        self.settleSocket = settleSocket
        self.amountVariable = amountVariable
        settleFormat = Self.settleFormat(in: model)
        router = Router(routes: routes)
        matcher = NginxLocationMatcher(model: model, regexes: regexes)
        rewriter = NginxRewriteSimulator(model: model, regexes: regexes)
        emptyUntilAccess = Self.accessPhaseVariables(model)
    }

    /// Variables declared only by `auth_request_set` (never by `set`, `map`, …): empty in the
    /// rewrite phase of a request that has not been through the access phase.
    static func accessPhaseVariables(_ model: NginxModel) -> Set<String> {
        var declared = Set<String>()
        var assigned = Set<String>()
        for id in 0..<model.blocks.count {
            let block = model[id]
            if case .other(let name) = block.kind, let args = block.opening?.values {
                switch name {
                case "map", "split_clients": if args.count >= 2 { assigned.insert(String(args[1].dropFirst())) }
                case "geo": if let last = args.last { assigned.insert(String(last.dropFirst())) }
                default: break
                }
            }
            for directive in block.directives {
                guard let first = directive.values.first, first.hasPrefix("$") else { continue }
                if directive.name == "auth_request_set" {
                    declared.insert(String(first.dropFirst()))
                } else if directive.name == "set" || directive.name.hasSuffix("_set") {
                    assigned.insert(String(first.dropFirst()))
                }
            }
        }
        return declared.subtracting(assigned)
    }

    /// The report.
    public func analyse() -> GateReport {
        let servers = model.servers.map(describe)
        var lines: [GateRouteResult] = []
        var warnings: [GateWarning] = []
        var gatedBackends: [String: (server: GateServer, conf: Int)] = [:]

        if routes.isEmpty {
            warnings.append(GateWarning(.noRoutes, "the config has no routes: nothing is charged, nothing to check", at: nil))
        }
        for server in servers where server.usesGate {
            for (index, route) in routes.enumerated() {
                var results: [GateRouteResult.ProbeResult] = []
                var settlement: GateFinding?
                let candidates = probes(for: index, in: server.block)
                var traced: [GateProbe: Trace] = [:]
                for probe in candidates.prefix(Self.maximumProbes) {
                    let full = trace(probe, in: server.block)
                    traced[probe] = full
                    guard let trace = counted(full, for: probe, traced: traced) else { continue }
                    results.append(GateRouteResult.ProbeResult(probe: probe, verdict: trace.verdict))
                    if case .gated = trace.verdict, let conf = trace.conf, let backend = backend(of: conf), gatedBackends[backend] == nil {
                        gatedBackends[backend] = (server, conf)
                    }
                    noteChargedTarget(trace, probe, route: index)
                    if settlement == nil { settlement = settlementFinding(trace, probe, in: server.block) }
                }
                if candidates.count > Self.maximumProbes { results.append(capReached(candidates[Self.maximumProbes], in: server)) }
                results += unsampledRegexes(for: index, in: server.block)
                lines.append(
                    GateRouteResult(
                        server: server, prefix: route.prefix, methods: methodList(route), probes: results, settlement: settlement))
            }
        }
        lines = addingSubrequestProbes(addingMappedProbes(lines, servers: servers), servers: servers)
        for server in servers where !server.usesGate {
            var found = false
            for (index, route) in routes.enumerated() {
                guard let result = ungatedLine(index, in: server, backends: gatedBackends) else { continue }
                found = true
                lines.append(GateRouteResult(server: server, prefix: route.prefix, methods: methodList(route), probes: [result]))
            }
            if !found {
                warnings.append(
                    GateWarning(
                        .serverWithoutGate, "server \(server.label) does not use the gate (no auth_request): nothing it serves is charged",
                        at: server.location))
            }
        }
        let gateMissing = !servers.contains(where: \.usesGate)
        if gateMissing {
            warnings.append(GateWarning(.noGatedServer, "no server uses the gate (no auth_request anywhere)", at: nil))
        }
        warnings += nextUpstreamWarnings()
        warnings += authLocationWarnings() + listenWarnings() + ssiWarnings(servers) + profileWarnings(servers)
        return GateReport(
            nginxConfig: model.mainFile, servers: servers, routes: lines, warnings: warnings, gateMissing: gateMissing && !routes.isEmpty)
    }

    private func methodList(_ route: RouteConfig) -> [String]? {
        route.methods.map { $0.sorted() }
    }

    /// A server without the gate, probed like the others: a line when it serves the route
    /// from a backend that a gated location proxies to, with no `auth_request` or with
    /// `auth_request off` in effect.
    private func ungatedLine(
        _ index: Int, in server: GateServer, backends: [String: (server: GateServer, conf: Int)]
    ) -> GateRouteResult.ProbeResult? {
        let candidates = probes(for: index, in: server.block)
        for probe in candidates.prefix(Self.maximumProbes) where probe.caseOf == nil {
            let trace = trace(probe, in: server.block)
            guard case .notGated(let finding) = trace.verdict, finding.kind == .noAuthRequest || finding.kind == .authRequestOff,
                let conf = trace.conf, let backend = backend(of: conf), let gated = backends[backend]
            else { continue }
            let (title, location) = describeConf(conf)
            let (gatedTitle, gatedLocation) = describeConf(gated.conf)
            let same = "proxies to \(backend), as the gated \(gatedTitle) (\(gatedLocation)) of server \(gated.server.label) does"
            // `auth_request off` says where it is set: the line at fault.
            if finding.kind == .authRequestOff, let off = model.inherited("auth_request", from: conf) {
                let detail = "auth_request off (\(off.location)) is in effect in \(title) (\(location)), which " + same
                return GateRouteResult.ProbeResult(
                    probe: probe, verdict: .notGated(GateFinding(.authRequestOff, probe: probe, detail: detail, at: off.location)))
            }
            let detail = "\(title) (\(location)) has no auth_request and " + same
            return GateRouteResult.ProbeResult(
                probe: probe, verdict: .notGated(GateFinding(.ungatedServer, probe: probe, detail: detail, at: location)))
        }
        if candidates.count > Self.maximumProbes { return capReached(candidates[Self.maximumProbes], in: server) }
        return nil
    }

    private func nextUpstreamWarnings() -> [GateWarning] {
        var warnings: [GateWarning] = []
        var done = Set<Int>()
        for block in seen.authLocations where done.insert(block).inserted {
            let (title, location) = describeConf(block)
            if let directive = model.inherited("fastcgi_next_upstream", from: block) {
                guard directive.values != ["off"] else { continue }
                warnings.append(
                    GateWarning(
                        .nextUpstream,
                        "\(directive.summary()) in effect in the gate's auth \(title) (\(location)): nginx may resend an auth "
                            + "subrequest to another responder after one spent the charge (set fastcgi_next_upstream off)",
                        at: directive.location))
            } else {
                warnings.append(
                    GateWarning(
                        .nextUpstream,
                        "the gate's auth \(title) has no fastcgi_next_upstream off: nginx's default (error timeout) may resend an "
                            + "auth subrequest to another responder after one spent the charge",
                        at: location))
            }
        }
        return warnings
    }

    // MARK: servers and blocks

    private func describe(_ id: Int) -> GateServer {
        let block = model[id]
        let listens = block.own("listen").compactMap { $0.values.first }.map { $0.allSatisfy(\.isNumber) ? "*:" + $0 : $0 }
        var label = listens.isEmpty ? "*:80" : listens.joined(separator: ",")
        if let name = block.first("server_name")?.values.first(where: { !$0.isEmpty && $0 != "_" }) {
            label += " " + name
        }
        return GateServer(
            block: id, label: label, location: block.location ?? NginxSourceLocation(file: model.mainFile, line: 0),
            usesGate: usesGate(id), authLocations: authLocations(in: id))
    }

    private func usesGate(_ server: Int) -> Bool {
        if let auth = model.inherited("auth_request", from: server), auth.values.first != "off" { return true }
        for id in model.descendants(of: server) {
            if let auth = model[id].first("auth_request"), auth.values.first != "off" { return true }
            if role(ownParams: model[id].own("fastcgi_param")) == WireProtocol.Role.auth.rawValue { return true }
        }
        return false
    }

    /// The `CHARGE_GATE_ROLE` value among `fastcgi_param` directives.
    func role(ownParams params: [NginxDirective]) -> String? {
        params.first { $0.values.first == WireProtocol.Param.role }.flatMap { $0.values.count > 1 ? $0.values[1] : nil }
    }

    /// How findings name the configuration in effect: a location (an `if` or `limit_except`
    /// inside it counts as the location), or the server when no location matched.
    func describeConf(_ conf: Int) -> (String, NginxSourceLocation) {
        var id = conf
        if model[id].kind == .condition || model[id].kind == .other("limit_except"), let parent = model[id].parent { id = parent }
        let block = model[id]
        let location = block.location ?? NginxSourceLocation(file: model.mainFile, line: 0)
        if block.kind == .server { return ("the server's own configuration (no location matches)", location) }
        return (block.title, location)
    }

    /// The `*_pass` that serves a request in this configuration (an `if`'s or `limit_except`'s
    /// own, else its location's).
    func pass(of conf: Int) -> NginxDirective? {
        for id in model.chain(from: conf) {
            if let found = model[id].directives.first(where: { NginxModel.passDirectives.contains($0.name) }) { return found }
            guard model[id].kind == .condition || model[id].kind == .other("limit_except") else { break }
        }
        return nil
    }

    /// The upstream a `*_pass` names, without its path: `http://app`, `charge_gate`,
    /// `http://unix:/run/app.sock`.
    func backend(of conf: Int) -> String? {
        guard let target = pass(of: conf)?.values.first else { return nil }
        guard let scheme = target.range(of: "://") else { return target }
        let rest = target[scheme.upperBound...]
        if rest.hasPrefix("unix:") {
            let path = rest.dropFirst(5)
            let end = path.firstIndex(of: ":") ?? path.endIndex
            return String(target[..<scheme.upperBound]) + "unix:" + path[..<end]
        }
        let end = rest.firstIndex(of: "/") ?? rest.endIndex
        return String(target[..<scheme.upperBound]) + rest[..<end]
    }
}
