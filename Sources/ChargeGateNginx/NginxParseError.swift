/// Why an `nginx -T` output could not be read, with the place nginx itself would name.
public struct NginxParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, in nginx's words where nginx has them (`unexpected "}"`).
    public var message: String
    /// Where; nil when the problem is the dump as a whole.
    public var location: NginxSourceLocation?

    /// Creates an error.
    public init(_ message: String, at location: NginxSourceLocation? = nil) {
        self.message = message
        self.location = location
    }

    /// `FILE:LINE: message`, or the message alone.
    public var description: String {
        guard let location else { return message }
        return "\(location): \(message)"
    }
}
