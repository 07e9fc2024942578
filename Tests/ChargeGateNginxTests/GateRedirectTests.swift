import Testing

@testable import ChargeGateNginx

/// Where nginx sends a request after the access phase or an error: the gate's denial (403) and
/// a dead responder's 500 by `error_page` (first per code wins, a block with any inherits
/// none), `error_page` targets the analysis cannot know.
@Suite struct GateRedirectTests {
    static let site = GateAnalyserTests.site
    static let protect = GateAnalyserTests.protect

    /// A 500 of the auth subrequest (the responder down or hung) sent by an `error_page` above
    /// the include to a URI the app serves: the app answers uncharged.
    @Test func aDeadRespondersErrorPageAboveTheIncludeServesTheApp() throws {
        let body = """
                location /api/ {
                    error_page 500 502 503 504 /oops;
                    \(Self.protect)
                    proxy_pass http://app;
                }
                location = /oops {
                    proxy_pass http://app;
                }
            """
        let finding =
            "when the responder is down or hung (500), error_page 500 502 503 504 /oops (\(Self.site):5) sends it on: "
            + "location = /oops (\(Self.site):9) has no auth_request"
        #expect(
            try GateAnalyserTests.lines(body) == [
                "/api/generate: NOT GATED: POST /api/generate: " + finding,
                "/api/describe: NOT GATED: GET /api/describe: " + finding,
            ])
    }

    /// The gate's own error pages win when they come first; the server's are not inherited by a
    /// location with the snippet (it has error pages of its own); a denial sent to a gated
    /// location asks the gate again.
    @Test func errorPagesThatDoNotServeADenialAreGated() throws {
        let body = """
                error_page 403 = @app;
                location /api/ {
                    \(Self.protect)
                    error_page 403 500 = @app;
                    proxy_pass http://app;
                }
                location /api/describe {
                    error_page 403 /api/describe/denied;
                    \(Self.protect)
                    proxy_pass http://app;
                }
                location @app {
                    proxy_pass http://app;
                }
            """
        #expect(try GateAnalyserTests.lines(body) == ["/api/generate: gated", "/api/describe: gated"])
    }

    /// A denied POST sent by `error_page 403 /uri` comes back as a GET (nginx changes the
    /// method): the gate is then asked about GET /api/generate, which no route charges.
    @Test func aDenialRedirectedToAURIIsAGet() throws {
        let body = """
                location /api/ {
                    error_page 403 /api/generate;
                    \(Self.protect)
                    proxy_pass http://app;
                }
            """
        let lines = try GateAnalyserTests.lines(body)
        #expect(
            lines.first
                == "/api/generate: NOT GATED: POST /api/generate: when the gate denies it (403), error_page 403 /api/generate "
                + "(\(Self.site):5) sends it on: the gate is asked about GET /api/generate, which no route charges")
    }

    /// A denial whose `error_page` target depends on a client header is undecided.
    @Test func aDenialsErrorPageToAnUnknownTargetIsUndecided() throws {
        let body = """
                location /api/ {
                    error_page 403 = $http_x_denied;
                    \(Self.protect)
                    proxy_pass http://app;
                }
            """
        #expect(
            try GateAnalyserTests.lines(body) == [
                "/api/generate: UNDECIDED: POST /api/generate: cannot follow error_page 403 = $http_x_denied (\(Self.site):5) when "
                    + "the gate denies it (403): its target depends on $http_x_denied",
                "/api/describe: UNDECIDED: GET /api/describe: cannot follow error_page 403 = $http_x_denied (\(Self.site):5) when "
                    + "the gate denies it (403): its target depends on $http_x_denied",
            ])
    }

    /// `try_files` after an access phase without the gate: its last parameter (files taken as
    /// absent): a URI to a location without the gate leaves the finding where the request came
    /// in, `=404` serves nothing, a parameter from a client header is undecided.
    @Test func tryFilesFollowsItsLastParameter() throws {
        let body = """
                location /api/generate {
                    try_files $uri /app$uri;
                }
                location /api/describe {
                    try_files $uri $uri/ =404;
                }
                location /app/ {
                    proxy_pass http://app;
                }
                location /gated/ {
                    \(Self.protect)
                    proxy_pass http://app;
                }
            """
        #expect(
            try GateAnalyserTests.lines(body) == [
                "/api/generate: NOT GATED: POST /api/generate: location /api/generate (\(Self.site):4) has no auth_request",
                "/api/describe: not served: refused (404) by try_files $uri $uri/ =404 (\(Self.site):8)",
            ])
        let header = """
                location /api/ {
                    try_files $uri $http_x_next;
                }
                location /gated/ {
                    \(Self.protect)
                    proxy_pass http://app;
                }
            """
        #expect(
            try GateAnalyserTests.lines(header).first
                == "/api/generate: UNDECIDED: POST /api/generate: cannot follow try_files $uri $http_x_next (\(Self.site):5): its "
                + "last parameter depends on $http_x_next")
    }
}
