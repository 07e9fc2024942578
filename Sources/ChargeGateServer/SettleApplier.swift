import ChargeGateCore
import Glibc
import Logging

/// The loop that settles the queued lines on a store of its own (a Redis connection, like each
/// worker's; the memory store is shared): a batch of up to `SettleTransport.batch` lines at a
/// time, settled with one `ChargeStore.settle(_:)` call for the batch (one round trip on
/// Redis), each line as `SettleRequest(.nginx(facts))` under the gate in force (a reload's keys
/// and event stream apply from the next batch), each line's first answer counted in
/// `holds_total`, once.
///
/// The lines a store error left unanswered (a timeout, a lost connection) are kept and sent
/// again after a pause (`SettleRetry`); the answered ones are done, so none is counted twice,
/// and one that ran without its answer being read answers `duplicate` on the retry (applied
/// once). A line whose own answer is a protocol error is retried with them and given up after
/// `SettleRetry.maxProtocolAttempts`, alone. A line is never dropped without being counted
/// (`dropped`) and logged: whatever is not applied leaves its hold standing as held, so the
/// customer pays the hold, never less.
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
    /// How long a round waits before it takes a batch that is not full: settlement is a few
    /// ms later, and the store sees a batch per round trip instead of a line or two.
    static let lingerUs: useconds_t = 2000

    /// The applier's store and the lines in hand.
    struct State {
        /// The store it settles on.
        var store: any ChargeStore
        /// Lines taken from the queue and not done yet, in order.
        var batch: [SettleLine] = []
        /// Failed attempts on each line of `batch`.
        var attempts: [Int] = []
        /// Whether the store is failing (logged once when it starts, once when it recovers).
        var failing = false
    }

    /// The store, made on the loop's thread.
    func makeThreadState() -> State {
        State(store: makeStore(box.current.config))
    }

    /// Settles the lines in hand (a new batch from the queue when none is) with one batch call;
    /// the lines answered are done, the others stay in hand and the round pauses before the
    /// next attempt.
    func round(_ state: inout State) {
        if state.batch.isEmpty {
            // A line comes per response: a moment's wait lets one round trip settle many.
            if transport.queue.waiting < SettleTransport.batch && !transport.closing.load(ordering: .acquiring) {
                usleep(Self.lingerUs)
            }
            state.batch = transport.queue.take(max: SettleTransport.batch)
            state.attempts = Array(repeating: 0, count: state.batch.count)
            if state.batch.isEmpty {
                transport.queue.wait(timeoutMs: Self.waitMs)
                return
            }
        }
        let gate = box.current
        let requests = state.batch.map { line in
            SettleRequest(
                key: gate.keys.hold(id: line.hold), id: line.hold, report: .nginx(line.facts), eventsKey: gate.eventsKey,
                eventsMaxLen: gate.config.eventsMaxLen, voidTtlMs: gate.voidTtlMs, reportsPools: false)
        }
        let results: [Result<SettleOutcome, StoreError>]
        do throws(StoreError) {
            results = try state.store.settle(requests)
        } catch {
            results = Array(repeating: .failure(error), count: requests.count)
        }
        var kept: [SettleLine] = []
        var keptAttempts: [Int] = []
        var done = 0
        var pause: (error: StoreError, afterMs: Int)?
        for (index, line) in state.batch.enumerated() {
            let result = index < results.count ? results[index] : .failure(.unavailable("no answer for the line"))
            switch result {
            case .success(let outcome):
                metrics.holdSettled(outcome)
                logger.debug("settlement: \(outcome.label)", metadata: ["hold": "\(line.hold)"])
                done += 1
            case .failure(let error):
                let attempts = state.attempts[index] + 1
                switch retry.step(after: error, attempts: attempts) {
                case .giveUp:
                    metrics.settleLines(.dropped)
                    logger.error(
                        "settlement: gave the line up after \(attempts) attempts (\(error)); its hold stands as held",
                        metadata: ["hold": "\(line.hold)"])
                    done += 1
                case .retry(let afterMs):
                    kept.append(line)
                    keptAttempts.append(attempts)
                    if pause.map({ afterMs > $0.afterMs }) ?? true { pause = (error, afterMs) }
                }
            }
        }
        state.batch = kept
        state.attempts = keptAttempts
        transport.queue.finish(done) { metrics.settleQueue(length: $0) }
        guard let pause else {
            if state.failing {
                state.failing = false
                logger.info("settlement: the store answers again; settling the queued lines")
            }
            return
        }
        if !state.failing {
            state.failing = true
            logger.warning(
                "settlement: \(pause.error); keeping \(kept.count) line(s) and the \(transport.queue.count - kept.count) behind, trying again (pauses up to \(retry.maxDelayMs) ms)"
            )
        }
        usleep(useconds_t(clamping: pause.afterMs * 1000))  // a knock at the stop ends it early
    }
}
