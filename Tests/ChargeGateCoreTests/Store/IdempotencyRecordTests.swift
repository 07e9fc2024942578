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
}
