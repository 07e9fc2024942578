import ChargeGateCore
import ChargeGateFastCGI
import Glibc
import Logging
import Synchronization

/// The responder process: N worker threads, each with its own FastCGI event loop (the
/// connections it accepted, kept or not) and its own store connection, answering until SIGTERM or SIGINT; SIGHUP reloads the config. It owns the
/// process: the signals, the config in force and its reload rules (`RestartOnlyKey`), and every
/// background loop (`BackgroundLoop`, see `Server+BackgroundLoops`).
public final class Server: Sendable {
    /// Makes the store one worker thread uses; called on that thread.
    public typealias StoreFactory = @Sendable (GateConfig) -> any ChargeStore
    /// Loads and validates a config file (the same loader as `check-config`).
    public typealias ConfigSource = @Sendable () -> Result<GateConfig, ConfigErrors>

    private let loadConfig: ConfigSource
    private let overrides: ServeOverrides
    let logger: Logger
    /// The gate in force (the settlement applier reads it per batch).
    let box: GateBox
    private let running = Atomic<Int>(0)
    /// Set once the workers are done: the background loops end their rounds.
    let loopsStopping = Atomic<Bool>(false)
    /// Background loops whose thread has not ended yet.
    let loopsRunning = Atomic<Int>(0)
    private let denyEpoch = DenyEpoch()
    let metrics: GateMetrics
    /// Whether the settlement transport runs (opened at start when a route settled).
    let settling = Atomic<Bool>(false)
    /// Notes as log metadata, subjects hashed unless `--log-subjects plain`.
    private let noteMetadata: NoteMetadata

    /// Creates a server for the already validated `config`, the `overrides` applied (here, once;
    /// and to every reloaded config).
    public init(config: GateConfig, reload: @escaping ConfigSource, overrides: ServeOverrides, metrics: GateMetrics, logger: Logger) {
        self.loadConfig = reload
        self.metrics = metrics
        self.overrides = overrides
        self.logger = logger
        self.noteMetadata = NoteMetadata(plainSubjects: overrides.plainSubjects)
        self.box = GateBox(Gate(config: overrides.applied(to: config)))
    }

    /// The config in force: the one given with the overrides applied, then each reload's.
    public var config: GateConfig { box.current.config }

    /// Listens, starts the background `loops`, serves with a store from `makeStore` per worker
    /// until told to stop, and returns the exit status (0 after a clean stop).
    public func run(makeStore: @escaping StoreFactory, loops: [any BackgroundLoop] = []) -> Int32 {
        let config = box.current.config
        // libfcgi installs its own handlers in FCGX_Init; ours come after, before anything can
        // be interrupted: a stop signal from here on waits for sigwait and stops cleanly.
        FastCGIListener.initialize()
        Self.prepareSignals()
        let listenFD: Int32
        do {
            switch config.listen {
            case .unix(let path):
                listenFD = try FastCGIListener.openUnix(path: path, backlog: 1024, mode: config.socketMode, group: config.socketGroup)
            case .tcp(let host, let port):
                listenFD = try FastCGIListener.openTCP(host: host, port: port, backlog: 1024)
            case .inherit:
                listenFD = try FastCGIListener.inherited()
            }
        } catch {
            logger.critical("\(error)")
            return 1
        }
        // nginx's settlement lines, when a route settles: their socket now, their loops with
        // the others.
        let settlement: SettleTransport?
        do {
            settlement = try openSettlement(config)
        } catch {
            logger.critical("settlement: \(error)")
            return 1
        }
        var loops = loops
        if let settlement {
            loops += settlementLoops(settlement, makeStore: makeStore)
            settling.store(true, ordering: .relaxed)
        }

        // After prepareSignals: the loops' threads inherit the blocked stop and reload signals.
        let loopThreads = startLoops(loops)
        let workers = config.workers ?? max(2, 2 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        // Every worker accepts from the listening socket in its own epoll set: non-blocking, so
        // that a worker woken for a connection another took goes back to waiting.
        guard FastCGIEventLoop.setNonBlocking(listenFD) else {
            logger.critical("cannot make the listening socket non-blocking: \(String(cString: strerror(errno)))")
            stopLoops(loopThreads)
            return 1
        }
        // Readable once the workers are to stop (each worker's epoll set watches it).
        guard let stop = FastCGIStopSignal() else {
            logger.critical("cannot make an eventfd: \(String(cString: strerror(errno)))")
            stopLoops(loopThreads)
            return 1
        }
        var threads: [NativeThread] = []
        for index in 0..<workers {
            // Counted before the thread runs: the stop waits for this worker too.
            running.add(1, ordering: .relaxed)
            guard
                let thread = NativeThread.start({ [self] in self.work(index: index, listenFD: listenFD, stop: stop, makeStore: makeStore) })
            else {
                running.subtract(1, ordering: .relaxed)
                logger.critical("cannot start worker thread \(index)")
                stopWorkers(threads, stop: stop)
                stopLoops(loopThreads)
                return 1
            }
            threads.append(thread)
        }
        let store = config.redis.map { "redis \($0)" } ?? "memory store (this process only)"
        logger.info(
            "charge-gate listening on \(config.listen) with \(workers) workers; \(config.pools.count) pools, \(config.routes.count) routes; \(store)"
        )

        waitForStopSignal()

        logger.info("stopping: answering what nginx already queued, then the requests in flight")
        drain(listenFD, config.listen)
        stopWorkers(threads, stop: stop)
        if let settlement { drainSettlement(settlement) }
        stopLoops(loopThreads)
        if let settlement { reportSettlementLeft(settlement) }
        logger.info("stopped")
        return 0
    }

    /// Lets the workers answer every connection nginx already queued. Our own unix socket is
    /// unlinked first, so that nothing new connects (a new instance may take the path at
    /// once); then accepting goes on until the queue has been empty for 100 ms (5 s at most).
    /// An inherited socket is not ours to unlink: systemd keeps it, and what arrives meanwhile
    /// waits for the next start.
    private func drain(_ listenFD: Int32, _ listen: ListenAddress) {
        guard case .unix(let path) = listen else { return }
        unlink(path)
        var quietMs = 0
        var waitedMs = 0
        while quietMs < 100 && waitedMs < 5000 {
            quietMs = FastCGIListener.hasPendingConnections(listenFD) ? 0 : quietMs + 10
            usleep(10_000)
            waitedMs += 10
        }
    }

    /// Tells every worker to stop (each stops accepting, answers what comes on its kept
    /// connections for a grace of `FastCGIEventLoop.stopGraceMs`, closing each after its
    /// answer, then closes the rest and ends) and waits for them, at most 10 s: nginx's own
    /// timeouts end a request stuck on the store.
    private func stopWorkers(_ threads: [NativeThread], stop: FastCGIStopSignal) {
        stop.fire()
        var waitedMs = 0
        while running.load(ordering: .acquiring) > 0 && waitedMs < 10_000 {
            usleep(10_000)
            waitedMs += 10
        }
        if running.load(ordering: .acquiring) == 0 {
            for thread in threads { thread.join() }
        }
    }

    // MARK: Workers

    /// One worker: its own store connection and responder, answering the requests that
    /// arrive on the FastCGI connections its event loop accepted.
    private func work(index: Int, listenFD: Int32, stop: FastCGIStopSignal, makeStore: StoreFactory) {
        defer { running.subtract(1, ordering: .releasing) }
        let metrics = self.metrics
        guard
            let loop = FastCGIEventLoop(
                listenFD: listenFD, stop: stop, lingering: !FastCGIListener.isUnixSocket(listenFD),
                observer: metrics.connectionObserver)
        else {
            logger.critical("worker \(index): cannot make an epoll set: \(String(cString: strerror(errno)))")
            return
        }
        let responder = Responder(
            store: makeStore(box.current.config), clock: SystemClock(), denials: DenyCache(epoch: denyEpoch),
            exposition: { String(decoding: metrics.exposition(), as: UTF8.self) })
        let counters = metrics.workerCounters()
        var logger = self.logger
        logger[metadataKey: LogKey.worker.rawValue] = "\(index)"
        while let request = loop.next() {
            let params = FastCGIParams(request: request)
            let response = responder.respond(to: params, gate: box.current)
            // Read before finish(): libfcgi frees the request's params there.
            let requestID = response.note == nil ? nil : params.param(WireProtocol.Param.requestID)
            // Counted before nginx has the answer: a scrape that follows it (on another worker)
            // sees it.
            counters.record(response.outcome)
            // The app's settlement (`POST /api/usage/settle`) counts as nginx's lines do.
            if let settlement = response.settlement { metrics.holdSettled(settlement) }
            request.write(response.serialized())
            loop.finish(request)
            if let note = response.note { log(note, requestID: requestID, on: logger) }
        }
    }

    /// Logs a decision or an error with its fields; subjects hashed unless told otherwise.
    private func log(_ note: Response.Note, requestID: String?, on logger: Logger) {
        logger.log(
            level: note.isError ? .error : .info, "\(note.message)", metadata: noteMetadata.metadata(for: note, requestID: requestID))
    }

    // MARK: Signals

    static func prepareSignals() {
        signal(SIGPIPE, SIG_IGN)
        // SIGUSR2 only interrupts a blocking call (no SA_RESTART): a background loop's pause. It
        // does nothing else.
        var wake = sigaction()
        wake.__sigaction_handler.sa_handler = { _ in }
        wake.sa_flags = 0
        sigemptyset(&wake.sa_mask)
        sigaction(SIGUSR2, &wake, nil)
        // TERM, INT and HUP are taken by sigwait on the main thread only; workers inherit the mask.
        var set = stopSignals()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static func stopSignals() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGHUP)
        return set
    }

    private func waitForStopSignal() {
        var set = Self.stopSignals()
        while true {
            var received: Int32 = 0
            guard sigwait(&set, &received) == 0 else { continue }
            if received == SIGHUP {
                reload()
            } else {
                return
            }
        }
    }

    /// Loads the config again: the overrides applied, every restart-only key kept at its running
    /// value (a warning names those that changed), the rest in force for the next request.
    func reload() {
        switch loadConfig() {
        case .success(let loaded):
            let (kept, changed) = RestartOnlyKey.keepingRunning(box.current.config, in: overrides.applied(to: loaded))
            let named = changed.filter(\.warns).map(\.name)
            if !named.isEmpty {
                logger.warning(
                    "reload: these take effect only after a restart, keeping the running values: \(named.joined(separator: ", "))")
            }
            if kept.settles && !settling.load(ordering: .relaxed) {
                logger.warning(
                    "reload: a route now settles, but the settlement socket is opened only at start: restart to receive nginx's lines (until then its holds stand as held)"
                )
            }
            box.replace(with: Gate(config: kept))
            metrics.reloaded(ok: true)
            logger.info("config reloaded: \(kept.pools.count) pools, \(kept.routes.count) routes")
        case .failure(let errors):
            for error in errors.errors { logger.error("\(error)") }
            metrics.reloaded(ok: false)
            logger.error("config reload failed; keeping the running config")
        }
    }
}
