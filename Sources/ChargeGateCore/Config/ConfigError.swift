/// One problem in a config file, located like an editor would show it.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file as it was named to the loader.
    public var file: String
    /// 1-based line; 0 when the problem is not in a line (an unreadable file).
    public var line: Int
    /// What is wrong, starting with the key path (`pools[1].maxCharges: ...`).
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message`, as `check-config` prints it.
    public var description: String { "\(file):\(line): \(message)" }
}
