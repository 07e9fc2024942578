import ChargeGateCore

/// Asks every sentinel about the master at a steady pace and tells the process's `MasterWatch`,
/// so that the workers leave a master as soon as any sentinel reports a failover, not only
/// when a command fails on it: after a `SENTINEL FAILOVER` the old master keeps accepting
/// writes until the sentinels reconfigure it (about 10 s later), and those writes would be
/// lost. One per `serve` process: a `BackgroundLoop` the server runs on a thread of its own,
/// which owns the sentinel connections.
public struct SentinelPoller: BackgroundLoop {
    /// The sentinels.
    public let sentinels: [RedisURL.HostPort]
    /// The master's name.
    public let masterName: String
    /// The watch told about every answer.
    public let watch: MasterWatch
    /// The password the sentinels want, if any.
    let sentinelPassword: String?
    /// Each sentinel's connect and answer timeout.
    let timeoutMs: Int

    /// Names the loop in log lines.
    public var name: String { "sentinel poller" }
    /// The pause between two rounds.
    public let intervalMs: Int

    /// nil unless `url` is a sentinel URL. Every sentinel is asked every `intervalMs`.
    public init?(url: RedisURL, timeoutMs: Int, watch: MasterWatch, intervalMs: Int = 100) {
        guard case .sentinel(let sentinels, let name) = url.endpoint else { return nil }
        self.sentinels = sentinels
        self.masterName = name
        self.watch = watch
        self.sentinelPassword = url.sentinelPassword
        self.timeoutMs = timeoutMs
        self.intervalMs = intervalMs
    }

    /// One connection per sentinel (lazy, backing off when down), on the poller's thread.
    public func makeThreadState() -> [RedisConnection] {
        sentinels.map {
            RedisConnection(
                url: RedisURL(endpoint: .tcp(host: $0.host, port: $0.port), password: sentinelPassword), timeoutMs: timeoutMs,
                allowEviction: true)
        }
    }

    /// One round: every sentinel asked `SENTINEL MASTER name`, each answer reported. When at
    /// least one answered and none reported the avoided master in trouble, the watch calms.
    public func round(_ connections: inout [RedisConnection]) {
        var answered = false
        var troubled = false
        for connection in connections {
            guard let reply = try? connection.command(["SENTINEL", "MASTER", masterName]),
                let fields = SentinelDiscovery.masterFields(reply), let ip = fields["ip"], let port = fields["port"].flatMap({ Int($0) }),
                (1...65535).contains(port)
            else { continue }
            answered = true
            let address = RedisURL.HostPort(host: ip, port: port)
            let epoch = fields["config-epoch"].flatMap { Int64($0) } ?? 0
            let flags = SentinelDiscovery.flags(fields)
            watch.observed(address, epoch: epoch, flags: flags)
            // Only news about the avoided master in the newest epoch keeps it avoided (a stale
            // sentinel still reporting a dead old master must not).
            let known = watch.snapshot
            if flags.contains("o_down") || flags.contains("failover_in_progress"), address == known.avoid, epoch >= known.newestEpoch {
                troubled = true
            }
        }
        if answered && !troubled { watch.calm() }
    }
}
