import ChargeGateCore

/// The settlement tables: store-neutral rows (a config, then spends, settlements and checks)
/// that both stores run, the memory store in `SettlementStoreTests` (ChargeGateCoreTests) and
/// the Redis store in `SettleScriptTests` (ChargeGateRedisTests), so that the Lua settle
/// script and `MemoryStore.settle` cannot drift apart. Every expected value is exact and
/// independent of when the row runs: times are named by what wrote them (`Stamp`), waits and
/// expiries are counted from the state's own stamp. The runner is `SettleTables+Run.swift`.
public enum SettleTables {
    /// One row.
    public struct Case: Sendable, CustomStringConvertible {
        /// What the row shows.
        public var name: String
        /// The config's YAML (pools, routes, plans...); the runner puts `keyPrefix` and
        /// `eventsMaxLen` before it.
        public var config: String
        /// What happens, in order.
        public var steps: [Step]
        /// Every event of the stream afterwards, in order; nil: not checked.
        public var events: [Event]?
        /// The expiry of pool keys after the last step (per-subject pools of subject `s1`).
        public var expiries: [(pool: String, expiry: Expiry)]
        /// Whether only the memory store runs it (it moves the clock).
        public var memoryOnly: Bool

        /// Creates a row.
        public init(
            _ name: String, config: String, steps: [Step], events: [Event]? = nil, expiries: [(pool: String, expiry: Expiry)] = [],
            memoryOnly: Bool = false
        ) {
            self.name = name
            self.config = config
            self.steps = steps
            self.events = events
            self.expiries = expiries
            self.memoryOnly = memoryOnly
        }

        /// The row's name (how a test argument shows).
        public var description: String { name }
    }

    /// One step of a row. Every request is `POST /api/x` by subject `s1`, built as the
    /// responder builds it (`Gate.items`, `Gate.planChoice`, `Gate.holdRequest`).
    public enum Step: Sendable {
        /// A spend recording hold `hold` (nil: none) and what it must answer.
        case spend(hold: String?, SpendExpect)
        /// A settlement of hold `hold` and what it must come to.
        case settle(hold: String, SettleReport, Expect)
        /// The subject's stored plan becomes `plan`.
        case setPlan(String)
        /// An admin's top-off of the route's pool `pool` (nil amount: fill).
        case topOff(pool: String, amount: Int64?)
        /// The window of hold `hold` ends (its key stays): the memory store's clock moves by the
        /// window, Redis's record is rewritten to end now.
        case endWindow(hold: String)
        /// The memory store's clock moves by `ms` (memory-only rows).
        case advance(Int64)
        /// The route's pools, read back.
        case peek([Pool])
    }

    /// What a spend answers.
    public enum SpendExpect: Sendable {
        /// Allowed, each pool holding this much afterwards.
        case allowed([Int64])
        /// A 429 on `item`: `retryAfterMs` plus the time since the pool's `lastUpdatedAt` is
        /// `fromStamp` (the wait counted from the state's own stamp, exactly).
        case outOfCharge(item: Int, fromStamp: Int64)
        /// Refused: nginx's line voided the hold first. Nothing spent.
        case voided
    }

    /// What a settlement comes to.
    public struct Expect: Sendable {
        /// `SettleOutcome.label`.
        public var label: String
        /// The resolution of a settled hold (nil: not settled).
        public var resolution: Settlement.Resolution?
        /// Per pool, the signed difference (settled only).
        public var differences: [Int64]
        /// Per pool, its state afterwards (settled only).
        public var pools: [Pool]

        /// A settled hold.
        public static func settled(_ resolution: Settlement.Resolution, _ label: String, _ differences: [Int64], _ pools: [Pool]) -> Expect
        {
            Expect(label: label, resolution: resolution, differences: differences, pools: pools)
        }

        /// An outcome without pools: `unknown`, `voided`, `expired`, `duplicate`, `ignored`.
        public static func other(_ label: String) -> Expect {
            Expect(label: label, resolution: nil, differences: [], pools: [])
        }
    }

    /// Which clock reading a stored `lastUpdatedAt` is.
    public enum Stamp: Sendable, Equatable {
        /// The settlement's own clock.
        case settle
        /// The clock of the row's spend number `k` (0-based, counting every spend step).
        case spend(Int)
        /// The clock of the row's top-off number `k`.
        case topOff(Int)
    }

    /// One pool's state: nil `current` for a missing key (a full pool).
    public struct Pool: Sendable {
        /// `current`; nil: no key.
        public var current: Int64?
        /// What wrote `lastUpdatedAt`.
        public var stamp: Stamp
        /// The recorded cap (`"max"`).
        public var limit: Int64?

        /// A stored state.
        public static func state(_ current: Int64, _ stamp: Stamp, limit: Int64? = nil) -> Pool {
            Pool(current: current, stamp: stamp, limit: limit)
        }

        /// No key.
        public static let missing = Pool(current: nil, stamp: .settle, limit: nil)
    }

    /// When a pool's key expires.
    public enum Expiry: Sendable {
        /// Never (no TTL).
        case never
        /// `ms` after the state's `lastUpdatedAt`.
        case afterStamp(Int64)
        /// At the end of the pool's current period.
        case periodEnd
        /// The key is gone.
        case removed
    }

    /// One event of the stream.
    public struct Event: Sendable, Equatable, CustomStringConvertible {
        /// Spend or settle.
        public var kind: UsageEvent.Kind
        /// The pool.
        public var pool: String
        /// The amount (a settlement's signed difference).
        public var amount: Int64
        /// nginx's status of a settlement.
        public var status: Int?
        /// The hold it opened or settled ("" for none).
        public var hold: String
        /// The plan ("" without plans).
        public var plan: String

        /// A spend's event.
        public static func spend(_ pool: String, _ amount: Int64, hold: String = "", plan: String = "") -> Event {
            Event(kind: .spend, pool: pool, amount: amount, status: nil, hold: hold, plan: plan)
        }

        /// A settlement's event.
        public static func settle(_ pool: String, _ amount: Int64, status: Int?, hold: String, plan: String = "") -> Event {
            Event(kind: .settle, pool: pool, amount: amount, status: status, hold: hold, plan: plan)
        }

        /// As the events a store answers read.
        public init(_ event: UsageEvent) {
            self.init(
                kind: event.kind, pool: event.pool, amount: event.amount, status: event.status, hold: event.context.hold,
                plan: event.context.plan)
        }

        /// Creates an event.
        public init(kind: UsageEvent.Kind, pool: String, amount: Int64, status: Int?, hold: String, plan: String) {
            self.kind = kind
            self.pool = pool
            self.amount = amount
            self.status = status
            self.hold = hold
            self.plan = plan
        }

        /// One line for a failure message.
        public var description: String {
            "\(kind.rawValue) \(pool) \(amount) status \(status.map(String.init) ?? "-") hold '\(hold)' plan '\(plan)'"
        }
    }

    /// nginx's line: `status`, whether the upstream received and answered, the header's
    /// amount, body bytes and upstream ms.
    public static func nginx(
        _ status: Int, reached: Bool = true, answered: Bool = true, amount: ResponseFacts.ReportedAmount = .missing, bytes: Int64 = 0,
        ms: Int64 = 0
    ) -> SettleReport {
        .nginx(
            ResponseFacts(
                status: status, upstreamReached: reached, upstreamAnswered: answered, amount: amount, bytesSent: bytes, upstreamMs: ms))
    }

    /// nginx's line for a 200 carrying the amount header `amount`.
    public static func ok(_ amount: Int64) -> SettleReport { nginx(200, amount: .value(amount)) }

    // MARK: Configs

    /// Metered credits (the route's cost) beside a per-call bucket; refunds 5xx and 429.
    static let creditsAndCalls = """
        settleWindowSeconds: 60
        pools:
          - id: credits
            maxCharges: 100
            recharge: none
            per: subject
          - id: calls
            maxCharges: 10
            rechargeIntervalHours: 1
            per: subject
        routes:
          - prefix: /api
            pools: [credits, {id: calls, cost: 1}]
            cost: 10
            settle:
              refund: [5xx, 429]
              amount: header
        """

    /// One per-subject bucket (10, a charge back an hour), cost 4, settled as `settle`.
    static func tokens(_ settle: String) -> String {
        """
        pools:
          - id: tokens
            maxCharges: 10
            rechargeIntervalHours: 1
            per: subject
        routes:
          - prefix: /api
            pools: [tokens]
            cost: 4
            settle: \(settle)
        """
    }

    /// One per-subject pool `pool` (its YAML lines after `id`), cost `cost`, the amount header.
    static func single(_ pool: String, _ lines: String, cost: Int64, window: Int = 60) -> String {
        """
        settleWindowSeconds: \(window)
        pools:
          - id: \(pool)
        \(lines)
        routes:
          - prefix: /api
            pools: [\(pool)]
            cost: \(cost)
            settle: {amount: header}
        """
    }

    /// Tokens whose cap plans set: free 10, pro 100; never refilled.
    static let planTokens = """
        defaultPlan: free
        plans:
          - id: free
            pools:
              tokens: { maxCharges: 10 }
          - id: pro
            pools:
              tokens: { maxCharges: 100 }
        pools:
          - id: tokens
            maxCharges: 10
            recharge: none
            per: subject
        routes:
          - prefix: /api
            pools: [tokens]
            cost: 4
            settle: {amount: header}
        """

    // MARK: Rows

    /// Every row.
    public static let all: [Case] = [
        Case(
            "refund: a status of a refunded class (503) gives every pool back; a full per-subject bucket loses its key",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(
                    hold: "h1", nginx(503, amount: .value(3)),
                    .settled(.refund(.status), "refund", [-10, -1], [.state(100, .settle), .missing])),
            ],
            events: [
                .spend("credits", 10, hold: "h1"), .spend("calls", 1, hold: "h1"), .settle("credits", -10, status: 503, hold: "h1"),
                .settle("calls", -1, status: 503, hold: "h1"),
            ],
            expiries: [("credits", .never), ("calls", .removed)]),
        Case(
            "refund: a listed status (429)",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(hold: "h1", nginx(429), .settled(.refund(.status), "refund", [-10, -1], [.state(100, .settle), .missing])),
            ],
            events: [
                .spend("credits", 10, hold: "h1"), .spend("calls", 1, hold: "h1"), .settle("credits", -10, status: 429, hold: "h1"),
                .settle("calls", -1, status: 429, hold: "h1"),
            ]),
        Case(
            "amount below the hold: the difference given back on the metered pool, the per-call pool charged its cost",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(hold: "h1", ok(4), .settled(.amount(4), "amount", [-6, 0], [.state(96, .spend(0)), .state(9, .spend(0))])),
            ],
            events: [
                .spend("credits", 10, hold: "h1"), .spend("calls", 1, hold: "h1"), .settle("credits", -6, status: 200, hold: "h1"),
                .settle("calls", 0, status: 200, hold: "h1"),
            ],
            expiries: [("credits", .never), ("calls", .afterStamp(3_600_000))]),
        Case(
            "amount equal to the hold: nothing moves, the events say 0",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(hold: "h1", ok(10), .settled(.amount(10), "amount", [0, 0], [.state(90, .spend(0)), .state(9, .spend(0))])),
            ],
            events: [
                .spend("credits", 10, hold: "h1"), .spend("calls", 1, hold: "h1"), .settle("credits", 0, status: 200, hold: "h1"),
                .settle("calls", 0, status: 200, hold: "h1"),
            ]),
        Case(
            "amount above the hold on credits: spent on top (no refill), the next spend sees it",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(hold: "h1", ok(25), .settled(.amount(25), "overage", [15, 0], [.state(75, .spend(0)), .state(9, .spend(0))])),
                .spend(hold: "h2", .allowed([65, 8])),
            ]),
        Case(
            "overage on a bucket: below zero, the next spend waits exactly for the owed charges and its cost",
            config: tokens("{amount: header}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", ok(12), .settled(.amount(12), "overage", [8], [.state(-2, .spend(0))])),
                .spend(hold: "h2", .outOfCharge(item: 0, fromStamp: 6 * 3_600_000)),
                .peek([.state(-2, .spend(0))]),
            ],
            events: [.spend("tokens", 4, hold: "h1"), .settle("tokens", 8, status: 200, hold: "h1")],
            expiries: [("tokens", .afterStamp(12 * 3_600_000))]),
        Case(
            "bytesSent: one charge per unit, rounded up",
            config: tokens("{amount: {bytesSent: 1000}}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", nginx(200, bytes: 2001), .settled(.amount(3), "amount", [-1], [.state(7, .spend(0))])),
            ],
            expiries: [("tokens", .afterStamp(3 * 3_600_000))]),
        Case(
            "bytesSent: an exact multiple is not rounded",
            config: tokens("{amount: {bytesSent: 1000}}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", nginx(200, bytes: 2000), .settled(.amount(2), "amount", [-2], [.state(8, .spend(0))])),
            ]),
        Case(
            "upstreamMs: one charge per unit, rounded up",
            config: tokens("{amount: {upstreamMs: 1000}}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", nginx(200, ms: 1), .settled(.amount(1), "amount", [-3], [.state(9, .spend(0))])),
            ]),
        Case(
            "upstreamMs past the hold: overage",
            config: tokens("{amount: {upstreamMs: 1000}}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", nginx(200, ms: 5001), .settled(.amount(6), "overage", [2], [.state(4, .spend(0))])),
            ]),
        Case(
            "an amount of 0 gives everything back: the full per-subject bucket's key is removed",
            config: tokens("{amount: {bytesSent: 1000}}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", nginx(200, bytes: 0), .settled(.amount(0), "amount", [-4], [.missing])),
            ],
            expiries: [("tokens", .removed)]),
        Case(
            "a missing amount: bad_amount, the hold stands and is settled",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(
                    hold: "h1", nginx(200), .settled(.badAmount, "bad_amount", [0, 0], [.state(90, .spend(0)), .state(9, .spend(0))])),
                .settle(hold: "h1", ok(3), .other("duplicate")),
            ],
            events: [.spend("credits", 10, hold: "h1"), .spend("calls", 1, hold: "h1")]),
        Case(
            "an invalid amount: bad_amount",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(
                    hold: "h1", nginx(201, amount: .invalid),
                    .settled(.badAmount, "bad_amount", [0, 0], [.state(90, .spend(0)), .state(9, .spend(0))])),
            ]),
        Case(
            "without an amount the hold stands (a status not refunded)",
            config: tokens("{refund: [5xx]}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", nginx(404, amount: .value(1)), .settled(.stands, "stands", [0], [.state(6, .spend(0))])),
            ],
            events: [.spend("tokens", 4, hold: "h1")]),
        Case(
            "not delivered: no bytes reached the upstream",
            config: tokens("{refund: [], amount: header}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(
                    hold: "h1", nginx(502, reached: false, answered: false), .settled(.refund(.notDelivered), "refund", [-4], [.missing])),
            ]),
        Case(
            "not delivered: 499 without an upstream status",
            config: tokens("{refund: [], amount: header}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(
                    hold: "h1", nginx(499, reached: true, answered: false, amount: .value(2)),
                    .settled(.refund(.notDelivered), "refund", [-4], [.missing])),
            ]),
        Case(
            "499 after the upstream answered is charged the amount",
            config: tokens("{refund: [], amount: header}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", nginx(499, amount: .value(2)), .settled(.amount(2), "amount", [-2], [.state(8, .spend(0))])),
            ]),
        Case(
            "by: app: nginx's line is ignored (the hold stays open), the app's amount settles, then both are duplicates",
            config: tokens("{amount: header, by: app}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", ok(1), .other("ignored")),
                .settle(hold: "h1", .app(amount: 3), .settled(.amount(3), "amount", [-1], [.state(7, .spend(0))])),
                .settle(hold: "h1", .app(amount: 1), .other("duplicate")),
                .settle(hold: "h1", ok(1), .other("duplicate")),
            ],
            events: [.spend("tokens", 4, hold: "h1"), .settle("tokens", -1, status: nil, hold: "h1")]),
        Case(
            "the app's refund",
            config: tokens("{amount: header, by: app}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", .app(amount: nil), .settled(.refund(.app), "refund", [-4], [.missing])),
            ],
            events: [.spend("tokens", 4, hold: "h1"), .settle("tokens", -4, status: nil, hold: "h1")]),
        Case(
            "the app's amount out of range: bad_amount",
            config: tokens("{amount: header, by: app}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(hold: "h1", .app(amount: -1), .settled(.badAmount, "bad_amount", [0], [.state(6, .spend(0))])),
            ]),
        Case(
            "the app's amount of 2^53: overage, the pool owes it (exact in Lua's doubles)",
            config: tokens("{amount: header, by: app}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .settle(
                    hold: "h1", .app(amount: Settlement.maxAmount),
                    .settled(
                        .amount(Settlement.maxAmount), "overage", [Settlement.maxAmount - 4], [.state(10 - Settlement.maxAmount, .spend(0))]
                    )),
            ]),
        Case(
            "a second settlement is a duplicate: nothing more given back",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(hold: "h1", nginx(500), .settled(.refund(.status), "refund", [-10, -1], [.state(100, .settle), .missing])),
                .spend(hold: "h2", .allowed([90, 9])),
                .settle(hold: "h1", nginx(500), .other("duplicate")),
                .peek([.state(90, .spend(1)), .state(9, .spend(1))]),
            ]),
        Case(
            "a settlement after the window: expired, the hold stays charged",
            config: creditsAndCalls,
            steps: [
                .spend(hold: "h1", .allowed([90, 9])),
                .endWindow(hold: "h1"),
                .settle(hold: "h1", nginx(500), .other("expired")),
                .peek([.state(90, .spend(0)), .state(9, .spend(0))]),
            ],
            events: [.spend("credits", 10, hold: "h1"), .spend("calls", 1, hold: "h1")]),
        Case(
            "no hold under the id: unknown",
            config: creditsAndCalls,
            steps: [.spend(hold: "h1", .allowed([90, 9])), .settle(hold: "h2", nginx(500), .other("unknown"))]),
        Case(
            "nginx's line before the spend (the client left during the auth request): voided; the spend is refused, nothing charged",
            config: creditsAndCalls,
            steps: [
                .settle(hold: "h1", nginx(499, reached: false, answered: false), .other("voided")),
                .spend(hold: "h1", .voided),
                .peek([.missing, .missing]),
                .settle(hold: "h1", nginx(499, reached: false, answered: false), .other("duplicate")),
                .settle(hold: "h1", .app(amount: 1), .other("duplicate")),
                .spend(hold: "h2", .allowed([90, 9])),
            ],
            events: [.spend("credits", 10, hold: "h2"), .spend("calls", 1, hold: "h2")]),
        Case(
            "a line for no hold that says the upstream answered voids nothing: unknown, and a later spend opens its hold",
            config: creditsAndCalls,
            steps: [
                .settle(hold: "h1", nginx(499, reached: true, answered: true), .other("unknown")),
                .settle(hold: "h1", nginx(200, amount: .value(3)), .other("unknown")),
                .spend(hold: "h1", .allowed([90, 9])),
                .settle(
                    hold: "h1", nginx(499, reached: false, answered: false),
                    .settled(.refund(.notDelivered), "refund", [-10, -1], [.state(100, .settle), .missing])),
            ]),
        Case(
            "the app's call for no hold voids nothing: unknown",
            config: creditsAndCalls,
            steps: [.settle(hold: "h1", .app(amount: nil), .other("unknown")), .spend(hold: "h1", .allowed([90, 9]))]),
        Case(
            "a route without settle records no hold: unknown, and its events carry none",
            config: """
                pools:
                  - id: tokens
                    maxCharges: 10
                    rechargeIntervalHours: 1
                    per: subject
                routes:
                  - prefix: /api
                    pools: [tokens]
                """,
            steps: [.spend(hold: "h1", .allowed([9])), .settle(hold: "h1", nginx(500), .other("unknown"))],
            events: [.spend("tokens", 1)]),
        Case(
            "the same id spent twice (an internal redirect): the first hold stays, the second spend is final",
            config: tokens("{amount: header}"),
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .spend(hold: "h1", .allowed([2])),
                .settle(hold: "h1", ok(1), .settled(.amount(1), "amount", [-3], [.state(5, .spend(0))])),
            ],
            events: [.spend("tokens", 4, hold: "h1"), .spend("tokens", 4), .settle("tokens", -3, status: 200, hold: "h1")]),
        Case(
            "a global pool keeps next-charge's key and format beside a per-subject one; both metered",
            config: """
                pools:
                  - id: shared
                    maxCharges: 50
                    rechargeIntervalHours: 1
                  - id: credits
                    maxCharges: 100
                    recharge: none
                    per: subject
                routes:
                  - prefix: /api
                    pools: [shared, credits]
                    cost: 5
                    settle: {amount: header}
                """,
            steps: [
                .spend(hold: "h1", .allowed([45, 95])),
                .settle(hold: "h1", ok(2), .settled(.amount(2), "amount", [-3, -3], [.state(48, .spend(0)), .state(98, .spend(0))])),
            ],
            expiries: [("shared", .never), ("credits", .never)]),
        Case(
            "a period pool: a give-back within the hold's period lowers its use",
            config: single("monthly", "    maxCharges: 100\n    period: month\n    per: subject", cost: 10),
            steps: [
                .spend(hold: "h1", .allowed([90])),
                .settle(hold: "h1", ok(3), .settled(.amount(3), "amount", [-7], [.state(97, .settle)])),
            ],
            expiries: [("monthly", .periodEnd)]),
        Case(
            "a period pool: an overage is spent in the period",
            config: single("monthly", "    maxCharges: 100\n    period: month\n    per: subject", cost: 10),
            steps: [
                .spend(hold: "h1", .allowed([90])),
                .settle(hold: "h1", ok(15), .settled(.amount(15), "overage", [5], [.state(85, .settle)])),
            ],
            expiries: [("monthly", .periodEnd)]),
        Case(
            "a period pool: no give-back once the period changed (the closed period's use stands)",
            config: single("daily", "    maxCharges: 100\n    period: day\n    per: subject", cost: 10, window: 172_800),
            steps: [
                .spend(hold: "h1", .allowed([90])),
                .advance(2 * 3_600_000),
                .settle(hold: "h1", ok(3), .settled(.amount(3), "amount", [-7], [.missing])),
                .spend(hold: "h2", .allowed([90])),
            ],
            memoryOnly: true),
        Case(
            "an unlimited meter: the use lowered",
            config: single("meter", "    maxCharges: unlimited\n    per: subject", cost: 5),
            steps: [
                .spend(hold: "h1", .allowed([5])),
                .settle(hold: "h1", ok(2), .settled(.amount(2), "amount", [-3], [.state(2, .settle)])),
            ],
            expiries: [("meter", .never)]),
        Case(
            "an unlimited meter: never below 0 (a top-off reset it meanwhile)",
            config: single("meter", "    maxCharges: unlimited\n    per: subject", cost: 5),
            steps: [
                .spend(hold: "h1", .allowed([5])),
                .topOff(pool: "meter", amount: nil),
                .peek([.state(0, .topOff(0))]),
                .settle(hold: "h1", .app(amount: nil), .settled(.refund(.app), "refund", [-5], [.state(0, .settle)])),
            ]),
        Case(
            "plans: each hold settles in the cap it was held under, the pool rebased to it",
            config: planTokens,
            steps: [
                .spend(hold: "h1", .allowed([6])),
                .setPlan("pro"),
                .spend(hold: "h2", .allowed([92])),
                .settle(hold: "h1", ok(1), .settled(.amount(1), "amount", [-3], [.state(5, .spend(0), limit: 10)])),
                .settle(hold: "h2", ok(1), .settled(.amount(1), "amount", [-3], [.state(98, .spend(0), limit: 100)])),
            ],
            events: [
                .spend("tokens", 4, hold: "h1", plan: "free"), .spend("tokens", 4, hold: "h2", plan: "pro"),
                .settle("tokens", -3, status: 200, hold: "h1", plan: "free"), .settle("tokens", -3, status: 200, hold: "h2", plan: "pro"),
            ],
            expiries: [("tokens", .never)]),
    ]
}
