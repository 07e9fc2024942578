import ArgumentParser
import ChargeGateCore
import ChargeGateRedis
import ChargeGateServer
import Glibc
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

    @Option(help: "Override the config's redis URL (redis://host:port/db, unix:///path?db=N or redis-sentinel://host:port,.../master).")
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
        // Sentinel mode: one watch for the process (failovers counted and logged once), fed by
        // every worker's connection and by a poller thread.
        let started = overrides.applied(to: loaded)
        let watch = started.redis.flatMap { url in Self.sentinelWatch(url, config: started, metrics: metrics, logger: logger) }
        let replicaWait = RedisStore.ReplicaWait(replicas: started.redisMinReplicas, timeoutMs: started.redisReplicaWaitMs)
        let server = Server(
            config: loaded,
            reload: { ConfigLoader.load(path: path) },
            overrides: overrides,
            metrics: metrics,
            makeStore: { config in
                guard let url = config.redis else { return memoryStore }
                return RedisStore(
                    url: url, timeoutMs: config.redisTimeoutMs, observer: metrics, allowEviction: allowEviction, watch: watch,
                    replicaWait: replicaWait)
            },
            logger: logger)
        let status = server.run()
        if status != 0 { throw ExitCode(status) }
    }

    /// How often the poller asks every sentinel about the master.
    static let sentinelPollMs = 100

    /// The process's `MasterWatch` for a sentinel URL (nil otherwise), reporting to the metrics
    /// and the log, and its poller started on a thread of its own.
    static func sentinelWatch(_ url: RedisURL, config: GateConfig, metrics: GateMetrics, logger: Logger) -> MasterWatch? {
        guard case .sentinel(_, let name) = url.endpoint else { return nil }
        let watch = MasterWatch(masterName: name, clock: MonotonicClock()) { event in
            switch event {
            case .found(let master, let sentinel):
                metrics.redisMaster(name: name, address: master)
                logger.info("redis-sentinel: master '\(name)' is \(master) (named by sentinel \(sentinel))")
            case .failover(let from, let to, let withoutMasterMs):
                metrics.redisFailoverSeen()
                metrics.redisMaster(name: name, address: to)
                logger.warning("redis failover seen: master '\(name)' moved from \(from) to \(to); \(withoutMasterMs) ms without a master")
            case .discoveryFailed:
                // Each request it cost is logged with its 503 (the reason included).
                metrics.redisDiscoveryFailed()
            }
        }
        let timeoutMs = config.redisTimeoutMs
        let started = NativeThread.start {
            // Stop and reload signals belong to the server's sigwait: this thread, started
            // before the server blocks them, must never take one (SIGHUP's default kills).
            var signals = sigset_t()
            sigemptyset(&signals)
            for signal in [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2] { sigaddset(&signals, signal) }
            pthread_sigmask(SIG_BLOCK, &signals, nil)
            guard let poller = SentinelPoller(url: url, timeoutMs: timeoutMs, watch: watch) else { return }
            while true {
                poller.poll()
                usleep(useconds_t(sentinelPollMs * 1000))
            }
        }
        if started == nil { logger.warning("redis-sentinel: cannot start the sentinel poller; failovers are seen on errors only") }
        return watch
    }
}
