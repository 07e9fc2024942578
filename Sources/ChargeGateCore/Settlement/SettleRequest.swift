/// One settlement asked of the store: which hold, and the report that settles it.
public struct SettleRequest: Sendable, Equatable {
    /// Store key of the hold (`KeySpace.hold(id:)`).
    public var key: String
    /// The hold's id, as reported.
    public var id: String
    /// nginx's line or the app's call.
    public var report: SettleReport
    /// The event stream key; nil when the event log is off.
    public var eventsKey: String?
    /// Approximate cap on the stream's length.
    public var eventsMaxLen: Int

    /// Creates a request.
    public init(key: String, id: String, report: SettleReport, eventsKey: String? = nil, eventsMaxLen: Int = 0) {
        self.key = key
        self.id = id
        self.report = report
        self.eventsKey = eventsKey
        self.eventsMaxLen = eventsMaxLen
    }
}
