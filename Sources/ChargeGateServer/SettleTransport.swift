import ChargeGateCore
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

    /// Creates the transport for lines arriving on `socket`.
    init(socket: SettleSocket, queue: SettleQueue = SettleQueue()) {
        self.socket = socket
        self.queue = queue
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
