import ChargeGateCore
import Foundation
import Testing

@testable import ChargeGateNginx

/// The analysis on small servers (Fixtures/nginx.conf with the site given here): the rewrite
/// and access phases beyond the trap fixtures, warnings, and the report's two formats.
@Suite struct GateAnalyserTests {
    /// The gate's location snippet, as a fixture includes it.
    static let protect = "include /usr/local/share/charge-gate/nginx/charge-gate-protect.conf;"
    /// The gate's server snippet, as a fixture includes it.
    static let server = "include /usr/local/share/charge-gate/nginx/charge-gate-server.conf;"
    /// The site file the analysed server is written in.
    static let site = "/etc/nginx/sites/site.conf"

    /// A server on 127.0.0.1:8080 with the gate's server snippet and `body`.
    static func lines(_ body: String, gateSnippet: Bool = true) throws -> [String] {
        let text = "server {\n    listen 127.0.0.1:8080;\n    \(gateSnippet ? server : "")\n\(body)\n}\n"
        return NginxFixtures.lines(try NginxFixtures.report(site: text))
    }

    /// A `return` whose `error_page` goes to a named location skips the gate (nginx agrees: see
    /// the e2e pair of traps/error-page-return.conf).
    @Test func anErrorPageThatRedirectsInternallyServesUncharged() throws {
        let body = """
                location /api/ {
                    \(Self.protect)
                    return 404;
                    error_page 404 = @app;
                }
                location @app {
                    proxy_pass http://app;
                }
            """
        #expect(
            try Self.lines(body) == [
                "/api/generate: NOT GATED: POST /api/generate: location @app (\(Self.site):9) has no auth_request",
                "/api/describe: NOT GATED: GET /api/describe: location @app (\(Self.site):9) has no auth_request",
            ])
    }

    /// A 4xx `return` and a redirecting `rewrite` serve nothing: not served, not a failure.
    @Test func refusalsAndRedirectsAreNotServedNotFree() throws {
        let body = """
                location /api/generate { return 403; }
                location /api/describe { rewrite ^ https://example.com/ permanent; }
            """
        #expect(
            try Self.lines(body) == [
                "/api/generate: not served: refused (403) by return 403 (\(Self.site):4)",
                "/api/describe: not served: redirected (301) by rewrite ^ https://example.com/ permanent (\(Self.site):5)",
            ])
    }

    /// An `internal` location answers clients 404.
    @Test func anInternalLocationIsNotServedToClients() throws {
        let body = """
                location /api/ { internal; proxy_pass http://app; }
            """
        #expect(try Self.lines(body).allSatisfy { $0.contains("not served: 404: location /api/ (\(Self.site):4) is internal") })
    }

    /// An auth location that `return`s 204 is a free pass.
    @Test func anAuthLocationThatAnswersItselfIsFound() throws {
        let body = """
                location /api/ {
                    \(Self.protect)
                    proxy_pass http://app;
                }
                location = /_charge_gate/auth {
                    return 204;
                }
            """
        // Without the server snippet: the stub is the server's only auth location.
        let lines = try Self.lines(body, gateSnippet: false)
        #expect(
            lines.first
                == "/api/generate: NOT GATED: POST /api/generate: the auth subrequest (auth_request /_charge_gate/auth "
                + "(\(try NginxFixtures.snippetLine("charge-gate-protect.conf", startingWith: "auth_request ")))) is answered 204 "
                + "by return 204 (\(Self.site):9) without asking the responder")
    }

    /// `break` after a rewrite keeps the request in its location, so the gate runs.
    @Test func aBreakAfterARewriteStaysInTheLocation() throws {
        let body = """
                location /api/ {
                    \(Self.protect)
                    rewrite ^/api/(.*)$ /elsewhere/$1;
                    break;
                    proxy_pass http://app;
                }
                location /elsewhere/ { internal; proxy_pass http://app; }
            """
        // The set of the snippet ran before the rewrite: the gate is asked about /api/…. (An
        // /elsewhere/ that clients reach would pass the app's charged path uncharged.)
        #expect(try Self.lines(body) == ["/api/generate: gated", "/api/describe: gated"])
    }

    /// A rewrite without a flag changes `$uri`, and the location is searched again.
    @Test func aRewriteWithoutFlagSearchesTheLocationAgain() throws {
        let body = """
                location /api/ {
                    \(Self.protect)
                    rewrite ^/api/(.*)$ /elsewhere/$1;
                    proxy_pass http://app;
                }
                location /elsewhere/ { proxy_pass http://app; }
            """
        #expect(try Self.lines(body).allSatisfy { $0.contains("location /elsewhere/ (\(Self.site):9), reached after rewrite") })
    }

    /// A regex location's captures are `$1`… in its rewrites (here to an ungated location).
    @Test func regexLocationCapturesFeedRewrites() throws {
        let body = """
                location ~ ^/api/(?<what>generate|describe) {
                    \(Self.protect)
                    rewrite ^ /internal/$1/$what last;
                }
                location /internal/ { proxy_pass http://app; }
            """
        #expect(
            try Self.lines(body) == [
                "/api/generate: NOT GATED: POST /api/generate: location /internal/ (\(Self.site):8), reached after rewrite ^ "
                    + "/internal/$1/$what last (\(Self.site):6), has no auth_request",
                "/api/describe: NOT GATED: GET /api/describe: location /internal/ (\(Self.site):8), reached after rewrite ^ "
                    + "/internal/$1/$what last (\(Self.site):6), has no auth_request",
            ])
    }

    /// nginx stops a rewrite loop with a 500 after 10 changes. (Without `$`: `(.*)$` would not
    /// match a path with a newline, which then stays in the location, ungated.)
    @Test func aRewriteCycleIsA500NotAPass() throws {
        let body = """
                location /api/ {
                    rewrite ^/api/(.*) /api/$1 last;
                }
            """
        #expect(try Self.lines(body).allSatisfy { $0.hasSuffix("not served: 500: rewrite or internal redirection cycle") })
    }

    /// `deny all` (satisfy all) refuses before auth_request runs.
    @Test func denyAllRefusesBeforeTheGate() throws {
        let body = """
                location /api/ { deny all; proxy_pass http://app; }
            """
        #expect(try Self.lines(body).allSatisfy { $0.contains("not served: refused (403) by deny all (\(Self.site):4)") })
    }

    /// The usage locations under a charged route are the responder's own: never charged, never a failure.
    @Test func theGatesOwnEndpointsAreNeverCharged() throws {
        let body = """
                include /usr/local/share/charge-gate/nginx/charge-gate-usage.conf;
                location /api/ { \(Self.protect) proxy_pass http://app; }
            """
        let text = "server {\n    listen 127.0.0.1:8080;\n    \(Self.server)\n\(body)\n}\n"
        let report = try NginxFixtures.report(site: text)
        #expect(report.isGated)
    }

    /// A regex the analysis cannot evaluate makes the route UNDECIDED (exit 1), never gated.
    @Test func aRegexTheStandardLibraryCannotReadIsUndecidedNotGated() throws {
        let body = """
                location /api/ { \(Self.protect) proxy_pass http://app; }
                location ~ "(*UCP)\\.png$" { proxy_pass http://app; }
            """
        let lines = try Self.lines(body)
        #expect(lines.allSatisfy { $0.contains("UNDECIDED: ") && $0.contains("cannot evaluate the regex of location ~ (*UCP)\\.png$") })
    }

    /// A rewrite to a path made of a client header cannot be followed: UNDECIDED.
    @Test func anUnknownRewriteResultIsUndecided() throws {
        let body = """
                location /api/ {
                    \(Self.protect)
                    rewrite ^ /x/$http_host last;
                }
            """
        #expect(
            try Self.lines(body).allSatisfy {
                $0.contains("UNDECIDED: ")
                    && $0.contains("cannot follow rewrite ^ /x/$http_host last (\(Self.site):6): the rewritten $uri depends on $http_host")
            })
    }

    /// A `map` whose entries all give one value is known whatever its source; others need their source.
    @Test func maps_withOneValueAreKnown() throws {
        let map = try #require(
            NginxMap(
                source: "$remote_addr", body: [NginxDirective(name: "default", args: [NginxToken("")], location: .init(file: "f", line: 1))]
            ))
        var state = NginxRequestState(uri: "/x", method: "GET")
        state.maps = ["m": map]
        #expect(state.value(of: "m") == "")
        let two = try #require(
            NginxMap(
                source: "$request_method",
                body: [
                    NginxDirective(name: "post", args: [NginxToken("p")], location: .init(file: "f", line: 1)),
                    NginxDirective(name: "default", args: [NginxToken("$uri")], location: .init(file: "f", line: 2)),
                ]))
        state.maps["n"] = two
        #expect(state.value(of: "n") == "/x")
        state.maps["o"] = NginxMap(
            source: "$remote_addr",
            body: [
                NginxDirective(name: "1.2.3.4", args: [NginxToken("a")], location: .init(file: "f", line: 1))
            ])
        #expect(state.value(of: "o") == nil)
    }

    // MARK: subrequests, other client paths to the app's charged path

    /// A mirror to a location that passes to the app's charged path (not itself under a route)
    /// is found through where the app gets the charged request; a mirror inside the route's own
    /// gated location is charged with the request that carries it.
    @Test func mirrorsThatReachTheChargedPathAreFound() throws {
        let body = """
                location /api/ { \(Self.protect) proxy_pass http://app; }
                location /api/describe { \(Self.protect) mirror /api/describe; proxy_pass http://app; }
                location = /ping { mirror /shadow; proxy_pass http://app; }
                location = /shadow { internal; proxy_pass http://app/api/generate; }
            """
        #expect(
            try Self.lines(body) == [
                "/api/generate: NOT GATED: POST /ping: mirror /shadow (\(Self.site):6) in effect in location = /ping (\(Self.site):6) "
                    + "sends a copy of it as the subrequest POST /shadow, which location = /shadow (\(Self.site):7) passes to "
                    + "http://app as /api/generate, as location /api/ (\(Self.site):4) passes the charged POST /api/generate: nginx "
                    + "runs no access phase for subrequests, so the gate is never asked",
                "/api/describe: gated",
            ])
        // `mirror off` in the location that would carry it.
        let off = body.replacingOccurrences(of: "location = /ping { mirror /shadow;", with: "location = /ping { mirror off;")
        #expect(try Self.lines(off) == ["/api/generate: gated", "/api/describe: gated"])
    }

    /// The same servers under another name are the same backend: an upstream's unix socket
    /// written out in a proxy_pass.
    @Test func anotherNameForTheSameUpstreamIsTheSameBackend() throws {
        let body = """
                location /api/ { \(Self.protect) proxy_pass http://app; }
                location /v1/ { proxy_pass http://unix:/srv/gate/app.sock:/api/; }
            """
        let lines = try Self.lines(body)
        let site = Self.site
        let expected: String =
            "/api/generate: NOT GATED: POST /v1/generate: location /v1/ (\(site):5) passes it to http://unix:/srv/gate/app.sock "
            + "as /api/generate (proxy_pass http://unix:/srv/gate/app.sock:/api/ (\(site):5)), as location /api/ (\(site):4) "
            + "passes the charged POST /api/generate, but location /v1/ (\(site):5) has no auth_request"
        #expect(lines.count == 2)
        #expect(lines.first == expected)
    }

    /// Another backend's /api/ is not the app's: no finding (and an identity `location /` to
    /// the app gives nothing either: the same path is the gated one).
    @Test func anotherBackendOrTheSamePathIsNoFinding() throws {
        let body = """
                location /api/ { \(Self.protect) proxy_pass http://app; }
                location /v1/ { proxy_pass http://other.example/api/; }
                location / { proxy_pass http://app; }
            """
        #expect(try Self.lines(body) == ["/api/generate: gated", "/api/describe: gated"])
    }

    /// The path `proxy_pass` sends, as `ngx_http_proxy_create_request` builds it.
    @Test func theUpstreamPathIsNginxs() throws {
        let split = { (value: String) -> [String]? in GateAnalyser.splitPass(value).map { [$0.backend, $0.uriPart] } }
        #expect(split("http://app/api/") == ["http://app", "/api/"])
        #expect(split("http://app") == ["http://app", ""])
        #expect(split("http://unix:/run/a.sock:/x") == ["http://unix:/run/a.sock", "/x"])
        #expect(split("http://unix:/run/a.sock") == ["http://unix:/run/a.sock", ""])
        #expect(split("app") == nil)
    }

    /// SSI is a warning only where a GET subrequest reaches a route that charges GET.
    @Test func ssiWarnsOnlyForRoutesAGetSubrequestReaches() throws {
        let body = """
                ssi on;
                location /api/generate { \(Self.protect) proxy_pass http://app; }
            """
        let report = try NginxFixtures.report(site: "server {\n    listen 127.0.0.1:8080;\n    \(Self.server)\n\(body)\n}\n")
        #expect(report.warnings.map(\.kind) == [.serverWithoutGate])
    }

    // MARK: the auth location beside the responder

    /// A hand-written auth location with `body` (its own lines) in a server with `server`.
    static func authLines(server: String, auth: String = "") throws -> (lines: [String], warnings: [String]) {
        let site = """
            server {
                listen 127.0.0.1:8080;
            \(server)
                location = /_charge_gate/auth {
                    internal;
                    fastcgi_pass charge_gate;
                    fastcgi_next_upstream off;
                    fastcgi_param CHARGE_GATE_ROLE auth;
                    fastcgi_param CHARGE_GATE_URI $charge_gate_uri;
            \(auth)
                }
                location @app { proxy_pass http://app; }
                location = /50x.html { root /srv/www; }
                location /api/ { \(Self.protect) proxy_pass http://app; }
            }
            """
        let report = try NginxFixtures.report(site: site)
        return (NginxFixtures.lines(report), report.warnings.dropFirst().map(\.description))
    }

    /// Without fastcgi_intercept_errors, error pages take nginx's own failures only; one that
    /// keeps the status is a warning, one that takes the target's status NOT GATED.
    @Test func errorPagesTakeFailuresAndWithInterceptDenials() throws {
        let kept = try Self.authLines(server: "    error_page 403 500 502 503 504 /50x.html;")
        #expect(kept.lines == ["/api/generate: gated", "/api/describe: gated"])
        #expect(
            kept.warnings == [
                "\(Self.site):3: error_page 403 500 502 503 504 /50x.html (\(Self.site):3) in effect in the gate's auth location "
                    + "= /_charge_gate/auth (\(Self.site):4): when the responder is down or hung (500 502 503 504), nginx answers "
                    + "the auth subrequest from /50x.html, served by location = /50x.html (\(Self.site):13) with the status kept, "
                    + "not the responder (give the auth location an error_page of its own, as charge-gate-server.conf does)"
            ])
        let taken = try Self.authLines(server: "    error_page 403 502 =200 @app;")
        #expect(
            taken.lines.first
                == "/api/generate: NOT GATED: POST /api/generate: error_page 403 502 =200 @app (\(Self.site):3) in effect in the "
                + "gate's auth location = /_charge_gate/auth (\(Self.site):4) sends the auth subrequest to location @app "
                + "(\(Self.site):12) when the responder is down or hung (502), and answers it 200: an allow")
        // A target made of a client header: its status cannot be known.
        let unknown = try Self.authLines(server: "    error_page 502 = $http_x_fallback;")
        #expect(
            unknown.lines.first
                == "/api/generate: UNDECIDED: POST /api/generate: cannot tell what error_page 502 = $http_x_fallback (\(Self.site):3) "
                + "in effect in the gate's auth location = /_charge_gate/auth (\(Self.site):4) answers the auth subrequest when the "
                + "responder is down or hung (502): $http_x_fallback takes its own status, and a 2xx there is an allow")
        // Its own error_page (any) replaces the server's.
        let own = try Self.authLines(server: "    error_page 403 502 =200 @app;", auth: "        error_page 599 = @app;")
        #expect(own.lines == ["/api/generate: gated", "/api/describe: gated"])
        #expect(own.warnings.isEmpty)
    }

    /// A cache stores an allow only with a validity for 204 and X-Accel-Expires ignored (the
    /// responder sends `X-Accel-Expires: 0` on every allow).
    @Test func aCachedAllowNeedsAValidityFor204AndXAccelExpiresIgnored() throws {
        let cache = """
                    fastcgi_cache charge_gate_deny;
                    fastcgi_cache_key $charge_gate_uri;
            """
        let respected = try Self.authLines(server: "    fastcgi_cache_valid any 1m;", auth: cache)
        #expect(respected.lines == ["/api/generate: gated", "/api/describe: gated"])
        let only200 = try Self.authLines(server: "    fastcgi_cache_valid 1m;\n    fastcgi_ignore_headers X-Accel-Expires;", auth: cache)
        #expect(only200.lines == ["/api/generate: gated", "/api/describe: gated"])
        let never = try Self.authLines(
            server: "    fastcgi_cache_valid any 1m;\n    fastcgi_ignore_headers X-Accel-Expires;",
            auth: cache + "\n        fastcgi_no_cache 1;")
        #expect(never.lines == ["/api/generate: gated", "/api/describe: gated"])
        let stored = try Self.authLines(
            server: "    fastcgi_cache_valid 204 10s;\n    fastcgi_ignore_headers x-accel-expires;", auth: cache)
        #expect(stored.lines.allSatisfy { $0.contains("NOT GATED: ") && $0.contains("stores the responder's allow (204)") })
    }

    /// The responder's listen against nginx's addresses.
    @Test func listenAddressesMatchAsNginxConnects() {
        #expect(GateAnalyser.reaches("unix:/run/a.sock", .unix(path: "/run/a.sock")))
        #expect(!GateAnalyser.reaches("unix:/run/b.sock", .unix(path: "/run/a.sock")))
        #expect(!GateAnalyser.reaches("127.0.0.1:9000", .unix(path: "/run/a.sock")))
        #expect(GateAnalyser.reaches("127.0.0.1:9000", .tcp(host: "127.0.0.1", port: 9000)))
        #expect(GateAnalyser.reaches("localhost:9000", .tcp(host: "127.0.0.1", port: 9000)))
        #expect(GateAnalyser.reaches("[::1]:9000", .tcp(host: "127.0.0.1", port: 9000)))
        #expect(GateAnalyser.reaches("10.0.0.2:9000", .tcp(host: "0.0.0.0", port: 9000)))
        #expect(!GateAnalyser.reaches("10.0.0.2:9000", .tcp(host: "10.0.0.3", port: 9000)))
        #expect(!GateAnalyser.reaches("127.0.0.1:9001", .tcp(host: "127.0.0.1", port: 9000)))
        #expect(GateAnalyser.reaches("gate.internal", .tcp(host: "gate.internal", port: 80)))
    }

    /// `listen: inherit` is not compared (the socket is systemd's); a direct fastcgi_pass is.
    @Test func listenInheritIsNotComparedADirectPassIs() throws {
        let site = """
            server {
                listen 127.0.0.1:8080;
                location = /_charge_gate/auth {
                    internal;
                    fastcgi_pass 127.0.0.1:9000;
                    fastcgi_next_upstream off;
                    fastcgi_param CHARGE_GATE_ROLE auth;
                    fastcgi_param CHARGE_GATE_URI $charge_gate_uri;
                }
                location /api/ { \(Self.protect) proxy_pass http://app; }
            }
            """
        var files = [NginxDump.File(path: "/etc/nginx/nginx.conf", bytes: Array(try NginxFixtures.text("nginx.conf").utf8))]
        files.append(NginxDump.File(path: Self.site, bytes: Array(site.utf8)))
        files += try NginxFixtures.snippetFiles().map { NginxDump.File(path: NginxFixtures.snippets + $0.name, bytes: Array($0.text.utf8)) }
        let model = NginxModel(try NginxConfiguration(dump: NginxDump(files: files)))
        let routes = try NginxFixtures.routes()
        let kinds = { (listen: ListenAddress?) -> [GateWarning.Kind] in
            GateAnalyser(model: model, routes: routes, listen: listen).analyse().warnings.map(\.kind)
        }
        #expect(kinds(.inherit) == [.serverWithoutGate])
        #expect(kinds(nil) == [.serverWithoutGate])
        #expect(kinds(.tcp(host: "127.0.0.1", port: 9000)) == [.serverWithoutGate])
        #expect(kinds(.unix(path: "/srv/gate/charge.sock")) == [.serverWithoutGate, .listenMismatch])
    }

    // MARK: warnings

    /// Warnings: a server without the gate, an auth location without `fastcgi_next_upstream off`.
    @Test func aServerWithoutTheGateAndAnAuthLocationThatMayRetryAreWarnings() throws {
        let site = """
            server {
                listen 127.0.0.1:8080;
                location = /_charge_gate/auth {
                    internal;
                    fastcgi_pass charge_gate;
                    fastcgi_param CHARGE_GATE_ROLE auth;
                    fastcgi_param CHARGE_GATE_URI $charge_gate_uri;
                }
                location /api/ { \(Self.protect) proxy_pass http://app; }
            }
            server {
                listen 127.0.0.1:8082;
                root /srv/www;
            }
            """
        let report = try NginxFixtures.report(site: site)
        #expect(report.isGated)
        #expect(
            report.warnings.map(\.description) == [
                "/etc/nginx/nginx.conf:29: server unix:/srv/gate/app.sock does not use the gate (no auth_request): nothing it serves is charged",
                "\(Self.site):11: server 127.0.0.1:8082 does not use the gate (no auth_request): nothing it serves is charged",
                "\(Self.site):3: the gate's auth location = /_charge_gate/auth has no fastcgi_next_upstream off: nginx's default "
                    + "(error timeout) may resend an auth subrequest to another responder after one spent the charge",
            ])
    }

    /// An nginx where no server uses the gate fails (there is no line to show it on).
    @Test func noGateAnywhereFails() throws {
        let report = try NginxFixtures.report(site: "server {\n    listen 8082;\n    location / { proxy_pass http://app; }\n}\n")
        #expect(report.routes.isEmpty)
        #expect(report.gateMissing)
        #expect(!report.isGated)
        #expect(report.warnings.map(\.kind).contains(.noGatedServer))
        #expect(report.text().hasSuffix("FAILED: 0 lines (route × server) in 0 gated servers: 0 gated, 0 NOT GATED; 3 warnings\n"))
    }

    // MARK: output

    /// The text table, byte for byte: the lines, each gated server's auth profile, the
    /// warnings, the summary.
    @Test func theTextTableHasALinePerServerAndRoute() throws {
        let text = try NginxFixtures.report("traps/missing-protect.conf").text()
        let auth = try NginxFixtures.snippetLine("charge-gate-server.conf", startingWith: "location = /_charge_gate/auth")
        #expect(
            text == """
                SERVER                    ROUTE          METHODS  VERDICT
                127.0.0.1:8080 localhost  /api/generate  POST     gated
                127.0.0.1:8080 localhost  /api/describe  any      NOT GATED: GET /api/describe: location / (\(Self.site):10) has no auth_request
                profile: 127.0.0.1:8080 localhost: edge, location = /_charge_gate/auth (\(auth))
                warning: /etc/nginx/nginx.conf:29: server unix:/srv/gate/app.sock does not use the gate (no auth_request): nothing it serves is charged
                FAILED: 2 lines (route × server) in 1 gated server: 1 gated, 1 NOT GATED; 1 warning

                """)
    }

    /// The JSON report parses, with the finding's kind, file, line and request.
    @Test func theJSONIsOneObjectForCI() throws {
        let report = try NginxFixtures.report("traps/missing-protect.conf")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(object["ok"] as? Bool == false)
        #expect(object["nginxConfig"] as? String == "/etc/nginx/nginx.conf")
        let routes = try #require(object["routes"] as? [[String: Any]])
        #expect(routes.map { $0["verdict"] as? String } == ["gated", "not_gated"])
        let finding = try #require(routes[1]["finding"] as? [String: Any])
        #expect(finding["kind"] as? String == "no_auth_request")
        #expect(finding["file"] as? String == Self.site)
        #expect(finding["line"] as? Int == 10)
        #expect(finding["method"] as? String == "GET")
        #expect(finding["uri"] as? String == "/api/describe")
        let probes = try #require(routes[0]["probes"] as? [[String: Any]])
        #expect(probes.first?["verdict"] as? String == "gated")
        #expect(probes.first?["chargedURI"] as? String == "/api/generate")
        let servers = try #require(object["servers"] as? [[String: Any]])
        let auth = try #require((servers.last?["authLocations"] as? [[String: Any]])?.first)
        #expect(auth["profile"] as? String == "edge")
        #expect(auth["location"] as? String == "location = /_charge_gate/auth")
        let warnings = try #require(object["warnings"] as? [[String: Any]])
        #expect(warnings.map { $0["kind"] as? String } == ["server_without_gate"])
    }

    /// JSON strings escape quotes, backslashes, control characters and HTML-significant characters.
    @Test func jsonStringsAreEscaped() {
        #expect(GateReport.quoted("a\"b\\c\n<&>\u{1}\u{2028}") == "\"a\\\"b\\\\c\\n\\u003c\\u0026\\u003e\\u0001\\u2028\"")
    }

    // MARK: regex samples

    /// Samples read from patterns; unsupported syntax gives none.
    @Test(arguments: [
        ("\\.(png|jpe?g)$", [".png", ".jpg", ".jpeg"]),
        ("^/api/(gen|desc)", ["/api/gen", "/api/desc"]),
        ("/thumb$", ["/thumb"]),
        ("^/a/[0-9]{2,3}/?$", ["/a/00", "/a/00/", "/a/99", "/a/99/", "/a/000", "/a/000/", "/a/999", "/a/999/"]),
        ("(?<id>[^/]+)\\.json", ["x.json", "xx.json"]),
        ("(?i)\\.PDF", [".PDF"]),
        ("a(?=b)", ["a"]),
        ("\\1", []),
        ("(unclosed", []),
    ])
    func regexSamplesAreUsefulGuesses(pattern: String, expected: [String]) {
        #expect(NginxRegexSampler.samples(pattern) == expected)
    }
}
