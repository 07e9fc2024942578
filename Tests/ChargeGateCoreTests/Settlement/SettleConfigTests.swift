import Foundation
import Testing

@testable import ChargeGateCore

/// `settle:` and the settlement keys: one fixture per bad config under
/// `Fixtures/config/settle`, the exact error asserted.
@Suite struct SettleConfigTests {
    static let badConfigs: [BadConfigCase] = [
        BadConfigCase(
            "refund-bad-status.yaml",
            "10: routes[0].settle.refund[1]: expected a status 100-599 (as 500) or a class 1xx-5xx (as 5xx), got '600'"),
        BadConfigCase("refund-duplicate.yaml", "10: routes[0].settle.refund[2]: 500 is listed twice"),
        BadConfigCase(
            "refund-not-list.yaml", "10: routes[0].settle.refund: expected a list of statuses or classes, as [5xx, 429], got '5xx'"),
        BadConfigCase("amount-both.yaml", "10: routes[0].settle.amount: give one of bytesSent and upstreamMs, not both"),
        BadConfigCase(
            "amount-word.yaml", "10: routes[0].settle.amount: expected 'header', {bytesSent: BYTES} or {upstreamMs: MS}, got 'body'"),
        BadConfigCase(
            "amount-unit-zero.yaml", "10: routes[0].settle.amount.bytesSent: must be a whole number from 1 to 1099511627776, got 0"),
        BadConfigCase("by-invalid.yaml", "10: routes[0].settle.by: must be 'nginx' or 'app', got 'client'"),
        BadConfigCase("unknown-key.yaml", "10: routes[0].settle.refunds: unknown key (did you mean 'refund'?)"),
        BadConfigCase("not-mapping.yaml", "9: routes[0].settle: expected a mapping with refund, amount and by, got true"),
        BadConfigCase(
            "no-metered-pool.yaml",
            "11: routes[0].settle.amount: no pool of the route costs the route's cost (4000), the hold, so none would be settled to the amount (give the metered pools no cost of their own)"
        ),
        BadConfigCase(
            "listen-needed.yaml",
            "1: settleListen: required when a route has settle: and listen is not a unix socket path (nginx's settlement lines need a unix datagram socket)"
        ),
        BadConfigCase(
            "listen-relative.yaml",
            "6: settleListen: expected an absolute unix socket path (at most 107 bytes, no spaces), got 'run/settle.sock'"),
        BadConfigCase(
            "amount-header-bad.yaml",
            "6: amountHeader: must be an HTTP header name (letters, digits and '-', at most 64), got 'X Charge Amount'"),
        BadConfigCase("window-zero.yaml", "6: settleWindowSeconds: must be a whole number from 1 to 2592000, got 0"),
    ]

    static func path(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/config/settle")).path
    }

    @Test(arguments: badConfigs)
    func badSettleConfigReportsExactErrors(_ bad: BadConfigCase) throws {
        switch ConfigLoader.load(path: try Self.path(bad.file)) {
        case .success:
            Issue.record("\(bad.file) loaded, but should fail")
        case .failure(let errors):
            #expect(errors.errors.map { "\($0.line): \($0.message)" } == bad.errors)
        }
    }

    @Test func everySettleFixtureIsCovered() throws {
        let directory = try #require(Bundle.module.url(forResource: "settle", withExtension: nil, subdirectory: "Fixtures/config"))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        #expect(Set(files.filter { $0 != "good.yaml" }) == Set(Self.badConfigs.map(\.file)))
    }

    @Test func aGoodSettleConfigLoadsEveryKey() throws {
        let config = try ConfigLoader.load(path: try Self.path("good.yaml")).get()
        #expect(config.settleWindowSeconds == 600)
        #expect(config.amountHeader == "X-Tokens-Used")
        #expect(config.amountVariable == "$upstream_http_x_tokens_used")
        #expect(config.settleSocketPath == "/run/cg/settle.sock")
        #expect(config.settles)
        #expect(
            config.routes.map(\.settle) == [
                SettlePolicy(refund: [.statusClass(5), .status(429)], amount: .header),
                SettlePolicy(amount: .bytesSent(unit: 1_048_576)),
                SettlePolicy(refund: [], amount: .upstreamMs(unit: 1000), by: .app),
                nil,
            ])
        let gate = Gate(config: config)
        // The metered pools are those whose cost is the route's (the hold); the others are
        // charged per call.
        #expect(gate.routes[0].metered == [true, false])
        #expect(gate.routes[1].metered == [true])
        #expect(gate.routes[3].settle == nil)
    }

    @Test func settleListenWinsOverTheListenSocketsDirectory() {
        var config = GateConfig()
        config.listen = .unix(path: "/run/a/charge.sock")
        #expect(config.settleSocketPath == "/run/a/settle.sock")
        config.settleListen = "/run/b/lines.sock"
        #expect(config.settleSocketPath == "/run/b/lines.sock")
        config.settleListen = nil
        config.listen = .inherit
        #expect(config.settleSocketPath == nil)
    }
}
