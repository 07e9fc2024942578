// The nginx -T reader of `charge-gate check-nginx` on arbitrary bytes.
//
// Input: any bytes, read three ways: as one configuration file, as an `nginx -T` output (its
// `# configuration file PATH:` lines; without one, the input becomes /etc/nginx/nginx.conf of a
// dump), and as the URIs that probe the parsed locations (every line of the input).
// Invariants: never traps, never hangs; parsing is deterministic; an error names a line within
// the text (1 ... lines + 1); writing the parsed directives back (NginxToken.description) and
// parsing that gives the same directives (words, quoting and escapes read back alike); the
// includes of a dump resolve or fail with an error (loops are bounded); every server and
// location level's static tree (nginx's, ported) finds what the plain rule says for any URI
// without NUL bytes: an exact location, else a prefix location of the URI itself, else the
// auto redirect of `URI/`, else the longest prefix; the regex sampler gives at most 16 samples
// for any location name, and the PCRE translation of a regex location is deterministic and
// its regex matches URIs without trapping; and on configurations without regexes (no `~`, no
// `rewrite`) the whole analysis runs (subrequests, other client paths to a charged upstream
// path, the auth location's error pages, cache and fastcgi_pass against a listen) and its
// report renders as text and JSON; each line read as a request target gives a path for `$uri`
// and the query for `$args`; a dump has each file once.
import ChargeGateCore
import ChargeGateNginx
import FuzzSupport

let routes = [
    RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"]),
    RouteConfig(prefix: "/api", charges: [.init(poolIndex: 0, cost: 1)]),
    RouteConfig(prefix: "/", charges: [.init(poolIndex: 0, cost: 1)], methods: ["DELETE"]),
]

/// The directives as text again, one per line.
func render(_ directives: [NginxDirective]) -> String {
    directives.map { directive in
        let words = ([NginxToken(directive.name)] + directive.args).map(\.description).joined(separator: " ")
        guard let block = directive.block else { return words + ";" }
        return words + " {\n" + render(block) + "\n}"
    }.joined(separator: "\n")
}

/// The directives without places, to compare two parses.
func shape(_ directives: [NginxDirective]) -> String {
    directives.map { directive in
        let words = ([directive.name] + directive.values).map { "<" + hex(Array($0.utf8)) + ">" }.joined()
        return words + (directive.block.map { "{" + shape($0) + "}" } ?? ";")
    }.joined()
}

/// The plain rule nginx's static tree implements.
func reference(_ entries: [NginxLocationTree.Entry], _ uri: [UInt8]) -> NginxLocationTree.Result {
    if let exact = entries.first(where: { $0.exact && $0.name == uri }) { return .exact(exact.id) }
    if let same = entries.first(where: { !$0.exact && $0.name == uri }) { return .prefix(same.id) }
    let redirect = entries.filter { $0.name == uri + [UInt8(ascii: "/")] }
    if redirect.contains(where: \.autoRedirect), let entry = redirect.first(where: \.exact) ?? redirect.first {
        return .autoRedirect(entry.id)
    }
    var best: NginxLocationTree.Entry?
    for entry in entries where !entry.exact && uri.starts(with: entry.name) && entry.name.count > (best?.name.count ?? -1) {
        best = entry
    }
    return best.map { .prefix($0.id) } ?? .none
}

func checkTrees(_ model: NginxModel, uris: [[UInt8]]) {
    for level in model.servers + model.servers.flatMap(model.locations(in:)) {
        var entries: [NginxLocationTree.Entry] = []
        var seen = Set<[UInt8]>()
        for child in model[level].children.sorted(by: { $0.key < $1.key }).map(\.value) {
            guard let (modifier, name) = model[child].locationSpec, [.exact, .prefix, .noRegex].contains(modifier) else { continue }
            let bytes = Array(name.utf8)
            guard !bytes.contains(0), seen.insert(bytes + [modifier == .exact ? 1 : 0]).inserted else { continue }
            let proxies = model[child].directives.contains { NginxModel.passDirectives.contains($0.name) }
            entries.append(
                NginxLocationTree.Entry(
                    name: bytes, exact: modifier == .exact, noRegex: modifier == .noRegex,
                    autoRedirect: name.hasSuffix("/") && proxies, id: child))
        }
        let tree = NginxLocationTree(entries)
        for uri in uris where !uri.contains(0) {
            let found = tree.find(uri).result
            let expected = reference(entries, uri)
            require(
                found == expected, "the static tree finds what the plain rule says",
                "uri \(show(String(decoding: uri, as: UTF8.self))): \(found) vs \(expected), names "
                    + entries.map { ($0.exact ? "=" : "") + show(String(decoding: $0.name, as: UTF8.self)) }.joined(separator: " "))
        }
        for child in model[level].children.values {
            if let (modifier, name) = model[child].locationSpec, modifier.isRegex {
                require(NginxRegexSampler.samples(name).count <= NginxRegexSampler.maximumSamples, "at most 16 regex samples")
                checkRegex(name, caseless: modifier == .regexCaseless, uris: uris)
            }
        }
    }
}

/// A location's regex through the PCRE translation: deterministic, and a translated regex that
/// compiles matches any URI without trapping.
func checkRegex(_ pattern: String, caseless: Bool, uris: [[UInt8]]) {
    let first = Result { () throws(NginxPCRE.Unsupported) in try NginxPCRE.translate(pattern, caseless: caseless) }
    let second = Result { () throws(NginxPCRE.Unsupported) in try NginxPCRE.translate(pattern, caseless: caseless) }
    require(first == second, "the PCRE translation is deterministic", show(pattern))
    guard let regex = try? NginxRegex(pattern, caseless: caseless) else { return }
    for uri in uris.prefix(4) { _ = regex.match(String(decoding: uri, as: UTF8.self)) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOne(data, size) { bytes in
        let lines = bytes.count { $0 == 0x0A } + 1

        // One file.
        let first = Result { () throws(NginxParseError) in try NginxParser.parse(bytes, file: "f") }
        let second = Result { () throws(NginxParseError) in try NginxParser.parse(bytes, file: "f") }
        switch (first, second) {
        case (.success(let a), .success(let b)):
            require(a == b, "parsing is deterministic")
            let again = Result { () throws(NginxParseError) in try NginxParser.parse(Array(render(a).utf8), file: "g") }
            guard case .success(let reparsed) = again else {
                invariantFailed("written back, the directives parse again", "\(again)\n\(render(a))")
            }
            require(shape(reparsed) == shape(a), "written back, the directives read the same", render(a))
        case (.failure(let a), .failure(let b)):
            require(a == b, "parsing is deterministic")
            let line = a.location?.line ?? 0
            require(a.location?.file == "f" && line >= 1 && line <= lines + 1, "a parse error names a line of the text", "\(a)")
            require(!a.message.isEmpty, "a parse error has a message")
        default:
            invariantFailed("parsing is deterministic", "")
        }

        // A dump (the input's own markers, or the input as its main file).
        let dump: NginxDump
        if let parsed = try? NginxDump(parsing: bytes) {
            require(Set(parsed.files.map(\.path)).count == parsed.files.count, "a dump has each file once")
            dump = parsed
        } else {
            dump = NginxDump(files: [NginxDump.File(path: "/etc/nginx/nginx.conf", bytes: bytes)])
        }
        guard let configuration = try? NginxConfiguration(dump: dump) else { return }
        let model = NginxModel(configuration)
        let uris = bytes.split(separator: 0x0A).prefix(16).map { [UInt8(ascii: "/")] + $0.prefix(64) }
        checkTrees(model, uris: uris + [[UInt8(ascii: "/")], Array("/api/generate".utf8)])

        // Each line as a client's request target: `$uri` is a path, `$request_uri` the target
        // as sent, `$args` what follows the first `?`.
        for uri in uris {
            let text = String(decoding: uri, as: UTF8.self)
            let state = NginxRequestState(uri: text, method: "GET")
            require(state.uri.hasPrefix("/") && state.requestURI == text, "a request target reads as nginx reads it", show(text))
            require(!text.contains("?") || text.hasSuffix("?" + state.args), "$args follows the first ?", show(text))
        }

        // The analysis, where no regex is involved (their matching is the standard library's).
        guard !bytes.contains(UInt8(ascii: "~")), !bytes.indices.contains(where: { bytes[$0...].starts(with: Array("rewrite".utf8)) })
        else { return }
        // The responder's listen, a socket or a port (compared with the auth location's fastcgi_pass).
        let listen: ListenAddress = bytes.count % 2 == 0 ? .unix(path: "/run/cg.sock") : .tcp(host: "127.0.0.1", port: 9000)
        let report = GateAnalyser(model: model, routes: routes, listen: listen).analyse()
        for line in report.routes {
            require(!line.probes.isEmpty || line.server.usesGate, "a line has probes")
        }
        _ = report.text()
        _ = report.json()
    }
}
