import Testing

@testable import ChargeGateNginx

/// The location search against what nginx 1.22.1 answered for the same server
/// (Fixtures/matching.conf, each location naming itself in `X-Loc`; tests/e2e/
/// test_check_nginx.py sends the same URIs to a real nginx and expects the same table).
@Suite struct NginxLocationMatcherTests {
    /// URI → the X-Loc of the location nginx uses, `301 X` for its auto redirect.
    static let table: [(String, String)] = [
        ("/exact", "= /exact"),
        ("/exact/", "/exact"),
        ("/exactly", "/exact"),
        ("/", "/"),
        ("/x", "/"),
        ("/api", "/api"),
        ("/api/", "/api/"),
        ("/apix", "/api"),
        ("/api/x", "/api/"),
        ("/api/nested/a", "/api/nested/"),
        ("/api/nested/a.inner", "~ inner"),
        ("/api/nested/a.mid", "~ mid"),
        ("/api/x.mid", "~ mid"),
        ("/api/nested/a.png", "~ png|mid"),
        ("/api/static/a.png", "^~ /api/static/"),
        ("/api/a.png", "~ png|mid"),
        ("/a.jpg", "~* JPG"),
        ("/a.JpG", "~* JPG"),
        ("/api/gen", "~ gen|desc"),
        ("/api/generate", "~ gen|desc"),
        ("/api/generate.mid", "~ mid"),
        ("/dir", "301 /dir/"),
        ("/dir/", "/dir/"),
        ("/dir-x", "/dir-x"),
        ("/dir.y", "/dir.y"),
        ("/d2", "301 /d2/"),
        ("/plain", "/"),
        ("/ex", "301 = /ex/"),
        ("/ex/", "= /ex/"),
        ("/api/nested", "301 /api/nested/"),
        ("/api/static", "301 ^~ /api/static/"),
    ]

    /// The matcher over Fixtures/matching.conf and its server.
    static func matcher() throws -> (NginxModel, NginxLocationMatcher, Int) {
        let model = NginxModel(try NginxConfiguration(dump: try NginxFixtures.dump("matching.conf")))
        let server = try #require(model.servers.last)
        return (model, NginxLocationMatcher(model: model, regexes: NginxRegexCache()), server)
    }

    /// A location's `X-Loc` name.
    static func name(_ model: NginxModel, _ block: Int) -> String {
        model[block].own("add_header").first { $0.values.first == "X-Loc" }?.values[1] ?? model[block].title
    }

    /// The matcher picks what nginx picked.
    @Test(arguments: table)
    func nginxPicksTheSameLocation(uri: String, expected: String) throws {
        let (model, matcher, server) = try Self.matcher()
        switch matcher.find(uri, in: server) {
        case .location(let block): #expect(Self.name(model, block) == expected)
        case .autoRedirect(let block): #expect("301 " + Self.name(model, block) == expected)
        case .server: #expect("server" == expected)
        case .undecidable(_, let why): Issue.record("undecidable: \(why)")
        }
    }

    /// `location` arguments, separate and glued, as `ngx_http_core_location` reads them.
    @Test(arguments: [
        (["=", "/x"], NginxLocationModifier.exact, "/x"),
        (["=/x"], .exact, "/x"),
        (["^~", "/x"], .noRegex, "/x"),
        (["^~/x"], .noRegex, "/x"),
        (["~", "\\.x$"], .regex, "\\.x$"),
        (["~\\.x$"], .regex, "\\.x$"),
        (["~*", "\\.x$"], .regexCaseless, "\\.x$"),
        (["~*\\.x$"], .regexCaseless, "\\.x$"),
        (["@app"], .named, "@app"),
        (["/x"], .prefix, "/x"),
    ])
    func locationModifiersAreReadAsNginxReadsThem(args: [String], modifier: NginxLocationModifier, name: String) throws {
        let parsed = try #require(NginxLocationModifier.parse(args))
        #expect(parsed.0 == modifier)
        #expect(parsed.1 == name)
    }

    /// What nginx refuses is no location.
    @Test func anInvalidModifierIsNoLocation() {
        #expect(NginxLocationModifier.parse(["!", "/x"]) == nil)
        #expect(NginxLocationModifier.parse(["=", "/x", "y"]) == nil)
    }
}
