import Foundation
import Testing

@testable import ChargeGateNginx

/// One report line expected from a fixture.
struct ExpectedLine: Sendable, CustomStringConvertible {
    /// The server's label.
    var server: String
    /// The route's prefix.
    var route: String
    /// `gated`, or the exact `NOT GATED: …` text (`{auth_request}` stands for the snippet line).
    var verdict: String
    /// The finding's kind, for a line that is not gated.
    var kind: GateFinding.Kind?
    /// The finding's FILE:LINE.
    var at: String?

    /// Shown by the test runner.
    var description: String { "\(server) \(route): \(verdict)" }

    /// A gated line.
    static func gated(_ route: String, server: String = "127.0.0.1:8080 localhost") -> ExpectedLine {
        ExpectedLine(server: server, route: route, verdict: "gated")
    }

    /// An undecided line.
    static func undecided(_ route: String, at: String, _ message: String, server: String = "127.0.0.1:8080 localhost") -> ExpectedLine {
        ExpectedLine(server: server, route: route, verdict: "UNDECIDED: " + message, kind: .undecidable, at: at)
    }

    /// A line that is not gated.
    static func notGated(
        _ route: String, _ kind: GateFinding.Kind, at: String, _ message: String, server: String = "127.0.0.1:8080 localhost"
    ) -> ExpectedLine {
        ExpectedLine(server: server, route: route, verdict: "NOT GATED: " + message, kind: kind, at: at)
    }
}

/// A fixture and every line its report must have.
struct FixtureCase: Sendable, CustomTestStringConvertible {
    /// `traps/NAME.conf` or `good/NAME.conf`.
    var fixture: String
    /// The lines, in order.
    var lines: [ExpectedLine]

    /// Shown by the test runner.
    var testDescription: String { fixture }

    /// Creates a case.
    init(_ fixture: String, _ lines: ExpectedLine...) {
        self.fixture = fixture
        self.lines = lines
    }
}

private let site = "/etc/nginx/sites/site.conf"

/// Every trap of issue 12, each in its own fixture: the exact finding and its file:line; a
/// good config beside each (some shared) that passes.
@Suite struct GateTrapTests {
    static let traps: [FixtureCase] = [
        FixtureCase(
            "traps/missing-protect.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):10",
                "GET /api/describe: location / (\(site):10) has no auth_request")),
        FixtureCase(
            "traps/return-before-gate.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .answeredBeforeGate, at: "\(site):12",
                "GET /api/describe: answered 200 by return 200 \"stub answer\" (\(site):12) before the gate")),
        FixtureCase(
            "traps/rewrite-last-ungated.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):11",
                "POST /api/generate: location /internal/ (\(site):11), reached after rewrite ^/api/(generate|describe)(.*)$ "
                    + "/internal/$1$2 last (\(site):8), has no auth_request"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):11",
                "GET /api/describe: location /internal/ (\(site):11), reached after rewrite ^/api/(generate|describe)(.*)$ "
                    + "/internal/$1$2 last (\(site):8), has no auth_request")),
        FixtureCase(
            "traps/rewrite-unrouted.conf",
            .notGated(
                "/api/generate", .unrouted, at: "\(site):6",
                "POST /api/generate: the gate is asked about POST /v2/generate (rewritten by rewrite ^/api/generate(.*)$ "
                    + "/v2/generate$1 last (\(site):6)), which no route charges"),
            .gated("/api/describe")),
        FixtureCase(
            "traps/auth-off-inherited.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .authRequestOff, at: "\(site):7",
                "GET /api/describe: auth_request off (\(site):7) is in effect in location /api/describe (\(site):14)")),
        FixtureCase(
            "traps/nested-regex.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):17",
                "POST /api/generate/thumb: location ~ /thumb$ (\(site):17) has no auth_request"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):17",
                "GET /api/describe/thumb: location ~ /thumb$ (\(site):17) has no auth_request")),
        FixtureCase(
            "traps/regex-shadows-prefix.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):10",
                "POST /api/generate/x.png: location ~* \\.(png|jpe?g|webp)$ (\(site):10) has no auth_request"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):10",
                "GET /api/describe/x.png: location ~* \\.(png|jpe?g|webp)$ (\(site):10) has no auth_request")),
        FixtureCase(
            "traps/caret-tilde-shadows-regex.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):10", "POST /api/generate: location ^~ /api/ (\(site):10) has no auth_request"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):10", "GET /api/describe: location ^~ /api/ (\(site):10) has no auth_request")),
        FixtureCase(
            "traps/trailing-slash.conf",
            .notGated("/api/generate", .noAuthRequest, at: "\(site):14", "POST /api/generate: location / (\(site):14) has no auth_request"),
            .notGated("/api/describe", .noAuthRequest, at: "\(site):14", "GET /api/describe: location / (\(site):14) has no auth_request")),
        FixtureCase(
            "traps/if-method-return.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .answeredBeforeGate, at: "\(site):9",
                "GET /api/describe: answered 200 by return 200 ready (\(site):9) before the gate")),
        FixtureCase(
            "traps/if-header-return.conf",
            .notGated(
                "/api/generate", .answeredBeforeGate, at: "\(site):9",
                "POST /api/generate: answered 200 by return 200 preview (\(site):9) before the gate, when if ($http_x_preview) "
                    + "(\(site):8) holds"),
            .notGated(
                "/api/describe", .answeredBeforeGate, at: "\(site):9",
                "GET /api/describe: answered 200 by return 200 preview (\(site):9) before the gate, when if ($http_x_preview) "
                    + "(\(site):8) holds")),
        FixtureCase(
            "traps/satisfy-any.conf",
            .notGated(
                "/api/generate", .satisfyAny, at: "\(site):10",
                "POST /api/generate: satisfy any (\(site):10) in location /api/ (\(site):9) lets clients admitted by allow 127.0.0.1 "
                    + "(\(site):11) skip auth_request"),
            .notGated(
                "/api/describe", .satisfyAny, at: "\(site):10",
                "GET /api/describe: satisfy any (\(site):10) in location /api/ (\(site):9) lets clients admitted by allow 127.0.0.1 "
                    + "(\(site):11) skip auth_request")),
        FixtureCase(
            "traps/second-server.conf", .gated("/api/generate"), .gated("/api/describe"),
            .notGated(
                "/api/generate", .ungatedServer, at: "\(site):16",
                "POST /api/generate: location / (\(site):16) has no auth_request and proxies to http://app, as the gated "
                    + "location /api/ (\(site):6) of server 127.0.0.1:8080 localhost does",
                server: "127.0.0.1:8081 api-internal"),
            .notGated(
                "/api/describe", .ungatedServer, at: "\(site):16",
                "GET /api/describe: location / (\(site):16) has no auth_request and proxies to http://app, as the gated "
                    + "location /api/ (\(site):6) of server 127.0.0.1:8080 localhost does",
                server: "127.0.0.1:8081 api-internal")),
        FixtureCase(
            "traps/auth-location-missing.conf",
            .notGated(
                "/api/generate", .authNotGate, at: "{auth_request}",
                "POST /api/generate: auth_request /_charge_gate/auth ({auth_request}) reaches location / (\(site):9), "
                    + "not the gate's auth location"),
            .notGated(
                "/api/describe", .authNotGate, at: "{auth_request}",
                "GET /api/describe: auth_request /_charge_gate/auth ({auth_request}) reaches location / (\(site):9), "
                    + "not the gate's auth location")),
        FixtureCase(
            "traps/error-page-return.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):14",
                "POST /api/generate: location @app (\(site):14) has no auth_request"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):14",
                "POST /api/describe: location @app (\(site):14) has no auth_request")),
        FixtureCase(
            "traps/includes-elsewhere.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "/etc/nginx/gate/20-health.conf:2",
                "GET /api/describe/health: location = /api/describe/health (/etc/nginx/gate/20-health.conf:2) has no auth_request")),
        FixtureCase(
            "traps/satisfy-any-limit-except.conf",
            .notGated(
                "/api/generate", .satisfyAny, at: "\(site):10",
                "POST /api/generate: satisfy any (\(site):10) in location /api/ (\(site):9) lets clients admitted by allow 127.0.0.1 "
                    + "(\(site):12) of limit_except GET (\(site):11) skip auth_request"),
            .notGated(
                "/api/describe", .satisfyAny, at: "\(site):10",
                "POST /api/describe: satisfy any (\(site):10) in location /api/ (\(site):9) lets clients admitted by allow 127.0.0.1 "
                    + "(\(site):12) of limit_except GET (\(site):11) skip auth_request")),
        FixtureCase(
            "traps/second-server-auth-off.conf", .gated("/api/generate"), .gated("/api/describe"),
            .notGated(
                "/api/generate", .authRequestOff, at: "\(site):17",
                "POST /api/generate: auth_request off (\(site):17) is in effect in location / (\(site):16), which proxies to "
                    + "http://app, as the gated location /api/ (\(site):6) of server 127.0.0.1:8080 localhost does",
                server: "127.0.0.1:8081 api-internal"),
            .notGated(
                "/api/describe", .authRequestOff, at: "\(site):17",
                "GET /api/describe: auth_request off (\(site):17) is in effect in location / (\(site):16), which proxies to "
                    + "http://app, as the gated location /api/ (\(site):6) of server 127.0.0.1:8080 localhost does",
                server: "127.0.0.1:8081 api-internal")),
        FixtureCase(
            "traps/error-page-before-protect.conf",
            .notGated(
                "/api/generate", .denialServed, at: "\(site):7",
                "POST /api/generate: when the gate denies it (403), error_page 403 = @app (\(site):7) sends it on: location @app "
                    + "(\(site):11) has no auth_request"),
            .notGated(
                "/api/describe", .denialServed, at: "\(site):7",
                "GET /api/describe: when the gate denies it (403), error_page 403 = @app (\(site):7) sends it on: location @app "
                    + "(\(site):11) has no auth_request")),
        FixtureCase(
            "traps/charge-uri-request-uri.conf",
            .notGated(
                "/api/generate", .unrouted, at: "\(site):8",
                "POST /api/generate?q=1: the gate is asked about POST /api/generate?q=1 (set $charge_gate_uri $request_uri "
                    + "(\(site):8)), which no route charges"),
            .notGated(
                "/api/describe", .unrouted, at: "\(site):8",
                "GET /api/describe?q=1: the gate is asked about GET /api/describe?q=1 (set $charge_gate_uri $request_uri "
                    + "(\(site):8)), which no route charges")),
        FixtureCase(
            "traps/try-files-ungated.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):9",
                "GET /api/describe: location /api/describe (\(site):9) has no auth_request")),
        FixtureCase(
            "traps/error-page-500-before-protect.conf",
            .notGated(
                "/api/generate", .denialServed, at: "\(site):7",
                "POST /api/generate: when the responder is down or hung (500), error_page 500 502 503 504 = @app (\(site):7) sends "
                    + "it on: location @app (\(site):11) has no auth_request"),
            .notGated(
                "/api/describe", .denialServed, at: "\(site):7",
                "GET /api/describe: when the responder is down or hung (500), error_page 500 502 503 504 = @app (\(site):7) sends "
                    + "it on: location @app (\(site):11) has no auth_request")),
        FixtureCase(
            "traps/mirror-ungated.conf",
            .notGated(
                "/api/generate", .subrequest, at: "\(site):11",
                "POST /ping: mirror /api/generate (\(site):11) in effect in location = /ping (\(site):10) sends a copy of it as the "
                    + "subrequest POST /api/generate, which location /api/ (\(site):6) passes to http://app: nginx runs no access "
                    + "phase for subrequests, so the gate is never asked"),
            .gated("/api/describe")),
        FixtureCase(
            "traps/auth-request-route.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .subrequest, at: "\(site):11",
                "GET /login: auth_request /api/describe (\(site):11) in effect in location = /login (\(site):10) asks, before "
                    + "serving it, the subrequest GET /api/describe, which location /api/ (\(site):6) passes to http://app: nginx "
                    + "runs no access phase for subrequests, so the gate is never asked")),
        FixtureCase(
            "traps/add-after-body.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .subrequest, at: "\(site):11",
                "GET /page: add_after_body /api/describe (\(site):11) in effect in location = /page (\(site):10) adds to its "
                    + "answer (200, of addition_types) the subrequest GET /api/describe, which location /api/ (\(site):6) passes "
                    + "to http://app: nginx runs no access phase for subrequests, so the gate is never asked")),
        FixtureCase(
            "traps/proxy-pass-other-prefix.conf",
            .notGated(
                "/api/generate", .unrouted, at: "\(site):12",
                "POST /v2/generate: location /v2/ (\(site):10) passes it to http://app as /api/generate (proxy_pass http://app/api/ "
                    + "(\(site):12)), as location /api/ (\(site):6) passes the charged POST /api/generate, but the gate is asked "
                    + "about POST /v2/generate, which no route charges"),
            .notGated(
                "/api/describe", .unrouted, at: "\(site):12",
                "GET /v2/describe: location /v2/ (\(site):10) passes it to http://app as /api/describe (proxy_pass http://app/api/ "
                    + "(\(site):12)), as location /api/ (\(site):6) passes the charged GET /api/describe, but the gate is asked "
                    + "about GET /v2/describe, which no route charges")),
        FixtureCase(
            "traps/rewrite-break-other-prefix.conf",
            .notGated(
                "/api/generate", .unrouted, at: "\(site):12",
                "POST /v2/generate: location /v2/ (\(site):10) passes it to http://app as /api/generate (rewrite ^/v2/(.*)$ /api/$1 "
                    + "break (\(site):12)), as location /api/ (\(site):6) passes the charged POST /api/generate, but the gate is "
                    + "asked about POST /v2/generate, which no route charges"),
            .notGated(
                "/api/describe", .unrouted, at: "\(site):12",
                "GET /v2/describe: location /v2/ (\(site):10) passes it to http://app as /api/describe (rewrite ^/v2/(.*)$ /api/$1 "
                    + "break (\(site):12)), as location /api/ (\(site):6) passes the charged GET /api/describe, but the gate is "
                    + "asked about GET /v2/describe, which no route charges")),
        FixtureCase(
            "traps/ungated-other-prefix.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):10",
                "POST /v1/generate: location /v1/ (\(site):10) passes it to http://app as /api/generate (proxy_pass http://app/api/ "
                    + "(\(site):11)), as location /api/ (\(site):6) passes the charged POST /api/generate, but location /v1/ "
                    + "(\(site):10) has no auth_request"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):10",
                "GET /v1/describe: location /v1/ (\(site):10) passes it to http://app as /api/describe (proxy_pass http://app/api/ "
                    + "(\(site):11)), as location /api/ (\(site):6) passes the charged GET /api/describe, but location /v1/ "
                    + "(\(site):10) has no auth_request")),
        FixtureCase(
            "traps/server-rewrite-auth.conf",
            .notGated(
                "/api/generate", .authNotGate, at: "{auth_request}",
                "POST /api/generate: auth_request /_charge_gate/auth ({auth_request}) reaches location ~ \\.php$ (\(site):14), "
                    + "reached after rewrite ^ /index.php last (\(site):7), not the gate's auth location"),
            .notGated(
                "/api/describe", .authNotGate, at: "{auth_request}",
                "GET /api/describe: auth_request /_charge_gate/auth ({auth_request}) reaches location ~ \\.php$ (\(site):14), "
                    + "reached after rewrite ^ /index.php last (\(site):7), not the gate's auth location")),
        FixtureCase(
            "traps/server-return-auth.conf",
            .notGated(
                "/api/generate", .authAnswered, at: "\(site):7",
                "POST /api/generate: the auth subrequest (auth_request /_charge_gate/auth ({auth_request})) is answered 200 by "
                    + "return 200 \"coming soon\" (\(site):7) without asking the responder"),
            .notGated(
                "/api/describe", .authAnswered, at: "\(site):7",
                "GET /api/describe: the auth subrequest (auth_request /_charge_gate/auth ({auth_request})) is answered 200 by "
                    + "return 200 \"coming soon\" (\(site):7) without asking the responder")),
        FixtureCase(
            "traps/auth-error-page.conf",
            .notGated("/api/generate", .authAnswered, at: "\(site):5", "POST /api/generate: " + authErrorPage),
            .notGated("/api/describe", .authAnswered, at: "\(site):5", "GET /api/describe: " + authErrorPage)),
        FixtureCase(
            "traps/auth-cache-allow.conf",
            .notGated("/api/generate", .authAnswered, at: "\(site):5", "POST /api/generate: " + authCacheAllow),
            .notGated("/api/describe", .authAnswered, at: "\(site):5", "GET /api/describe: " + authCacheAllow)),
        FixtureCase(
            "traps/merge-slashes-off.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):15", "POST /api//generate: location / (\(site):15) has no auth_request"),
            .notGated("/api/describe", .noAuthRequest, at: "\(site):15", "GET /api//describe: location / (\(site):15) has no auth_request")),
        FixtureCase(
            "traps/probe-cap.conf",
            .undecided(
                "/api/generate", at: "\(site):1",
                "POST /api/generate/m45/x: not tried: more than 96 requests to try for this route in this server (the analysis's "
                    + "cap, GateAnalyser.maximumProbes); the ones not tried are not known to be gated"),
            .gated("/api/describe")),
        FixtureCase(
            "traps/regex-dot-newline.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):14",
                "POST /api/generate/x%0Ay: location / (\(site):14) has no auth_request"),
            .gated("/api/describe")),
        FixtureCase(
            "traps/posix-class-regex.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):10",
                "POST /api/generate/1: location ~ ^/api/(generate|describe)/[[:digit:]]+$ (\(site):10) has no auth_request"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):10",
                "GET /api/describe/1: location ~ ^/api/(generate|describe)/[[:digit:]]+$ (\(site):10) has no auth_request")),
        FixtureCase(
            "traps/caseless-gate.conf",
            .notGated(
                "/api/generate", .unrouted, at: "\(site):6",
                "POST /API/GENERATE: the gate is asked about POST /API/GENERATE, which no route charges (routes are case-sensitive; "
                    + "location ~* ^/api/(generate|describe) (\(site):6) passes every case of /api/generate to http://app)"),
            .notGated(
                "/api/describe", .unrouted, at: "\(site):6",
                "GET /API/DESCRIBE: the gate is asked about GET /API/DESCRIBE, which no route charges (routes are case-sensitive; "
                    + "location ~* ^/api/(generate|describe) (\(site):6) passes every case of /api/describe to http://app)")),
        FixtureCase(
            "traps/if-uri-literal.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .answeredBeforeGate, at: "\(site):9",
                "GET /api/describe/health: answered 200 by return 200 healthy (\(site):9) before the gate")),
        FixtureCase(
            "traps/map-uri-key.conf",
            .notGated(
                "/api/generate", .noAuthRequest, at: "\(site):17",
                "POST /api/generate/preview: location /previews/ (\(site):17), reached after rewrite ^ $preview_path last "
                    + "(\(site):13), has no auth_request"),
            .gated("/api/describe")),
        FixtureCase(
            "traps/if-method-negated.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "\(site):13",
                "PUT /api/describe: location /internal/ (\(site):13), reached after rewrite ^/api/(.*)$ /internal/$1 last "
                    + "(\(site):9), has no auth_request")),
        FixtureCase(
            "traps/dump-separator-comment.conf", .gated("/api/generate"),
            .notGated(
                "/api/describe", .noAuthRequest, at: "/etc/nginx/api.d/api.conf:6",
                "GET /api/describe/health: location = /api/describe/health (/etc/nginx/api.d/api.conf:6) has no auth_request")),
        FixtureCase(
            "traps/regex-backreference.conf", .gated("/api/generate"),
            .undecided(
                "/api/describe", at: "\(site):10",
                "GET /api/describe: cannot guess the paths that the regex of location ~ ^/api/describe/(\\w)\\1$ (\(site):10) "
                    + "matches (a backreference, \\p{…}): they are not probed")),
    ]

    /// Configurations nginx follows in a way no reading of them can tell (the e2e pair shows
    /// the request a client can send uncharged): each line UNDECIDED, with its file:line.
    static let undecided: [FixtureCase] = [
        FixtureCase(
            "undecided/error-page-variable.conf",
            .undecided(
                "/api/generate", at: "\(site):11",
                "POST /api/generate: cannot follow error_page 418 = $http_x_fallback (\(site):11): the error_page target depends "
                    + "on $http_x_fallback, when if ($http_x_preview) (\(site):8) holds"),
            .undecided(
                "/api/describe", at: "\(site):11",
                "GET /api/describe: cannot follow error_page 418 = $http_x_fallback (\(site):11): the error_page target depends "
                    + "on $http_x_fallback, when if ($http_x_preview) (\(site):8) holds"))
    ]

    /// The finding of traps/auth-error-page.conf, after the request.
    static let authErrorPage =
        "error_page 403 502 504 = @app (\(site):5) in effect in the gate's auth location = /_charge_gate/auth (\(site):7) "
        + "sends the auth subrequest to location @app (\(site):24) when the responder denies it (403; fastcgi_intercept_errors on "
        + "(\(site):4)) or is down or hung (502 504), and takes its status: a 2xx there is an allow"

    /// The finding of traps/auth-cache-allow.conf, after the request.
    static let authCacheAllow =
        "fastcgi_cache charge_gate_deny (\(site):12) in effect in the gate's auth location = /_charge_gate/auth (\(site):7) stores "
        + "the responder's allow (204): fastcgi_cache_valid any 1m (\(site):4) is in effect, and X-Accel-Expires, by which the "
        + "responder forbids it, is ignored (fastcgi_ignore_headers X-Accel-Expires Cache-Control Expires (\(site):5)); the next "
        + "auth subrequest with the same key is answered 204 from the cache, not by the responder"

    /// Configs that are gated but must warn (fails `--strict`): each warning's kind, FILE:LINE
    /// and exact text, after the stand-in app's server_without_gate.
    static let warned: [(fixture: String, warnings: [(GateWarning.Kind, String, String)])] = [
        (
            "warnings/auth-upstream-elsewhere.conf",
            [
                (
                    .listenMismatch, "\(site):1",
                    "the gate's auth location = /_charge_gate/auth (\(site):9) passes to upstream charge_gate_old (\(site):1): "
                        + "unix:/srv/gate/old.sock, and none is the responder's listen /srv/gate/charge.sock: every auth subrequest "
                        + "fails (each gated request a 500 or 503), or reaches whatever listens there"
                )
            ]
        ),
        (
            "warnings/ssi-include.conf",
            [
                (
                    .ssiSubrequest, "\(site):11",
                    "ssi on (\(site):11) in location /pages/ (\(site):10): an <!--# include virtual=... --> in what nginx serves "
                        + "there is a GET subrequest, and nginx runs no access phase for subrequests: GET /api/describe reaches "
                        + "location /api/ (\(site):6), which passes it to http://app uncharged (check-nginx cannot see the content: "
                        + "keep charged paths out of it, or turn SSI off there)"
                )
            ]
        ),
        (
            "warnings/auth-error-page-status.conf",
            [
                (
                    .authErrorPage, "\(site):5",
                    "error_page 403 /denied.html (\(site):5) in effect in the gate's auth location = /_charge_gate/auth (\(site):7): "
                        + "when the responder denies it (403; fastcgi_intercept_errors on (\(site):4)), nginx answers the auth "
                        + "subrequest from /denied.html, answered by return 200 denied (\(site):25) with the status kept, not the "
                        + "responder (give the auth location an error_page of its own, as charge-gate-server.conf does)"
                )
            ]
        ),
    ]

    /// The good fixtures: every route gated.
    static let good: [String] = [
        "good/protect-all.conf", "good/proxy-after-gate.conf", "good/rewrite-break.conf", "good/proxy-path.conf",
        "good/nested-inherits.conf", "good/nested-caret-tilde.conf", "good/caret-tilde-prefix.conf", "good/regex-over-prefix.conf",
        "good/no-trailing-slash.conf", "good/status-location.conf", "good/satisfy-all.conf", "good/second-server-gated.conf",
        "good/parser-torture.conf", "good/limit-except.conf", "good/try-files-named.conf", "good/hostile-http-settings.conf",
        "good/merge-slashes-off-gated.conf", "good/regex-gate-without-dot.conf", "good/regex-gate-case-sensitive.conf",
        "good/map-uri-outside-routes.conf",
    ]

    /// Each trap's good counterpart.
    static let counterparts: [(trap: String, good: String)] = [
        ("traps/missing-protect.conf", "good/protect-all.conf"),
        ("traps/return-before-gate.conf", "good/proxy-after-gate.conf"),
        ("traps/rewrite-last-ungated.conf", "good/rewrite-break.conf"),
        ("traps/rewrite-unrouted.conf", "good/proxy-path.conf"),
        ("traps/auth-off-inherited.conf", "good/nested-inherits.conf"),
        ("traps/nested-regex.conf", "good/nested-caret-tilde.conf"),
        ("traps/regex-shadows-prefix.conf", "good/caret-tilde-prefix.conf"),
        ("traps/caret-tilde-shadows-regex.conf", "good/regex-over-prefix.conf"),
        ("traps/trailing-slash.conf", "good/no-trailing-slash.conf"),
        ("traps/if-method-return.conf", "good/status-location.conf"),
        ("traps/if-header-return.conf", "good/status-location.conf"),
        ("traps/satisfy-any.conf", "good/satisfy-all.conf"),
        ("traps/second-server.conf", "good/second-server-gated.conf"),
        ("traps/auth-location-missing.conf", "good/protect-all.conf"),
        ("traps/includes-elsewhere.conf", "good/parser-torture.conf"),
        ("traps/error-page-return.conf", "good/protect-all.conf"),
        ("traps/satisfy-any-limit-except.conf", "good/limit-except.conf"),
        ("traps/second-server-auth-off.conf", "good/second-server-gated.conf"),
        ("traps/error-page-before-protect.conf", "good/protect-all.conf"),
        ("traps/charge-uri-request-uri.conf", "good/protect-all.conf"),
        ("traps/try-files-ungated.conf", "good/try-files-named.conf"),
        ("traps/error-page-500-before-protect.conf", "good/protect-all.conf"),
        ("traps/mirror-ungated.conf", "good/protect-all.conf"),
        ("traps/auth-request-route.conf", "good/protect-all.conf"),
        ("traps/add-after-body.conf", "good/protect-all.conf"),
        ("traps/proxy-pass-other-prefix.conf", "good/proxy-path.conf"),
        ("traps/rewrite-break-other-prefix.conf", "good/rewrite-break.conf"),
        ("traps/ungated-other-prefix.conf", "good/proxy-path.conf"),
        ("traps/server-rewrite-auth.conf", "good/hostile-http-settings.conf"),
        ("traps/server-return-auth.conf", "good/hostile-http-settings.conf"),
        ("traps/auth-error-page.conf", "good/hostile-http-settings.conf"),
        ("traps/auth-cache-allow.conf", "good/hostile-http-settings.conf"),
        ("traps/merge-slashes-off.conf", "good/merge-slashes-off-gated.conf"),
        ("traps/probe-cap.conf", "good/protect-all.conf"),
        ("traps/regex-dot-newline.conf", "good/regex-gate-without-dot.conf"),
        ("traps/posix-class-regex.conf", "good/caret-tilde-prefix.conf"),
        ("traps/caseless-gate.conf", "good/regex-gate-case-sensitive.conf"),
        ("traps/if-uri-literal.conf", "good/map-uri-outside-routes.conf"),
        ("traps/map-uri-key.conf", "good/map-uri-outside-routes.conf"),
        ("traps/if-method-negated.conf", "good/map-uri-outside-routes.conf"),
        ("traps/dump-separator-comment.conf", "good/parser-torture.conf"),
        ("traps/regex-backreference.conf", "good/caret-tilde-prefix.conf"),
    ]

    /// Each trap gives exactly its lines, with the exact finding and file:line.
    @Test(arguments: traps)
    func trapIsFound(_ trap: FixtureCase) throws {
        let report = try NginxFixtures.report(trap.fixture)
        #expect(report.routes.count == trap.lines.count, "\(report.text())")
        for (line, expected) in zip(report.routes, trap.lines) {
            #expect(line.server.label == expected.server)
            #expect(line.prefix == expected.route)
            let expectedVerdict = try NginxFixtures.expand(expected.verdict)
            #expect(line.summary == expectedVerdict)
            #expect(line.finding?.kind == expected.kind)
            #expect(line.finding.map { "\($0.location)" } == (try expected.at.map(NginxFixtures.expand)))
        }
        #expect(!report.isGated)
        #expect(report.text().contains("FAILED: "))
    }

    /// Each undecided fixture gives exactly its lines, UNDECIDED with the file:line.
    @Test(arguments: undecided)
    func undecidedIsSaid(_ fixture: FixtureCase) throws {
        let report = try NginxFixtures.report(fixture.fixture)
        #expect(report.routes.count == fixture.lines.count, "\(report.text())")
        for (line, expected) in zip(report.routes, fixture.lines) {
            #expect(line.server.label == expected.server)
            #expect(line.prefix == expected.route)
            #expect(line.summary == (try NginxFixtures.expand(expected.verdict)))
            #expect(line.finding?.kind == .undecidable)
            #expect(line.finding.map { "\($0.location)" } == (try expected.at.map(NginxFixtures.expand)))
        }
        #expect(!report.isGated)
    }

    /// Each good config is gated on every line, each line with a probe that is charged.
    @Test(arguments: good)
    func goodConfigIsGated(_ fixture: String) throws {
        let report = try NginxFixtures.report(fixture)
        #expect(report.isGated, "\(report.text())")
        #expect(!report.routes.isEmpty)
        for line in report.routes {
            #expect(line.summary == "gated", "\(line.server.label) \(line.prefix)")
            #expect(line.probes.contains { if case .gated = $0.verdict { true } else { false } })
        }
        // Only the stand-in app's server, which never uses the gate.
        #expect(report.warnings.map(\.kind) == [.serverWithoutGate])
        #expect(report.warnings.first?.location?.description == "/etc/nginx/nginx.conf:29")
    }

    /// Every trap has a good counterpart, and every good fixture is one.
    @Test func everyTrapHasAGoodCounterpart() {
        #expect(Set(Self.counterparts.map(\.trap)) == Set(Self.traps.map(\.fixture)))
        #expect(Set(Self.counterparts.map(\.good)).isSubset(of: Set(Self.good)))
        #expect(Set(Self.good).isSubset(of: Set(Self.counterparts.map(\.good))))
    }

    /// Every kind of finding has a trap fixture (settlement's in GateSettleTests).
    @Test func everyFindingKindHasATrap() {
        let covered = Set(Self.traps.flatMap { $0.lines.compactMap(\.kind) })
        #expect(covered == Set(GateFinding.Kind.allCases.filter { !$0.isSettlement }))
    }

    /// Each warned config is gated on every line, with exactly its warnings.
    @Test(arguments: warned.map(\.fixture))
    func warnedConfigIsGatedWithItsWarnings(_ fixture: String) throws {
        let expected = try #require(Self.warned.first { $0.fixture == fixture }?.warnings)
        let report = try NginxFixtures.report(fixture)
        #expect(report.isGated, "\(report.text())")
        #expect(report.routes.allSatisfy { $0.summary == "gated" }, "\(report.text())")
        let warnings = report.warnings.dropFirst()
        #expect(report.warnings.first?.kind == .serverWithoutGate)
        #expect(warnings.map(\.kind) == expected.map(\.0))
        #expect(warnings.map { $0.location?.description } == expected.map(\.1))
        #expect(warnings.map(\.message) == expected.map(\.2))
    }

    /// Every fixture under warnings/ is in the table.
    @Test func everyWarnedFixtureIsListed() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/warnings", withExtension: nil))
        let names = try FileManager.default.contentsOfDirectory(atPath: url.path()).filter { $0.hasSuffix(".conf") }
        #expect(Set(names.map { "warnings/" + $0 }) == Set(Self.warned.map(\.fixture)))
    }
}
