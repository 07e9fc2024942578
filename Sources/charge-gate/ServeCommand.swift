import ArgumentParser
import ChargeGateCore
import ChargeGateRedis
import ChargeGateServer
import Logging

/// `charge-gate serve`: run the responder.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the FastCGI responder. SIGTERM/SIGINT finish requests in flight and exit 0; SIGHUP reloads the config."
    )

    @Option(help: "The YAML config file.")
    var config: String

    @Option(help: "Override the config's listen: a unix socket path, host:port, or inherit (fd 0).")
    var listen: String?

    @Option(help: "Override the config's redis URL (redis://host:port/db or unix:///path?db=N).")
    var redis: String?

    @Flag(help: "Use the memory store whatever the config says (one process; state lost on restart).")
    var memory = false

    /// `--allow-eviction`: skip the start-up and reconnect check of Redis's `maxmemory-policy`.
    @Flag(help: "Serve even when Redis may evict keys (maxmemory-policy other than noeviction): evicted buckets come back full.")
    var allowEviction = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log line format: text or json (one object per line).")
    var logFormat: LineLogHandler.Format = .text

    @Option(help: "Subjects in log lines: hashed (a per-process keyed hash, the default) or plain.")
    var logSubjects: SubjectLogging = .hashed

    /// How subjects appear in logs.
    enum SubjectLogging: String, ExpressibleByArgument, CaseIterable {
        case hashed, plain
    }

    func run() throws {
        var overrides = ServeOverrides(memory: memory, plainSubjects: logSubjects == .plain)
        if let listen {
            guard let address = ListenAddress(parsing: listen) else {
                throw ValidationError("--listen: expected a unix socket path, host:port, or inherit")
            }
            overrides.listen = address
        }
        overrides.redis = try redisURL(redis, default: nil)
        let path = config
        let loaded = try loadConfig(path)

        let allowEviction = allowEviction
        let level = logLevel
        let format = logFormat
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
        let logger = Logger(label: "charge-gate")
        let memoryStore = MemoryStore(clock: SystemClock(), eventsMaxBytes: loaded.memoryEventsMaxBytes)
        let metrics = GateMetrics()
        let server = Server(
            config: loaded,
            reload: { ConfigLoader.load(path: path) },
            overrides: overrides,
            metrics: metrics,
            makeStore: { config in
                guard let url = config.redis else { return memoryStore }
                return RedisStore(url: url, timeoutMs: config.redisTimeoutMs, observer: metrics, allowEviction: allowEviction)
            },
            logger: logger)
        let status = server.run()
        if status != 0 { throw ExitCode(status) }
    }
}
