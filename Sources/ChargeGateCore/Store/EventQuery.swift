/// A filter over the event log, read page by page.
public struct EventQuery: Sendable, Equatable {
    /// Only events at or after this epoch ms.
    public var since: Int64?
    /// Only events at or before this epoch ms.
    public var until: Int64?
    /// Only this pool.
    public var pool: String?
    /// Only this subject (key form).
    public var subject: String?
    /// Resume after this event id (exclusive); nil starts at `since`.
    public var after: String?
    /// Page size.
    public var limit: Int

    /// Creates a query.
    public init(
        since: Int64? = nil, until: Int64? = nil, pool: String? = nil, subject: String? = nil, after: String? = nil, limit: Int = 1000
    ) {
        self.since = since
        self.until = until
        self.pool = pool
        self.subject = subject
        self.after = after
        self.limit = limit
    }
}
