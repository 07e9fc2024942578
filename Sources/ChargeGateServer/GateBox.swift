import ChargeGateCore
import Synchronization

/// The config in force, swapped whole on reload. Workers take the current `Gate` once per
/// request; a request in flight keeps the one it started with.
public final class GateBox: Sendable {
    private let gate: Mutex<Gate>

    /// Starts with `gate`.
    public init(_ gate: Gate) {
        self.gate = Mutex(gate)
    }

    /// The gate in force now.
    public var current: Gate {
        gate.withLock { $0 }
    }

    /// Puts `new` in force for the requests that start from now on.
    public func replace(with new: Gate) {
        gate.withLock { $0 = new }
    }
}
