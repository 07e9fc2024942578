/// Why the settlement socket could not be set up: one line for the operator.
public struct SettleSocketError: Error, Sendable, CustomStringConvertible {
    /// The line.
    public var description: String

    /// Creates an error.
    init(_ description: String) {
        self.description = description
    }
}
