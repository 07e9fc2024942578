import ChargeGateCore

/// What the applier does when the store fails on a settlement line: wait and try the same line
/// again, doubling the pause from `firstDelayMs` to `maxDelayMs`, for as long as the store is
/// unavailable or slow (a Redis outage or failover: the line keeps its place, the lines behind
/// it wait, new ones queue up to the queue's capacity). A line the store keeps answering with
/// a protocol error (a corrupt hold, a script error) is given up after `maxProtocolAttempts`,
/// counted and logged, so that it cannot stall every line behind it: its hold stands as held.
struct SettleRetry: Sendable, Equatable {
    /// The first pause, in ms.
    var firstDelayMs = 50
    /// The longest pause, in ms.
    var maxDelayMs = 2000
    /// Attempts on one line that a protocol error may take before the line is given up.
    var maxProtocolAttempts = 3

    /// What to do after attempt number `attempts` (1 for the first) on one line failed.
    enum Step: Equatable {
        /// Try the same line again after this many ms.
        case retry(afterMs: Int)
        /// Give the line up: its hold stands as held.
        case giveUp
    }

    /// The step after `attempts` attempts on one line, the last failing with `error`.
    func step(after error: StoreError, attempts: Int) -> Step {
        if case .protocolError = error, attempts >= maxProtocolAttempts { return .giveUp }
        return .retry(afterMs: delayMs(attempts: attempts))
    }

    /// The pause after `attempts` failed attempts: `firstDelayMs`, doubled each time, at most
    /// `maxDelayMs`.
    func delayMs(attempts: Int) -> Int {
        var delay = firstDelayMs
        var n = 1
        while n < attempts && delay < maxDelayMs {
            delay *= 2
            n += 1
        }
        return Swift.min(delay, maxDelayMs)
    }
}
