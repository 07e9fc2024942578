import Testing

@testable import ChargeGateCore

/// `Settlement.resolve`: what a report comes to under a route's policy (the Lua settle script
/// is its twin, run against the shared tables in ChargeGateTestSupport).
@Suite struct SettlementResolveTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var policy: SettlePolicy
        var report: SettleReport
        var expected: Settlement.Resolution
    }

    static let delivered = ResponseFacts(status: 200, upstreamReached: true, upstreamAnswered: true)
    static func ok(_ amount: ResponseFacts.ReportedAmount, bytes: Int64 = 0, ms: Int64 = 0, status: Int = 200) -> SettleReport {
        .nginx(
            ResponseFacts(status: status, upstreamReached: true, upstreamAnswered: true, amount: amount, bytesSent: bytes, upstreamMs: ms))
    }

    static let cases: [Case] = [
        Case(testDescription: "2xx without amount: the hold stands", policy: SettlePolicy(), report: .nginx(delivered), expected: .stands),
        Case(
            testDescription: "500 under the default [5xx]", policy: SettlePolicy(), report: ok(.value(9), status: 500),
            expected: .refund(.status)),
        Case(
            testDescription: "404 is not refunded by default", policy: SettlePolicy(), report: ok(.missing, status: 404), expected: .stands),
        Case(
            testDescription: "an exact status in the list", policy: SettlePolicy(refund: [.status(429)]), report: ok(.missing, status: 429),
            expected: .refund(.status)),
        Case(
            testDescription: "an empty refund list refunds no status", policy: SettlePolicy(refund: [], amount: .header),
            report: ok(.value(3), status: 503), expected: .amount(3)),
        Case(
            testDescription: "the upstream never got it (connect refused: 502, 0 bytes sent)", policy: SettlePolicy(refund: []),
            report: .nginx(ResponseFacts(status: 502, upstreamReached: false, upstreamAnswered: true)), expected: .refund(.notDelivered)),
        Case(
            testDescription: "the client left before the upstream answered (499, no upstream status)", policy: SettlePolicy(),
            report: .nginx(ResponseFacts(status: 499, upstreamReached: true, upstreamAnswered: false)), expected: .refund(.notDelivered)),
        Case(
            testDescription: "499 after the upstream answered is delivered", policy: SettlePolicy(amount: .header),
            report: .nginx(ResponseFacts(status: 499, upstreamReached: true, upstreamAnswered: true, amount: .value(7))),
            expected: .amount(7)),
        Case(testDescription: "header amount", policy: SettlePolicy(amount: .header), report: ok(.value(1234)), expected: .amount(1234)),
        Case(testDescription: "header amount 0", policy: SettlePolicy(amount: .header), report: ok(.value(0)), expected: .amount(0)),
        Case(testDescription: "header missing", policy: SettlePolicy(amount: .header), report: ok(.missing), expected: .badAmount),
        Case(testDescription: "header invalid", policy: SettlePolicy(amount: .header), report: ok(.invalid), expected: .badAmount),
        Case(
            testDescription: "bytesSent rounds up", policy: SettlePolicy(amount: .bytesSent(unit: 1024)), report: ok(.missing, bytes: 1025),
            expected: .amount(2)),
        Case(
            testDescription: "bytesSent exact", policy: SettlePolicy(amount: .bytesSent(unit: 1024)), report: ok(.missing, bytes: 2048),
            expected: .amount(2)),
        Case(
            testDescription: "bytesSent 0", policy: SettlePolicy(amount: .bytesSent(unit: 1024)), report: ok(.missing, bytes: 0),
            expected: .amount(0)),
        Case(
            testDescription: "upstreamMs rounds up", policy: SettlePolicy(amount: .upstreamMs(unit: 1000)), report: ok(.missing, ms: 1001),
            expected: .amount(2)),
        Case(
            testDescription: "nginx's line on an app-settled route is ignored", policy: SettlePolicy(by: .app), report: ok(.value(5)),
            expected: .ignored),
        Case(testDescription: "the app's amount", policy: SettlePolicy(by: .app), report: .app(amount: 5), expected: .amount(5)),
        Case(testDescription: "the app's refund", policy: SettlePolicy(by: .app), report: .app(amount: nil), expected: .refund(.app)),
        Case(
            testDescription: "the app may settle an nginx-settled route", policy: SettlePolicy(), report: .app(amount: 2),
            expected: .amount(2)),
        Case(testDescription: "the app's negative amount", policy: SettlePolicy(by: .app), report: .app(amount: -1), expected: .badAmount),
        Case(
            testDescription: "the app's amount past 2^53", policy: SettlePolicy(by: .app), report: .app(amount: (1 << 53) + 1),
            expected: .badAmount),
    ]

    @Test(arguments: cases)
    func resolves(_ c: Case) {
        #expect(Settlement.resolve(c.report, policy: c.policy) == c.expected)
    }

    @Test func chargesMeterTheAmountOnMeteredPoolsOnly() {
        let item = SpendItem(poolId: "p", key: "k", max: 10, intervalMs: nil, cost: 4, expires: false)
        let holds = [HoldRecord.Item(spend: item, held: 4, metered: true), HoldRecord.Item(spend: item, held: 1, metered: false)]
        #expect(Settlement.charges(.amount(9), holds: holds) == [9, 1])
        #expect(Settlement.charges(.refund(.status), holds: holds) == [0, 0])
        #expect(Settlement.charges(.stands, holds: holds) == nil)
        #expect(Settlement.charges(.badAmount, holds: holds) == nil)
    }

    @Test func roundingNeverOverflows() {
        #expect(Settlement.ceilDiv(.max, 1) == Settlement.maxAmount)
        #expect(Settlement.ceilDiv(-5, 3) == 0)
        #expect(Settlement.ceilDiv(5, 0) == 0)
    }
}
