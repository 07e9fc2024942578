import ChargeGateCore
import Glibc

/// The settlement transport the server runs when a route settles (docs/settlement.md,
/// "Transport"): the socket opened at start beside the FastCGI one, a reader and an applier
/// loop among the background loops, and their part of the stop.
extension Server {
    /// How long the stop waits for the queued lines to reach the store.
    static let settleDrainMs = 3000
    /// Below this kernel queue (`net.unix.max_dgram_qlen`), the start warns: systemd sets 512
    /// at boot.
    static let settleQueueWarnBelow = 512

    /// The settlement transport for `config`; nil when no route settles. The socket systemd
    /// handed over under the name `settle`, else one bound at `settleSocketPath` with the
    /// FastCGI socket's mode and group.
    func openSettlement(_ config: GateConfig) throws(SettleSocketError) -> SettleTransport? {
        guard config.settles else { return nil }
        let socket: SettleSocket
        if let fd = SystemdSockets.current()?.fd(named: "settle") {
            socket = try .inherited(fd: fd)
        } else if let path = config.settleSocketPath {
            socket = try .bind(path: path, mode: config.socketMode, group: config.socketGroup)
        } else {
            throw SettleSocketError(
                "a route settles, but no settlement socket is known: set settleListen or pass --settle-listen PATH (listen is \(config.listen)), or let systemd hand one over (charge-gate-settle.socket, FileDescriptorName=settle)"
            )
        }
        let source = socket.boundPath.map { "on \($0)" } ?? "on the socket systemd handed over (settle)"
        let qlen = Self.kernelDatagramQueue()
        logger.info("settlement: receiving nginx's lines \(source); net.unix.max_dgram_qlen is \(qlen.map(String.init) ?? "unknown")")
        if let qlen, qlen < Self.settleQueueWarnBelow, !socket.inherited {
            logger.warning(
                "settlement: net.unix.max_dgram_qlen is \(qlen): nginx drops a settlement line whenever \(qlen) wait here; raise it to 512 or more before the start (docs/settlement.md, Transport)"
            )
        }
        return SettleTransport(socket: socket, kernelQueue: qlen)
    }

    /// The loops that move `transport`'s lines: the reader, then the applier on a store from
    /// `makeStore`.
    func settlementLoops(_ transport: SettleTransport, makeStore: @escaping StoreFactory) -> [any BackgroundLoop] {
        [
            transport.reader(metrics: metrics, logger: logger),
            transport.applier(box: box, makeStore: makeStore, metrics: metrics, logger: logger),
        ]
    }

    /// The first part of the stop, once the workers are done (the lines of their last answers
    /// are on their way): the reader reads what is left of a socket it bound, then stops; the
    /// applier gets `limitMs` to bring the queue to the store.
    func drainSettlement(_ transport: SettleTransport, limitMs: Int = Server.settleDrainMs) {
        transport.closing.store(true, ordering: .releasing)
        var waitedMs = 0
        let readerLimit = SettleReader.drainLimitMs + SettleReader.pollMs + 300
        while !transport.readerDone.load(ordering: .acquiring) && waitedMs < readerLimit {
            usleep(10_000)
            waitedMs += 10
        }
        waitedMs = 0
        while transport.queue.count > 0 && waitedMs < limitMs {
            usleep(10_000)
            waitedMs += 10
        }
    }

    /// The last part, once the loops have stopped: lines still queued are counted as dropped
    /// and logged (their holds stand as held).
    func reportSettlementLeft(_ transport: SettleTransport) {
        let left = transport.queue.count
        guard left > 0 else { return }
        metrics.settleLines(.dropped, count: left)
        logger.error(
            "settlement: \(left) lines were not applied before the stop (the store did not take them in time); their holds stand as held")
    }

    /// `net.unix.max_dgram_qlen` now: how many datagrams a unix socket created now queues.
    static func kernelDatagramQueue() -> Int? {
        guard let file = fopen("/proc/sys/net/unix/max_dgram_qlen", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 32)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Int(String(text.prefix { $0.isASCII && $0.isNumber }))
    }
}
