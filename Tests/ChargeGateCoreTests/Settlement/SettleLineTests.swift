import Testing

@testable import ChargeGateCore

/// `SettleLine(parsing:)`: nginx's datagram parsed strictly (the fuzz target `fuzz-settle`
/// runs it on any bytes).
@Suite struct SettleLineTests {
    static let id = "0123456789abcdef0123456789abcdef"
    static func line(_ payload: String) -> [UInt8] { Array(("<190>Dec  6 13:20:08 nginx: " + payload).utf8) }

    struct Good: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var payload: String
        var facts: ResponseFacts
    }

    static let good: [Good] = [
        Good(
            testDescription: "a 200 with an amount", payload: "cg1|\(id)|main|200|200|312|1024|0.012|1733491208.123|42",
            facts: ResponseFacts(
                status: 200, upstreamReached: true, upstreamAnswered: true, amount: .value(42), bytesSent: 1024, upstreamMs: 12)),
        Good(
            testDescription: "connect refused: 502, nothing sent upstream", payload: "cg1|\(id)|main|502|502|0|157|0.000|1733491208.123|-",
            facts: ResponseFacts(status: 502, upstreamReached: false, upstreamAnswered: true, amount: .missing, bytesSent: 157)),
        Good(
            testDescription: "retries: 502 then 200", payload: "cg1|\(id)|main|200|502, 200|0, 300|5|0.001, 1.250|1733491208.123|7",
            facts: ResponseFacts(
                status: 200, upstreamReached: true, upstreamAnswered: true, amount: .value(7), bytesSent: 5, upstreamMs: 1251)),
        Good(
            testDescription: "across an error_page redirect", payload: "cg1|\(id)|main|200|500 : 200|10 : 10|5|0.1 : 0.25|1.5|-",
            facts: ResponseFacts(
                status: 200, upstreamReached: true, upstreamAnswered: true, amount: .missing, bytesSent: 5, upstreamMs: 350)),
        Good(
            testDescription: "client gone before the upstream answered", payload: "cg1|\(id)|main|499|-|300|0|-|1733491208.123|-",
            facts: ResponseFacts(status: 499, upstreamReached: true, upstreamAnswered: false)),
        Good(
            testDescription: "no upstream at all", payload: "cg1|\(id)|main|200|-|-|12|-|1733491208.123|-",
            facts: ResponseFacts(status: 200, upstreamReached: false, upstreamAnswered: false, bytesSent: 12)),
        Good(
            testDescription: "an amount that is not a number", payload: "cg1|\(id)|main|200|200|1|1|0.001|1.000|12 tokens",
            facts: ResponseFacts(status: 200, upstreamReached: true, upstreamAnswered: true, amount: .invalid, bytesSent: 1, upstreamMs: 1)),
        Good(
            testDescription: "a | in the app's amount stays in the amount", payload: "cg1|\(id)|main|200|200|1|1|0.001|1.000|5|6",
            facts: ResponseFacts(status: 200, upstreamReached: true, upstreamAnswered: true, amount: .invalid, bytesSent: 1, upstreamMs: 1)),
        Good(
            testDescription: "an amount past 2^53", payload: "cg1|\(id)|main|200|200|1|1|0.001|1.000|9007199254740993",
            facts: ResponseFacts(status: 200, upstreamReached: true, upstreamAnswered: true, amount: .invalid, bytesSent: 1, upstreamMs: 1)),
        Good(
            testDescription: "a trailing newline", payload: "cg1|\(id)|main|204|204|1|0|0.000|1.000|0\n",
            facts: ResponseFacts(status: 204, upstreamReached: true, upstreamAnswered: true, amount: .value(0))),
    ]

    @Test(arguments: good)
    func parses(_ g: Good) throws {
        let line = try SettleLine(parsing: Self.line(g.payload))
        #expect(line.hold == Self.id)
        #expect(line.facts == g.facts)
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var bytes: [UInt8]
        var rejection: SettleLine.Rejection
    }

    static let bad: [Bad] = [
        Bad(testDescription: "no syslog header", bytes: Array("cg1|\(id)|main|200|200|1|1|0.001|1.000|-".utf8), rejection: .malformed),
        Bad(testDescription: "another payload", bytes: line("GET / HTTP/1.1 200"), rejection: .malformed),
        Bad(testDescription: "nine fields", bytes: line("cg1|\(id)|main|200|200|1|1|0.001|1.000"), rejection: .malformed),
        Bad(
            testDescription: "the auth location's own line", bytes: line("cg1|\(id)|auth|200|200|1|1|0.001|1.000|-"),
            rejection: .authLocation),
        Bad(testDescription: "an unknown origin", bytes: line("cg1|\(id)|x|200|200|1|1|0.001|1.000|-"), rejection: .badField),
        Bad(testDescription: "an empty hold", bytes: line("cg1||main|200|200|1|1|0.001|1.000|-"), rejection: .badField),
        Bad(testDescription: "an empty hold as nginx logs it", bytes: line("cg1|-|main|200|200|1|1|0.001|1.000|-"), rejection: .badField),
        Bad(testDescription: "a hold with a colon", bytes: line("cg1|a:b|main|200|200|1|1|0.001|1.000|-"), rejection: .badField),
        Bad(
            testDescription: "a hold of 65 bytes", bytes: line("cg1|\(String(repeating: "a", count: 65))|main|200|200|1|1|0.001|1.000|-"),
            rejection: .badField),
        Bad(testDescription: "a two-digit status", bytes: line("cg1|\(id)|main|20|200|1|1|0.001|1.000|-"), rejection: .badField),
        Bad(
            testDescription: "a bad upstream status list", bytes: line("cg1|\(id)|main|200|200,200|1|1|0.001|1.000|-"), rejection: .badField
        ),
        Bad(testDescription: "a dangling separator", bytes: line("cg1|\(id)|main|200|200, |1|1|0.001|1.000|-"), rejection: .badField),
        Bad(testDescription: "negative bytes", bytes: line("cg1|\(id)|main|200|200|-1|1|0.001|1.000|-"), rejection: .badField),
        Bad(testDescription: "a time with four decimals", bytes: line("cg1|\(id)|main|200|200|1|1|0.0001|1.000|-"), rejection: .badField),
        Bad(testDescription: "a bad msec", bytes: line("cg1|\(id)|main|200|200|1|1|0.001|now|-"), rejection: .badField),
        Bad(testDescription: "too long", bytes: line(String(repeating: "x", count: 2100)), rejection: .tooLong),
        Bad(testDescription: "empty", bytes: [], rejection: .malformed),
    ]

    @Test(arguments: bad)
    func rejects(_ b: Bad) {
        #expect(throws: b.rejection) { try SettleLine(parsing: b.bytes) }
    }
}
