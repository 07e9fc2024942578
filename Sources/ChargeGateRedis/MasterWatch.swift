import ChargeGateCore
import Synchronization

/// What one process knows about the Sentinel-managed master, shared by every worker's
/// connection and the sentinel poller: which master the process spends on, the newest config
/// epoch any sentinel showed, whether a failover is under way, and a generation that changes
/// whenever the workers must leave the master they are on. Pure: every time is passed in, so
/// the rules are tested without Redis (`MasterWatch` wraps it for threads).
public struct MasterRecord: Sendable, Equatable {
    /// What the process saw happen, reported once per process (not once per worker).
    public enum Event: Sendable, Equatable {
        /// The first master of this process.
        case found(master: String, sentinel: String)
        /// The process moved from one master to another; `withoutMasterMs` runs from the first
        /// failure on (or failover news about) the old master to the first connection to the new.
        case failover(from: String, to: String, withoutMasterMs: Int64)
        /// A discovery round found no usable master (the text says why, sentinel by sentinel).
        case discoveryFailed(String)
    }

    /// The master the process spends on (the last one a worker connected to).
    public private(set) var current: RedisURL.HostPort?
    /// The newest `config-epoch` seen from any sentinel, -1 before any.
    public private(set) var newestEpoch: Int64 = -1
    /// A master that a sentinel reported `o_down` or `failover_in_progress` in the newest epoch.
    public private(set) var avoid: RedisURL.HostPort?
    /// When the current master was first seen failing (epoch ms); nil while it serves.
    public private(set) var lostAtMs: Int64?
    /// Changes whenever every worker must drop its connection and ask the sentinels again.
    public private(set) var generation = 0

    /// An empty record.
    public init() {}

    /// A worker connected to `master` (found and checked by ROLE) at `nowMs`. nil: refused,
    /// because news of a failover arrived while that worker was discovering (its answer is
    /// older than the newest epoch, or names the master under failover); it must ask again.
    public mutating func connected(_ master: SentinelDiscovery.Master, nowMs: Int64) -> [Event]? {
        if master.fromStaleSentinels {
            newestEpoch = master.configEpoch  // every sentinel is behind the process: believe them
        } else if master.configEpoch < newestEpoch || (master.address == avoid && master.configEpoch <= newestEpoch) {
            return nil
        } else {
            newestEpoch = master.configEpoch
        }
        defer { lostAtMs = nil }
        guard let old = current else {
            current = master.address
            return [.found(master: master.address.description, sentinel: master.sentinel.description)]
        }
        if old == master.address { return [] }
        current = master.address
        if avoid == master.address { avoid = nil }
        generation += 1  // the workers still on the old master leave it before their next command
        let without = lostAtMs.map { max(0, nowMs - $0) } ?? 0
        return [.failover(from: old.description, to: master.address.description, withoutMasterMs: without)]
    }

    /// A worker's command failed on `address` (a connection error, a timeout, READONLY or
    /// MASTERDOWN) at `nowMs`.
    public mutating func failed(on address: RedisURL.HostPort, nowMs: Int64) {
        if address == current, lostAtMs == nil { lostAtMs = nowMs }
    }

    /// A discovery round failed at `nowMs`.
    public mutating func discoveryFailed(_ why: String, nowMs: Int64) -> [Event] {
        if current != nil, lostAtMs == nil { lostAtMs = nowMs }
        return [.discoveryFailed(why)]
    }

    /// A sentinel (asked by the poller) names `address` with `epoch` and `flags` at `nowMs`.
    /// A newer epoch naming another node, or the current master reported `o_down` or
    /// `failover_in_progress`, makes every worker leave the master it is on.
    public mutating func observed(_ address: RedisURL.HostPort, epoch: Int64, flags: [String], nowMs: Int64) {
        let troubled = flags.contains("o_down") || flags.contains("failover_in_progress")
        if epoch > newestEpoch {
            newestEpoch = epoch
            avoid = nil  // a new epoch: whatever was under failover before is settled
            if let current, current != address {
                generation += 1
                if lostAtMs == nil { lostAtMs = nowMs }
            }
        }
        if troubled, epoch == newestEpoch, avoid != address {
            avoid = address
            if address == current {
                generation += 1
                if lostAtMs == nil { lostAtMs = nowMs }
            }
        }
    }

    /// The poller asked every sentinel; none reported `avoid` in trouble: the failover ended or
    /// was aborted, and the node may be used again if a sentinel names it.
    public mutating func calm() {
        avoid = nil
    }
}

/// `MasterRecord` shared by the threads of one process, reporting its events. Its times come
/// from `clock` (only differences are used: a monotonic clock suits).
public final class MasterWatch: Sendable {
    /// The master's name (from the URL), for the reports.
    public let masterName: String
    /// Where the record's times come from.
    public let clock: any GateClock
    private let record = Mutex(MasterRecord())
    private let generationValue = Atomic<Int>(0)
    private let report: @Sendable (MasterRecord.Event) -> Void

    /// A watch reading `clock`, whose events go to `report` (called outside the lock, on the
    /// thread that saw it).
    public init(masterName: String, clock: any GateClock, report: @escaping @Sendable (MasterRecord.Event) -> Void = { _ in }) {
        self.masterName = masterName
        self.clock = clock
        self.report = report
    }

    /// Changes whenever the workers must leave their master (one atomic load per command).
    public var generation: Int { generationValue.load(ordering: .acquiring) }

    /// A copy of the record.
    public var snapshot: MasterRecord { record.withLock { $0 } }

    /// See `MasterRecord.connected`; returns the generation the connection belongs to, nil
    /// when it is refused.
    public func connected(_ master: SentinelDiscovery.Master) -> Int? {
        var accepted = true
        let (events, generation) = update { record -> [MasterRecord.Event] in
            guard let events = record.connected(master, nowMs: clock.nowMs()) else {
                accepted = false
                return []
            }
            return events
        }
        for event in events { report(event) }
        return accepted ? generation : nil
    }

    /// See `MasterRecord.failed`.
    public func failed(on address: RedisURL.HostPort) {
        _ = update { record -> [MasterRecord.Event] in
            record.failed(on: address, nowMs: clock.nowMs())
            return []
        }
    }

    /// See `MasterRecord.discoveryFailed`.
    public func discoveryFailed(_ why: String) {
        let (events, _) = update { $0.discoveryFailed(why, nowMs: clock.nowMs()) }
        for event in events { report(event) }
    }

    /// See `MasterRecord.observed`.
    public func observed(_ address: RedisURL.HostPort, epoch: Int64, flags: [String]) {
        _ = update { record -> [MasterRecord.Event] in
            record.observed(address, epoch: epoch, flags: flags, nowMs: clock.nowMs())
            return []
        }
    }

    /// See `MasterRecord.calm`.
    public func calm() {
        _ = update { record -> [MasterRecord.Event] in
            record.calm()
            return []
        }
    }

    private func update(_ body: (inout MasterRecord) -> [MasterRecord.Event]) -> ([MasterRecord.Event], Int) {
        record.withLock { record in
            let events = body(&record)
            generationValue.store(record.generation, ordering: .releasing)
            return (events, record.generation)
        }
    }
}
