/// Compiled regexes by pattern, so that each is compiled once per analysis; remembers the
/// patterns that cannot be compiled and why.
public final class NginxRegexCache {
    /// A pattern and its case mode.
    private struct Key: Hashable {
        /// The pattern.
        var pattern: String
        /// `~*`.
        var caseless: Bool
    }

    private var compiled: [Key: Result<NginxRegex, NginxRegexCache.Failure>] = [:]

    /// Why a pattern could not be used.
    public struct Failure: Error, Sendable, Equatable {
        /// The standard library's message.
        public var message: String
    }

    /// An empty cache.
    public init() {}

    /// The compiled regex, or why it cannot be compiled.
    public func regex(_ pattern: String, caseless: Bool) -> Result<NginxRegex, Failure> {
        let key = Key(pattern: pattern, caseless: caseless)
        if let known = compiled[key] { return known }
        let result: Result<NginxRegex, Failure>
        do {
            result = .success(try NginxRegex(pattern, caseless: caseless))
        } catch {
            result = .failure(Failure(message: "\(error)"))
        }
        compiled[key] = result
        return result
    }
}
