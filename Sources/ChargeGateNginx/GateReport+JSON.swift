import ChargeGateCore

extension GateReport {
    /// The report as one JSON object (for CI): `ok`, `nginxConfig`, `summary`, `servers` (each
    /// with its `authLocations`: `location`, `profile`, `file`, `line`),
    /// `routes` (each with its `verdict`: `gated`, `not_gated`, `undecided` or `not_settled`; its
    /// `finding` and every probe), `warnings`. A probe's or finding's `uri` is the request target
    /// to send (`GateProbe.target`: percent-encoded where a byte cannot stand as it is).
    public func json() -> String {
        var out = "{"
        out +=
            "\"ok\":\(isGated),\"gateMissing\":\(gateMissing),\"nginxConfig\":\(Self.quoted(nginxConfig)),\"summary\":\(Self.quoted(summary)),"
        out += "\"servers\":[" + servers.map(Self.server).joined(separator: ",") + "],"
        out += "\"routes\":[" + routes.map(Self.route).joined(separator: ",") + "],"
        out += "\"warnings\":[" + warnings.map(Self.warning).joined(separator: ",") + "]"
        return out + "}\n"
    }

    private static func place(_ location: NginxSourceLocation?) -> String {
        guard let location else { return "\"file\":null,\"line\":null" }
        return "\"file\":\(quoted(location.file)),\"line\":\(location.line)"
    }

    private static func server(_ server: GateServer) -> String {
        "{\"server\":\(quoted(server.label)),\(place(server.location)),\"usesGate\":\(server.usesGate),"
            + "\"authLocations\":[" + server.authLocations.map(authLocation).joined(separator: ",") + "]}"
    }

    private static func authLocation(_ auth: GateAuthLocation) -> String {
        "{\"location\":\(quoted(auth.title)),\"profile\":\(quoted(auth.profile.rawValue)),\(place(auth.location))}"
    }

    private static func finding(_ finding: GateFinding?) -> String {
        guard let finding else { return "null" }
        return "{\"kind\":\(quoted(finding.kind.rawValue)),\"method\":\(quoted(finding.probe.method)),"
            + "\"uri\":\(quoted(finding.probe.target)),\"message\":\(quoted(finding.description)),\(place(finding.location))}"
    }

    private static func verdictName(_ verdict: GateVerdict) -> String {
        switch verdict {
        case .gated: "gated"
        case .notGated: "not_gated"
        case .undecided: "undecided"
        case .notServed: "not_served"
        case .gateEndpoint: "gate_endpoint"
        }
    }

    private static func probe(_ result: GateRouteResult.ProbeResult) -> String {
        var out = "{\"method\":\(quoted(result.probe.method)),\"uri\":\(quoted(result.probe.target)),"
        out += "\"verdict\":\(quoted(verdictName(result.verdict)))"
        switch result.verdict {
        case .gated(let charged, _): out += ",\"chargedURI\":\(quoted(charged))"
        case .notGated(let finding), .undecided(let finding): out += ",\"finding\":\(Self.finding(finding))"
        case .notServed(let why), .gateEndpoint(let why): out += ",\"why\":\(quoted(why))"
        }
        return out + "}"
    }

    private static func route(_ line: GateRouteResult) -> String {
        let verdict: String
        if let finding = line.finding {
            verdict = finding.kind == .undecidable ? "undecided" : finding.kind.isSettlement ? "not_settled" : "not_gated"
        } else {
            verdict = "gated"
        }
        let methods = line.methods.map { "[" + $0.map(quoted).joined(separator: ",") + "]" } ?? "null"
        return "{\"server\":\(quoted(line.server.label)),\"serverFile\":\(quoted(line.server.location.file)),"
            + "\"serverLine\":\(line.server.location.line),\"route\":\(quoted(line.prefix)),\"methods\":\(methods),"
            + "\"verdict\":\(quoted(verdict)),\"summary\":\(quoted(line.summary)),\"finding\":\(finding(line.finding)),"
            + "\"probes\":[" + line.probes.map(probe).joined(separator: ",") + "]}"
    }

    private static func warning(_ warning: GateWarning) -> String {
        "{\"kind\":\(quoted(warning.kind.rawValue)),\"message\":\(quoted(warning.message)),\(place(warning.location))}"
    }

    /// A JSON string, escaped by the core's `JSONWriter` (control characters, `<`, `>`, `&`, `'`
    /// and U+2028/2029 as `\uXXXX`), so the text is safe anywhere.
    static func quoted(_ text: String) -> String {
        var writer = JSONWriter()
        writer.value(text)
        return writer.text
    }
}
