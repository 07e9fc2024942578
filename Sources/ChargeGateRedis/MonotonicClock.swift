import ChargeGateCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `CLOCK_MONOTONIC`: time that never steps, for durations only (back-off, round trips, time
/// without a master); its zero is arbitrary. The Redis layer's one reader of the monotonic
/// clock (ChargeGateFastCGI, which imports neither the core nor this module, reads it for its
/// stop grace alone); the wall clock is the server's `SystemClock`.
public struct MonotonicClock: GateClock {
    /// Creates the clock.
    public init() {}

    /// Milliseconds since an arbitrary start.
    public func nowMs() -> Int64 {
        Self.milliseconds()
    }

    /// Nanoseconds since an arbitrary start.
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Milliseconds since an arbitrary start (the same as `nowMs()`, without an instance).
    static func milliseconds() -> Int64 {
        Int64(nanoseconds() / 1_000_000)
    }
}
