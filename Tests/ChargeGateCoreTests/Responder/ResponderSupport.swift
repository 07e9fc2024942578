import ChargeGateTestSupport
import Testing
@testable import ChargeGateCore

/// A store that counts how often it is asked, over a memory store.
final class CountingStore: ForwardingStore {
    let inner: MemoryStore
    var spends = 0
    init(_ inner: MemoryStore) { self.inner = inner }
    func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        spends += 1
        return try inner.charge(request)
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

/// A store that answers every spend with one fixed outcome at its clock's `now`, or fails with
/// one fixed error, whatever it is asked; it holds no plan or hold, and its reads fail.
final class AnsweringStore: ChargeStore {
    let answer: Result<SpendOutcome, StoreError>
    let now: Int64
    init(_ answer: Result<SpendOutcome, StoreError>, now: Int64) {
        self.answer = answer
        self.now = now
    }
    func charge(_ request: SpendRequest) throws(StoreError) -> SpendResult {
        switch answer {
        case .success(let outcome): return SpendResult(outcome, now: now)
        case .failure(let error): throw error
        }
    }
    func peek(_ keys: [String]) throws(StoreError) -> (now: Int64, states: [BucketState?]) { throw .timeout }
    func topOff(_ item: SpendItem, amount: Int64?) throws(StoreError) -> (now: Int64, state: BucketState) { throw .timeout }
    func events(stream: String, _ query: EventQuery) throws(StoreError) -> EventPage { throw .timeout }
    func plan(at key: String) throws(StoreError) -> PlanRecord? { nil }
    func setPlan(_ record: PlanRecord, at key: String) throws(StoreError) {}
    func clearPlan(at key: String) throws(StoreError) -> Bool { false }
    func settle(_ request: SettleRequest) throws(StoreError) -> SettleOutcome { .unknown }
    func openHolds(prefix: String, limit: Int) throws(StoreError) -> (now: Int64, holds: [HoldRecord]) { (0, []) }
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

    /// The responder suites' config (`GateConfig.responderFixture`, in the test support target).
    static func config(devBypass: Bool = false) -> GateConfig { .responderFixture(devBypass: devBypass) }

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

/// What the suites whose tests vary the config start from (no free pass, idempotency): a
/// memory store on a manual clock, counted by a `CountingStore`, and a responder over it; each
/// test makes its gate from `config(maxRepeats:maxKeys:)`.
protocol CountingSuite {
    /// The fixture of this test (each test gets a new suite value, so a new fixture).
    var fixture: CountingFixture { get }
}

extension CountingSuite {
    static var hour: Int64 { CountingFixture.hour }
    static func config(maxRepeats: Int = 5, maxKeys: Int = 10_000) -> GateConfig {
        CountingFixture.config(maxRepeats: maxRepeats, maxKeys: maxKeys)
    }
    var clock: ManualClock { fixture.clock }
    var store: MemoryStore { fixture.store }
    var counting: CountingStore { fixture.counting }
    var responder: Responder { fixture.responder }
    func status(_ response: Response) -> String? { fixture.status(response) }
    func ask(_ gate: Gate, _ uri: String, method: String = "POST", subject: String = "alice", key: String? = nil) -> Response {
        fixture.ask(gate, uri, method: method, subject: subject, key: key)
    }
}

/// The state of one test of a `CountingSuite`.
struct CountingFixture {
    static let hour: Int64 = 3_600_000

    /// `/api/dc`: POST spends `small` (1 charge), GET spends `big` (995); `/api/orders` is
    /// idempotent on `small2`; `/api/plain` is not idempotent.
    static func config(maxRepeats: Int = 5, maxKeys: Int = 10_000) -> GateConfig {
        var config = GateConfig()
        config.idempotencyMaxRepeats = maxRepeats
        config.idempotencyMaxKeysPerSubject = maxKeys
        config.pools = [
            PoolConfig(id: "small", capacity: .limited(1), recharge: .every(intervalMs: 100 * hour), rechargeIntervalHours: 100),
            PoolConfig(id: "big", capacity: .limited(995), recharge: .every(intervalMs: 100 * hour), rechargeIntervalHours: 100),
            PoolConfig(
                id: "small2", capacity: .limited(3), recharge: .every(intervalMs: 100 * hour), rechargeIntervalHours: 100, scope: .subject),
            PoolConfig(id: "meter", capacity: .unlimited, recharge: .none, scope: .subject),
        ]
        config.routes = [
            RouteConfig(prefix: "/api/dc", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"], idempotent: true),
            RouteConfig(prefix: "/api/dc", charges: [.init(poolIndex: 1, cost: 1)], methods: ["GET"], idempotent: true),
            RouteConfig(prefix: "/api/orders", charges: [.init(poolIndex: 2, cost: 1)], idempotent: true),
            RouteConfig(prefix: "/api/plain", charges: [.init(poolIndex: 2, cost: 1)]),
            RouteConfig(prefix: "/api/meter", charges: [.init(poolIndex: 3, cost: 1)], idempotent: true),
        ]
        return config
    }

    let clock = ManualClock()
    let store: MemoryStore
    let counting: CountingStore
    let responder: Responder

    init() {
        store = MemoryStore(clock: clock)
        counting = CountingStore(store)
        responder = Responder(store: counting, clock: clock, denials: DenyCache())
    }

    /// The answer's `X-Charge-Status`.
    func status(_ response: Response) -> String? {
        response.headers.first { $0.name == "X-Charge-Status" }?.value
    }

    /// Asks the auth role about `uri` under `gate`, with the idempotency key `key` if given.
    func ask(_ gate: Gate, _ uri: String, method: String = "POST", subject: String = "alice", key: String? = nil) -> Response {
        responder.respond(
            to: FakeRequest.auth(uri, method: method, subject: subject, headers: key.map { ["HTTP_IDEMPOTENCY_KEY": $0] } ?? [:]),
            gate: gate)
    }
}
