/// A source of wall-clock time in epoch milliseconds. The core never reads the clock itself:
/// the server passes the system clock, tests pass a clock they move by hand.
public protocol GateClock: Sendable {
    /// Epoch milliseconds now.
    func nowMs() -> Int64
}
