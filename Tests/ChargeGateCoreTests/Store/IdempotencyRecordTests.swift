import Testing
@testable import ChargeGateCore

/// The decision an idempotency record leads to (the Lua script's twin).
@Suite struct IdempotencyRecordTests {
    static let check = IdempotencyCheck(key: "k", fingerprint: "abc123", ttlMs: 1000, maxRepeats: 2, quotaKey: "q", maxRecords: 10)

    @Test(
        arguments: [
            (nil, IdempotencyRecord.Decision.fresh),
            (IdempotencyRecord(fingerprint: "other", repeats: 0), .reused),
            (IdempotencyRecord(fingerprint: "abc123", repeats: 0), .repeated(IdempotencyRecord(fingerprint: "abc123", repeats: 1))),
            (IdempotencyRecord(fingerprint: "abc123", repeats: 1), .repeated(IdempotencyRecord(fingerprint: "abc123", repeats: 2))),
            (IdempotencyRecord(fingerprint: "abc123", repeats: 2), .exhausted),
            (IdempotencyRecord(fingerprint: "other", repeats: 2), .reused),
        ] as [(IdempotencyRecord?, IdempotencyRecord.Decision)])
    func decides(record: IdempotencyRecord?, decision: IdempotencyRecord.Decision) {
        #expect(IdempotencyRecord.decide(record, for: Self.check) == decision)
    }

    /// The fingerprint's text: each field as its length in bytes, `:`, then the field; the
    /// query is a fourth field only when not empty, so a request without one keeps the
    /// fingerprint records written before the query counted hold (docs/redis.md).
    @Test(
        arguments: [
            ("", "13:/api/orders *4:POST13:/api/orders/x"),
            ("prompt=a", "13:/api/orders *4:POST13:/api/orders/x8:prompt=a"),
            ("p=%61&q", "13:/api/orders *4:POST13:/api/orders/x7:p=%61&q"),
        ])
    func fingerprintCountsTheQueryAsSent(query: String, text: String) throws {
        let gate = Gate(config: ResponderNoFreePassTests.config())
        let route = try #require(gate.route(path: "/api/orders/x", method: "POST"))
        #expect(route.fingerprint(method: "POST", uri: "/api/orders/x", query: query) == String(SHA256.hex(text).prefix(32)))
    }

    @Test(
        arguments: [
            ("/api/generate?prompt=a", "prompt=a"), ("/api/generate", ""), ("/api/generate?", ""), ("/a?b?c#d", "b?c#d"),
            ("/a%3Fb?x=%zz", "x=%zz"), ("?", ""), ("", ""),
        ])
    func theQueryIsTheRawTextAfterTheFirstQuestionMark(requestURI: String, query: String) {
        #expect(URIPath.query(ofRequestURI: requestURI) == query)
    }
}
