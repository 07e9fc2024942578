import ChargeGateCore
import ChargeGateTestSupport
import Testing
@testable import ChargeGateRedis

/// A stand-in for the script's reply, as a Lua table constructor, and what it shows.
struct StandInReply: Sendable, CustomTestStringConvertible {
    /// The Lua expression the stand-in script returns.
    var lua: String
    /// Why the reply must be refused.
    var why: String

    init(_ lua: String, _ why: String) {
        self.lua = lua
        self.why = why
    }

    var testDescription: String { why }
}

extension RedisTests {
    /// Replies the real script never gives, from a real redis-server running a stand-in script
    /// under the store's own EVALSHA/EVAL path: each is a store error (the request gets a 503),
    /// never a trap and never a number passed on to the client.
    @Suite("Reply bounds")
    struct ReplyBounds {
        static let now = "1700000000000"

        static let spends: [StandInReply] = [
            StandInReply("{'out', \(now), 0, 9223372036854775000}", "retryAfterMs near Int64.max (a Lua number)"),
            StandInReply("{'out', \(now), 0, '9223372036854775000'}", "retryAfterMs near Int64.max (a bulk string)"),
            StandInReply("{'out', \(now), 0, '99999999999999999999'}", "retryAfterMs past Int64"),
            StandInReply("{'out', \(now), 0, -5}", "a negative retryAfterMs"),
            StandInReply("{'out', \(now), 0, 36028797018963968}", "retryAfterMs of 2^55"),
            StandInReply("{'out', -1, 0, 1000}", "a negative clock"),
            StandInReply("{'out', 9223372036854775000, 0, 1000}", "a clock near Int64.max"),
            StandInReply("{'allowed', \(now), -3, -1}", "negative charges left"),
            StandInReply("{'allowed', \(now), 9223372036854775000, -1}", "charges left near Int64.max"),
            StandInReply("{'allowed', \(now), 2, -7}", "fullAt below -1"),
            StandInReply("{'allowed', \(now), 2, 9223372036854775000}", "fullAt near Int64.max"),
            StandInReply("{'credits', \(now), 0, -9223372036854775000, 1}", "available near Int64.min"),
            StandInReply("{'credits', \(now), 0, 3, 9223372036854775000}", "required near Int64.max"),
        ]

        /// A store on the test server whose script is `lua` (returned as is).
        static func store(_ fixture: RedisFixture, returning lua: String) -> RedisStore {
            let store = fixture.store()
            let source = Array("return \(lua)".utf8)
            store.script = (Array(SHA1.hex(source).utf8), source)
            return store
        }

        static func request(_ fixture: RedisFixture) -> SpendRequest {
            SpendRequest(
                items: [SpendItem(poolId: "p", key: fixture.prefix + "p", max: 5, intervalMs: 3_600_000, cost: 1, expires: false)],
                context: context())
        }

        @Test(arguments: spends)
        func aSpendReplyOutOfRangeIsAStoreError(_ reply: StandInReply) throws {
            let fixture = try RedisFixture()
            let store = Self.store(fixture, returning: reply.lua)
            #expect(throws: StoreError.self) { try store.charge(Self.request(fixture)) }
        }

        /// The responder on such a store: a 503 for the client, the process alive (it trapped
        /// on `now + wait` for the edge cache's expiry before).
        @Test(arguments: spends)
        func theResponderAnswers503(_ reply: StandInReply) throws {
            let fixture = try RedisFixture()
            var config = GateConfig()
            config.edgeDenySeconds = 5
            config.pools = [PoolConfig(id: "p", capacity: .limited(5), recharge: .every(intervalMs: 3_600_000), rechargeIntervalHours: 1)]
            config.routes = [RouteConfig(prefix: "/api", charges: [.init(poolIndex: 0, cost: 1)])]
            config.keyPrefix = fixture.prefix
            let responder = Responder(store: Self.store(fixture, returning: reply.lua), clock: ManualClock(), denials: DenyCache())
            let response = responder.respond(
                to: AuthRequest(params: ["CHARGE_GATE_ROLE": "auth", "CHARGE_GATE_URI": "/api/x", "REQUEST_METHOD": "POST"]),
                gate: Gate(config: config))
            #expect(response.status == 403)
            #expect(response.headers.first { $0.name == "X-Charge-Status" }?.value == "503")
            #expect(response.headers.first { $0.name == "X-Accel-Expires" }?.value == "0", "never cached")
        }

        static let reads: [StandInReply] = [
            StandInReply("{-1, {1, 2, false}}", "a negative clock"),
            StandInReply("{\(now), {'9223372036854775000', 2, false}}", "current past the exact range"),
            StandInReply("{\(now), {1, -9223372036854775000, false}}", "lastUpdatedAt past the exact range"),
            StandInReply("{\(now), {1, 2, 9223372036854775000}}", "a recorded cap past the exact range"),
        ]

        @Test(arguments: reads)
        func aPeekReplyOutOfRangeIsAStoreError(_ reply: StandInReply) throws {
            let fixture = try RedisFixture()
            let store = Self.store(fixture, returning: reply.lua)
            #expect(throws: StoreError.self) { try store.peek([fixture.prefix + "p"]) }
        }

        static let topOffs: [StandInReply] = [
            StandInReply("{-1, 1, 2, false}", "a negative clock"),
            StandInReply("{\(now), 9223372036854775000, 2, false}", "current past the exact range"),
            StandInReply("{\(now), 1, 9223372036854775000, false}", "lastUpdatedAt past the exact range"),
            StandInReply("{\(now), 1, 2, -9223372036854775000}", "a recorded cap past the exact range"),
        ]

        @Test(arguments: topOffs)
        func aTopOffReplyOutOfRangeIsAStoreError(_ reply: StandInReply) throws {
            let fixture = try RedisFixture()
            let store = Self.store(fixture, returning: reply.lua)
            let item = SpendItem(poolId: "p", key: fixture.prefix + "p", max: 5, intervalMs: 3_600_000, cost: 0, expires: false)
            #expect(throws: StoreError.self) { try store.topOff(item, amount: 1) }
        }

        static let settles: [StandInReply] = [
            StandInReply("{'unknown', -1}", "a negative clock"),
            StandInReply("{'duplicate', '\(now)', 'x'}", "a short tag with more fields"),
            StandInReply("{'settled', \(now), 'amount', 9223372036854775000, '{}'}", "an amount near Int64.max, a record that is none"),
            StandInReply("{'settled', \(now), 'amount', 1, 'not json', -3, false}", "a record that is not JSON"),
            StandInReply("{'sett1ed', \(now)}", "an unknown tag"),
        ]

        @Test(arguments: settles)
        func aSettleReplyOutOfRangeIsAStoreError(_ reply: StandInReply) throws {
            let fixture = try RedisFixture()
            let store = fixture.store()
            let source = Array("return \(reply.lua)".utf8)
            store.settleScript = (Array(SHA1.hex(source).utf8), source)
            #expect(throws: StoreError.self) {
                try store.settle(SettleRequest(key: fixture.prefix + "#hold:h", id: "h", report: .app(amount: 1)))
            }
        }
    }
}

/// The params of one FastCGI request.
private struct AuthRequest: RequestParams {
    var params: [String: String]
    func param(_ name: String) -> String? { params[name] }
    func body(limit: Int) -> [UInt8]? { [] }
}
