/// How the rewrite-phase directives of one block ended for one path of the analysis.
public struct NginxRewriteOutcome: Sendable, Equatable {
    /// How it ended.
    public enum End: Sendable, Equatable {
        /// The directives ran out, or `break` / `rewrite … break|last` stopped them: the request
        /// goes on (to the location search again when `state.uriChanged`).
        case finished
        /// `return` or a redirecting `rewrite` answered with this status.
        case answered(status: Int, by: NginxDirective)
        /// The analysis cannot follow this directive (an unknown value, a regex it cannot
        /// compile); why.
        case undecidable(String, NginxDirective)
    }

    /// How it ended.
    public var end: End
    /// The request afterwards.
    public var state: NginxRequestState
    /// The block whose configuration is in effect: the location, or the last `if` inside it that
    /// held.
    public var conf: Int

    /// Creates an outcome.
    public init(end: End, state: NginxRequestState, conf: Int) {
        self.end = end
        self.state = state
        self.conf = conf
    }
}
