/// A place in nginx's configuration: a file of the `nginx -T` output and a 1-based line.
public struct NginxSourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The file's path as nginx printed it in its `# configuration file PATH:` line.
    public var file: String
    /// The line in that file, from 1.
    public var line: Int

    /// Creates a location.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `FILE:LINE`, as nginx writes it in its own messages.
    public var description: String { "\(file):\(line)" }

    /// Orders by file, then line.
    public static func < (lhs: NginxSourceLocation, rhs: NginxSourceLocation) -> Bool {
        (lhs.file, lhs.line) < (rhs.file, rhs.line)
    }
}
