import Foundation
import Testing

@testable import ChargeGateCore

/// A bad fixture and the errors it must give, each as `LINE: message`.
struct BadConfigCase: Sendable, CustomTestStringConvertible {
    /// File name under `Fixtures/config`.
    var file: String
    /// The expected errors, in order.
    var errors: [String]

    /// Shown by the test runner.
    var testDescription: String { file }

    /// Creates a case.
    init(_ file: String, _ errors: String...) {
        self.file = file
        self.errors = errors
    }
}

/// Absolute path of a config fixture in the test bundle.
private func fixturePath(_ name: String) throws -> String {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/config"))
    return url.path
}

/// Loads a fixture that must be valid.
private func loadGood(_ name: String) throws -> GateConfig {
    switch ConfigLoader.load(path: try fixturePath(name)) {
    case .success(let config):
        return config
    case .failure(let errors):
        Issue.record("\(name) should load: \(errors)")
        throw errors
    }
}

/// The errors of text that must be invalid, as `LINE: message`.
private func errorLines(_ yaml: String) -> [String] {
    switch ConfigLoader.parse(yaml, file: "inline.yaml") {
    case .success:
        return []
    case .failure(let errors):
        return errors.errors.map { "\($0.line): \($0.message)" }
    }
}

/// One valid pool, for inline tests that are about something else.
private let onePool = """
    pools:
      - id: p
        maxCharges: 5
        rechargeIntervalHours: 1

    """

@Suite struct ConfigLoaderTests {
    static let badConfigs: [BadConfigCase] = [
        // Plans, periods and modes.
        BadConfigCase("plan-unknown-pool.yaml", "17: plans[0].pools.images: unknown pool 'images'"),
        BadConfigCase(
            "plan-global-pool.yaml", "17: plans[0].pools.site: pool 'site' is global; plans set per-subject pools only ('per: subject')"),
        BadConfigCase(
            "plan-default-missing.yaml", "13: defaultPlan: required when plans are given (the plan of a subject nothing else names)"),
        BadConfigCase("plan-default-unknown.yaml", "13: defaultPlan: unknown plan 'basic' (plans: free, pro)"),
        BadConfigCase("plan-default-without-plans.yaml", "13: defaultPlan: no plans are given (add plans, or leave defaultPlan out)"),
        BadConfigCase("plan-duplicate-id.yaml", "18: plans[1].id: duplicate plan id 'free' (first at line 15)"),
        BadConfigCase("plan-bad-id.yaml", "15: plans[0].id: must be 1 to 64 letters, digits, '.', '_' or '-', got 'free plan'"),
        BadConfigCase(
            "plan-interval-on-period-pool.yaml",
            "17: plans[0].pools.generations.rechargeIntervalHours: not allowed for a period pool (its period sets when charges come back)"),
        BadConfigCase("plan-unknown-key.yaml", "17: plans[0].pools.api-calls.maxCharge: unknown key (did you mean 'maxCharges'?)"),
        BadConfigCase("plan-max-zero.yaml", "17: plans[0].pools.api-calls.maxCharges: must be a whole number >= 1, got 0"),
        BadConfigCase(
            "plan-limit-unlimited-pool-without-interval.yaml",
            "9: plans[0].pools.meter.rechargeIntervalHours: required to limit an unlimited pool (how fast charges come back)"),
        BadConfigCase("plan-duplicate-pool.yaml", "11: plans[0].pools.generations: duplicate key (first at line 10)"),
        BadConfigCase(
            "plan-cap-below-route-cost.yaml",
            "13: plans[0].pools.generations.maxCharges: 5 is less than the cost of routes[0] (10), so that route could never pass under this plan"
        ),
        BadConfigCase("period-invalid.yaml", "4: pools[0].period: must be 'day', 'week' or 'month', got 'year'"),
        BadConfigCase(
            "period-with-interval.yaml",
            "4: pools[0].period: not allowed with rechargeIntervalHours (a period pool is whole again at each period start, nothing comes back in between)"
        ),
        BadConfigCase(
            "period-with-recharge.yaml",
            "4: pools[0].period: not allowed with recharge (a period pool is whole again at each period start, nothing comes back in between)"
        ),
        BadConfigCase(
            "mode-invalid.yaml", "1: mode: must be 'enforce' or 'shadow', got 'observe'",
            "9: routes[0].mode: must be 'enforce' or 'shadow', got 'dry-run'"),
        // Top level.
        BadConfigCase("unknown-top-key.yaml", "2: redisTimeout: unknown key (did you mean 'redisTimeoutMs'?)"),
        BadConfigCase("bad-listen.yaml", "1: listen: expected a unix socket path, host:port or 'inherit', got 'localhost'"),
        BadConfigCase("bad-redis-url.yaml", "1: redis: port must be 1-65535"),
        BadConfigCase(
            "cluster-key-prefix-brace.yaml",
            "2: keyPrefix: must not contain { or } with a redis-cluster:// store (keys take hash tags), got 'gate:{shared}:'"),
        BadConfigCase("cluster-sentinel-password.yaml", "2: sentinelPassword: only used with a redis-sentinel:// URL in redis"),
        BadConfigCase(
            "redis-url-unknown-parameter.yaml",
            "1: redis: unix:// URL: parameter 1 is neither db nor password (its text is not shown: it may be a secret)"),
        BadConfigCase("redis-url-duplicate-parameter.yaml", "1: redis: unix:// URL: db is given twice; give it once"),
        BadConfigCase("redis-url-bad-escape.yaml", "1: redis: the password has an invalid %-escape (write % itself as %25)"),
        BadConfigCase("workers-zero.yaml", "1: workers: must be a whole number from 1 to 256, got 0"),
        BadConfigCase("workers-quoted.yaml", "1: workers: expected a whole number, got '8' (a quoted string)"),
        BadConfigCase("redis-timeout-string.yaml", "1: redisTimeoutMs: expected a whole number, got 'fast'"),
        BadConfigCase("bool-yes.yaml", "1: devBypass: expected true or false, got 'yes'"),
        BadConfigCase("route-idempotent-not-bool.yaml", "8: routes[0].idempotent: expected true or false, got 'yes'"),
        BadConfigCase(
            "idempotency-max-repeats-zero.yaml",
            "1: idempotencyMaxRepeats: must be a whole number from 1 to 1000000, got 0",
            "2: idempotencyMaxKeysPerSubject: must be a whole number from 1 to 1000000000, got -1",
            "3: memoryEventsMaxBytes: expected a whole number, got 1.5"),
        BadConfigCase("key-prefix-space.yaml", "1: keyPrefix: must not contain spaces or control characters, got 'my charge:'"),
        BadConfigCase(
            "idempotency-header-bad.yaml",
            "1: idempotencyHeader: must be an HTTP header name (letters, digits and '-'), got 'Idempotency_Key'"),
        BadConfigCase(
            "admin-token-empty.yaml", "1: adminToken: must not be empty (leave the key out to turn the admin endpoints off)"),
        BadConfigCase("events-negative.yaml", "1: eventsMaxLen: must be a whole number >= 0, got -1"),
        BadConfigCase(
            "socket-mode-unquoted.yaml",
            "1: socketMode: write the mode in quotes, as \"0660\" (an unquoted number is ambiguous octal), got 0660"),
        BadConfigCase(
            "socket-mode-bad.yaml", "1: socketMode: expected 3-4 octal digits in quotes, as \"0660\", got '0980' (a quoted string)"),
        BadConfigCase("duplicate-key.yaml", "5: pools[0].maxCharges: duplicate key (first at line 3)"),
        BadConfigCase(
            "duplicate-keys-everywhere.yaml",
            "8: routes[0].pools[0].cost: duplicate key (first at line 8)",
            "9: workers: duplicate key (first at line 1)",
            "10: workers: duplicate key (first at line 1)"),
        // The document itself.
        BadConfigCase("yaml-syntax.yaml", "4: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 3)"),
        BadConfigCase("two-documents.yaml", "5: invalid YAML: a second document ('---'); a config file holds exactly one"),
        BadConfigCase("root-not-mapping.yaml", "1: expected a mapping of config keys at the top level, got a list"),
        BadConfigCase("empty.yaml", "1: the file is empty: expected a mapping of config keys"),
        BadConfigCase("comments-only.yaml", "1: the file is empty: expected a mapping of config keys"),
        // Pools.
        BadConfigCase("pools-missing.yaml", "1: pools: required (list at least one pool)"),
        BadConfigCase("pools-empty.yaml", "1: pools: must list at least one pool"),
        BadConfigCase("unknown-pool-key.yaml", "5: pools[0].lable: unknown key (did you mean 'label'?)"),
        BadConfigCase("duplicate-pool-id.yaml", "5: pools[1].id: duplicate pool id 'images' (first at line 2)"),
        BadConfigCase("pool-id-missing.yaml", "2: pools[0].id: required"),
        BadConfigCase("pool-id-charset.yaml", "2: pools[0].id: may only use letters, digits, '.', '_' and '-', got 'image gen'"),
        BadConfigCase("pool-id-too-long.yaml", "2: pools[0].id: must be at most 64 characters, got 65"),
        BadConfigCase("max-charges-missing.yaml", "2: pools[0].maxCharges: required (a whole number >= 1, or 'unlimited')"),
        BadConfigCase("max-charges-zero.yaml", "3: pools[0].maxCharges: must be a whole number >= 1, got 0"),
        BadConfigCase("max-charges-negative.yaml", "3: pools[0].maxCharges: must be a whole number >= 1, got -3"),
        BadConfigCase("max-charges-fraction.yaml", "3: pools[0].maxCharges: expected a whole number or 'unlimited', got 2.5"),
        BadConfigCase("max-charges-word.yaml", "3: pools[0].maxCharges: expected a whole number or 'unlimited', got 'lots'"),
        BadConfigCase("max-charges-too-large.yaml", "3: pools[0].maxCharges: must be at most 1000000000000000, got 1000000000000001"),
        BadConfigCase("interval-zero.yaml", "4: pools[0].rechargeIntervalHours: must be a number > 0, got 0"),
        BadConfigCase("interval-negative.yaml", "4: pools[0].rechargeIntervalHours: must be a number > 0, got -0.5"),
        BadConfigCase("interval-string.yaml", "4: pools[0].rechargeIntervalHours: expected a number of hours, got 'two'"),
        BadConfigCase("interval-too-large.yaml", "4: pools[0].rechargeIntervalHours: must be at most 876000 (100 years), got 876001"),
        BadConfigCase(
            "refill-too-long.yaml",
            "4: pools[0].rechargeIntervalHours: maxCharges x rechargeIntervalHours is too long a refill (more than 2^53 ms, about 285,000 years)"
        ),
        BadConfigCase("interval-too-small.yaml", "4: pools[0].rechargeIntervalHours: must be at least 1 millisecond, got 0.0000001"),
        BadConfigCase(
            "interval-missing.yaml",
            "2: pools[0].rechargeIntervalHours: required for a limited pool (or 'recharge: none' for one that never refills)"),
        BadConfigCase("recharge-none-with-interval.yaml", "5: pools[0].rechargeIntervalHours: not allowed with 'recharge: none'"),
        BadConfigCase("recharge-bad-value.yaml", "4: pools[0].recharge: the only allowed value is 'none', got 'daily'"),
        BadConfigCase("unlimited-with-interval.yaml", "4: pools[0].rechargeIntervalHours: not allowed for an unlimited pool"),
        BadConfigCase("unlimited-with-recharge.yaml", "4: pools[0].recharge: not allowed for an unlimited pool"),
        BadConfigCase("pool-per-invalid.yaml", "5: pools[0].per: must be 'global' or 'subject', got 'user'"),
        // Routes.
        BadConfigCase("unknown-pool-in-route.yaml", "7: routes[0].pools[1]: unknown pool 'images'"),
        BadConfigCase("same-pool-twice.yaml", "7: routes[0].pools[1]: pool 'images' is listed twice (first as routes[0].pools[0])"),
        BadConfigCase(
            "cost-over-max.yaml",
            "7: routes[0].pools[0]: cost 6 is more than pool 'images' can ever hold (maxCharges 5), so the route could never pass"),
        BadConfigCase("cost-zero.yaml", "8: routes[0].cost: must be a whole number >= 1, got 0"),
        BadConfigCase("duplicate-prefix.yaml", "8: routes[1].prefix: duplicate prefix '/api/generate' (first at line 6)"),
        BadConfigCase("prefix-shadowed-methods.yaml", "9: routes[1].prefix: duplicate prefix '/api/items' for POST, PUT (first at line 6)"),
        BadConfigCase("prefix-without-slash.yaml", "6: routes[0].prefix: must start with '/', got 'api/generate'"),
        BadConfigCase(
            "prefix-with-query.yaml",
            "6: routes[0].prefix: must not contain '?', '#', '%', spaces or control characters, got '/api/generate?x=1'"),
        BadConfigCase("route-pools-missing.yaml", "6: routes[0].pools: required (list at least one pool id)"),
        BadConfigCase("methods-empty.yaml", "8: routes[0].methods: must list at least one method (leave the key out for every method)"),
        BadConfigCase("methods-duplicate.yaml", "8: routes[0].methods[2]: method POST is listed twice"),
        // Everything at once: every error, in line order.
        BadConfigCase(
            "many-errors.yaml",
            "1: listen: expected a unix socket path, host:port or 'inherit', got 'localhost'",
            "2: workers: expected a whole number, got 'many'",
            "3: devBypass: expected true or false, got 'on'",
            "6: pools[0].maxCharges: must be a whole number >= 1, got 0",
            "8: pools[1].id: duplicate pool id 'images' (first at line 5)",
            "8: pools[1].rechargeIntervalHours: required for a limited pool (or 'recharge: none' for one that never refills)",
            "13: pools[2].rechargeIntervalHours: not allowed with 'recharge: none'",
            "16: routes[0].pools[1]: unknown pool 'video'",
            "17: routes[1].prefix: must start with '/', got 'api/upload'",
            "19: routes[1].methods: must list at least one method (leave the key out for every method)",
            "20: routes[1].colour: unknown key",
            "21: workers: duplicate key (first at line 2)"),
    ]

    @Test(arguments: badConfigs)
    func badConfigReportsExactErrors(_ bad: BadConfigCase) throws {
        let path = try fixturePath(bad.file)
        switch ConfigLoader.load(path: path) {
        case .success:
            Issue.record("\(bad.file) loaded, but should fail")
        case .failure(let errors):
            #expect(errors.errors.map { "\($0.line): \($0.message)" } == bad.errors)
            #expect(errors.errors.allSatisfy { $0.file == path })
        }
    }

    @Test func everyFixtureIsCovered() throws {
        let directory = try #require(Bundle.module.url(forResource: "config", withExtension: nil, subdirectory: "Fixtures"))
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        let covered = Set((Self.badConfigs + UpgradeURLConfigTests.badConfigs).map(\.file))
        #expect(Set(files.filter { !$0.hasPrefix("good-") }) == covered)
    }

    @Test func errorDescriptionIsFileLineMessage() throws {
        let path = try fixturePath("max-charges-zero.yaml")
        let errors = try #require(ConfigLoader.load(path: path).failure)
        #expect(errors.errors.first?.description == "\(path):3: pools[0].maxCharges: must be a whole number >= 1, got 0")
        #expect(errors.description == "\(path):3: pools[0].maxCharges: must be a whole number >= 1, got 0")

        let inline = try #require(ConfigLoader.parse("workers: 0\nlisten: x\n" + onePool, file: "inline.yaml").failure)
        #expect(
            inline.description == """
                inline.yaml:1: workers: must be a whole number from 1 to 256, got 0
                inline.yaml:2: listen: expected a unix socket path, host:port or 'inherit', got 'x'
                """)
    }

    @Test(arguments: ["bad-redis-url.yaml", "redis-url-unknown-parameter.yaml", "redis-url-bad-escape.yaml"])
    func redisErrorNeverShowsThePassword(file: String) throws {
        let errors = try #require(ConfigLoader.load(path: try fixturePath(file)).failure)
        #expect(!errors.description.contains("s3cret") && !errors.description.contains("hunter2"))
    }

    @Test func redisErrorNeverShowsAParameterValue() throws {
        #expect(
            errorLines("redis: unix:///run/redis.sock?password=s3cret&db=x\n" + onePool) == ["1: redis: db must be a whole number >= 0"])
    }

    @Test func unreadableFileIsOneErrorAtLineZero() throws {
        let missing = "/nonexistent-charge-gate-dir/config.yaml"
        let errors = try #require(ConfigLoader.load(path: missing).failure)
        #expect(errors.errors.count == 1)
        #expect(errors.errors.first?.line == 0)
        #expect(errors.errors.first?.file == missing)
        #expect(errors.errors.first?.message.hasPrefix("cannot read file: ") == true)
        #expect(errors.errors.first?.message == "cannot read file: No such file or directory")
        #expect(errors.description.hasPrefix("\(missing):0: cannot read file: "))

        let directory = try #require(ConfigLoader.load(path: NSTemporaryDirectory()).failure)
        #expect(directory.errors.map(\.line) == [0])
    }

    @Test func invalidUTF8IsReportedAtItsLine() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("charge-gate-utf8-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data("pools:\n  - id: p\n    label: caf".utf8 + [0xE9] + Data("\n".utf8)).write(to: url)
        let errors = try #require(ConfigLoader.load(path: url.path).failure)
        #expect(errors.errors.map { "\($0.line): \($0.message)" } == ["3: the file is not valid UTF-8 text"])
    }

    @Test func theExampleConfigLoads() throws {
        let config = try loadGood("good-example.yaml")
        var expected = GateConfig()
        expected.listen = .unix(path: "/run/charge-gate/charge.sock")
        expected.workers = 8
        expected.redis = RedisURL(endpoint: .tcp(host: "127.0.0.1", port: 6379), db: 0)
        expected.redisTimeoutMs = 100
        expected.keyPrefix = "charge:"
        expected.devBypass = false
        expected.pools = [
            PoolConfig(
                id: "generate-image", capacity: .limited(5), recharge: .every(intervalMs: 7_200_000),
                rechargeIntervalHours: 2, label: "Image generation", group: "AI", scope: .global)
        ]
        expected.routes = [
            RouteConfig(prefix: "/api/generate", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST"])
        ]
        #expect(config == expected)
    }

    @Test func theMeteringExampleLoads() throws {
        let config = try loadGood("good-metering.yaml")
        var expected = GateConfig()
        expected.adminToken = "change-me"
        expected.idempotencyHeader = "Idempotency-Key"
        expected.idempotencyTtlSeconds = 86_400
        expected.eventsMaxLen = 1_000_000
        expected.pools = [
            PoolConfig(
                id: "api-calls", capacity: .limited(100), recharge: .every(intervalMs: 36_000),
                rechargeIntervalHours: 0.01, scope: .subject),
            PoolConfig(id: "credits", capacity: .limited(1000), recharge: .none, scope: .subject),
            PoolConfig(id: "image-meter", capacity: .unlimited, recharge: .none, scope: .subject),
        ]
        expected.routes = [
            RouteConfig(
                prefix: "/api/generate",
                charges: [.init(poolIndex: 0, cost: 1), .init(poolIndex: 1, cost: 5)],
                methods: nil)
        ]
        #expect(config == expected)
        // Defaults kept for what the file leaves out.
        #expect(config.listen == GateConfig().listen)
        #expect(config.redis == nil)
        #expect(config.workers == nil)
        #expect(config.socketMode == 0o660)
        #expect(config.pools[0].label == "api-calls")
        #expect(config.pools[2].maxCharges == nil)
        #expect(config.pools[2].rechargeIntervalHours == nil)
    }

    @Test func plansPeriodsAndModesLoad() throws {
        let config = try loadGood("good-plans.yaml")
        #expect(config.mode == .shadow)
        #expect(config.routes.map(\.mode) == [.enforce, nil])
        #expect(config.pools.map(\.period) == [.month, nil, nil, .day])
        #expect(config.pools[3].maxCharges == nil)
        #expect(config.plans.map(\.id) == ["free", "pro"])
        #expect(config.plans.map(\.label) == ["Free", "Pro"])
        #expect(config.defaultPlan == 0)
        let pro = config.plans[1]
        #expect(pro.overrides[0] == PlanConfig.Override(capacity: .limited(100)))
        #expect(pro.overrides[1] == PlanConfig.Override(capacity: .unlimited, interval: (36_000, 0.01)))
        #expect(pro.overrides[2] == PlanConfig.Override(capacity: .limited(50), interval: (3_600_000, 1)))
        // Applied: an unlimited pool a plan limits refills at the plan's interval; a pool made
        // unlimited only counts; a period pool keeps its period.
        #expect(pro.apply(to: config.pools[2], index: 2).recharge == .every(intervalMs: 3_600_000))
        #expect(pro.apply(to: config.pools[1], index: 1).recharge == PoolConfig.Recharge.none)
        #expect(pro.apply(to: config.pools[1], index: 1).maxCharges == nil)
        #expect(
            pro.apply(to: config.pools[0], index: 0)
                == PoolConfig(
                    id: "generations", capacity: .limited(100), recharge: .period(.month), scope: .subject))
        #expect(config.plans[0].apply(to: config.pools[1], index: 1) == config.pools[1])
    }

    @Test func everyKeyLoads() throws {
        let config = try loadGood("good-everything.yaml")
        var expected = GateConfig()
        expected.listen = .tcp(host: "127.0.0.1", port: 9000)
        expected.workers = 256
        expected.redis = RedisURL(endpoint: .unix(path: "/run/redis/redis.sock"), db: 2)
        expected.redisTimeoutMs = 60_000
        expected.keyPrefix = ""
        expected.devBypass = true
        expected.adminToken = "12345"
        expected.idempotencyHeader = "X-Request-Id"
        expected.idempotencyTtlSeconds = 1
        expected.idempotencyMaxRepeats = 1_000_000
        expected.idempotencyMaxKeysPerSubject = 1
        expected.eventsMaxLen = 0
        expected.memoryEventsMaxBytes = 0
        expected.socketMode = 0o600
        expected.socketGroup = "www-data"
        expected.pools = [
            PoolConfig(
                id: "a.b_c-1", capacity: .limited(1_000_000_000_000_000), recharge: .every(intervalMs: 7),
                rechargeIntervalHours: 0.000002, label: "42", group: ""),
            PoolConfig(id: "quick", capacity: .limited(3), recharge: .every(intervalMs: 3_600), rechargeIntervalHours: 0.001),
        ]
        expected.routes = [
            RouteConfig(prefix: "/api/x/z", charges: [.init(poolIndex: 1, cost: 2)], methods: ["GET", "POST"], cost: 2),
            RouteConfig(
                prefix: "/api/x/z", charges: [.init(poolIndex: 0, cost: 1), .init(poolIndex: 1, cost: 1)],
                methods: ["DELETE"], idempotent: true),
            RouteConfig(prefix: "/", charges: [.init(poolIndex: 0, cost: 7)]),
        ]
        #expect(config == expected)
    }

    @Test func routesMayBeEmptyAndOneMethodSetMayFollowAnother() throws {
        let noRoutes = try loadGood("good-no-routes.yaml")
        #expect(noRoutes.routes.isEmpty)
        #expect(noRoutes.pools.map(\.intervalMs) == [3_153_600_000_000])

        let sharing = try loadGood("good-same-prefix-methods.yaml")
        #expect(
            sharing.routes == [
                RouteConfig(prefix: "/api/items", charges: [.init(poolIndex: 0, cost: 1)], methods: ["POST", "PUT"]),
                RouteConfig(prefix: "/api/items", charges: [.init(poolIndex: 1, cost: 1)]),
            ])
    }

    @Test(arguments: [
        ("/api//x/", "/api/x"),
        ("/api/generate/", "/api/generate"),
        ("/", "/"),
        ("//", "/"),
        ("/a/./b/../c", "/a/c"),
        ("/a/..", "/"),
    ])
    func prefixIsNormalised(written: String, stored: String) throws {
        let yaml = onePool + "routes:\n  - prefix: \"\(written)\"\n    pools: [p]\n"
        let config = try ConfigLoader.parse(yaml, file: "inline.yaml").get()
        #expect(config.routes.map(\.prefix) == [stored])
    }

    @Test func numbersAreStrict() {
        #expect(
            errorLines("pools:\n  - id: p\n    maxCharges: 99999999999999999999\n    recharge: none\n")
                == ["3: pools[0].maxCharges: must be at most 1000000000000000, got 99999999999999999999"])
        #expect(errorLines("workers: 1e3\n" + onePool) == ["1: workers: expected a whole number, got 1e3"])
        #expect(errorLines("workers: [1]\n" + onePool) == ["1: workers: expected a whole number, got a list"])
        #expect(errorLines("workers:\n" + onePool) == ["1: workers: expected a whole number, got nothing"])
        #expect(errorLines("devBypass: \"true\"\n" + onePool) == ["1: devBypass: expected true or false, got 'true' (a quoted string)"])
        // A number where text is expected is taken as written.
        let config = try? ConfigLoader.parse("socketGroup: 1000\n" + onePool, file: "inline.yaml").get()
        #expect(config?.socketGroup == "1000")
    }

    @Test func intervalIsRoundedToMilliseconds() throws {
        let config = try ConfigLoader.parse(
            "pools:\n  - id: p\n    maxCharges: 1\n    rechargeIntervalHours: 0.0000002\n", file: "inline.yaml"
        ).get()
        #expect(config.pools.first?.intervalMs == 1)
        #expect(config.pools.first?.rechargeIntervalHours == 0.0000002)
    }

    /// Inline YAML oddities and the exact errors they give.
    static let oddYAML: [(yaml: String, errors: [String])] = [
        // Duplicate keys are found through CRLF line ends, a byte order mark, flow style and
        // quoting, and each later occurrence is reported.
        (
            "workers: 2\r\npools:\r\n  - id: p\r\n    maxCharges: 5\r\n    recharge: none\r\nworkers: 3\r\n",
            ["6: workers: duplicate key (first at line 1)"]
        ),
        ("\u{FEFF}workers: 2\nworkers: 3\n" + onePool, ["2: workers: duplicate key (first at line 1)"]),
        ("{workers: 2, workers: 3, pools: [{id: p, maxCharges: 1, recharge: none}]}", ["1: workers: duplicate key (first at line 1)"]),
        (
            "workers: 2\nworkers: 3\n\"workers\": 4\n'workers': 5\n" + onePool,
            [
                "2: workers: duplicate key (first at line 1)", "3: workers: duplicate key (first at line 1)",
                "4: workers: duplicate key (first at line 1)",
            ]
        ),
        // A key the text cannot be re-read around still gives its one error.
        ("\"a: b\": 1\n\"a: b\": 2\n", ["1: duplicate key 'a: b'"]),
        // Aliases are the node they name: a pool repeated by alias is a duplicate id.
        (
            "pools:\n  - &p {id: p, maxCharges: 5, recharge: none}\n  - *p\n",
            ["2: pools[1].id: duplicate pool id 'p' (first at line 2)"]
        ),
        (
            "base: &b {maxCharges: 5, recharge: none}\npools:\n  - <<: *b\n    id: p\n",
            [
                "1: base: unknown key", "3: pools[0].<<: unknown key",
                "3: pools[0].maxCharges: required (a whole number >= 1, or 'unlimited')",
            ]
        ),
        ("workers: *nope\n", ["1: invalid YAML: found undefined alias"]),
        (
            "pools:\n\t- id: p\n",
            ["2: invalid YAML: found character that cannot start any token (while scanning for the next token at line 2)"]
        ),
        ("? [a]\n: 1\n" + onePool, ["1: top level: keys must be names, got a list"]),
        ("~\n", ["1: the file is empty: expected a mapping of config keys"]),
        ("---\n", ["1: the file is empty: expected a mapping of config keys"]),
        ("just text\n", ["1: expected a mapping of config keys at the top level, got 'just text'"]),
        ("routes: {}\n" + onePool, ["1: routes: expected a list of routes, got a mapping"]),
        (
            onePool
                + "routes:\n  - prefix: /a\n    pools: p\n  - prefix: /b\n    pools: [~]\n    methods: GET\n  - /c\n"
                + "  - prefix: /d\n    pools: [{cost: 2}]\n    methods: [\"GE T\", 12]\n",
            [
                "7: routes[0].pools: expected a list of pool ids, got 'p'",
                "9: routes[1].pools[0]: expected a string, got null",
                "10: routes[1].methods: expected a list of HTTP methods, as [GET, POST], got 'GET'",
                "11: routes[2]: expected a mapping with prefix and pools, got '/c'",
                "13: routes[3].pools[0].id: required",
                "14: routes[3].methods[0]: expected an HTTP method such as GET or POST, got 'GE T'",
                "14: routes[3].methods[1]: expected an HTTP method such as GET or POST, got 12",
            ]
        ),
    ]

    @Test(arguments: oddYAML)
    func oddYAMLIsReportedExactly(yaml: String, errors: [String]) {
        #expect(errorLines(yaml) == errors)
    }

    @Test func unknownKeySuggestionIsOptional() {
        #expect(
            errorLines(onePool + "routes:\n  - prefix: /x\n    pools: [{id: p, costs: 2}]\n")
                == ["7: routes[0].pools[0].costs: unknown key (did you mean 'cost'?)"])
        #expect(errorLines("zzz: 1\n" + onePool) == ["1: zzz: unknown key"])
    }
}

extension Result {
    /// The failure, or nil.
    fileprivate var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
