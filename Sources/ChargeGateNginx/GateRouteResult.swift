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
    /// On a route settled by nginx's line, the first charged probe whose hold is never settled
    /// there (a `GateFinding.Kind.isSettlement` finding); nil otherwise.
    public var settlement: GateFinding?

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
    public init(server: GateServer, prefix: String, methods: [String]?, probes: [ProbeResult], settlement: GateFinding? = nil) {
        self.server = server
        self.prefix = prefix
        self.methods = methods
        self.probes = probes
        self.settlement = settlement
    }

    /// The first failure among the probes (not gated before undecided), else the settlement
    /// finding.
    public var finding: GateFinding? {
        for result in probes {
            if case .notGated(let finding) = result.verdict { return finding }
        }
        for result in probes {
            if case .undecided(let finding) = result.verdict { return finding }
        }
        return settlement
    }

    /// Whether the route is charged wherever this server serves it (and, on a route settled by
    /// nginx's line, settled too).
    public var isGated: Bool { finding == nil }

    /// The line's verdict: `gated`, `NOT GATED: …`, `UNDECIDED: …`, `NOT SETTLED: …`, or why
    /// nothing is served.
    public var summary: String {
        if let finding {
            let word = finding.kind == .undecidable ? "UNDECIDED: " : finding.kind.isSettlement ? "NOT SETTLED: " : "NOT GATED: "
            return word + finding.description
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
