import ChargeGateCore
import Glibc
import Logging

/// The loop that settles the queued lines on a store of its own (a Redis connection, like each
/// worker's; the memory store is shared): a batch at a time, each line as
/// `SettleRequest(.nginx(facts))` under the gate in force (a reload's keys and event stream
/// apply from the next batch), each outcome counted in `holds_total`.
///
/// A store error keeps the line and tries it again after a pause (`SettleRetry`); the lines
/// behind it wait in the queue. A line is never dropped without being counted (`dropped`) and
/// logged: whatever is not applied leaves its hold standing as held, so the customer pays the
/// hold, never less.
struct SettleApplier: BackgroundLoop {
    let transport: SettleTransport
    let box: GateBox
    let makeStore: Server.StoreFactory
    let metrics: GateMetrics
    let logger: Logger
    let retry: SettleRetry

    /// Names the loop in log lines.
    var name: String { "settlement applier" }
    /// Rounds wait on the queue (or pause after a store error) themselves.
    var intervalMs: Int { 0 }

    /// How long a round waits for lines.
    static let waitMs = 200

    /// The applier's store and the batch in hand.
    struct State {
        /// The store it settles on.
        var store: any ChargeStore
        /// Lines taken from the queue, applied from `next` on.
        var batch: [SettleLine] = []
        /// The first line of `batch` not applied yet.
        var next = 0
        /// Failed attempts on `batch[next]`.
        var attempts = 0
        /// Whether the store is failing (logged once when it starts, once when it recovers).
        var failing = false
    }

    /// The store, made on the loop's thread.
    func makeThreadState() -> State {
        State(store: makeStore(box.current.config))
    }

    /// Applies the batch in hand (a new one from the queue when it is done); after a store
    /// error, pauses and returns with the failed line first in hand.
    func round(_ state: inout State) {
        if state.next >= state.batch.count {
            state.batch = transport.queue.take(max: SettleTransport.batch)
            state.next = 0
            if state.batch.isEmpty {
                transport.queue.wait(timeoutMs: Self.waitMs)
                return
            }
        }
        let gate = box.current
        let start = state.next
        defer { transport.queue.finish(state.next - start) { metrics.settleQueue(length: $0) } }
        while state.next < state.batch.count {
            let line = state.batch[state.next]
            let request = SettleRequest(
                key: gate.keys.hold(id: line.hold), id: line.hold, report: .nginx(line.facts), eventsKey: gate.eventsKey,
                eventsMaxLen: gate.config.eventsMaxLen)
            do throws(StoreError) {
                let outcome = try state.store.settle(request)
                metrics.holdSettled(outcome)
                if state.failing {
                    state.failing = false
                    logger.info("settlement: the store answers again; settling the queued lines")
                }
                logger.debug("settlement: \(outcome.label)", metadata: ["hold": "\(line.hold)"])
                state.next += 1
                state.attempts = 0
            } catch {
                state.attempts += 1
                switch retry.step(after: error, attempts: state.attempts) {
                case .giveUp:
                    metrics.settleLines(.dropped)
                    logger.error(
                        "settlement: gave the line up after \(state.attempts) attempts (\(error)); its hold stands as held",
                        metadata: ["hold": "\(line.hold)"])
                    state.next += 1
                    state.attempts = 0
                case .retry(let afterMs):
                    if !state.failing {
                        state.failing = true
                        logger.warning(
                            "settlement: \(error); keeping the line and the \(transport.queue.count - 1) behind it, trying again (pauses up to \(retry.maxDelayMs) ms)"
                        )
                    }
                    usleep(useconds_t(clamping: afterMs * 1000))  // a knock at the stop ends it early
                    return
                }
            }
        }
    }
}
