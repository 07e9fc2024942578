import ChargeGateCore
import Glibc
import Logging
import Synchronization

/// nginx's settlement lines on their way from the socket to the store: the socket, the queue
/// between the two loops that move them (`SettleReader`, `SettleApplier`), and the stop
/// sequence they follow (`Server+Settlement`). Request workers never touch any of it.
final class SettleTransport: Sendable {
    /// Where the lines arrive.
    let socket: SettleSocket
    /// Between the reader and the applier.
    let queue: SettleQueue
    /// Set when the process stops: the reader reads what is left and stops (`readerDone`).
    let closing = Atomic<Bool>(false)
    /// Set by the reader once it has stopped reading for good.
    let readerDone = Atomic<Bool>(false)
    /// Lines in a batch the applier takes at once.
    static let batch = 256
    /// How long the reader pauses after emptying the socket, in µs (0: never), so that a busy
    /// gate's lines are read a few at a time rather than with a wake-up each: 1 ms when the
    /// kernel queues `lingerQueueAtLeast` datagrams or more (nginx would have to send that many
    /// lines within the pause to lose one), none below.
    let readerLingerUs: useconds_t
    /// The kernel queue (`net.unix.max_dgram_qlen`) from which the reader pauses.
    static let lingerQueueAtLeast = 256

    /// Creates the transport for lines arriving on `socket`, whose kernel queue holds
    /// `kernelQueue` datagrams (nil: unknown, and the reader never pauses).
    init(socket: SettleSocket, queue: SettleQueue = SettleQueue(), kernelQueue: Int? = nil) {
        self.socket = socket
        self.queue = queue
        readerLingerUs = (kernelQueue ?? 0) >= Self.lingerQueueAtLeast ? 1000 : 0
    }

    /// The loop that drains the socket into the queue.
    func reader(metrics: GateMetrics, logger: Logger) -> SettleReader {
        SettleReader(transport: self, metrics: metrics, logger: logger)
    }

    /// The loop that settles the queued lines on a store of its own from `makeStore`, with the
    /// gate in force in `box` when each batch is applied.
    func applier(
        box: GateBox, makeStore: @escaping Server.StoreFactory, metrics: GateMetrics, logger: Logger, retry: SettleRetry = SettleRetry()
    ) -> SettleApplier {
        SettleApplier(transport: self, box: box, makeStore: makeStore, metrics: metrics, logger: logger, retry: retry)
    }
}
