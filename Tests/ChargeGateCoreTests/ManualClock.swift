import ChargeGateCore
import Synchronization

/// A clock tests move by hand, so no test sleeps for the math.
final class ManualClock: GateClock, Sendable {
    private let now: Atomic<Int64>

    init(_ start: Int64 = 1_700_000_000_000) {
        now = Atomic(start)
    }

    func nowMs() -> Int64 { now.load(ordering: .relaxed) }

    func advance(_ ms: Int64) { now.add(ms, ordering: .relaxed) }
}
