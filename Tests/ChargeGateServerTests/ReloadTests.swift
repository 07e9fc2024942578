import ChargeGateCore
import Testing

@testable import ChargeGateServer

/// A config change a reload is given, by key.
struct ConfigChange: Sendable, CustomTestStringConvertible {
    let key: String
    let change: @Sendable (inout GateConfig) -> Void

    init(_ key: String, _ change: @escaping @Sendable (inout GateConfig) -> Void) {
        self.key = key
        self.change = change
    }

    var testDescription: String { key }
}

/// What a server runs with before a reload: Redis behind Sentinel, everything set.
private func runningConfig() -> GateConfig {
    var config = GateConfig()
    config.listen = .unix(path: "/run/charge-gate/test.sock")
    config.workers = 4
    config.redis = RedisURL(
        endpoint: .sentinel(sentinels: [RedisURL.HostPort(host: "10.0.0.1", port: 26379)], master: "mymaster"),
        sentinelPassword: "old-secret")
    config.redisTimeoutMs = 100
    config.redisMinReplicas = 1
    config.redisReplicaWaitMs = 50
    config.memoryEventsMaxBytes = 1 << 20
    config.socketMode = 0o660
    config.socketGroup = "www-data"
    return config
}

/// A server started with `running` whose next reload loads `loaded`, logging to `capture`.
private func server(running: GateConfig, loaded: GateConfig, overrides: ServeOverrides = ServeOverrides(), capture: LogCapture) -> Server {
    Server(config: running, reload: { .success(loaded) }, overrides: overrides, metrics: GateMetrics(), logger: capture.logger())
}

/// The restart warning's lines.
private func restartWarnings(_ capture: LogCapture) -> [String] {
    capture.messages(at: .warning).filter { $0.hasPrefix("reload: ") }
}

/// The reload rules: restart-only keys (`RestartOnlyKey.all`) keep their running value and are
/// named in the warning; the rest applies.
@Suite struct ReloadTests {
    /// One change per restart-only key.
    static let restartOnly: [ConfigChange] = [
        ConfigChange("listen") { $0.listen = .tcp(host: "127.0.0.1", port: 9000) },
        ConfigChange("workers") { $0.workers = 8 },
        ConfigChange("redis") {
            $0.redis = RedisURL(
                endpoint: .sentinel(sentinels: [RedisURL.HostPort(host: "10.0.0.2", port: 26379)], master: "mymaster"),
                sentinelPassword: "old-secret")
        },
        ConfigChange("redisTimeoutMs") { $0.redisTimeoutMs = 250 },
        ConfigChange("sentinelPassword") { $0.redis?.sentinelPassword = "new-secret" },
        ConfigChange("redisMinReplicas") { $0.redisMinReplicas = 2 },
        ConfigChange("redisReplicaWaitMs") { $0.redisReplicaWaitMs = 500 },
        ConfigChange("memoryEventsMaxBytes") { $0.memoryEventsMaxBytes = 1 << 30 },
        ConfigChange("socketMode") { $0.socketMode = 0o600 },
        ConfigChange("socketGroup") { $0.socketGroup = "nginx" },
        ConfigChange("settleListen") { $0.settleListen = "/run/charge-gate/other-settle.sock" },
    ]

    @Test func everyRestartOnlyKeyIsExercised() {
        #expect(Self.restartOnly.map(\.key) == RestartOnlyKey.all.map(\.name))
    }

    @Test(arguments: restartOnly)
    func aRestartOnlyChangeKeepsTheRunningValue(_ change: ConfigChange) throws {
        let running = runningConfig()
        var loaded = running
        change.change(&loaded)
        #expect(loaded != running, "the change must change something")
        loaded.keyPrefix = "reloaded:"  // a reloadable change in the same reload
        let capture = LogCapture()
        let server = server(running: running, loaded: loaded, capture: capture)
        server.reload()

        var expected = running
        expected.keyPrefix = "reloaded:"
        #expect(server.config == expected)
        let key = try #require(RestartOnlyKey.all.first { $0.name == change.key })
        let warnings = restartWarnings(capture)
        if key.warns {
            #expect(
                warnings == ["reload: these take effect only after a restart, keeping the running values: \(change.key)"])
        } else {
            #expect(warnings.isEmpty)
        }
        #expect(capture.messages(at: .info).contains { $0.hasPrefix("config reloaded:") })
    }

    @Test func theWarningNamesEveryChangedKeyOnce() {
        let running = runningConfig()
        var loaded = running
        loaded.redisMinReplicas = 3
        loaded.redisReplicaWaitMs = 75
        loaded.workers = 2
        let capture = LogCapture()
        let server = server(running: running, loaded: loaded, capture: capture)
        server.reload()
        #expect(
            restartWarnings(capture) == [
                "reload: these take effect only after a restart, keeping the running values: workers, redisMinReplicas, redisReplicaWaitMs"
            ])
        #expect(server.config == running)
    }

    /// One change per reloadable top-level key.
    static let reloadable: [ConfigChange] = [
        ConfigChange("keyPrefix") { $0.keyPrefix = "other:" },
        ConfigChange("devBypass") { $0.devBypass = true },
        ConfigChange("adminToken") { $0.adminToken = "token" },
        ConfigChange("idempotencyHeader") { $0.idempotencyHeader = "X-Request-Key" },
        ConfigChange("idempotencyTtlSeconds") { $0.idempotencyTtlSeconds = 60 },
        ConfigChange("idempotencyMaxRepeats") { $0.idempotencyMaxRepeats = 9 },
        ConfigChange("idempotencyMaxKeysPerSubject") { $0.idempotencyMaxKeysPerSubject = 7 },
        ConfigChange("eventsMaxLen") { $0.eventsMaxLen = 0 },
        ConfigChange("edgeDenySeconds") { $0.edgeDenySeconds = 0 },
        ConfigChange("mode") { $0.mode = .shadow },
        ConfigChange("settleWindowSeconds") { $0.settleWindowSeconds = 60 },
        ConfigChange("amountHeader") { $0.amountHeader = "X-Tokens-Used" },
    ]

    @Test(arguments: reloadable)
    func aReloadableChangeApplies(_ change: ConfigChange) {
        let running = runningConfig()
        var loaded = running
        change.change(&loaded)
        #expect(loaded != running, "the change must change something")
        let capture = LogCapture()
        let server = server(running: running, loaded: loaded, capture: capture)
        server.reload()
        #expect(server.config == loaded)
        #expect(restartWarnings(capture).isEmpty)
    }

    @Test func theOverridesApplyOnceAtStartAndToEveryReload() {
        var file = runningConfig()
        file.listen = .unix(path: "/run/charge-gate/from-file.sock")
        let overrides = ServeOverrides(listen: .tcp(host: "127.0.0.1", port: 9100), memory: true)
        let capture = LogCapture()
        let server = server(running: file, loaded: file, overrides: overrides, capture: capture)
        #expect(server.config.listen == .tcp(host: "127.0.0.1", port: 9100))
        #expect(server.config.redis == nil)
        server.reload()
        // The file still says otherwise, and the overrides still win: nothing changed.
        #expect(server.config.listen == .tcp(host: "127.0.0.1", port: 9100))
        #expect(server.config.redis == nil)
        #expect(restartWarnings(capture).isEmpty)
    }

    @Test func theSettleListenOverrideWinsOverEveryReload() {
        var file = runningConfig()
        file.settleListen = "/run/charge-gate/from-file.sock"
        let overrides = ServeOverrides(settleListen: "/run/charge-gate/from-flag.sock")
        let capture = LogCapture()
        let server = server(running: file, loaded: file, overrides: overrides, capture: capture)
        #expect(server.config.settleListen == "/run/charge-gate/from-flag.sock")
        #expect(server.config.settleSocketPath == "/run/charge-gate/from-flag.sock")
        server.reload()
        #expect(server.config.settleListen == "/run/charge-gate/from-flag.sock")
        #expect(restartWarnings(capture).isEmpty)
    }

    /// The settlement socket is opened at start only: a reload that makes a route settle
    /// without it says that a restart is needed (the route's holds stand meanwhile).
    @Test func aReloadThatStartsSettlingWithoutTheSocketWarns() throws {
        let running = runningConfig()
        var loaded = running
        let routes = try ConfigLoader.parse(
            "pools: [{id: p, maxCharges: 10, recharge: none}]\nroutes: [{prefix: /api/x, pools: [p], settle: {}}]", file: "t.yaml"
        ).get()
        loaded.pools = routes.pools
        loaded.routes = routes.routes
        let capture = LogCapture()
        let notSettling = server(running: running, loaded: loaded, capture: capture)
        notSettling.reload()
        #expect(notSettling.config.settles)
        #expect(
            restartWarnings(capture) == [
                "reload: a route now settles, but the settlement socket is opened only at start: restart to receive nginx's lines (until then its holds stand as held)"
            ])
        // With the transport running, the same reload says nothing.
        let quiet = LogCapture()
        let settling = server(running: running, loaded: loaded, capture: quiet)
        settling.settling.store(true, ordering: .relaxed)
        settling.reload()
        #expect(restartWarnings(quiet).isEmpty)
    }

    @Test func aFailedReloadKeepsTheRunningConfig() {
        let running = runningConfig()
        let capture = LogCapture()
        let server = Server(
            config: running, reload: { .failure(ConfigErrors(errors: [])) }, overrides: ServeOverrides(), metrics: GateMetrics(),
            logger: capture.logger())
        server.reload()
        #expect(server.config == running)
        #expect(capture.messages(at: .error) == ["config reload failed; keeping the running config"])
    }
}
