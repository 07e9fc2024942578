import ChargeGateCore

/// A table of requests to one responder and the answer each must get, written once and run
/// over any `ChargeStore`: the memory store (ChargeGateCoreTests) and the Redis store
/// (ChargeGateRedisTests, which also runs each table over a memory store and compares the two
/// runs answer by answer). The tables themselves are in ResponderScenario+Tables.swift.
///
/// A table only checks what does not depend on the store's clock (statuses, bodies, remaining
/// charges, balances; waits and times are masked, see `MaskedAnswer`, and only checked to be
/// positive), so the Redis store, whose script reads Redis's clock, must answer exactly as the
/// memory store does. A table that moves the manual clock (`ResponderStep.advance`) runs on the
/// memory store only: Redis's clock cannot be moved.
public struct ResponderScenario: Sendable, CustomStringConvertible {
    /// What the table shows, as its test's name.
    public var name: String
    /// The gate's config (its `keyPrefix` is replaced by the run's).
    public var config: GateConfig
    /// The requests and answers, in order, against one responder with one deny cache.
    public var steps: [ResponderStep]

    /// A table over `config` (by default the responder suites' fixture config).
    public init(_ name: String, config: GateConfig = .responderFixture(), _ steps: [ResponderStep]) {
        self.name = name
        self.config = config
        self.steps = steps
    }

    /// The name, as its test case's.
    public var description: String { name }

    /// Whether a step moves the manual clock (then the table runs on the memory store only).
    public var movesTheClock: Bool {
        steps.contains { if case .advance = $0 { return true } else { return false } }
    }

    /// Runs the table against a responder over the store `makeStore` builds (given the manual
    /// clock the responder's deny cache reads, which a memory store should read too), under
    /// key prefix `keyPrefix`; returns every answer, masked, and what did not match the table.
    /// `redis`, when given, is the config's store URL (a `redis-cluster://` one lays the keys
    /// out for a cluster).
    public func run(
        keyPrefix: String, redis: RedisURL? = nil, store makeStore: (ManualClock) throws -> any ChargeStore
    ) rethrows -> ResponderRun {
        let clock = ManualClock()
        var config = config
        config.keyPrefix = keyPrefix
        if let redis { config.redis = redis }
        let gate = Gate(config: config)
        let responder = Responder(store: try makeStore(clock), clock: clock, denials: DenyCache())
        var run = ResponderRun()
        for (index, step) in steps.enumerated() {
            switch step {
            case .advance(let ms):
                clock.advance(ms)
            case .ask(let request, let expected):
                let answer = MaskedAnswer(responder.respond(to: request, gate: gate))
                run.answers.append(answer)
                run.mismatches += expected.mismatches(answer).map { "step \(index + 1) (\(Self.describe(request))): \($0); got \(answer)" }
            }
        }
        return run
    }

    /// A request as `role METHOD uri-or-query [subject] [key]`, for a mismatch's message.
    static func describe(_ request: FakeRequest) -> String {
        let p = request.params
        var text = (p[WireProtocol.Param.role] ?? "?") + " " + (p[WireProtocol.Param.method] ?? "")
        if let uri = p[WireProtocol.Param.uri] {
            text += " " + uri
        } else if let query = p[WireProtocol.Param.query], !query.isEmpty {
            text += " ?" + query
        }
        text += " from " + (p[WireProtocol.Param.subject] ?? "")
        if let key = p["HTTP_IDEMPOTENCY_KEY"] { text += " key " + key }
        if let uri = p[WireProtocol.Param.requestURI] { text += " as " + uri }
        return text
    }
}

/// What one run of a `ResponderScenario` gave.
public struct ResponderRun: Sendable {
    /// Each request's answer, masked, in order: equal for two stores that answer alike.
    public var answers: [MaskedAnswer] = []
    /// Every way an answer differed from the table, one line each naming its step; empty
    /// when the run matched.
    public var mismatches: [String] = []
}
