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

    @Option(help: "Override the config's settleListen: the unix datagram socket nginx's settlement lines arrive on (an absolute path).")
    var settleListen: String?

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
        if let settleListen {
            guard settleListen.hasPrefix("/"), settleListen.utf8.count <= 107, !settleListen.contains(where: { $0.isWhitespace }) else {
                throw ValidationError("--settle-listen: expected an absolute unix socket path (at most 107 bytes, no spaces)")
            }
            overrides.settleListen = settleListen
        }
        overrides.redis = try redisURL(redis, default: nil)
        let path = config
        let loaded = try loadConfig(path)
        if let url = overrides.redis, url.isCluster, loaded.keyPrefix.contains(where: { $0 == "{" || $0 == "}" }) {
            throw ValidationError("--redis: a redis-cluster:// store needs a keyPrefix without { or } (its keys take hash tags)")
        }

        let allowEviction = allowEviction
        let level = logLevel
        let format = logFormat
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
        let logger = Logger(label: "charge-gate")
        let metrics = GateMetrics()
        let server = Server(
            config: loaded, reload: { ConfigLoader.load(path: path) }, overrides: overrides, metrics: metrics, logger: logger)
        // The overrides applied once, by the server: what the stores and the loops are made for.
        let started = server.config
        let memoryStore = MemoryStore(clock: SystemClock(), eventsMaxBytes: started.memoryEventsMaxBytes)
        // Sentinel mode: one watch for the process (failovers counted and logged once), fed by
        // every worker's connection and by the poller, a loop the server runs.
        var watch: MasterWatch?
        var loops: [any BackgroundLoop] = []
        if let url = started.redis, case .sentinel(_, let name) = url.endpoint {
            let made = Self.sentinelWatch(masterName: name, metrics: metrics, logger: logger)
            watch = made
            if let poller = SentinelPoller(url: url, timeoutMs: started.redisTimeoutMs, watch: made, intervalMs: Self.sentinelPollMs) {
                loops.append(poller)
            }
        }
        let replicaWait = RedisStore.ReplicaWait(replicas: started.redisMinReplicas, timeoutMs: started.redisReplicaWaitMs)
        let status = server.run(
            makeStore: { [watch] config in
                guard let url = config.redis else { return memoryStore }
                if url.isCluster {
                    return ClusterStore(
                        url: url, keys: KeySpace(prefix: config.keyPrefix, cluster: true), timeoutMs: config.redisTimeoutMs,
                        observer: metrics, allowEviction: allowEviction, replicaWait: replicaWait)
                }
                return RedisStore(
                    url: url, timeoutMs: config.redisTimeoutMs, observer: metrics, allowEviction: allowEviction, watch: watch,
                    replicaWait: replicaWait)
            },
            loops: loops)
        if status != 0 { throw ExitCode(status) }
    }

    /// How often the poller asks every sentinel about the master.
    static let sentinelPollMs = 100

    /// The process's `MasterWatch` for the master `masterName`, on the monotonic clock,
    /// reporting to the metrics and the log.
    static func sentinelWatch(masterName name: String, metrics: GateMetrics, logger: Logger) -> MasterWatch {
        MasterWatch(masterName: name, clock: MonotonicClock()) { event in
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
    }
}
