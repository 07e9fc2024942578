/// Every problem found in one config file, sorted by line.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, in line order.
    public var errors: [ConfigError]

    /// Creates the list.
    public init(errors: [ConfigError]) {
        self.errors = errors
    }

    /// One `FILE:LINE: message` per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
