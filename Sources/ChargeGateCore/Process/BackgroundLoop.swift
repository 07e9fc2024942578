/// Work a `serve` process does beside answering requests, in rounds on a thread of its own (the
/// sentinel poller; a datagram receiver). The server owns every such loop: it starts each one
/// after blocking the stop and reload signals, so the thread inherits that mask and never takes
/// one, and stops them all on SIGTERM or SIGINT once the workers are done.
///
/// Rounds run one after the other on the loop's thread, `intervalMs` apart. To stop a loop the
/// server sets a flag and knocks on the thread with SIGUSR2 (a no-op handler without
/// `SA_RESTART`): a pause ends at once, and a round blocked in a system call that returns `EINTR`
/// should return so the flag is seen.
public protocol BackgroundLoop: Sendable {
    /// What the rounds keep between them (connections, buffers), made on the loop's thread and
    /// never shared with another.
    associatedtype ThreadState

    /// Names the loop in log lines.
    var name: String { get }
    /// The pause after each round, in milliseconds (0: straight on, for a round that waits on
    /// its own).
    var intervalMs: Int { get }

    /// Called once on the loop's thread before the first round.
    func makeThreadState() -> ThreadState

    /// One round.
    func round(_ state: inout ThreadState)
}
