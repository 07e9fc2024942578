/// The usage endpoint as an HTML page, for people: what `GET /api/usage` answers when the
/// client asks for `text/html`.
public enum UsagePage {
    /// One pool's row: its config, its state brought forward to `now`, and whose bucket it is.
    public struct Row: Sendable {
        /// The pool.
        public var pool: PoolConfig
        /// The stored state (nil: missing key, a full pool).
        public var state: BucketState?
        /// The subject for per-subject pools ("" for global ones).
        public var subject: String

        /// Creates a row.
        public init(pool: PoolConfig, state: BucketState?, subject: String) {
            self.pool = pool
            self.state = state
            self.subject = subject
        }
    }

    /// The whole page.
    public static func render(_ rows: [Row], now: Int64) -> String {
        "<!doctype html><title>Usage</title>"
    }
}
