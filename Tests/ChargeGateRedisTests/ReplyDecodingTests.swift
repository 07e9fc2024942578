import ChargeGateCore
import Testing
@testable import ChargeGateRedis

/// One script reply, as Redis values, and what it decodes to (nil: refused with `message`).
struct DecodingCase: Sendable, CustomTestStringConvertible {
    var reply: [RedisValue]
    var result: SpendResult?
    var message: String

    init(_ reply: [RedisValue], _ outcome: SpendOutcome, now: Int64) {
        self.reply = reply
        self.result = SpendResult(outcome, now: now)
        self.message = ""
    }

    init(_ reply: [RedisValue], refused message: String) {
        self.reply = reply
        self.result = nil
        self.message = message
    }

    var testDescription: String { result.map { "\($0)" } ?? message }
}

/// The reply decoders on their own (no server): every number is read within its range, and a
/// reply out of range is a `.protocolError` naming the field, never a value passed on.
@Suite struct ReplyDecodingTests {
    static let now: Int64 = 1_700_000_000_000
    static let limit = Limits.exactInteger

    static func int(_ value: Int64) -> RedisValue { .integer(value) }
    static func text(_ value: String) -> RedisValue { .string(Array(value.utf8)) }

    static let request = SpendRequest(
        items: [SpendItem(poolId: "p", key: "k", max: 5, intervalMs: 1000, cost: 1, expires: false)],
        context: EventContext(subject: "s", route: "/", method: "POST", uri: "/", idempotencyKey: ""))

    static let spends: [DecodingCase] = [
        // In range, at the edges.
        DecodingCase([text("out"), int(now), int(0), int(0)], .outOfCharge(item: 0, retryAfterMs: 0), now: now),
        DecodingCase([text("out"), int(now), int(0), int(2 * limit - 1)], .outOfCharge(item: 0, retryAfterMs: 2 * limit - 1), now: now),
        DecodingCase([text("out"), int(now), text("0"), text("1500")], .outOfCharge(item: 0, retryAfterMs: 1500), now: now),
        DecodingCase([text("allowed"), int(now), int(4), int(-1)], .allowed([ItemResult(remaining: 4, fullAt: nil)]), now: now),
        DecodingCase(
            [text("allowed"), int(limit - 1), int(limit - 1), int(2 * limit - 1)],
            .allowed([ItemResult(remaining: limit - 1, fullAt: 2 * limit - 1)]), now: limit - 1),
        DecodingCase(
            [text("credits"), int(now), int(0), int(1 - limit), int(1)], .insufficientCredits(item: 0, available: 1 - limit, required: 1),
            now: now),
        DecodingCase([text("repeated"), int(0)], .repeated, now: 0),
        // Out of range.
        DecodingCase(
            [text("out"), int(now), int(0), int(9_223_372_036_854_775_000)],
            refused: "spend reply: retryAfterMs is not a whole number from 0 to 18014398509481983"),
        DecodingCase(
            [text("out"), int(now), int(0), text("9223372036854775808")],
            refused: "spend reply: retryAfterMs is not a whole number from 0 to 18014398509481983"),
        DecodingCase(
            [text("out"), int(now), int(0), int(-1)], refused: "spend reply: retryAfterMs is not a whole number from 0 to 18014398509481983"
        ),
        DecodingCase(
            [text("out"), int(now), int(0), int(2 * limit)],
            refused: "spend reply: retryAfterMs is not a whole number from 0 to 18014398509481983"),
        DecodingCase(
            [text("out"), int(now), int(0), text("1e3")],
            refused: "spend reply: retryAfterMs is not a whole number from 0 to 18014398509481983"),
        DecodingCase([text("out"), int(now), int(1), int(5)], refused: "spend reply: item is not a whole number from 0 to 0"),
        DecodingCase([text("out"), int(-1), int(0), int(5)], refused: "spend reply: now is not a whole number from 0 to 9007199254740991"),
        DecodingCase(
            [text("out"), int(limit), int(0), int(5)], refused: "spend reply: now is not a whole number from 0 to 9007199254740991"),
        DecodingCase(
            [text("allowed"), int(now), int(-1), int(-1)],
            refused: "spend reply: remaining is not a whole number from 0 to 9007199254740991"),
        DecodingCase(
            [text("allowed"), int(now), int(limit), int(-1)],
            refused: "spend reply: remaining is not a whole number from 0 to 9007199254740991"),
        DecodingCase(
            [text("allowed"), int(now), int(1), int(-2)], refused: "spend reply: fullAt is not a whole number from -1 to 18014398509481983"),
        DecodingCase(
            [text("allowed"), int(now), int(1), int(.max)],
            refused: "spend reply: fullAt is not a whole number from -1 to 18014398509481983"),
        DecodingCase(
            [text("credits"), int(now), int(0), int(.min), int(1)],
            refused: "spend reply: available is not a whole number from -9007199254740991 to 9007199254740991"),
        DecodingCase(
            [text("credits"), int(now), int(0), int(1), int(-1)],
            refused: "spend reply: required is not a whole number from 0 to 9007199254740991"),
        DecodingCase([text("out"), int(now), int(0)], refused: "unexpected spend reply 'out'"),
    ]

    @Test(arguments: spends)
    func spendReplies(_ c: DecodingCase) {
        let decoded = Result { () throws(StoreError) in try RedisStore.spendResult(.array(c.reply), for: Self.request) }
        switch (decoded, c.result) {
        case (.success(let result), let expected?):
            #expect(result == expected)
        case (.failure(let error), nil):
            #expect(error == .protocolError(c.message))
        default:
            Issue.record("got \(decoded)")
        }
    }

    @Test(
        arguments: [
            ([int(now), .array([int(3), int(now), .null])], nil),
            ([int(now), .null], nil),
            (
                [int(now), .array([int(limit), int(now), .null])],
                "peek reply: current is not a whole number from -9007199254740991 to 9007199254740991"
            ),
            (
                [int(now), .array([int(3), int(-limit), .null])],
                "peek reply: lastUpdatedAt is not a whole number from -9007199254740991 to 9007199254740991"
            ),
            (
                [int(now), .array([int(3), int(now), int(.max)])],
                "peek reply: max is not a whole number from -9007199254740991 to 9007199254740991"
            ),
            ([int(-5), .null], "peek reply: now is not a whole number from 0 to 9007199254740991"),
            ([int(now), .array([int(3), int(now)])], "unexpected peek reply"),
        ] as [([RedisValue], String?)])
    func peekReplies(reply: [RedisValue], message: String?) {
        let decoded = Result { () throws(StoreError) in try RedisStore.peekResult(.array(reply), count: 1) }
        if let message {
            #expect(throws: StoreError.protocolError(message)) { try decoded.get() }
        } else {
            #expect((try? decoded.get())?.now == Self.now)
        }
    }

    @Test(
        arguments: [
            ([int(now), int(3), int(now), .null], nil),
            ([int(now), int(3), int(now), int(7)], nil),
            (
                [int(now), text("9223372036854775807"), int(now), .null],
                "top-off reply: current is not a whole number from -9007199254740991 to 9007199254740991"
            ),
            ([int(.max), int(3), int(now), .null], "top-off reply: now is not a whole number from 0 to 9007199254740991"),
            (
                [int(now), int(3), int(now), int(-limit)],
                "top-off reply: max is not a whole number from -9007199254740991 to 9007199254740991"
            ),
        ] as [([RedisValue], String?)])
    func topOffReplies(reply: [RedisValue], message: String?) {
        let decoded = Result { () throws(StoreError) in try RedisStore.topOffResult(.array(reply)) }
        if let message {
            #expect(throws: StoreError.protocolError(message)) { try decoded.get() }
        } else {
            #expect((try? decoded.get())?.state.current == 3)
        }
    }

    @Test(
        arguments: [
            (int(5), 0..<10, 5), (int(10), 0..<10, nil), (int(-1), 0..<10, nil), (text("7"), 0..<10, 7), (text("+7"), 0..<10, 7),
            (text("07x"), 0..<10, nil), (text("99999999999999999999"), Int64.min..<Int64.max, nil), (.null, 0..<10, nil),
            (.status("3"), 0..<10, nil), (.array([int(1)]), 0..<10, nil),
        ] as [(RedisValue, Range<Int64>, Int64?)])
    func integerInRange(value: RedisValue, range: Range<Int64>, expected: Int64?) {
        #expect(value.integer(in: range) == expected)
    }

    /// A record as the spend script writes it: two pools, the second a period pool.
    static let record =
        #"{"status":"settled","id":"h1","createdAt":1700000000000,"expiresAt":1700000060000,"#
        + #""policy":{"refund":["5xx","429"],"amount":"header","by":"nginx"},"#
        + #""context":{"subject":"s","route":"\/api","method":"POST","uri":"\/api\/x","idem":"","plan":"","hold":"h1"},"#
        + #""items":[{"key":"k:a","pool":"a","max":10,"interval":1000,"cost":4,"expires":true,"tracksLimit":false,"metered":true},"#
        + #"{"key":"k:b","pool":"b","max":5,"cost":1,"expires":false,"period":"day","tracksLimit":true,"baseMax":5,"metered":false,"periodStart":1699920000000}]}"#

    static let items = [
        SpendItem(poolId: "a", key: "k:a", max: 10, intervalMs: 1000, cost: 4, expires: true),
        SpendItem(poolId: "b", key: "k:b", max: 5, intervalMs: nil, cost: 1, expires: false, period: .day, tracksLimit: true, baseMax: 5),
    ]

    static func settled(_ resolution: RedisValue, _ detail: RedisValue, _ pools: [RedisValue], record: String = record) -> RedisValue {
        .array([text("settled"), int(now), resolution, detail, text(record)] + pools)
    }

    static let pools: [RedisValue] = [int(-3), .array([int(7), int(now), .null]), int(0), .null]

    @Test func theRecordDecodesToWhatTheSpendHeld() throws {
        let decoded = try #require(HoldRecord(stored: Self.record))
        #expect(
            decoded
                == HoldRecord(
                    id: "h1", createdAt: 1_700_000_000_000, expiresAt: 1_700_000_060_000,
                    policy: SettlePolicy(refund: [.statusClass(5), .status(429)], amount: .header),
                    context: EventContext(subject: "s", route: "/api", method: "POST", uri: "/api/x", idempotencyKey: "", hold: "h1"),
                    items: [
                        .init(spend: Self.items[0], held: 4, metered: true),
                        .init(spend: Self.items[1], held: 1, metered: false, periodStart: 1_699_920_000_000),
                    ], status: .settled))
    }

    @Test(
        arguments: [
            (
                settled(text("amount"), int(1), pools),
                SettleOutcome.settled(
                    .init(
                        resolution: .amount(1), differences: [-3, 0],
                        pools: [
                            .init(poolId: "a", item: items[0], state: BucketState(current: 7, lastUpdatedAt: now)),
                            .init(poolId: "b", item: items[1], state: nil),
                        ])), ""
            ),
            (settled(text("refund"), text("not_delivered"), pools), nil, ""),
            (settled(text("stands"), text(""), pools), nil, ""),
            (settled(text("bad_amount"), text(""), pools), nil, ""),
            (RedisValue.array([text("unknown"), int(now)]), SettleOutcome.unknown, ""),
            (RedisValue.array([text("expired"), int(now)]), SettleOutcome.expired, ""),
            (RedisValue.array([text("duplicate"), int(now)]), SettleOutcome.duplicate, ""),
            (RedisValue.array([text("ignored"), int(now)]), SettleOutcome.ignored, ""),
            (RedisValue.array([text("unknown"), int(now), int(1)]), nil, "unexpected settle reply 'unknown'"),
            (RedisValue.array([text("settled"), int(now)]), nil, "unexpected settle reply 'settled'"),
            (RedisValue.array([text("refunded"), int(now)]), nil, "unexpected settle reply"),
            (RedisValue.array([text("unknown"), int(-1)]), nil, "settle reply: now is not a whole number from 0 to 9007199254740991"),
            (settled(text("amount"), int(limit + 1), pools), nil, "settle reply: amount is not a whole number from 0 to 9007199254740992"),
            (settled(text("amount"), int(-1), pools), nil, "settle reply: amount is not a whole number from 0 to 9007199254740992"),
            (settled(text("refund"), text("because"), pools), nil, "settle reply: unknown refund reason"),
            (settled(text("given"), text(""), pools), nil, "settle reply: unknown resolution"),
            (settled(text("amount"), int(1), Array(pools.prefix(2))), nil, "unexpected settle reply: 7 values for 2 pools"),
            (
                settled(text("amount"), int(1), [int(limit + 1)] + pools.dropFirst()), nil,
                "settle reply: difference is not a whole number from -9007199254740992 to 9007199254740992"
            ),
            (
                settled(text("amount"), int(1), [int(-3), .array([int(.max), int(now), .null]), int(0), .null]), nil,
                "settle reply: current is not a whole number from -9007199254740991 to 9007199254740991"
            ),
            (settled(text("amount"), int(1), [int(-3), int(7), int(0), .null]), nil, "unexpected settle reply"),
            (
                settled(text("amount"), int(1), pools, record: record.replacingOccurrences(of: "1699920000000", with: "9007199254740992")),
                nil,
                "settle reply: the hold record is not one the spend script writes"
            ),
            (
                settled(
                    text("amount"), int(1), pools, record: record.replacingOccurrences(of: #""period":"day""#, with: #""period":"year""#)),
                nil,
                "settle reply: the hold record is not one the spend script writes"
            ),
        ] as [(RedisValue, SettleOutcome?, String)])
    func settleReplies(reply: RedisValue, outcome: SettleOutcome?, message: String) {
        let decoded = Result { () throws(StoreError) in try RedisStore.settleResult(reply) }
        switch decoded {
        case .success(let got):
            #expect(message.isEmpty, "accepted a reply that should be refused: \(message)")
            if let outcome { #expect(got == outcome) }
        case .failure(let error):
            #expect(error == .protocolError(message))
        }
    }
}
