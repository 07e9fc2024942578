import Testing

@testable import ChargeGateNginx

/// The probes beyond a route's paths and its locations' names (GateAnalyser+Variants): what
/// conditions and maps on `$uri` name, `//` where nginx keeps it, a newline where PCRE's `.`
/// decides, the other case behind a `~*` gate, a method no condition names; and the cap.
@Suite struct GateAnalyserVariantTests {
    /// The gate's location snippet.
    static let protect = GateAnalyserTests.protect
    /// The gate's server snippet.
    static let server = GateAnalyserTests.server
    /// The site file.
    static let site = GateAnalyserTests.site

    /// The report lines of a whole site file (http-level directives allowed).
    static func lines(site text: String) throws -> [String] {
        NginxFixtures.lines(try NginxFixtures.report(site: text))
    }

    /// A map's regex keys are tried when its source is known: the path it names is probed and
    /// answered before the gate; the other paths are known not to match (no assumption).
    @Test func mapRegexKeysAreProbedAndEvaluated() throws {
        let text = """
            map $uri $cached {
                default 0;
                "~^/api/describe/cached/" 1;
            }
            server {
                listen 127.0.0.1:8080;
                \(Self.server)
                location /api/ {
                    \(Self.protect)
                    if ($cached) {
                        return 200 'cached';
                    }
                    proxy_pass http://app;
                }
            }
            """
        #expect(
            try Self.lines(site: text) == [
                "/api/generate: gated",
                "/api/describe: NOT GATED: GET /api/describe/cached/: answered 200 by return 200 cached (\(Self.site):11) before the gate",
            ])
    }

    /// A quoted regex in an `if` is sampled like any other.
    @Test func aQuotedConditionRegexIsProbed() throws {
        let body = """
                location /api/ {
                    \(Self.protect)
                    if ($uri ~ "^/api/describe/ping$") {
                        return 200 'pong';
                    }
                    proxy_pass http://app;
                }
            """
        #expect(
            try GateAnalyserTests.lines(body) == [
                "/api/generate: gated",
                "/api/describe: NOT GATED: GET /api/describe/ping: answered 200 by return 200 pong (\(Self.site):7) before the gate",
            ])
    }

    /// nginx parses the request line with the default server of the address: `merge_slashes off`
    /// in another server there changes nothing; in the default server (or http) it does; on an
    /// `ssl` address, the server named in SNI parses it, so any server's counts.
    @Test(arguments: [
        ("", "", "merge_slashes off;", false),
        ("", " default_server", "merge_slashes off;", true),
        ("merge_slashes off;", "", "", true),
        ("", " ssl", "merge_slashes off;", true),
    ])
    func mergeSlashesIsTheDefaultServers(_ http: String, _ secondFlag: String, _ secondOwn: String, _ unmerged: Bool) throws {
        let text = """
            \(http)
            server {
                listen 127.0.0.1:8080;
                server_name first;
                location / { return 404; }
            }
            server {
                listen 127.0.0.1:8080\(secondFlag);
                server_name second;
                \(secondOwn)
                \(Self.server)
                location /api/generate { \(Self.protect) proxy_pass http://app; }
                location /api/describe { \(Self.protect) proxy_pass http://app; }
                location / { proxy_pass http://app; }
            }
            """
        let lines = try Self.lines(site: text)
        if unmerged {
            #expect(lines.first == "/api/generate: NOT GATED: POST /api//generate: location / (\(Self.site):14) has no auth_request")
        } else {
            #expect(lines == ["/api/generate: gated", "/api/describe: gated"])
        }
    }

    /// Through a case-sensitive gate, the other case of a path is just a path outside the
    /// routes: not probed, not a finding (every server with an ungated location / has them).
    @Test func caseVariantsCountOnlyBehindACaselessGate() throws {
        let body = """
                location /api/ { \(Self.protect) proxy_pass http://app; }
                location ~ ^/api/(generate|describe)/v[0-9]$ { \(Self.protect) proxy_pass http://app; }
                location / { proxy_pass http://app; }
            """
        #expect(try GateAnalyserTests.lines(body) == ["/api/generate: gated", "/api/describe: gated"])
    }

    /// Past the sampler's maximum, the alternatives with the route's words are kept first: the
    /// one branch of a long alternation that lies under a route is probed.
    @Test func aLongAlternationKeepsTheBranchUnderTheRoute() throws {
        let alternatives = (1...24).map { "s\($0)" }.joined(separator: "|")
        let body = """
                location /api/ { \(Self.protect) proxy_pass http://app; }
                location ~ ^/(\(alternatives)|api/describe/free)$ { proxy_pass http://app; }
            """
        let lines = try GateAnalyserTests.lines(body)
        #expect(lines.first == "/api/generate: gated")
        #expect(lines.last?.hasPrefix("/api/describe: NOT GATED: GET /api/describe/free: location ~ ^/(s1|s2|") == true)
    }

    /// A regex the sampler cannot guess paths for (a backreference) makes the routes it may
    /// match UNDECIDED; one whose literal start leads elsewhere does not.
    @Test func aRegexWithoutSamplesIsUndecidedWhereItMayMatch() throws {
        let body = """
                location /api/ { \(Self.protect) proxy_pass http://app; }
                location ~ ^/static/(.)\\1$ { proxy_pass http://app; }
                location ~ ^/api/describe/(\\w)\\1$ { proxy_pass http://app; }
            """
        #expect(
            try GateAnalyserTests.lines(body) == [
                "/api/generate: gated",
                "/api/describe: UNDECIDED: GET /api/describe: cannot guess the paths that the regex of location ~ "
                    + "^/api/describe/(\\w)\\1$ (\(Self.site):6) matches (a backreference, \\p{…}): they are not probed",
            ])
        #expect(GateAnalyser.mayMatch("^/api/gen", caseless: false, under: "/api/generate"))
        #expect(!GateAnalyser.mayMatch("^/api/generatex", caseless: false, under: "/api/generate"))
        #expect(GateAnalyser.mayMatch("^/API/Generate/", caseless: true, under: "/api/generate"))
        #expect(GateAnalyser.mayMatch("^/api/generatex?", caseless: false, under: "/api/generate"))
        #expect(GateAnalyser.mayMatch("^\\/api\\/", caseless: false, under: "/api/generate"))
        #expect(!GateAnalyser.mayMatch("^/static\\.d/", caseless: false, under: "/api/generate"))
        #expect(GateAnalyser.mayMatch("/(.)\\1$", caseless: false, under: "/api/generate"))
    }

    /// The sampler reads `\Q…\E`, `\0`, `\c`, and a negated class that excludes the common
    /// characters.
    @Test func regexSamplesReadQuotesOctalsAndNarrowNegations() {
        #expect(NginxRegexSampler.samples("^/a/\\Q.*\\E$") == ["/a/.*"])
        #expect(NginxRegexSampler.samples("\\0101") == ["\u{8}1"])
        #expect(NginxRegexSampler.samples("[^xa1_-]") == ["!"])
    }

    /// A case variant that a `~*` gate sends to another backend than the path it is a variant
    /// of is not that path: not a finding.
    @Test func aCaseVariantToAnotherBackendIsNotTheRoutesPath() throws {
        let body = """
                location = /api/generate { \(Self.protect) proxy_pass http://app; }
                location /api/generate/ { \(Self.protect) proxy_pass http://app; }
                location ~* ^/api/generate$ { \(Self.protect) proxy_pass http://legacy; }
                location /api/describe { \(Self.protect) proxy_pass http://app; }
            """
        #expect(try GateAnalyserTests.lines(body) == ["/api/generate: gated", "/api/describe: gated"])
    }

    /// The regex sampler reads POSIX classes (and marks `.` when asked).
    @Test(arguments: [
        ("^/a/[[:digit:]]+$", "x", ["/a/1", "/a/11"]),
        ("[^[:alpha:]]", "x", ["1"]),
        ("[[:^digit:]]", "x", ["x"]),
        ("[[:upper:]][[:punct:]]", "x", ["A-"]),
        ("[^a-z]", "x", ["1"]),
        ("^/a/.$", "•", ["/a/•"]),
        ("^/a/\\N+", "•", ["/a/•", "/a/••"]),
    ])
    func regexSamplesReadPOSIXClassesAndMarkDots(_ pattern: String, _ dot: String, _ expected: [String]) {
        #expect(NginxRegexSampler.samples(pattern, dot: dot) == expected)
    }

    /// A probe names the request a client sends: the bytes a request line cannot carry as
    /// they are, percent-encoded.
    @Test func aProbesTargetIsPercentEncodedWhereNeeded() {
        #expect(GateProbe(method: "POST", uri: "/api/generate/x\ny").description == "POST /api/generate/x%0Ay")
        #expect(GateProbe.target("/a b%?#é") == "/a%20b%25%3F%23é")
    }
}
