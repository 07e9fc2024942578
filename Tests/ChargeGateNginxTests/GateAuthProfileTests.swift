import ChargeGateCore
import Foundation
import Testing

@testable import ChargeGateNginx

/// The two auth profiles in check-nginx (issue 24): each server's profile, as nginx merges the
/// auth location's settings; every fixture of the no-free-pass checks run over both server
/// snippets with the same outcome; and the warnings for a keepalive profile that keeps no
/// connection and for an auth location that mixes the two.
@Suite struct GateAuthProfileTests {
    static let site = GateAnalyserTests.site
    static let protect = GateAnalyserTests.protect

    /// The fixtures that include the edge profile's server snippet.
    static func includingTheServerSnippet(_ fixtures: [String]) -> [String] {
        fixtures.filter { fixture in (try? NginxFixtures.text(fixture).contains(NginxFixtures.edgeInclude)) == true }
    }

    /// The good fixtures that include the server snippet (all of them).
    static let good = includingTheServerSnippet(GateTrapTests.good)
    /// The traps, undecided and warned fixtures that include the server snippet.
    static let found = includingTheServerSnippet(
        GateTrapTests.traps.map(\.fixture) + GateTrapTests.undecided.map(\.fixture) + GateTrapTests.warned.map(\.fixture))
    /// The settlement fixtures that include the server snippet.
    static let settle = includingTheServerSnippet(GateSettleTests.traps.map(\.fixture) + GateSettleTests.good)

    /// `file:line` of the auth location in a server snippet.
    static func authLocation(_ snippet: String) throws -> String {
        try NginxFixtures.snippetLine(snippet, startingWith: "location = /_charge_gate/auth")
    }

    /// A report's route lines (every probe included, from the JSON report) and warnings, with
    /// the keepalive snippet's lines named as the edge snippet's.
    static func findings(_ report: GateReport) throws -> (routes: String, warnings: [String]) {
        let json = report.json()
        let routes = try #require(json.range(of: "\"routes\":")?.lowerBound)
        let warnings = try #require(json.range(of: ",\"warnings\":")?.lowerBound)
        return (try NginxFixtures.asEdge(String(json[routes..<warnings])), try report.warnings.map { try NginxFixtures.asEdge("\($0)") })
    }

    // MARK: both profiles

    @Test func theListsAreNotEmpty() {
        #expect(Self.good.count == GateTrapTests.good.count)
        #expect(Self.found.count >= 40)
        #expect(Self.settle.count >= 10)
    }

    /// Each good fixture is gated on every line with either server snippet, with no warning but
    /// the stand-in app's, and each gated server names the snippet's profile.
    @Test(arguments: good)
    func aGoodFixtureIsGatedInBothProfiles(_ fixture: String) throws {
        for profile in [GateAuthProfile.edge, .keepalive] {
            let report = try NginxFixtures.report(dump: try NginxFixtures.dump(fixture, profile: profile))
            #expect(report.isGated, "\(profile): \(report.text())")
            #expect(report.routes.allSatisfy { $0.summary == "gated" }, "\(profile)")
            #expect(report.warnings.map(\.kind) == [.serverWithoutGate], "\(profile)")
            let gated = report.servers.filter(\.usesGate)
            #expect(!gated.isEmpty)
            #expect(gated.allSatisfy { $0.authLocations.map(\.profile) == [profile] }, "\(profile): \(report.text())")
        }
    }

    /// Each trap, undecided and warned fixture gives the keepalive snippet exactly the lines,
    /// probes, findings and warnings it gives the edge one: the profile changes nothing about
    /// what is charged.
    @Test(arguments: found)
    func aFixtureIsFoundAlikeInBothProfiles(_ fixture: String) throws {
        let edge = try NginxFixtures.report(dump: try NginxFixtures.dump(fixture, profile: .edge))
        let keepalive = try NginxFixtures.report(dump: try NginxFixtures.dump(fixture, profile: .keepalive))
        let (edgeRoutes, edgeWarnings) = try Self.findings(edge)
        let (keepaliveRoutes, keepaliveWarnings) = try Self.findings(keepalive)
        #expect(keepaliveRoutes == edgeRoutes)
        #expect(keepaliveWarnings == edgeWarnings)
        #expect(keepalive.isGated == edge.isGated)
        #expect(keepalive.summary == edge.summary)
    }

    /// Each settlement fixture alike, against its settled routes.
    @Test(arguments: settle)
    func aSettlementFixtureIsFoundAlikeInBothProfiles(_ fixture: String) throws {
        let config = try NginxFixtures.config("settle/charge-gate.yaml")
        let edge = try NginxFixtures.report(try NginxFixtures.dump(fixture, profile: .edge), config: config)
        let keepalive = try NginxFixtures.report(try NginxFixtures.dump(fixture, profile: .keepalive), config: config)
        #expect(try Self.findings(keepalive).routes == Self.findings(edge).routes)
        #expect(try Self.findings(keepalive).warnings == Self.findings(edge).warnings)
    }

    /// What an operator commonly sets at server level, each under both server snippets: the
    /// auth location sets it again (or nginx's merge makes it harmless), so every line stays
    /// gated without a warning.
    @Test(arguments: [
        "fastcgi_intercept_errors on;\n    recursive_error_pages on;\n    error_page 403 404 500 502 504 = @app;",
        "error_page 403 502 =200 @app;",
        // A cache that stores any answer of a location without its own cache or a store.
        "fastcgi_cache charge_gate_deny;\n    fastcgi_cache_key $uri;\n    fastcgi_cache_valid any 1m;\n"
            + "    fastcgi_ignore_headers X-Accel-Expires Cache-Control;",
        "fastcgi_cache_valid any 1m;\n    fastcgi_ignore_headers X-Accel-Expires;",
        "fastcgi_store on;",
        "fastcgi_buffering off;\n    fastcgi_keep_conn off;",
        "fastcgi_next_upstream error timeout http_500;",
        "include /usr/local/share/charge-gate/nginx/charge-gate-usage.conf;",
    ])
    func serverSettingsChangeNothingInEitherProfile(settings: String) throws {
        for (include, profile) in [(NginxFixtures.edgeInclude, GateAuthProfile.edge), (NginxFixtures.keepaliveInclude, .keepalive)] {
            let text = """
                server {
                    listen 127.0.0.1:8080;
                    \(settings)
                    \(include)
                    location @app { proxy_pass http://app; }
                    location /api/ { \(Self.protect) proxy_pass http://app; }
                }
                """
            var files = try NginxFixtures.dump("good/protect-all.conf", profile: profile).files.filter {
                !$0.path.hasPrefix("/etc/nginx/sites/")
            }
            files.insert(NginxDump.File(path: Self.site, bytes: Array(text.utf8)), at: 1)
            let report = try NginxFixtures.report(dump: NginxDump(files: files))
            #expect(NginxFixtures.lines(report) == ["/api/generate: gated", "/api/describe: gated"], "\(profile)")
            #expect(report.warnings.map(\.kind) == [.serverWithoutGate], "\(profile): \(report.text())")
            #expect(report.servers.filter(\.usesGate).map { $0.authLocations.map(\.profile) } == [[profile]])
        }
    }

    // MARK: nginx's merge

    /// A hand-written auth location with `auth` in a server with `server`: its profile, and its
    /// report's route lines.
    static func handWritten(server: String, auth: String) throws -> (profile: [GateAuthProfile], lines: [String]) {
        let text = """
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
                location /api/ { \(Self.protect) proxy_pass http://app; }
            }
            """
        let report = try NginxFixtures.report(site: text)
        return (report.servers.filter(\.usesGate).flatMap { $0.authLocations.map(\.profile) }, NginxFixtures.lines(report))
    }

    /// The profile as nginx merges the settings (`ngx_http_fastcgi_merge_loc_conf`): a store in
    /// a block turns off the cache it would inherit, a cache turns off the store, and either
    /// inherits as usual otherwise.
    @Test(arguments: [
        ("", "        fastcgi_cache charge_gate_deny;", GateAuthProfile.edge),
        ("    fastcgi_cache charge_gate_deny;", "", .edge),
        ("", "        fastcgi_keep_conn on;\n        fastcgi_store /dev/null/x;", .keepalive),
        ("    fastcgi_cache charge_gate_deny;", "        fastcgi_keep_conn on;\n        fastcgi_store /dev/null/x;", .keepalive),
        ("    fastcgi_keep_conn on;\n    fastcgi_store on;", "", .keepalive),
        ("    fastcgi_store on;", "        fastcgi_cache charge_gate_deny;", .edge),
        ("    fastcgi_keep_conn on;", "        fastcgi_cache charge_gate_deny;", .mixed),
        ("    fastcgi_keep_conn on;\n    fastcgi_cache charge_gate_deny;", "", .mixed),
        ("    fastcgi_cache charge_gate_deny;", "        fastcgi_cache off;", .other),
        ("    fastcgi_cache charge_gate_deny;", "        fastcgi_keep_conn on;\n        fastcgi_store off;", .mixed),
        ("", "        fastcgi_keep_conn on;", .other),
        ("", "        fastcgi_store /dev/null/x;", .other),
        ("", "", .other),
    ])
    func theProfileIsNginxsMerge(server: String, auth: String, profile: GateAuthProfile) throws {
        #expect(try Self.handWritten(server: server, auth: auth).profile == [profile])
    }

    /// A cache inherited from the server stores the responder's allow when it has a validity
    /// for 204 and X-Accel-Expires is ignored, unless the auth location has a store, which turns
    /// it off there; a store in the server does not turn off the location's own cache.
    @Test func aStoreTurnsOffAnInheritedCacheNotTheLocationsOwn() throws {
        let hostile = "    fastcgi_cache_valid any 1m;\n    fastcgi_ignore_headers X-Accel-Expires;\n    fastcgi_cache_key $uri;"
        let cache = "    fastcgi_cache charge_gate_deny;\n"
        let stored = try Self.handWritten(server: cache + hostile, auth: "")
        #expect(stored.lines.count == 2)
        #expect(stored.lines.allSatisfy { $0.contains("NOT GATED: ") && $0.contains("stores the responder's allow (204)") })
        let kept = try Self.handWritten(server: cache + hostile, auth: "        fastcgi_keep_conn on;\n        fastcgi_store /dev/null/x;")
        #expect(kept.lines == ["/api/generate: gated", "/api/describe: gated"])
        let own = try Self.handWritten(server: "    fastcgi_store on;\n" + hostile, auth: "        fastcgi_cache charge_gate_deny;")
        #expect(own.lines.allSatisfy { $0.contains("NOT GATED: ") && $0.contains("stores the responder's allow (204)") })
    }

    // MARK: the report

    /// The text report names each gated server's auth location and profile (after the table);
    /// the JSON report lists them in `servers`.
    @Test func theReportNamesEachServersProfile() throws {
        let report = try NginxFixtures.report(dump: try NginxFixtures.dump("good/second-server-gated.conf", profile: .keepalive))
        let place = try Self.authLocation("charge-gate-server-keepalive.conf")
        #expect(
            report.text().split(separator: "\n").filter { $0.hasPrefix("profile: ") } == [
                "profile: 127.0.0.1:8080 localhost: keepalive, location = /_charge_gate/auth (\(place))",
                "profile: 127.0.0.1:8081 api-internal: keepalive, location = /_charge_gate/auth (\(place))",
            ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let servers = try #require(object["servers"] as? [[String: Any]])
        #expect(servers.map { ($0["authLocations"] as? [Any])?.count } == [0, 1, 1])
        let auth = try #require((servers[1]["authLocations"] as? [[String: Any]])?.first)
        #expect(auth["location"] as? String == "location = /_charge_gate/auth")
        #expect(auth["profile"] as? String == "keepalive")
        #expect(auth["file"] as? String == NginxFixtures.snippets + "charge-gate-server-keepalive.conf")
        #expect("\(auth["file"] ?? ""):\(auth["line"] ?? "")" == place)
        // The edge snippet, and a gated server without an auth location.
        let edge = try NginxFixtures.report("good/protect-all.conf").text()
        #expect(
            edge.contains(
                "\nprofile: 127.0.0.1:8080 localhost: edge, location = /_charge_gate/auth (\(try Self.authLocation("charge-gate-server.conf")))\n"
            ))
        let missing = try NginxFixtures.report("traps/auth-location-missing.conf").text()
        #expect(missing.contains("\nprofile: 127.0.0.1:8080 localhost: no auth location (none passes CHARGE_GATE_ROLE auth to FastCGI)\n"))
    }

    // MARK: warnings

    /// The keepalive profile with an upstream that keeps no connection: a warning at the
    /// upstream, once however many servers include the snippet.
    @Test func theKeepaliveProfileWithoutUpstreamKeepaliveIsAWarning() throws {
        let place = try Self.authLocation("charge-gate-server-keepalive.conf")
        for fixture in ["good/protect-all.conf", "good/second-server-gated.conf"] {
            let dump = try NginxFixtures.dump(fixture, profile: .keepalive, upstreamKeepalive: false)
            let report = try NginxFixtures.report(dump: dump)
            #expect(report.isGated)
            #expect(report.warnings.map(\.kind) == [.serverWithoutGate, .keepaliveUnused], "\(fixture)")
            #expect(
                report.warnings.last?.description
                    == "/etc/nginx/nginx.conf:20: the gate's auth location = /_charge_gate/auth (\(place)) uses the keepalive profile, "
                    + "but upstream charge_gate (/etc/nginx/nginx.conf:20) has no keepalive: nginx closes every FastCGI connection "
                    + "after its answer, and the profile gains nothing (add keepalive 32; to the upstream, or use "
                    + "charge-gate-server.conf)")
        }
        // The edge profile needs none.
        let edge = try NginxFixtures.report(dump: try NginxFixtures.dump("good/protect-all.conf", profile: .edge))
        #expect(edge.warnings.map(\.kind) == [.serverWithoutGate])
    }

    /// The keepalive profile passing to an address, not an upstream: a warning at the pass.
    @Test func theKeepaliveProfileWithoutAnUpstreamIsAWarning() throws {
        let text = """
            server {
                listen 127.0.0.1:8080;
                location = /_charge_gate/auth {
                    internal;
                    fastcgi_pass unix:/srv/gate/charge.sock;
                    fastcgi_next_upstream off;
                    fastcgi_keep_conn on;
                    fastcgi_store /dev/null/charge-gate-never-stores;
                    fastcgi_param CHARGE_GATE_ROLE auth;
                    fastcgi_param CHARGE_GATE_URI $charge_gate_uri;
                }
                location /api/ { \(Self.protect) proxy_pass http://app; }
            }
            """
        let report = try NginxFixtures.report(site: text)
        #expect(NginxFixtures.lines(report) == ["/api/generate: gated", "/api/describe: gated"])
        #expect(
            report.warnings.map(\.description) == [
                "/etc/nginx/nginx.conf:29: server unix:/srv/gate/app.sock does not use the gate (no auth_request): nothing it serves "
                    + "is charged",
                "\(Self.site):5: the gate's auth location = /_charge_gate/auth (\(Self.site):3) uses the keepalive profile, but passes "
                    + "to unix:/srv/gate/charge.sock (\(Self.site):5), not to an upstream with keepalive: nginx closes every FastCGI "
                    + "connection after its answer, and the profile gains nothing (pass to an upstream with keepalive 32;, or use "
                    + "charge-gate-server.conf)",
            ])
        #expect(report.warnings.last?.kind == .keepaliveUnused)
    }

    /// The edge snippet in a server (or http block) with `fastcgi_keep_conn on`: the auth
    /// location mixes the profiles, a warning at the keep_conn; still gated.
    @Test func anAuthLocationThatMixesTheProfilesIsAWarning() throws {
        let text = """
            server {
                listen 127.0.0.1:8080;
                fastcgi_keep_conn on;
                \(NginxFixtures.edgeInclude)
                location /api/ { \(Self.protect) proxy_pass http://app; }
            }
            """
        let report = try NginxFixtures.report(site: text)
        #expect(NginxFixtures.lines(report) == ["/api/generate: gated", "/api/describe: gated"])
        let place = try Self.authLocation("charge-gate-server.conf")
        let cache = try NginxFixtures.snippetLine("charge-gate-server.conf", startingWith: "fastcgi_cache charge_gate_deny;")
        #expect(report.warnings.map(\.kind) == [.serverWithoutGate, .authProfileMixed])
        #expect(
            report.warnings.last?.description
                == "\(Self.site):3: the gate's auth location = /_charge_gate/auth (\(place)) mixes the two auth profiles: "
                + "fastcgi_keep_conn on (\(Self.site):3) with fastcgi_cache charge_gate_deny (\(cache)); nginx reads an answer to its "
                + "end, and keeps the connection, only when it may cache it, so every other answer (each allow: X-Accel-Expires: 0) "
                + "closes its connection (use one profile: charge-gate-server.conf without fastcgi_keep_conn on, or "
                + "charge-gate-server-keepalive.conf)")
        #expect(report.text().contains("\nprofile: 127.0.0.1:8080: mixed, location = /_charge_gate/auth (\(place))\n"))
    }
}
