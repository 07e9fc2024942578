/// A config error message without its file and line (the loader adds them).
public struct ConfigMessage: Error, Sendable, Equatable {
    /// The text.
    public var text: String
    /// Creates a message.
    public init(_ text: String) { self.text = text }
}
