/// What `charge-gate check-nginx` found: one line per (server, route), warnings, and the
/// servers looked at.
public struct GateReport: Sendable, Equatable {
    /// The main nginx configuration file.
    public var nginxConfig: String
    /// The servers, in config order.
    public var servers: [GateServer]
    /// One line per route in each server that uses the gate, and per route that a server
    /// without the gate serves from a gated backend.
    public var routes: [GateRouteResult]
    /// Warnings (exit status 0).
    public var warnings: [GateWarning]
    /// The config has routes but no server uses the gate: nothing is charged anywhere (a
    /// failure, though there is no line to show it).
    public var gateMissing: Bool

    /// Creates a report.
    public init(
        nginxConfig: String, servers: [GateServer], routes: [GateRouteResult], warnings: [GateWarning], gateMissing: Bool = false
    ) {
        self.nginxConfig = nginxConfig
        self.servers = servers
        self.routes = routes
        self.warnings = warnings
        self.gateMissing = gateMissing
    }

    /// Whether every line is gated (or not served at all), and some server uses the gate when
    /// there are routes.
    public var isGated: Bool { !gateMissing && routes.allSatisfy(\.isGated) }

    /// The lines with a failure.
    public var failures: [GateRouteResult] { routes.filter { !$0.isGated } }

    /// `3 lines (route × server) in 1 gated server: 2 gated, 1 NOT GATED; 1 warning` (and
    /// `N UNDECIDED`, `N NOT SETTLED` when there are).
    public var summary: String {
        let gatedServers = servers.filter(\.usesGate).count
        let notGated = routes.filter { $0.finding.map { $0.kind != .undecidable && !$0.kind.isSettlement } ?? false }.count
        let undecided = routes.filter { $0.finding?.kind == .undecidable }.count
        let notSettled = routes.filter { $0.finding?.kind.isSettlement ?? false }.count
        var parts = ["\(routes.count - notGated - undecided - notSettled) gated", "\(notGated) NOT GATED"]
        if undecided > 0 { parts.append("\(undecided) UNDECIDED") }
        if notSettled > 0 { parts.append("\(notSettled) NOT SETTLED") }
        let routeWord = routes.count == 1 ? "line" : "lines"
        let serverWord = gatedServers == 1 ? "server" : "servers"
        let warningWord = warnings.count == 1 ? "warning" : "warnings"
        return "\(routes.count) \(routeWord) (route × server) in \(gatedServers) gated \(serverWord): "
            + parts.joined(separator: ", ") + "; \(warnings.count) \(warningWord)"
    }
}
