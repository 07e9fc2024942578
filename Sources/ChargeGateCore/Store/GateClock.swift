/// A source of time in milliseconds. The core never reads the clock itself: the server passes
/// the system clock, tests pass a clock they move by hand. The core and the stores want the
/// wall clock (epoch milliseconds); what only measures durations (how long the process was
/// without a Redis master) may be given a monotonic clock, whose zero is arbitrary.
public protocol GateClock: Sendable {
    /// Milliseconds now: since the epoch for a wall clock.
    func nowMs() -> Int64
}
