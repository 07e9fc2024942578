import Foundation
import Testing

@testable import ChargeGateCore

/// `upgradeUrl`, top level and per plan: what the loader accepts and the exact error of each
/// way it can be wrong (one fixture each, as `ConfigLoaderTests`).
@Suite struct UpgradeURLConfigTests {
    static let badConfigs: [BadConfigCase] = [
        BadConfigCase("upgrade-url-empty.yaml", "1: upgradeUrl: must not be empty (leave the key out for no upgrade link)"),
        BadConfigCase("upgrade-url-not-a-string.yaml", "1: upgradeUrl: expected a string, got a list"),
        BadConfigCase("upgrade-url-null.yaml", "1: upgradeUrl: expected a string, got nothing"),
        BadConfigCase(
            "upgrade-url-relative.yaml", "1: upgradeUrl: must be a path starting with '/' or an http:// or https:// URL, got 'pricing'"),
        BadConfigCase(
            "upgrade-url-javascript.yaml",
            "1: upgradeUrl: must be a path starting with '/' or an http:// or https:// URL, got 'javascript:alert(1)'"),
        BadConfigCase(
            "upgrade-url-other-host.yaml",
            "1: upgradeUrl: '//' starts a URL on another host; write it in full, as https://HOST/PATH, got '//shop.example.com/pricing'"),
        BadConfigCase("upgrade-url-no-host.yaml", "1: upgradeUrl: an http:// or https:// URL needs a host, got 'https:///pricing'"),
        BadConfigCase("upgrade-url-space.yaml", Self.characters("'/pricing page'")),
        BadConfigCase("upgrade-url-quote.yaml", Self.characters("'/pricing\"onmouseover=\"alert(1)'")),
        BadConfigCase("upgrade-url-angle.yaml", Self.characters("'/pricing<script>'")),
        BadConfigCase("upgrade-url-control.yaml", Self.characters("'/pricing\\tpro'")),
        BadConfigCase("upgrade-url-non-ascii.yaml", Self.characters("'/préférences'")),
        BadConfigCase(
            "upgrade-url-bad-escape.yaml",
            "1: upgradeUrl: '%' must start a %-escape of two hex digits (write % itself as %25), got '/pricing?plan=pro%2'"),
        BadConfigCase("upgrade-url-too-long.yaml", "1: upgradeUrl: must be at most 1024 bytes, got 1025"),
        BadConfigCase("upgrade-url-misspelled.yaml", "1: upgradeURL: unknown key (did you mean 'upgradeUrl'?)"),
        BadConfigCase(
            "plan-upgrade-url-bad.yaml",
            "10: plans[0].upgradeUrl: must be a path starting with '/' or an http:// or https:// URL, got 'pricing#pro'",
            "14: plans[1].upgradeUrl: must not be empty (leave the key out for no upgrade link)"),
    ]

    /// The message for a character a URL may not hold unescaped, `got` quoted as the loader does.
    static func characters(_ got: String) -> String {
        "1: upgradeUrl: may only hold URL characters (no spaces, quotes, '<', '>', '\\', control or non-ASCII characters: "
            + "percent-encode them), got \(got)"
    }

    static func fixturePath(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/config")).path
    }

    @Test(arguments: badConfigs)
    func badUpgradeURLReportsExactErrors(_ bad: BadConfigCase) throws {
        let path = try Self.fixturePath(bad.file)
        let errors = try #require(ConfigLoader.load(path: path).errorsIfFailed, "\(bad.file) loaded, but should fail")
        #expect(errors.errors.map { "\($0.line): \($0.message)" } == bad.errors)
        #expect(errors.errors.allSatisfy { $0.file == path })
    }

    @Test func topLevelAndPlanURLsLoad() throws {
        let config = try ConfigLoader.load(path: try Self.fixturePath("good-upgrade-url.yaml")).get()
        #expect(config.upgradeUrl == "https://shop.example.com/pricing?from=gate&x=%2F#plans")
        #expect(config.plans.map(\.upgradeUrl) == ["/pricing#pro", nil])
        // The plan's own wins; a plan without one has the top-level one.
        let gate = Gate(config: config)
        #expect(gate.upgradeUrl(plan: 0) == "/pricing#pro")
        #expect(gate.upgradeUrl(plan: 1) == "https://shop.example.com/pricing?from=gate&x=%2F#plans")
    }

    @Test func withoutTheKeyThereIsNone() throws {
        let config = try ConfigLoader.parse("pools:\n  - id: p\n    maxCharges: 1\n    recharge: none\n", file: "x.yaml").get()
        #expect(config.upgradeUrl == nil)
        #expect(Gate(config: config).upgradeUrl(plan: 0) == nil)
        // Plans without one and no top-level one: none under any plan.
        let plans = try ConfigLoader.parse(
            """
            defaultPlan: free
            plans: [{id: free}, {id: pro, upgradeUrl: /enterprise}]
            pools: [{id: p, maxCharges: 1, recharge: none, per: subject}]
            """, file: "x.yaml"
        ).get()
        #expect([0, 1].map { Gate(config: plans).upgradeUrl(plan: $0) } == [nil, "/enterprise"])
    }

    @Test(arguments: [
        "/", "/pricing", "/pricing?plan=pro&from=gate#top", "/a/b;c=d/e~f_g.h-i", "/x%20y%C3%A9", "/[x]@!$&()*+,=:",
        "http://example.com", "https://example.com/pricing", "https://shop.example.com:8443/p?q=1#f", "https://[::1]/x",
        "/" + String(repeating: "p", count: 1023),
    ])
    func acceptedURLsAreKeptAsWritten(url: String) throws {
        let config = try ConfigLoader.parse("upgradeUrl: '\(url)'\npools: [{id: p, maxCharges: 1, recharge: none}]\n", file: "x.yaml").get()
        #expect(config.upgradeUrl == url)
    }

    @Test(arguments: [
        "pricing", "HTTPS://example.com/", "ftp://example.com/", "data:text/html,x", "mailto:sales@example.com", "?plan=pro",
        "#pricing", "//example.com", "https://", "http://?x", "/a b", "/a\"b", "/a<b", "/a>b", "/a\\b", "/a`b", "/a{b}", "/a|b", "/a^b",
        "/a%", "/a%g0", "/é",
    ])
    func refusedURLs(url: String) throws {
        let yaml = "upgradeUrl: \"\(url.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"\n"
        let errors = try #require(
            ConfigLoader.parse(yaml + "pools: [{id: p, maxCharges: 1, recharge: none}]\n", file: "x.yaml").errorsIfFailed, "\(url) loaded")
        #expect(errors.errors.count == 1)
        #expect(errors.errors.first?.message.hasPrefix("upgradeUrl: ") == true)
    }
}

extension Result {
    /// The failure, or nil.
    fileprivate var errorsIfFailed: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
