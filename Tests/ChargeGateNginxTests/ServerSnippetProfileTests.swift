import Testing

@testable import ChargeGateNginx

/// The two server snippets, nginx/charge-gate-server.conf (the edge profile) and
/// nginx/charge-gate-server-keepalive.conf (the keepalive profile), are one file but for their
/// header comment and the block between `# --- profile: NAME ---` and `# --- end of profile ---`
/// in the auth location; the edge block caches denials in nginx and keeps no connection, the
/// keepalive block keeps connections with a store and caches nothing.
@Suite struct ServerSnippetProfileTests {
    /// A server snippet cut in three.
    struct Parts {
        /// The leading comment, up to the first empty line.
        var header: [Substring]
        /// The lines from the profile marker to the end marker, both included, and the line
        /// (from 1) of the first.
        var profile: [Substring]
        /// Where the profile block starts (the line of its marker, from 1).
        var profileLine: Int
        /// Every other line, in order.
        var rest: [Substring]
        /// The whole file, parsed.
        var directives: [NginxDirective]
    }

    static let endMarker = "# --- end of profile ---"

    /// The snippet `name`, cut around its header and its block of profile `profile`.
    static func parts(_ name: String, profile: String) throws -> Parts {
        let text = try #require(try NginxFixtures.snippetFiles().first { $0.name == name }?.text)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let headerEnd = try #require(lines.firstIndex { $0.isEmpty })
        let header = lines[..<headerEnd]
        #expect(!header.isEmpty && header.allSatisfy { $0.hasPrefix("#") }, "\(name): the header is comments only")
        let marker = "# --- profile: \(profile) ---"
        let trimmed = lines.map { $0.drop { $0 == " " } }
        #expect(trimmed.filter { $0.hasPrefix("# --- ") }.map(String.init) == [marker, endMarker], "\(name): one block, marked")
        let start = try #require(trimmed.firstIndex { $0 == marker })
        let end = try #require(trimmed.firstIndex { $0 == endMarker })
        #expect(start > headerEnd && end > start)
        return Parts(
            header: Array(header), profile: Array(lines[start...end]), profileLine: start + 1,
            rest: Array(lines[headerEnd..<start] + lines[(end + 1)...]),
            directives: try NginxParser.parse(Array(text.utf8), file: name))
    }

    static func edge() throws -> Parts { try parts("charge-gate-server.conf", profile: "edge") }
    static func keepalive() throws -> Parts { try parts("charge-gate-server-keepalive.conf", profile: "keepalive") }

    /// The directives of the profile block: the auth location's own directives between the
    /// markers (the block is inside that location, and holds no nested block).
    static func profileDirectives(_ parts: Parts) throws -> [NginxDirective] {
        let auth = try #require(parts.directives.first { $0.name == "location" && $0.values == ["=", "/_charge_gate/auth"] })
        let range = parts.profileLine...(parts.profileLine + parts.profile.count - 1)
        // The location opens before the block and goes on after it.
        #expect(auth.location.line < parts.profileLine)
        #expect(try #require(auth.block?.last).location.line > range.upperBound)
        let inside = (auth.block ?? []).filter { range.contains($0.location.line) }
        #expect(inside.allSatisfy { $0.block == nil })
        // Every directive of the block is one of the location's own.
        #expect(
            try NginxParser.parse(Array(parts.profile.joined(separator: "\n").utf8), file: "block").map(\.name) == inside.map(\.name))
        return inside
    }

    /// Every directive of the file, nested ones too, outside the profile block.
    static func outsideProfile(_ parts: Parts) -> [NginxDirective] {
        let range = parts.profileLine...(parts.profileLine + parts.profile.count - 1)
        var out: [NginxDirective] = []
        var open = parts.directives
        while let directive = open.popLast() {
            if !range.contains(directive.location.line) { out.append(directive) }
            open += directive.block ?? []
        }
        return out
    }

    /// The same file, line by line, once the header comment and the profile block are out.
    @Test func theSnippetsDifferOnlyInTheirHeaderAndProfileBlock() throws {
        let edge = try Self.edge()
        let keepalive = try Self.keepalive()
        let firstDifference = zip(edge.rest, keepalive.rest).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(firstDifference == nil, "first difference: \(String(describing: firstDifference?.element))")
        #expect(edge.rest.count == keepalive.rest.count)
        // The block sits at the same place in both.
        #expect(edge.profileLine - edge.header.count == keepalive.profileLine - keepalive.header.count)
        // Each header tells how to include its own file.
        #expect(edge.header.contains("#     include /path/to/charge-gate/nginx/charge-gate-server.conf;"))
        #expect(keepalive.header.contains("#     include /path/to/charge-gate/nginx/charge-gate-server-keepalive.conf;"))
    }

    /// The edge block: a fastcgi_cache, neither fastcgi_keep_conn nor fastcgi_store. The
    /// keepalive block: fastcgi_keep_conn on and a fastcgi_store (a path, never `off`), nothing
    /// of fastcgi_cache. Outside the blocks, none of these: the block alone decides the profile.
    @Test func eachBlockHasItsProfilesDirectivesAndNoOther() throws {
        let edge = try Self.profileDirectives(try Self.edge())
        let cache = try #require(edge.first { $0.name == "fastcgi_cache" })
        #expect(cache.values != ["off"])
        #expect(!edge.contains { $0.name == "fastcgi_keep_conn" || $0.name == "fastcgi_store" })

        let keepalive = try Self.profileDirectives(try Self.keepalive())
        #expect(keepalive.filter { $0.name == "fastcgi_keep_conn" }.map(\.values) == [["on"]])
        let store = try #require(keepalive.first { $0.name == "fastcgi_store" })
        #expect(store.values.count == 1 && store.values != ["off"] && store.values != ["on"])
        #expect(!keepalive.contains { $0.name.hasPrefix("fastcgi_cache") })

        let decisive: Set<String> = ["fastcgi_cache", "fastcgi_keep_conn", "fastcgi_store"]
        for parts in [try Self.edge(), try Self.keepalive()] {
            #expect(!Self.outsideProfile(parts).contains { decisive.contains($0.name) || $0.name.hasPrefix("fastcgi_cache") })
        }
    }
}
