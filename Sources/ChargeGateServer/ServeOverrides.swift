import ChargeGateCore

/// What `charge-gate serve` was told on its command line, applied over every config it loads
/// (the first and each reload).
public struct ServeOverrides: Sendable {
    /// `--listen`.
    public var listen: ListenAddress?
    /// `--redis`.
    public var redis: RedisURL?
    /// `--memory`: the memory store whatever the config says.
    public var memory: Bool
    /// `--log-subjects plain`: log subjects as they are (default: a keyed hash).
    public var plainSubjects: Bool
    /// `--settle-listen`: the settlement socket's path.
    public var settleListen: String?

    /// Creates overrides.
    public init(
        listen: ListenAddress? = nil, redis: RedisURL? = nil, memory: Bool = false, plainSubjects: Bool = false, settleListen: String? = nil
    ) {
        self.listen = listen
        self.redis = redis
        self.memory = memory
        self.plainSubjects = plainSubjects
        self.settleListen = settleListen
    }

    /// `config` with the overrides applied.
    public func applied(to config: GateConfig) -> GateConfig {
        var config = config
        if let listen { config.listen = listen }
        if let redis { config.redis = redis.inheritingSentinelPassword(from: config.redis) }
        if memory { config.redis = nil }
        if let settleListen { config.settleListen = settleListen }
        return config
    }
}
