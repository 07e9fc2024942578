import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// A request made of a dictionary of params.
struct FakeRequest: RequestParams {
    var params: [String: String]
    var bodyBytes: [UInt8] = []

    func param(_ name: String) -> String? { params[name] }
    func body(limit: Int) -> [UInt8]? { bodyBytes.count > limit ? nil : bodyBytes }

    static func auth(_ uri: String, method: String = "POST", subject: String = "203.0.113.7", headers: [String: String] = [:])
        -> FakeRequest
    {
        var params = ["CHARGE_GATE_ROLE": "auth", "CHARGE_GATE_URI": uri, "REQUEST_METHOD": method, "CHARGE_GATE_SUBJECT": subject]
        params.merge(headers) { $1 }
        return FakeRequest(params: params)
    }

    static func endpoint(
        _ role: String, query: String = "", method: String = "GET", token: String? = nil, subject: String = "203.0.113.7", body: String = ""
    ) -> FakeRequest {
        var params = ["CHARGE_GATE_ROLE": role, "QUERY_STRING": query, "REQUEST_METHOD": method, "CHARGE_GATE_SUBJECT": subject]
        if let token { params["HTTP_AUTHORIZATION"] = "Bearer " + token }
        return FakeRequest(params: params, bodyBytes: Array(body.utf8))
    }
}

/// A store that counts how often it is asked, over a memory store.
final class CountingStore: ChargeStore {
    let inner: MemoryStore
    var spends = 0
    init(_ inner: MemoryStore) { self.inner = inner }
    func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        spends += 1
        return try inner.charge(request)
    }
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) { try inner.peek(keys) }
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) {
        try inner.topOff(item, amount: amount)
    }
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage { try inner.events(stream: stream, query) }
    func plan(at key: String) throws(StoreError) -> PlanRecord? { try inner.plan(at: key) }
    func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) { try inner.setPlan(record, at: key) }
    func clearPlan(at key: String) throws(StoreError) -> Bool { try inner.clearPlan(at: key) }
    func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome { try inner.settle(request) }
    func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) {
        try inner.openHolds(prefix: prefix, limit: limit)
    }
}

/// A store that always fails, for the fail-closed answers.
final class DownStore: ChargeStore {
    func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult { throw .timeout }
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) { throw .unavailable("down") }
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) { throw .timeout }
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage { throw .timeout }
    func plan(at key: String) throws(StoreError) -> PlanRecord? { throw .timeout }
    func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) { throw .timeout }
    func clearPlan(at key: String) throws(StoreError) -> Bool { throw .timeout }
    func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome { throw .timeout }
    func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) { throw .timeout }
}

/// What every responder suite starts from: the test config, a gate over it, a memory store on a
/// manual clock, and a responder with its own deny cache.
protocol ResponderSuite {
    /// The fixture of this test (each test gets a new suite value, so a new fixture).
    var fixture: ResponderFixture { get }
}

extension ResponderSuite {
    static var hour: Int64 { ResponderFixture.hour }
    static func config(devBypass: Bool = false) -> GateConfig { ResponderFixture.config(devBypass: devBypass) }
    var clock: ManualClock { fixture.clock }
    var gate: Gate { fixture.gate }
    var denials: DenyCache { fixture.denials }
    var store: MemoryStore { fixture.store }
    var responder: Responder { fixture.responder }
    func header(_ response: Response, _ name: String) -> String? { fixture.header(response, name) }
}

/// The state of one responder test.
struct ResponderFixture {
    static let hour: Int64 = 3_600_000

    static func config(devBypass: Bool = false) -> GateConfig {
        var config = GateConfig()
        config.devBypass = devBypass
        config.adminToken = "s3cret"
        config.pools = [
            PoolConfig(
                id: "generate-image", capacity: .limited(2), recharge: .every(intervalMs: 2 * hour), rechargeIntervalHours: 2,
                label: "Image generation", group: "AI"),
            PoolConfig(
                id: "api-calls", capacity: .limited(3), recharge: .every(intervalMs: 36_000), rechargeIntervalHours: 0.01, scope: .subject),
            PoolConfig(id: "credits", capacity: .limited(10), recharge: .none, scope: .subject),
            PoolConfig(id: "meter", capacity: .unlimited, recharge: .none, scope: .subject),
        ]
        config.routes = [
            RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"], idempotent: true),
            RouteConfig(
                prefix: "/api/paid", charges: [.init(poolIndex: 1, cost: 1), .init(poolIndex: 2, cost: 5), .init(poolIndex: 3, cost: 1)],
                idempotent: true),
            RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 1, cost: 1)], methods: ["GET"], idempotent: true),
            RouteConfig(prefix: "/api/read", charges: [.init(poolIndex: 0, cost: 1)], methods: ["PUT"]),
        ]
        return config
    }

    let clock = ManualClock()
    let gate = Gate(config: ResponderFixture.config())
    let denials = DenyCache()
    var responder: Responder { Responder(store: store, clock: clock, denials: denials) }
    let store: MemoryStore

    init() { store = MemoryStore(clock: clock) }

    func header(_ response: Response, _ name: String) -> String? {
        response.headers.first { $0.name == name }?.value
    }
}
