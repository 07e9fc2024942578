import ChargeGateCore
import ChargeGateTestSupport
import Foundation
import Testing

@testable import ChargeGateNginx

/// The fixtures as `nginx -T` would print them: the shared main file (`Fixtures/nginx.conf`
/// as /etc/nginx/nginx.conf), the fixture's own files (each after its `# configuration file`
/// line), then the repository's snippets as /usr/local/share/charge-gate/nginx/*.conf, so the
/// shipped snippets are what is checked. Paths in findings are those fixed paths.
enum NginxFixtures {
    /// Where the snippets are installed in the fixtures.
    static let snippets = "/usr/local/share/charge-gate/nginx/"

    /// A fixture's text (`traps/NAME.conf`, `good/NAME.conf`, `nginx.conf`, `charge-gate.yaml`).
    static func text(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil))
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The repository's nginx/*.conf, by file name.
    static func snippetFiles() throws -> [(name: String, text: String)] {
        let directory = repositoryRoot().appending(path: "nginx")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path()).filter { $0.hasSuffix(".conf") }.sorted()
        return try names.map { ($0, try String(contentsOf: directory.appending(path: $0), encoding: .utf8)) }
    }

    /// The files of a fixture (a part of an `nginx -T` output: the files that the shared main
    /// file's `include /etc/nginx/sites/*.conf` reads): text before the first marker is
    /// ignored, the newline nginx adds after each file is dropped, and a marker line counts only
    /// when its path is the first or one that an `include` seen so far names (as nginx reads only
    /// those); any other is a comment in its file. The e2e tests' `split_dump` reads them alike.
    static func files(ofFixture text: String) -> [NginxDump.File] {
        let marker = "# configuration file "
        var patterns = ["/etc/nginx/sites/*.conf"]
        var files: [(path: String, lines: [Substring])] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let bare = line.hasSuffix("\r") ? line.dropLast() : line
            if bare.hasPrefix(marker) && bare.hasSuffix(":") && bare.count > marker.count + 1 {
                let path = String(bare.dropFirst(marker.count).dropLast())
                if files.isEmpty || patterns.contains(where: { NginxGlob($0).matches(path) }) {
                    files.append((path, []))
                    continue
                }
            }
            guard !files.isEmpty else { continue }
            files[files.count - 1].lines.append(line)
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if words.count == 2, words[0] == "include", words[1].hasSuffix(";") {
                let name = String(words[1].dropLast())
                patterns.append(name.hasPrefix("/") ? name : "/etc/nginx/" + name)
            }
        }
        return files.map { file in
            var body = file.lines.joined(separator: "\n")
            if body.hasSuffix("\n") { body.removeLast() }
            return NginxDump.File(path: file.path, bytes: Array(body.utf8))
        }
    }

    /// The whole dump of a fixture.
    static func dump(_ fixture: String) throws -> NginxDump {
        var files = [NginxDump.File(path: "/etc/nginx/nginx.conf", bytes: Array(try text("nginx.conf").utf8))]
        files += Self.files(ofFixture: try text(fixture))
        files += try snippetFiles().map { NginxDump.File(path: snippets + $0.name, bytes: Array($0.text.utf8)) }
        return NginxDump(files: files)
    }

    /// The include of the edge profile's server snippet, as the fixtures write it.
    static let edgeInclude = "include /usr/local/share/charge-gate/nginx/charge-gate-server.conf;"
    /// The include of the keepalive profile's server snippet.
    static let keepaliveInclude = "include /usr/local/share/charge-gate/nginx/charge-gate-server-keepalive.conf;"

    /// The whole dump of a fixture in an auth profile: for `.keepalive`, each include of
    /// charge-gate-server.conf includes charge-gate-server-keepalive.conf instead, and (with
    /// `upstreamKeepalive`) the shared main file's `upstream charge_gate` keeps connections
    /// (`keepalive 32;` on its server's line). Every line stays where it was.
    static func dump(_ fixture: String, profile: GateAuthProfile, upstreamKeepalive: Bool = true) throws -> NginxDump {
        let files = try dump(fixture).files
        guard profile == .keepalive else { return NginxDump(files: files) }
        return NginxDump(
            files: files.map { file in
                var text = String(decoding: file.bytes, as: UTF8.self).replacingOccurrences(of: edgeInclude, with: keepaliveInclude)
                if file.path == "/etc/nginx/nginx.conf" && upstreamKeepalive {
                    text = text.replacingOccurrences(
                        of: "server unix:/srv/gate/charge.sock;", with: "server unix:/srv/gate/charge.sock; keepalive 32;")
                }
                return NginxDump.File(path: file.path, bytes: Array(text.utf8))
            })
    }

    /// The report of `dump` against the fixtures' routes, the responder at `listen`.
    static func report(dump: NginxDump) throws -> GateReport {
        let model = NginxModel(try NginxConfiguration(dump: dump))
        return GateAnalyser(model: model, routes: try routes(), listen: listen).analyse()
    }

    /// `text` with each `charge-gate-server-keepalive.conf:LINE` named as the line of
    /// charge-gate-server.conf with the same text, where exactly one has it (the two files are
    /// the same outside their profile blocks and header comments): a keepalive report's words
    /// as the edge report has them.
    static func asEdge(_ text: String) throws -> String {
        let snippets = try snippetFiles()
        func lines(_ name: String) -> [Substring] {
            (snippets.first { $0.name == name }?.text ?? "").split(separator: "\n", omittingEmptySubsequences: false)
        }
        let edge = lines("charge-gate-server.conf")
        let keepalive = lines("charge-gate-server-keepalive.conf")
        var out = text
        let name = "charge-gate-server-keepalive.conf:"
        while let found = out.range(of: name) {
            let digits = out[found.upperBound...].prefix { $0.isNumber }
            var replacement = "charge-gate-server.conf:" + digits
            if let line = Int(digits), line >= 1, line <= keepalive.count {
                let same = edge.indices.filter { edge[$0] == keepalive[line - 1] }
                if same.count == 1 { replacement = "charge-gate-server.conf:\(same[0] + 1)" } else { replacement += "(unmapped)" }
            }
            out.replaceSubrange(found.lowerBound..<out.index(found.upperBound, offsetBy: digits.count), with: replacement)
        }
        return out
    }

    /// The fixtures' routes (Fixtures/charge-gate.yaml).
    static func routes() throws -> [RouteConfig] {
        switch ConfigLoader.parse(try text("charge-gate.yaml"), file: "charge-gate.yaml") {
        case .success(let config): return config.routes
        case .failure(let errors): throw errors
        }
    }

    /// Where the fixtures' responder listens (the e2e tests map /srv/gate/ to the stack's
    /// directory, where the harness's responder listens).
    static let listen = ListenAddress.unix(path: "/srv/gate/charge.sock")

    /// The report of a fixture.
    static func report(_ fixture: String) throws -> GateReport {
        let model = NginxModel(try NginxConfiguration(dump: try dump(fixture)))
        return GateAnalyser(model: model, routes: try routes(), listen: listen).analyse()
    }

    /// The config of Fixtures/`name`, with `extra` (more top-level keys) first.
    static func config(_ name: String, extra: String = "") throws -> GateConfig {
        switch ConfigLoader.parse(extra + (try text(name)), file: name) {
        case .success(let config): return config
        case .failure(let errors): throw errors
        }
    }

    /// The report of `dump` against `config` (its routes, settlement socket and amount
    /// variable; the responder at `listen`).
    static func report(_ dump: NginxDump, config: GateConfig) throws -> GateReport {
        let model = NginxModel(try NginxConfiguration(dump: dump))
        return GateAnalyser(
            model: model, routes: config.routes, listen: listen, settleSocket: config.settleSocketPath,
            amountVariable: config.amountVariable
        ).analyse()
    }

    /// The report of a settle/ fixture against Fixtures/settle/charge-gate.yaml (`extra`: more
    /// top-level keys).
    static func settleReport(_ fixture: String, extra: String = "") throws -> GateReport {
        try report(try dump(fixture), config: try config("settle/charge-gate.yaml", extra: extra))
    }

    /// The report of the shared main file with `site` as /etc/nginx/sites/site.conf.
    static func report(site: String) throws -> GateReport {
        var files = [NginxDump.File(path: "/etc/nginx/nginx.conf", bytes: Array(try text("nginx.conf").utf8))]
        files.append(NginxDump.File(path: "/etc/nginx/sites/site.conf", bytes: Array(site.utf8)))
        files += try snippetFiles().map { NginxDump.File(path: snippets + $0.name, bytes: Array($0.text.utf8)) }
        let model = NginxModel(try NginxConfiguration(dump: NginxDump(files: files)))
        return GateAnalyser(model: model, routes: try routes(), listen: listen).analyse()
    }

    /// The route lines of a report as `ROUTE: SUMMARY`.
    static func lines(_ report: GateReport) -> [String] {
        report.routes.map { "\($0.prefix): \($0.summary)" }
    }

    /// `PATH:LINE` of the first line of a snippet that starts with `prefix` (after spaces), so
    /// expectations follow the snippets when they change.
    static func snippetLine(_ name: String, startingWith prefix: String) throws -> String {
        let text = try snippetFiles().first { $0.name == name }?.text ?? ""
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let index = try #require(lines.firstIndex { $0.drop { $0 == " " }.hasPrefix(prefix) })
        return "\(snippets)\(name):\(index + 1)"
    }

    /// `text` with `{auth_request}` replaced by the file:line of the gate's auth_request line.
    static func expand(_ text: String) throws -> String {
        guard text.contains("{auth_request}") else { return text }
        let place = try snippetLine("charge-gate-protect.conf", startingWith: "auth_request ")
        return text.replacingOccurrences(of: "{auth_request}", with: place)
    }
}
