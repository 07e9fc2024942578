/// One line of the report: a route of the config in one server, and what its probes showed.
public struct GateRouteResult: Sendable, Equatable {
    /// The server.
    public var server: GateServer
    /// The route's prefix.
    public var prefix: String
    /// The route's methods (nil: every method).
    public var methods: [String]?
    /// Each probe and its verdict, in the order tried.
    public var probes: [ProbeResult]

    /// A probe and its verdict.
    public struct ProbeResult: Sendable, Equatable {
        /// The request.
        public var probe: GateProbe
        /// What happened to it.
        public var verdict: GateVerdict

        /// Creates a result.
        public init(probe: GateProbe, verdict: GateVerdict) {
            self.probe = probe
            self.verdict = verdict
        }
    }

    /// Creates a line.
    public init(server: GateServer, prefix: String, methods: [String]?, probes: [ProbeResult]) {
        self.server = server
        self.prefix = prefix
        self.methods = methods
        self.probes = probes
    }

    /// The first failure among the probes (not gated before undecided).
    public var finding: GateFinding? {
        for result in probes {
            if case .notGated(let finding) = result.verdict { return finding }
        }
        for result in probes {
            if case .undecided(let finding) = result.verdict { return finding }
        }
        return nil
    }

    /// Whether the route is charged wherever this server serves it.
    public var isGated: Bool { finding == nil }

    /// The line's verdict: `gated`, `NOT GATED: …`, `UNDECIDED: …`, or why nothing is served.
    public var summary: String {
        if let finding {
            return (finding.kind == .undecidable ? "UNDECIDED: " : "NOT GATED: ") + finding.description
        }
        if probes.contains(where: { if case .gated = $0.verdict { return true } else { return false } }) { return "gated" }
        for result in probes {
            if case .gateEndpoint(let role) = result.verdict { return "gate endpoint (\(role)), never charged" }
        }
        for result in probes {
            if case .notServed(let why) = result.verdict { return "not served: \(why)" }
        }
        return "gated"
    }
}
