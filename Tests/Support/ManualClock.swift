import ChargeGateCore
import Synchronization

/// A clock tests move by hand, so no test sleeps for the math: the one test clock of the
/// unit and Redis suites.
public final class ManualClock: GateClock, Sendable {
    private let now: Atomic<Int64>

    /// A clock at `start` (epoch ms).
    public init(_ start: Int64 = 1_700_000_000_000) {
        now = Atomic(start)
    }

    /// The current time (epoch ms).
    public func nowMs() -> Int64 { now.load(ordering: .relaxed) }

    /// Moves the clock by `ms`.
    public func advance(_ ms: Int64) { now.add(ms, ordering: .relaxed) }

    /// Sets the clock to `ms`.
    public func set(_ ms: Int64) { now.store(ms, ordering: .relaxed) }
}
