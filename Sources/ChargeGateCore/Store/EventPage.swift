/// One page of events and where the next begins.
public struct EventPage: Sendable, Equatable {
    /// Matching events, oldest first.
    public var events: [UsageEvent]
    /// Pass as `after` for the next page; nil when the log is exhausted.
    public var next: String?

    /// Creates a page.
    public init(events: [UsageEvent], next: String?) {
        self.events = events
        self.next = next
    }
}
