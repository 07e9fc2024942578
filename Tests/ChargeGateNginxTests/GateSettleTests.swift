import ChargeGateCore
import Foundation
import Testing

@testable import ChargeGateNginx

extension ExpectedLine {
    /// A line charged but never settled (`NOT SETTLED: …`).
    static func notSettled(
        _ route: String, _ kind: GateFinding.Kind, at: String, _ message: String, server: String = "127.0.0.1:8080 localhost"
    ) -> ExpectedLine {
        ExpectedLine(server: server, route: route, verdict: "NOT SETTLED: " + message, kind: kind, at: at)
    }
}

private let site = "/etc/nginx/sites/site.conf"
private let unsettled = ": its hold is never settled (it stays charged as held)"

/// The settlement line (issue 22) in check-nginx: each settle/ fixture against
/// Fixtures/settle/charge-gate.yaml (routes settled by nginx's line, one by the app, one not
/// settled), the exact finding and its file:line.
@Suite struct GateSettleTests {
    static let traps: [FixtureCase] = [
        FixtureCase(
            "settle/child-access-log.conf",
            .notSettled(
                "/api/generate", .settleLineMissing, at: "\(site):12",
                "POST /api/generate/upload: location /api/generate/upload (\(site):11) writes no settlement line: access_log "
                    + "/srv/gate/upload.log (\(site):12) replaces the settlement line (\(settleLine)) it would inherit (include "
                    + "charge-gate-settle.conf beside it)" + unsettled),
            .gated("/api/describe"), .gated("/api/app"), .gated("/api/plain")),
        FixtureCase(
            "settle/access-log-off.conf", .gated("/api/generate"),
            .notSettled(
                "/api/describe", .settleLineMissing, at: "\(site):13",
                "GET /api/describe/: location /api/describe/ (\(site):11) writes no settlement line: access_log off (\(site):13) is "
                    + "in effect there" + unsettled),
            .gated("/api/app"), .gated("/api/plain")),
        FixtureCase(
            "settle/no-settle-line.conf",
            .notSettled(
                "/api/generate", .settleLineMissing, at: "/etc/nginx/nginx.conf:10",
                "POST /api/generate: location /api/ (\(site):6) writes no settlement line: access_log /srv/gate/access.log "
                    + "(/etc/nginx/nginx.conf:10) is the only access_log in effect there (include charge-gate-settle.conf in the "
                    + "server)" + unsettled),
            .notSettled(
                "/api/describe", .settleLineMissing, at: "/etc/nginx/nginx.conf:10",
                "GET /api/describe: location /api/ (\(site):6) writes no settlement line: access_log /srv/gate/access.log "
                    + "(/etc/nginx/nginx.conf:10) is the only access_log in effect there (include charge-gate-settle.conf in the "
                    + "server)" + unsettled),
            .gated("/api/app"), .gated("/api/plain")),
        FixtureCase(
            "settle/try-files-own-log.conf",
            .notSettled(
                "/api/generate", .settleLineMissing, at: "\(site):12",
                "POST /api/generate: location @app (\(site):11), where try_files $uri @app (\(site):9) sends it, writes no "
                    + "settlement line: access_log /srv/gate/app.log (\(site):12) replaces the settlement line (\(settleLine)) it "
                    + "would inherit (include charge-gate-settle.conf beside it)" + unsettled),
            .notSettled(
                "/api/describe", .settleLineMissing, at: "\(site):12",
                "GET /api/describe: location @app (\(site):11), where try_files $uri @app (\(site):9) sends it, writes no "
                    + "settlement line: access_log /srv/gate/app.log (\(site):12) replaces the settlement line (\(settleLine)) it "
                    + "would inherit (include charge-gate-settle.conf beside it)" + unsettled),
            .gated("/api/app"), .gated("/api/plain")),
        FixtureCase(
            "settle/wrong-socket.conf",
            .notSettled(
                "/api/generate", .settleLineSocket, at: "\(site):5",
                "POST /api/generate: the settlement line access_log syslog:server=unix:/run/charge-gate/charge.sock,… (\(site):5) "
                    + "in effect in location /api/ (\(site):7) goes to the unix socket /run/charge-gate/charge.sock, not to the "
                    + "responder's settlement socket /run/charge-gate/settle.sock" + unsettled),
            .notSettled(
                "/api/describe", .settleLineSocket, at: "\(site):5",
                "GET /api/describe: the settlement line access_log syslog:server=unix:/run/charge-gate/charge.sock,… (\(site):5) "
                    + "in effect in location /api/ (\(site):7) goes to the unix socket /run/charge-gate/charge.sock, not to the "
                    + "responder's settlement socket /run/charge-gate/settle.sock" + unsettled),
            .gated("/api/app"), .gated("/api/plain")),
        FixtureCase(
            "settle/no-condition.conf",
            .notSettled(
                "/api/generate", .settleLineCondition, at: "\(site):5",
                "POST /api/generate: the settlement line access_log syslog:server=unix:/run/charge-gate/settle.sock,… (\(site):5) "
                    + "in effect in location /api/ (\(site):7): it has no if=$charge_gate_hold: nginx sends a line for every "
                    + "request there; the responder refuses those without a hold, and they crowd out the held requests' lines in "
                    + "its short queue"),
            .notSettled(
                "/api/describe", .settleLineCondition, at: "\(site):5",
                "GET /api/describe: the settlement line access_log syslog:server=unix:/run/charge-gate/settle.sock,… (\(site):5) "
                    + "in effect in location /api/ (\(site):7): it has no if=$charge_gate_hold: nginx sends a line for every "
                    + "request there; the responder refuses those without a hold, and they crowd out the held requests' lines in "
                    + "its short queue"),
            .gated("/api/app"), .gated("/api/plain")),
        FixtureCase(
            "settle/intercept-location-only.conf",
            .notSettled(
                "/api/generate", .settleLineMissing, at: "/etc/nginx/nginx.conf:10",
                "POST /api/generate: location @charge_gate_denied (\(serverSnippet):\(deniedLine)), where error_page 403 = "
                    + "@charge_gate_denied (\(protectSnippet):\(protectDenied)) sends it, writes no settlement line: access_log "
                    + "/srv/gate/access.log (/etc/nginx/nginx.conf:10) is the only access_log in effect there (include "
                    + "charge-gate-settle.conf in the server)" + unsettled),
            .notSettled(
                "/api/describe", .settleLineMissing, at: "/etc/nginx/nginx.conf:10",
                "GET /api/describe: location @charge_gate_denied (\(serverSnippet):\(deniedLine)), where error_page 403 = "
                    + "@charge_gate_denied (\(protectSnippet):\(protectDenied)) sends it, writes no settlement line: access_log "
                    + "/srv/gate/access.log (/etc/nginx/nginx.conf:10) is the only access_log in effect there (include "
                    + "charge-gate-settle.conf in the server)" + unsettled),
            .gated("/api/app"), .gated("/api/plain")),
        FixtureCase(
            "settle/error-page-502.conf",
            .notSettled(
                "/api/generate", .settleLineMissing, at: "\(site):13",
                "POST /api/generate: location = /50x.html (\(site):12), where error_page 502 504 /50x.html (\(site):9) sends it, "
                    + "writes no settlement line: access_log /srv/gate/errors.log (\(site):13) replaces the settlement line "
                    + "(\(settleLine)) it would inherit (include charge-gate-settle.conf beside it)" + unsettled),
            .notSettled(
                "/api/describe", .settleLineMissing, at: "\(site):13",
                "GET /api/describe: location = /50x.html (\(site):12), where error_page 502 504 /50x.html (\(site):9) sends it, "
                    + "writes no settlement line: access_log /srv/gate/errors.log (\(site):13) replaces the settlement line "
                    + "(\(settleLine)) it would inherit (include charge-gate-settle.conf beside it)" + unsettled),
            .gated("/api/app"), .gated("/api/plain")),
    ]

    /// Fixtures where every settled route writes its line.
    static let good = [
        "settle/server-level.conf", "settle/http-level.conf", "settle/try-files-named.conf", "settle/location-level.conf",
    ]

    /// The snippets' paths in the fixtures.
    static let serverSnippet = NginxFixtures.snippets + "charge-gate-server.conf"
    static let protectSnippet = NginxFixtures.snippets + "charge-gate-protect.conf"
    /// Where `location @charge_gate_denied` starts in charge-gate-server.conf.
    static let deniedLine = snippetLineNumber("charge-gate-server.conf", "location @charge_gate_denied")
    /// Where `error_page 403 = @charge_gate_denied` is in charge-gate-protect.conf.
    static let protectDenied = snippetLineNumber("charge-gate-protect.conf", "error_page 403 = @charge_gate_denied")

    /// The line (from 1) of a snippet that starts with `prefix`; 0 when none does.
    static func snippetLineNumber(_ name: String, _ prefix: String) -> Int {
        let text = (try? NginxFixtures.snippetFiles().first { $0.name == name }?.text) ?? nil
        let lines = (text ?? "").split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.firstIndex { $0.hasPrefix(prefix) } ?? -1) + 1
    }

    /// Where charge-gate-settle.conf's access_log line is.
    static let settleLine =
        NginxFixtures.snippets + "charge-gate-settle.conf:\(snippetLineNumber("charge-gate-settle.conf", "access_log "))"

    /// `report`'s lines as `trap` expects them, exactly, and a failed report.
    static func expect(_ report: GateReport, _ trap: FixtureCase) throws {
        #expect(report.routes.count == trap.lines.count, "\(report.text())")
        for (line, expected) in zip(report.routes, trap.lines) {
            #expect(line.server.label == expected.server)
            #expect(line.prefix == expected.route)
            #expect(line.summary == expected.verdict)
            #expect(line.finding?.kind == expected.kind)
            #expect(line.finding.map { "\($0.location)" } == expected.at)
            // Charged all the same: the finding is about the hold, never the gate.
            if expected.kind != nil { #expect(line.probes.allSatisfy { !$0.verdict.isFailure }) }
        }
        #expect(!report.isGated)
        #expect(report.text().contains("FAILED: "))
    }

    /// Each trap gives exactly its lines, with the exact finding and file:line.
    @Test(arguments: traps)
    func trapIsFound(_ trap: FixtureCase) throws {
        try Self.expect(try NginxFixtures.settleReport(trap.fixture), trap)
    }

    /// Each good fixture is gated on every line, with no warning but the stand-in app's server.
    @Test(arguments: good)
    func goodConfigSettles(_ fixture: String) throws {
        let report = try NginxFixtures.settleReport(fixture)
        #expect(report.isGated, "\(report.text())")
        #expect(report.routes.map(\.summary) == ["gated", "gated", "gated", "gated"])
        #expect(report.warnings.map(\.kind) == [.serverWithoutGate])
    }

    /// Without settled routes (the issue-12 fixtures' config) no settlement line is needed: a
    /// settle trap is gated there.
    @Test func noSettledRouteNeedsNoLine() throws {
        let report = try NginxFixtures.report("settle/no-settle-line.conf")
        #expect(report.isGated, "\(report.text())")
    }

    /// The config renames amountHeader, the shipped log_format still logs X-Charge-Amount: the
    /// route settled to the app's header is NOT SETTLED there, the refund-only one is fine.
    @Test func anAmountHeaderTheFormatDoesNotLogIsFound() throws {
        let report = try NginxFixtures.settleReport("settle/server-level.conf", extra: "amountHeader: X-Usage\n")
        let format = try NginxFixtures.snippetLine("charge-gate-http.conf", startingWith: "log_format charge_gate_settle")
        try Self.expect(
            report,
            FixtureCase(
                "settle/server-level.conf",
                .notSettled(
                    "/api/generate", .settleFormat, at: format,
                    "POST /api/generate: log_format charge_gate_settle (\(format)) logs the amount from "
                        + "$upstream_http_x_charge_amount, but the config's amountHeader is $upstream_http_x_usage: the app's "
                        + "amounts never arrive, and every hold stands"),
                .gated("/api/describe"), .gated("/api/app"), .gated("/api/plain")))
    }

    /// A charge_gate_settle format with its fields in another order: every route settled by
    /// nginx's line is NOT SETTLED, whatever its amount.
    @Test func aFormatTheResponderDoesNotParseIsFound() throws {
        var dump = try NginxFixtures.dump("settle/server-level.conf")
        let index = try #require(dump.files.firstIndex { $0.path.hasSuffix("/charge-gate-http.conf") })
        let text = String(decoding: dump.files[index].bytes, as: UTF8.self)
        let swapped = text.replacingOccurrences(
            of: "'cg1|$charge_gate_hold|$charge_gate_origin|", with: "'cg1|$charge_gate_origin|$charge_gate_hold|")
        #expect(swapped != text)
        dump.files[index] = NginxDump.File(path: dump.files[index].path, bytes: Array(swapped.utf8))
        let report = try NginxFixtures.report(dump, config: try NginxFixtures.config("settle/charge-gate.yaml"))
        let format = try NginxFixtures.snippetLine("charge-gate-http.conf", startingWith: "log_format charge_gate_settle")
        let expected = GateAnalyser.settleFormatHead + "$upstream_http_x_charge_amount"
        let message =
            "log_format charge_gate_settle (\(format)) is not the line the responder parses (\(expected)): it refuses every line, "
            + "and the holds are never settled"
        try Self.expect(
            report,
            FixtureCase(
                "settle/server-level.conf", .notSettled("/api/generate", .settleFormat, at: format, "POST /api/generate: " + message),
                .notSettled("/api/describe", .settleFormat, at: format, "GET /api/describe: " + message), .gated("/api/app"),
                .gated("/api/plain")))
    }

    /// The format check reads the fields the responder parses: the shipped log_format is
    /// exactly `SettleLine`'s, and a line nginx writes from it parses.
    @Test func theShippedFormatIsTheParsersOwn() throws {
        let model = NginxModel(try NginxConfiguration(dump: try NginxFixtures.dump("settle/server-level.conf")))
        let format = try #require(GateAnalyser.settleFormat(in: model))
        #expect(format.format == GateAnalyser.settleFormatHead + GateConfig().amountVariable)
        let line = "<190>Dec  6 17:02:34 nginx: cg1|3e38b36970ead3395d42f5cf56e60a2e|main|200|200|67|7|0.001|1796576554.979|3"
        let parsed = try SettleLine(parsing: Array(line.utf8))
        #expect(parsed.hold == "3e38b36970ead3395d42f5cf56e60a2e")
        #expect(parsed.facts.amount == .value(3))
    }

    /// charge-gate-settle.conf ships the socket a default config reads: settle.sock beside the
    /// default listen.
    @Test func theShippedSocketIsTheDefaultConfigs() throws {
        let text = try #require(try NginxFixtures.snippetFiles().first { $0.name == "charge-gate-settle.conf" }?.text)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("access_log ") })
        let target = String(try #require(line.split(separator: " ").dropFirst().first))
        #expect(GateAnalyser.syslogSocket(target) == GateConfig().settleSocketPath)
        #expect(line.hasSuffix(" charge_gate_settle if=$charge_gate_hold;"))
    }

    /// Every settlement kind has a trap (the others are GateTrapTests').
    @Test func everySettlementKindHasATrap() {
        let covered = Set(Self.traps.flatMap { $0.lines.compactMap(\.kind) }).union([.settleFormat])
        #expect(covered == Set(GateFinding.Kind.allCases.filter(\.isSettlement)))
    }

    /// Every fixture under settle/ is in a table.
    @Test func everySettleFixtureIsListed() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/settle", withExtension: nil))
        let names = try FileManager.default.contentsOfDirectory(atPath: url.path()).filter { $0.hasSuffix(".conf") }
        #expect(Set(names.map { "settle/" + $0 }) == Set(Self.traps.map(\.fixture) + Self.good))
    }

    /// The JSON report says `not_settled`, with the finding's kind and place.
    @Test func theJSONReportSaysNotSettled() throws {
        let json = try NginxFixtures.settleReport("settle/access-log-off.conf").json()
        #expect(json.contains("\"ok\":false"))
        #expect(json.contains("\"route\":\"/api/describe\",\"methods\":null,\"verdict\":\"not_settled\""))
        #expect(json.contains("\"finding\":{\"kind\":\"settle_line_missing\",\"method\":\"GET\",\"uri\":\"/api/describe/\""))
        #expect(json.contains("\"summary\":\"4 lines (route × server) in 1 gated server: 3 gated, 0 NOT GATED, 1 NOT SETTLED; 1 warning\""))
    }
}
