import Testing

@testable import ChargeGateNginx

/// What the responder is asked about: `$charge_gate_uri` as the configuration sets it (the
/// snippet's map is `$uri`, nginx's decoded path), or `REQUEST_URI` decoded by the responder;
/// the probes sent as a client sends them (a query string, an escape).
@Suite struct GateChargedPathTests {
    static let site = GateAnalyserTests.site
    static let protect = GateAnalyserTests.protect

    /// A client's target: `$request_uri` as sent, `$uri` decoded and normalised, `$args`.
    @Test func aRequestTargetIsReadAsNginxReadsIt() {
        let state = NginxRequestState(uri: "/api//describ%65?q=1", method: "GET")
        #expect(state.requestURI == "/api//describ%65?q=1")
        #expect(state.uri == "/api/describe")
        #expect(state.args == "q=1")
        #expect(state.evaluate("$uri$is_args$args") == "/api/describe?q=1")
        #expect(NginxRequestState(uri: "/x", method: "GET").evaluate("[$is_args$query_string]") == "[]")
        #expect(GateAnalyser.rawVariants(of: "/api/generate") == ["/api/generate?q=1", "/api/generat%65"])
        #expect(GateAnalyser.rawVariants(of: "/") == ["/x?q=1", "/%78"])
        #expect(GateAnalyser.rawVariants(of: "/v1/") == ["/v1/?q=1"])
    }

    /// `$uri` (what the snippet sets), an empty value (the responder decodes REQUEST_URI) and a
    /// `${uri}` name the route for every probe, the escaped one included.
    @Test func valuesThatNameTheRouteAreGated() throws {
        for value in ["$uri", "\"\"", "${uri}"] {
            let body = """
                    location /api/ {
                        \(Self.protect)
                        set $charge_gate_uri \(value);
                        proxy_pass http://app;
                    }
                """
            #expect(try GateAnalyserTests.lines(body) == ["/api/generate: gated", "/api/describe: gated"], "\(value)")
        }
    }

    /// `$request_uri` with its escape (the query string comes first in the report), and a value
    /// from a client header: the escape names no route; the header cannot be known.
    @Test func valuesThatDoNotNameTheRouteAreFound() throws {
        let escaped = """
                location /api/ {
                    \(Self.protect)
                    set $charge_gate_uri $uri$is_args$args;
                    proxy_pass http://app;
                }
            """
        #expect(
            try GateAnalyserTests.lines(escaped).first
                == "/api/generate: NOT GATED: POST /api/generate?q=1: the gate is asked about POST /api/generate?q=1 (set "
                + "$charge_gate_uri $uri$is_args$args (\(Self.site):6)), which no route charges")
        let header = """
                location /api/ {
                    \(Self.protect)
                    set $charge_gate_uri $http_x_path;
                    proxy_pass http://app;
                }
            """
        #expect(
            try GateAnalyserTests.lines(header).first
                == "/api/generate: UNDECIDED: POST /api/generate: cannot tell the charged path: fastcgi_param CHARGE_GATE_URI "
                + "$charge_gate_uri (\(try NginxFixtures.snippetLine("charge-gate-server.conf", startingWith: "fastcgi_param CHARGE_GATE_URI"))) "
                + "depends on $charge_gate_uri (set $charge_gate_uri $http_x_path (\(Self.site):6))")
    }
}
