import ChargeGateCore
import Glibc

/// The wall clock, for the memory store (the Redis store uses Redis `TIME`).
public struct SystemClock: GateClock {
    /// Creates the clock.
    public init() {}

    /// Epoch milliseconds from `CLOCK_REALTIME`.
    public func nowMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
