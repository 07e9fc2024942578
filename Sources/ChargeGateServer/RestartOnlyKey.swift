import ChargeGateCore

/// A config key read once, at start: a reload that changes it keeps the running value and, when
/// `warns`, logs that it takes effect only after a restart, naming it. `all` is the one list of
/// them: `Server`'s reload applies it, and a test checks it against docs/config.md's key table.
public struct RestartOnlyKey: Sendable {
    /// The key as the config file spells it.
    public let name: String
    /// Whether a reload that changes it says so (false: documented as ignored silently).
    public let warns: Bool
    /// Whether the value differs between the running and the loaded config.
    private let differs: @Sendable (_ running: GateConfig, _ loaded: GateConfig) -> Bool
    /// Puts the running value into the loaded config.
    private let keep: @Sendable (_ running: GateConfig, _ loaded: inout GateConfig) -> Void

    /// A key stored at `path`, compared with `==`.
    init<Value: Equatable & Sendable>(_ name: String, _ path: WritableKeyPath<GateConfig, Value> & Sendable, warns: Bool = true) {
        self.init(
            name, warns: warns, differs: { $0[keyPath: path] != $1[keyPath: path] }, keep: { $1[keyPath: path] = $0[keyPath: path] })
    }

    /// A key compared and kept by hand.
    init(
        _ name: String, warns: Bool = true, differs: @escaping @Sendable (GateConfig, GateConfig) -> Bool,
        keep: @escaping @Sendable (GateConfig, inout GateConfig) -> Void
    ) {
        self.name = name
        self.warns = warns
        self.differs = differs
        self.keep = keep
    }

    /// Every restart-only key, in the order of docs/config.md's table.
    public static let all: [RestartOnlyKey] = [
        RestartOnlyKey("listen", \.listen),
        RestartOnlyKey("workers", \.workers),
        // The URL but its sentinel password, which is a key of its own.
        RestartOnlyKey(
            "redis",
            differs: { running, loaded in
                var old = running.redis
                var new = loaded.redis
                old?.sentinelPassword = nil
                new?.sentinelPassword = nil
                return old != new
            },
            keep: { running, loaded in loaded.redis = running.redis }),
        RestartOnlyKey("redisTimeoutMs", \.redisTimeoutMs),
        // Part of the redis URL: keeping it keeps the URL.
        RestartOnlyKey(
            "sentinelPassword", differs: { $0.redis?.sentinelPassword != $1.redis?.sentinelPassword },
            keep: { running, loaded in loaded.redis = running.redis }),
        RestartOnlyKey("redisMinReplicas", \.redisMinReplicas),
        RestartOnlyKey("redisReplicaWaitMs", \.redisReplicaWaitMs),
        // Only the memory store reads it, made once at start.
        RestartOnlyKey("memoryEventsMaxBytes", \.memoryEventsMaxBytes, warns: false),
        RestartOnlyKey("socketMode", \.socketMode),
        RestartOnlyKey("socketGroup", \.socketGroup),
        // The settlement socket is opened once, at start.
        RestartOnlyKey("settleListen", \.settleListen),
    ]

    /// `loaded` with the running value of every restart-only key, and the keys whose value the
    /// reload would have changed (in `all`'s order).
    public static func keepingRunning(_ running: GateConfig, in loaded: GateConfig) -> (config: GateConfig, changed: [RestartOnlyKey]) {
        var kept = loaded
        var changed: [RestartOnlyKey] = []
        for key in all {
            if key.differs(running, loaded) { changed.append(key) }
            key.keep(running, &kept)
        }
        return (kept, changed)
    }
}
