/// Why the store could not answer. Every case means "fail closed": the gate answers 503.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No connection could be made (or it is backing off after a failure).
    case unavailable(String)
    /// The store did not answer within the timeout.
    case timeout
    /// The store answered something the gate cannot use (a corrupt key, a script error).
    case protocolError(String)

    /// A one-line reason, free of secrets.
    public var description: String {
        switch self {
        case .unavailable(let why): return "store unavailable: \(why)"
        case .timeout: return "store timed out"
        case .protocolError(let why): return "store error: \(why)"
        }
    }
}
