import CFastCGI
import Glibc

/// Tells every worker's event loop to stop: an eventfd in each loop's epoll set that becomes
/// readable once, for all of them. The single owner of the descriptor (closed in deinit, after
/// the workers have ended).
public final class FastCGIStopSignal: Sendable {
    /// The eventfd the loops watch.
    public let descriptor: Int32

    /// A new signal, not fired; nil when the system refuses an eventfd.
    public init?() {
        let fd = eventfd(0, Int32(EFD_CLOEXEC))
        guard fd >= 0 else { return nil }
        descriptor = fd
    }

    deinit {
        close(descriptor)
    }

    /// Makes the descriptor readable: every loop stops accepting, answers what comes on its
    /// connections for `FastCGIEventLoop.stopGraceMs` (closing each after its answer) and ends.
    public func fire() {
        var one: UInt64 = 1
        _ = write(descriptor, &one, MemoryLayout<UInt64>.size)
    }
}
