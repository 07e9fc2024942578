import Synchronization

/// Shared by every worker's `DenyCache` in a process: a top-off bumps it, and each cache
/// forgets what it learned before, so a topped-off pool is not denied from memory here.
public final class DenyEpoch: Sendable {
    private let value = Atomic<UInt64>(0)

    /// Creates an epoch at 0.
    public init() {}

    /// Invalidates every cache that shares this epoch.
    public func bump() { value.add(1, ordering: .releasing) }

    /// The current epoch.
    public var current: UInt64 { value.load(ordering: .acquiring) }
}
