import Testing

@testable import ChargeGateNginx

/// The tokenizer and parser against nginx's own rules (src/core/ngx_conf_file.c), the
/// `nginx -T` dump and the resolution of includes.
@Suite struct NginxParserTests {
    /// Each directive as its words joined by `|`, a block as `{…}` after them.
    static func render(_ directives: [NginxDirective]) -> String {
        directives.map { directive in
            let words = ([directive.name] + directive.values).joined(separator: "|")
            guard let block = directive.block else { return words + ";" }
            return words + "{" + render(block) + "}"
        }.joined(separator: " ")
    }

    /// `render` of the parsed text.
    static func parse(_ text: String) throws(NginxParseError) -> String {
        render(try NginxParser.parse(Array(text.utf8), file: "t.conf"))
    }

    /// Words, quotes, escapes, comments, variables and blocks as nginx reads them.
    @Test(arguments: [
        ("a b c;", "a|b|c;"),
        ("a \"b c\" 'd e';", "a|b c|d e;"),
        ("a \"x\\\"y\" 'it\\'s';", "a|x\"y|it's;"),
        ("a b\\ c;", "a|b\\ c;"),
        ("a \"t\\tn\\nr\\r\\\\\";", "a|t\tn\nr\r\\;"),
        ("a \"\\d+\";", "a|\\d+;"),
        ("a x#y;", "a|x#y;"),
        ("a # a comment; { }\n b;", "a|b;"),
        ("set $x ${uri}y;", "set|$x|${uri}y;"),
        ("return 200 x}y;", "return|200|x}y;"),
        ("a \"b\");", "a|b|);"),
        ("if ($a) { return 404; }", "if|($a){return|404;}"),
        ("a{b;}c;", "a{b;} c;"),
        ("server { # { not a block\n location / { } }", "server{location|/{}}"),
        ("'quoted name' x;", "quoted name|x;"),
        ("a \"\";", "a|;"),
        ("", ""),
        ("# only a comment", ""),
    ])
    func tokensAreReadAsNginxReadsThem(text: String, expected: String) throws {
        #expect(try Self.parse(text) == expected)
    }

    /// Bad text is refused with nginx's message and line.
    @Test(arguments: [
        ("a \"b\"c;", "t.conf:1: unexpected \"c\""),
        ("a }", "t.conf:1: unexpected \"}\""),
        (";", "t.conf:1: unexpected \";\""),
        ("{", "t.conf:1: unexpected \"{\""),
        ("a;\n}", "t.conf:2: unexpected \"}\""),
        ("a {\n b;\n", "t.conf:3: unexpected end of file, expecting \"}\""),
        ("a \"unterminated;\n", "t.conf:2: unexpected end of file, expecting \";\" or \"}\""),
        ("a b", "t.conf:1: unexpected end of file, expecting \";\" or \"}\""),
    ])
    func badTextIsRefusedWithNginxsMessage(text: String, expected: String) {
        #expect(throws: NginxParseError.self) { try Self.parse(text) }
        do {
            _ = try Self.parse(text)
        } catch {
            #expect(error.description == expected)
        }
    }

    /// Each directive and word knows its line, across multi-line words.
    @Test func everyDirectiveKnowsItsLine() throws {
        let text = "a 1;\n\nb \"two\nlines\";\nc {\n  d;\n}\n  e;"
        let directives = try NginxParser.parse(Array(text.utf8), file: "f")
        #expect(directives.map(\.location.line) == [1, 3, 5, 8])
        #expect(directives[2].block?.first?.location == NginxSourceLocation(file: "f", line: 6))
        #expect(directives[1].args[0].line == 3)
    }

    /// Deep nesting is an error, not a stack overflow.
    @Test func deepNestingIsAnErrorNotACrash() {
        let text = String(repeating: "a {", count: NginxParser.maximumDepth + 1)
        #expect(throws: NginxParseError.self) { try Self.parse(text) }
    }

    // MARK: the dump

    /// The dump is split at nginx's markers; nginx's own lines before them are ignored.
    @Test func theDumpIsSplitAtNginxsMarkers() throws {
        let text = """
            nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
            nginx: configuration file /etc/nginx/nginx.conf test is successful
            # configuration file /etc/nginx/nginx.conf:
            http {
                include conf.d/*.conf;
            }

            # configuration file /etc/nginx/conf.d/a.conf:
            # configuration file lookalike
            server { }
            # configuration file /etc/nginx/conf.d/b.conf:
            server { }

            """
        let dump = try NginxDump(parsing: Array(text.utf8))
        #expect(dump.files.map(\.path) == ["/etc/nginx/nginx.conf", "/etc/nginx/conf.d/a.conf", "/etc/nginx/conf.d/b.conf"])
        #expect(String(decoding: dump.files[0].bytes, as: UTF8.self) == "http {\n    include conf.d/*.conf;\n}\n")
        #expect(String(decoding: dump.files[1].bytes, as: UTF8.self) == "# configuration file lookalike\nserver { }")
    }

    /// A line like nginx's separator inside a file, naming a file nginx does not read there,
    /// is a comment of that file: what follows it stays in the file.
    @Test func aSeparatorLikeCommentStaysInItsFile() throws {
        let text = """
            # configuration file /etc/nginx/nginx.conf:
            http {
                include conf.d/*.conf;
                include /etc/nginx/extra.conf;
            }

            # configuration file /etc/nginx/conf.d/a.conf:
            # pasted from another host:
            # configuration file /etc/nginx/notes.txt:
            # configuration file /etc/nginx/nginx.conf:
            server { location = /hidden { } }
            # configuration file /etc/nginx/extra.conf:
            server { }

            """
        let dump = try NginxDump(parsing: Array(text.utf8))
        #expect(dump.files.map(\.path) == ["/etc/nginx/nginx.conf", "/etc/nginx/conf.d/a.conf", "/etc/nginx/extra.conf"])
        #expect(String(decoding: dump.files[1].bytes, as: UTF8.self).hasSuffix("server { location = /hidden { } }"))
    }

    /// The trap traps/dump-separator-comment.conf as nginx -T prints it (files in the order
    /// nginx opens them): the ungated location after the separator-like comment in api.conf is
    /// read as part of api.conf, and found.
    @Test func aSeparatorLikeCommentHidesNoLocation() throws {
        let fixture = NginxFixtures.files(ofFixture: try NginxFixtures.text("traps/dump-separator-comment.conf"))
        let snippets = try NginxFixtures.snippetFiles()
        func snippet(_ name: String) throws -> (String, String) {
            (NginxFixtures.snippets + name, try #require(snippets.first { $0.name == name }).text)
        }
        try #require(fixture.map(\.path) == ["/etc/nginx/sites/site.conf", "/etc/nginx/api.d/api.conf"])
        let files: [(String, String)] = [
            ("/etc/nginx/nginx.conf", try NginxFixtures.text("nginx.conf")), try snippet("charge-gate-http.conf"),
            (fixture[0].path, String(decoding: fixture[0].bytes, as: UTF8.self)), try snippet("charge-gate-server.conf"),
            (fixture[1].path, String(decoding: fixture[1].bytes, as: UTF8.self)), try snippet("charge-gate-protect.conf"),
        ]
        let text = files.map { "# configuration file \($0.0):\n\($0.1)\n" }.joined()
        let dump = try NginxDump(parsing: Array(text.utf8))
        #expect(dump.files.map(\.path) == files.map(\.0))
        let report = GateAnalyser(model: NginxModel(try NginxConfiguration(dump: dump)), routes: try NginxFixtures.routes()).analyse()
        #expect(
            NginxFixtures.lines(report) == [
                "/api/generate: gated",
                "/api/describe: NOT GATED: GET /api/describe/health: location = /api/describe/health "
                    + "(/etc/nginx/api.d/api.conf:6) has no auth_request",
            ])
    }

    /// nginx prints a file once, where it is first included; the files follow the includes
    /// depth first, a glob's in byte order.
    @Test func theFilesFollowTheIncludes() throws {
        let text = """
            # configuration file /etc/nginx/nginx.conf:
            include a.conf;
            include d/*.conf;
            include a.conf;

            # configuration file /etc/nginx/a.conf:
            include b.conf;

            # configuration file /etc/nginx/b.conf:
            b;

            # configuration file /etc/nginx/d/1.conf:
            include /etc/nginx/b.conf;

            # configuration file /etc/nginx/d/2.conf:
            two;

            """
        let dump = try NginxDump(parsing: Array(text.utf8))
        #expect(
            dump.files.map(\.path) == [
                "/etc/nginx/nginx.conf", "/etc/nginx/a.conf", "/etc/nginx/b.conf", "/etc/nginx/d/1.conf", "/etc/nginx/d/2.conf",
            ])
        // Out of the glob's order, d/1.conf cannot follow d/3.conf: its line is a comment there.
        let swapped = text.replacing("d/1.conf:", with: "d/3.conf:").replacing("d/2.conf:", with: "d/1.conf:")
        #expect(try NginxDump(parsing: Array(swapped.utf8)).files.map(\.path).last == "/etc/nginx/d/3.conf")
        // An included file that is not there: not nginx's output.
        #expect(throws: NginxParseError.self) { try NginxDump(parsing: Array((text + "include e.conf;\n").utf8)) }
    }

    /// A dump no split fits (here the last file's text cannot parse) is an error after a
    /// bounded search, however many lookalike lines it has.
    @Test func aDumpNoSplitFitsFailsAfterABoundedSearch() {
        var text = "# configuration file /etc/nginx/nginx.conf:\ninclude d/*.conf;\n\n"
        for index in 100..<400 { text += "# configuration file /etc/nginx/d/\(index).conf:\nx;\n\n" }
        text += "}\n"
        let start = ContinuousClock.now
        #expect(throws: NginxParseError.self) { try NginxDump(parsing: Array(text.utf8)) }
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    /// A separator-like line that nginx could have printed there is an error, never a guess:
    /// the text after it could belong to either file.
    @Test(arguments: [
        // b.conf names c.conf, which main includes next: b's tail could be c's text.
        """
        # configuration file /etc/nginx/nginx.conf:
        include b.conf;
        include c.conf;

        # configuration file /etc/nginx/b.conf:
        b;
        # configuration file /etc/nginx/c.conf:
        hidden;

        # configuration file /etc/nginx/c.conf:
        c;

        """,
        // The same file's separator inside it: the first one could be the comment.
        """
        # configuration file /etc/nginx/nginx.conf:
        include conf.d/*.conf;

        # configuration file /etc/nginx/conf.d/a.conf:
        a;
        # configuration file /etc/nginx/conf.d/a.conf:
        ignored;

        """,
    ])
    func anAmbiguousDumpIsAnError(_ text: String) {
        #expect(throws: NginxParseError.self) { try NginxDump(parsing: Array(text.utf8)) }
    }

    /// A dump saved with CR LF still splits.
    @Test func crlfMarkersAreMarkers() throws {
        let dump = try NginxDump(parsing: Array("# configuration file /x.conf:\r\na;\r\n".utf8))
        #expect(dump.files.map(\.path) == ["/x.conf"])
    }

    /// Text without markers is not a dump (exit 2 in the command).
    @Test func textWithoutMarkersIsNotADump() {
        #expect(throws: NginxParseError.self) { try NginxDump(parsing: Array("http { }\n".utf8)) }
        #expect(throws: NginxParseError.self) { try NginxDump(parsing: Array("# configuration file :\n".utf8)) }
        #expect(throws: NginxParseError.self) { try NginxDump(parsing: []) }
    }

    // MARK: includes

    /// A configuration of these files, the first the main one.
    static func configuration(_ files: [(String, String)]) throws(NginxParseError) -> NginxConfiguration {
        try NginxConfiguration(dump: NginxDump(files: files.map { NginxDump.File(path: $0.0, bytes: Array($0.1.utf8)) }))
    }

    /// Includes (relative, glob, absolute, none matching) resolve in place, each directive keeping its file:line.
    @Test func includesAreResolvedInPlaceWithTheirOwnLines() throws {
        let configuration = try Self.configuration([
            ("/etc/nginx/nginx.conf", "http {\n    include conf.d/*.conf;\n    include /etc/nginx/extra;\n    z;\n}"),
            ("/etc/nginx/conf.d/b.conf", "b;"),
            ("/etc/nginx/conf.d/a.conf", "\na;"),
            ("/etc/nginx/extra", "include conf.d/none-*.conf;\nx;"),
        ])
        let http = try #require(configuration.directives.first?.block)
        #expect(http.map(\.name) == ["a", "b", "x", "z"])
        #expect(
            http.map(\.location.description) == [
                "/etc/nginx/conf.d/a.conf:2", "/etc/nginx/conf.d/b.conf:1", "/etc/nginx/extra:2", "/etc/nginx/nginx.conf:4",
            ])
    }

    /// A missing include or an include loop is an error.
    @Test func aMissingIncludeOrALoopIsAnError() {
        #expect(
            throws: NginxParseError(
                "included file /etc/nginx/gone.conf is not in the nginx -T output",
                at: NginxSourceLocation(file: "/etc/nginx/nginx.conf", line: 1))
        ) {
            try Self.configuration([("/etc/nginx/nginx.conf", "include gone.conf;")])
        }
        #expect(throws: NginxParseError.self) {
            try Self.configuration([("/etc/nginx/nginx.conf", "include /etc/nginx/loop;"), ("/etc/nginx/loop", "include /etc/nginx/loop;")])
        }
    }

    /// A setting nginx refuses twice in one block (after includes: the snippet's `satisfy all`
    /// and a `satisfy any` beside its include) makes the configuration unreadable, as nginx -t
    /// fails on it; in another block (a nested location, an `if`) it is not a duplicate.
    @Test func aSettingNginxRefusesTwiceInOneBlockIsAnError() throws {
        #expect(
            throws: NginxParseError(
                "\"satisfy\" directive is duplicate: nginx refuses this configuration (nginx -t fails)",
                at: NginxSourceLocation(file: "/etc/nginx/nginx.conf", line: 3))
        ) {
            try Self.configuration([
                ("/etc/nginx/nginx.conf", "http { server { location / {\n    include gate;\n    satisfy any;\n} } }"),
                ("/etc/nginx/gate", "satisfy all;\nauth_request /auth;"),
            ])
        }
        #expect(
            throws: NginxParseError(
                "\"auth_request\" directive is duplicate: nginx refuses this configuration (nginx -t fails)",
                at: NginxSourceLocation(file: "/etc/nginx/nginx.conf", line: 2))
        ) {
            try Self.configuration([("/etc/nginx/nginx.conf", "http { auth_request /a;\n auth_request off; }")])
        }
        #expect(throws: NginxParseError.self) {
            try Self.configuration([
                ("/etc/nginx/nginx.conf", "http { server { location / { limit_except GET { } limit_except POST { } } } }")
            ])
        }
        _ = try Self.configuration([
            ("/etc/nginx/nginx.conf", "http { satisfy all; server { satisfy any; location / { satisfy all; if ($x) { } } } }")
        ])
    }

    /// `fastcgi_store` beside `fastcgi_cache` in one block (neither `off`) is refused as nginx -t
    /// refuses it (`"fastcgi_cache" directive is incompatible with "fastcgi_store"`, said of the
    /// second), and so is a second `fastcgi_keep_conn`, `fastcgi_store` or `fastcgi_cache`; with
    /// one of the two `off`, or in different blocks, nginx takes them.
    @Test func aStoreBesideACacheIsRefusedAsNginxRefusesIt() throws {
        func refusal(_ location: String) -> NginxParseError? {
            do {
                _ = try Self.configuration([("/etc/nginx/nginx.conf", "http { server { location / {\n" + location + "\n} } }")])
                return nil
            } catch {
                return error
            }
        }
        let at = NginxSourceLocation(file: "/etc/nginx/nginx.conf", line: 3)
        let refused = " directive is incompatible with "
        #expect(
            refusal("fastcgi_store /dev/null/x;\nfastcgi_cache zone;")
                == NginxParseError(
                    "\"fastcgi_cache\"\(refused)\"fastcgi_store\": nginx refuses this configuration (nginx -t fails)", at: at))
        #expect(
            refusal("fastcgi_cache zone;\nfastcgi_store on;")
                == NginxParseError(
                    "\"fastcgi_store\"\(refused)\"fastcgi_cache\": nginx refuses this configuration (nginx -t fails)", at: at))
        #expect(
            refusal("fastcgi_keep_conn on;\nfastcgi_keep_conn off;")
                == NginxParseError(
                    "\"fastcgi_keep_conn\" directive is duplicate: nginx refuses this configuration (nginx -t fails)", at: at))
        #expect(refusal("fastcgi_store on;\nfastcgi_store off;") != nil)
        #expect(refusal("fastcgi_cache a;\nfastcgi_cache b;") != nil)
        #expect(refusal("fastcgi_cache off;\nfastcgi_store /dev/null/x;") == nil)
        #expect(refusal("fastcgi_store /dev/null/x;\nfastcgi_cache off;") == nil)
        #expect(refusal("fastcgi_store off;\nfastcgi_cache zone;") == nil)
        #expect(refusal("fastcgi_cache zone;\nlocation /a { fastcgi_store on; }") == nil)
    }

    /// Include patterns match like glob(3).
    @Test(arguments: [
        ("/etc/nginx/conf.d/*.conf", "/etc/nginx/conf.d/a.conf", true),
        ("/etc/nginx/conf.d/*.conf", "/etc/nginx/conf.d/.hidden.conf", false),
        ("/etc/nginx/conf.d/*.conf", "/etc/nginx/conf.d/sub/a.conf", false),
        ("/etc/nginx/*/a.conf", "/etc/nginx/x/a.conf", true),
        ("/a/[ab].c", "/a/b.c", true),
        ("/a/[!ab].c", "/a/b.c", false),
        ("/a/[^ab].c", "/a/c.c", true),
        ("/a/[a-c]x", "/a/bx", true),
        ("/a/?", "/a/b", true),
        ("/a/?", "/a/bc", false),
        ("/a/*b*c", "/a/xxbyyc", true),
        ("/a/*b*c", "/a/xxbyyd", false),
        ("/a/\\*", "/a/*", true),
        ("/a/\\*", "/a/b", false),
        ("/a/[x", "/a/[x", true),
        ("a/*", "/a/b", false),
    ])
    func includeGlobsMatchLikeGlob(pattern: String, path: String, matches: Bool) {
        #expect(NginxGlob(pattern).matches(path) == matches)
    }

    /// Glob matches come sorted by bytes, as in nginx's C locale.
    @Test func globMatchesAreSortedByBytes() {
        let paths = ["/c/b.conf", "/c/B.conf", "/c/a.conf", "/c/a-b.conf"]
        #expect(NginxGlob("/c/*.conf").matches(in: paths) == ["/c/B.conf", "/c/a-b.conf", "/c/a.conf", "/c/b.conf"])
    }
}
