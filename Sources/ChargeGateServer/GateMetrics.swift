import ChargeGateCore
import ChargeGateFastCGI
import Prometheus
import Synchronization

/// The responder's Prometheus metrics, in the text exposition format at the `metrics` role
/// (nginx's `/metrics`, loopback only). One registry per process, shared by every worker.
public final class GateMetrics: Sendable {
    /// The registry every metric lives in.
    public let registry = PrometheusCollectorRegistry()
    private let redisRoundTrip: DurationHistogram
    private let redisTimeouts: Counter
    private let redisUnavailable: Counter
    private let redisProtocolErrors: Counter
    private let redisConnects: Counter
    private let redisReconnects: Counter
    private let reloadsOK: Counter
    private let reloadsFailed: Counter
    private let redisFailovers: Counter
    private let redisDiscoveryErrors: Counter
    private let redisReplicaAcksMissing: Counter
    private let clusterGivenBack: Counter
    private let clusterGiveBackFailed: Counter
    /// Sentinel mode: the one `redis_master_info` series (replaced on a failover).
    private let redisMasterInfo = Mutex<Gauge?>(nil)
    /// `settle_lines_total`, one series per result (every one made at start, at 0).
    private let settleLines: [SettleLineResult: Counter]
    /// `holds_total`, one series per outcome (every one made at start, at 0).
    private let holds: [String: Counter]
    private let settleQueueLength: Gauge
    private let connectionsAccepted: Counter
    private let connectionsOpen: Gauge

    /// What became of one datagram on the settlement socket (`settle_lines_total`'s `result`).
    public enum SettleLineResult: String, Sendable, CaseIterable {
        /// Parsed and queued for the store.
        case accepted
        /// Longer than `SettleLine.maxBytes`.
        case tooLong = "too_long"
        /// Not a settlement line.
        case malformed
        /// A field that is not what nginx writes there.
        case badField = "bad_field"
        /// A line about the auth location itself.
        case authLocation = "auth_location"
        /// A valid line the store never got: the queue was full when it came, it was still
        /// queued when the process stopped, or the store kept failing on it.
        case dropped

        /// The result of a line the parser refused.
        public init(_ rejection: SettleLine.Rejection) {
            switch rejection {
            case .tooLong: self = .tooLong
            case .malformed: self = .malformed
            case .badField: self = .badField
            case .authLocation: self = .authLocation
            }
        }
    }

    /// `holds_total`'s outcomes: `opened` (an allowed spend recorded a hold), then each
    /// `SettleOutcome.label`.
    public static let holdOutcomes = [
        "opened", "refund", "amount", "overage", "stands", "bad_amount", "expired", "duplicate", "unknown", "voided", "ignored",
    ]

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "charge_gate", metricName: metric, unitName: unit, helpText: help)
    }

    static var decisions: MetricNameDescriptor {
        name("decisions", "total", "Gate decisions per pool and outcome (allowed counts each pool a request spent from).")
    }
    static var fromMemory: MetricNameDescriptor {
        name(
            "denied_from_memory", "total", "429s answered from a worker's deny cache without asking the store (also counted in decisions).")
    }

    /// Creates the registry and the metrics that have no per-pool labels.
    public init() {
        redisRoundTrip = registry.makeDurationHistogram(
            descriptor: Self.name(
                "redis_roundtrip", "seconds", "Redis command round trips (write to reply) as the responder measured them."),
            buckets: [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            ])
        let errors = Self.name("redis_errors", "total", "Redis commands that failed, by kind (each answered 503).")
        redisTimeouts = registry.makeCounter(descriptor: errors, labels: [("kind", "timeout")])
        redisUnavailable = registry.makeCounter(descriptor: errors, labels: [("kind", "unavailable")])
        redisProtocolErrors = registry.makeCounter(descriptor: errors, labels: [("kind", "protocol")])
        redisConnects = registry.makeCounter(
            descriptor: Self.name("redis_connects", "total", "Redis connections made (the first per worker included)."))
        redisReconnects = registry.makeCounter(
            descriptor: Self.name("redis_reconnects", "total", "Redis connections made again after one was lost."))
        let reloads = Self.name("config_reloads", "total", "Config reloads on SIGHUP, by result (failed: the running config was kept).")
        reloadsOK = registry.makeCounter(descriptor: reloads, labels: [("result", "ok")])
        reloadsFailed = registry.makeCounter(descriptor: reloads, labels: [("result", "failed")])
        redisFailovers = registry.makeCounter(
            descriptor: Self.name("redis_failovers", "total", "Sentinel failovers this process saw (it moved to another master)."))
        redisDiscoveryErrors = registry.makeCounter(
            descriptor: Self.name("redis_discovery_errors", "total", "Sentinel discovery rounds that found no usable master (each a 503)."))
        redisReplicaAcksMissing = registry.makeCounter(
            descriptor: Self.name(
                "redis_replica_acks_missing", "total",
                "Spends answered 503 because fewer than redisMinReplicas replicas acknowledged them within redisReplicaWaitMs."))
        let giveBacks = Self.name(
            "cluster_give_backs", "total",
            "Cluster mode: an earlier slot's charges of a multi-slot spend given back after a later slot said no or failed, by result (failed: they stay spent until their hold lapses)."
        )
        clusterGivenBack = registry.makeCounter(descriptor: giveBacks, labels: [("result", "given_back")])
        clusterGiveBackFailed = registry.makeCounter(descriptor: giveBacks, labels: [("result", "failed")])
        let lines = Self.name("settle_lines", "total", "Datagrams on the settlement socket, by what became of them.")
        var settleLines: [SettleLineResult: Counter] = [:]
        for result in SettleLineResult.allCases {
            settleLines[result] = registry.makeCounter(descriptor: lines, labels: [("result", result.rawValue)])
        }
        self.settleLines = settleLines
        let held = Self.name("holds", "total", "Holds opened by allowed requests on settled routes, and what each settlement did.")
        var holds: [String: Counter] = [:]
        for outcome in Self.holdOutcomes {
            holds[outcome] = registry.makeCounter(descriptor: held, labels: [("outcome", outcome)])
        }
        self.holds = holds
        connectionsAccepted = registry.makeCounter(
            descriptor: Self.name("fastcgi_connections", "total", "FastCGI connections accepted from nginx (kept ones count once)."))
        connectionsOpen = registry.makeGauge(
            descriptor: Self.name("fastcgi_connections_open", "", "FastCGI connections from nginx open now, idle kept ones included."))
        settleQueueLength = registry.makeGauge(
            descriptor: Self.name("settle_queue", "lines", "Settlement lines received and not yet applied to the store."))
    }

    /// Counts `n` datagrams on the settlement socket under `result`.
    public func settleLines(_ result: SettleLineResult, count n: Int = 1) {
        guard n > 0 else { return }
        settleLines[result]?.increment(by: Int64(n))
    }

    /// Counts what the store did with one settlement (`holds_total`, its `label`).
    public func holdSettled(_ outcome: SettleOutcome) {
        holds[outcome.label]?.increment()
    }

    /// The settlement queue's length now.
    public func settleQueue(length: Int) {
        settleQueueLength.set(Int64(length))
    }

    /// Sentinel mode: `master` (the name) is now at `address` (`redis_master_info`, value 1).
    public func redisMaster(name: String, address: String) {
        redisMasterInfo.withLock { current in
            if let current { registry.unregisterGauge(current) }
            let gauge = registry.makeGauge(
                descriptor: Self.name("redis_master", "info", "The Redis master this process spends on (sentinel mode), as labels."),
                labels: [("master", name), ("address", address)])
            gauge.set(to: 1.0)
            current = gauge
        }
    }

    /// Counts a failover seen.
    public func redisFailoverSeen() {
        redisFailovers.increment()
    }

    /// Counts a discovery round that found no master.
    public func redisDiscoveryFailed() {
        redisDiscoveryErrors.increment()
    }

    /// Counts a cluster give-back (`failed`: it did not happen).
    public func clusterGaveBack(failed: Bool) {
        (failed ? clusterGiveBackFailed : clusterGivenBack).increment()
    }

    /// Counts a spend not acknowledged by enough replicas.
    public func redisReplicasMissing() {
        redisReplicaAcksMissing.increment()
    }

    /// What the workers' event loops report: connections accepted and open.
    public var connectionObserver: FastCGIEventLoop.Observer {
        FastCGIEventLoop.Observer(
            opened: { [connectionsAccepted, connectionsOpen] in
                connectionsAccepted.increment()
                connectionsOpen.increment()
            },
            closed: { [connectionsOpen] in connectionsOpen.decrement() })
    }

    /// The text exposition of every metric.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }

    /// Counts a config reload.
    public func reloaded(ok: Bool) {
        (ok ? reloadsOK : reloadsFailed).increment()
    }

    /// Counts a Redis round trip.
    public func redisRoundTrip(nanoseconds: UInt64) {
        redisRoundTrip.record(.nanoseconds(Int64(clamping: nanoseconds)))
    }

    /// Counts a failed Redis command.
    public func redisFailed(_ error: StoreError) {
        switch error {
        case .timeout: redisTimeouts.increment()
        case .unavailable: redisUnavailable.increment()
        case .protocolError: redisProtocolErrors.increment()
        }
    }

    /// Counts a Redis connection.
    public func redisConnected(reconnect: Bool) {
        redisConnects.increment()
        if reconnect { redisReconnects.increment() }
    }

    /// One worker's handles on the per-pool counters, so that a decision costs a dictionary
    /// lookup in the worker's own memory, not a registry lookup under its lock.
    public final class WorkerCounters {
        private struct Key: Hashable {
            var fromMemory: Bool
            var pool: String
            var outcome: String
        }

        private let metrics: GateMetrics
        private var counters: [Key: Counter] = [:]

        init(_ metrics: GateMetrics) {
            self.metrics = metrics
        }

        /// Counts one decision (none for nil); a shadow route's passed denial under the
        /// denial's shadow label. Takes the optional as a response holds it: matched in place,
        /// never copied whole first.
        public func record(_ outcome: Response.Outcome?, shadow: Bool = false) {
            switch outcome {
            case nil:
                return
            case .allowed(let pools, let held)?:
                let label = shadow ? "shadow_allowed" : "allowed"
                for pool in pools { counter(Key(fromMemory: false, pool: pool, outcome: label)).increment() }
                if held { metrics.holds["opened"]?.increment() }
            case .denied(let denial, let pools, let fromMemory)?:
                let label = shadow ? denial.shadowMetricLabel : denial.metricLabel
                for pool in pools {
                    counter(Key(fromMemory: false, pool: pool, outcome: label)).increment()
                    if fromMemory { counter(Key(fromMemory: true, pool: pool, outcome: "")).increment() }
                }
            case .shadow(let passed)?:
                record(passed, shadow: true)
            }
        }

        private func counter(_ key: Key) -> Counter {
            if let counter = counters[key] { return counter }
            let counter =
                key.fromMemory
                ? metrics.registry.makeCounter(descriptor: GateMetrics.fromMemory, labels: [("pool", key.pool)])
                : metrics.registry.makeCounter(descriptor: GateMetrics.decisions, labels: [("pool", key.pool), ("outcome", key.outcome)])
            counters[key] = counter
            return counter
        }
    }

    /// Counters for one worker thread.
    public func workerCounters() -> WorkerCounters {
        WorkerCounters(self)
    }
}
