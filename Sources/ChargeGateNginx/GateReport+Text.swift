extension GateReport {
    /// The report as a table for a terminal: `SERVER ROUTE METHODS VERDICT`, one line per
    /// (server, route), then the auth profile of each gated server's auth location
    /// (`profile: SERVER: keepalive, location = /_charge_gate/auth (FILE:LINE)`), the warnings
    /// and a summary line.
    public func text() -> String {
        let header = ["SERVER", "ROUTE", "METHODS", "VERDICT"]
        let rows = routes.map { line in
            [line.server.label, line.prefix, line.methods?.joined(separator: ",") ?? "any", line.summary]
        }
        var widths = header.map(\.count)
        for row in rows {
            for column in 0..<3 { widths[column] = max(widths[column], row[column].count) }
        }
        func format(_ row: [String]) -> String {
            var line = ""
            for column in 0..<3 {
                line += row[column] + String(repeating: " ", count: widths[column] - row[column].count + 2)
            }
            return line + row[3]
        }
        var lines = [format(header)]
        lines += rows.map(format)
        if routes.isEmpty { lines.append("(no line: no server uses the gate, or the config has no routes)") }
        for server in servers where server.usesGate {
            if server.authLocations.isEmpty {
                lines.append("profile: \(server.label): no auth location (none passes CHARGE_GATE_ROLE auth to FastCGI)")
            }
            lines += server.authLocations.map { "profile: \(server.label): \($0.summary)" }
        }
        lines += warnings.map { "warning: \($0)" }
        lines.append((isGated ? "ok: " : "FAILED: ") + summary)
        return lines.joined(separator: "\n") + "\n"
    }
}
