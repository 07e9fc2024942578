import CFastCGI
import Glibc

/// Tells the event loop to stop: an eventfd in its epoll set that becomes readable once (the
/// worker that sees it sets the loop's stop deadline; the others see that within
/// `FastCGIEventLoop.waitSliceMs`). The single owner of the descriptor (closed in deinit, after
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

    /// Makes the descriptor readable: the loop stops accepting, answers what comes on its
    /// connections for `FastCGIEventLoop.stopGraceMs` (closing each after its answer) and ends.
    public func fire() {
        var one: UInt64 = 1
        _ = write(descriptor, &one, MemoryLayout<UInt64>.size)
    }
}
