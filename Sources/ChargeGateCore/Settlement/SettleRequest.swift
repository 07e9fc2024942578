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
    /// How long a hold that does not exist (yet) is voided, in ms, when nginx's line says
    /// nothing was delivered (`ResponseFacts.nothingDelivered`): the line of a client that left
    /// before the gate answered can arrive before the spend that opens its hold, and a spend
    /// under a voided id is refused (`SpendOutcome.holdVoided`). 0: never voided (the app's
    /// call, which names a hold it was given).
    public var voidTtlMs: Int64
    /// Whether the outcome must carry each pool's state (`SettleOutcome.Settled.pools`): the
    /// app's call answers them; nginx's lines are only counted, and a store may leave them out
    /// (the Redis store then skips decoding the hold record).
    public var reportsPools: Bool

    /// Creates a request.
    public init(
        key: String, id: String, report: SettleReport, eventsKey: String? = nil, eventsMaxLen: Int = 0, voidTtlMs: Int64 = 0,
        reportsPools: Bool = true
    ) {
        self.key = key
        self.id = id
        self.report = report
        self.eventsKey = eventsKey
        self.eventsMaxLen = eventsMaxLen
        self.voidTtlMs = voidTtlMs
        self.reportsPools = reportsPools
    }

    /// Whether this settlement voids its hold when the hold does not exist: nginx's line, with
    /// `voidTtlMs` > 0, saying nothing was delivered.
    public var voids: Bool {
        guard voidTtlMs > 0, case .nginx(let facts) = report else { return false }
        return facts.nothingDelivered
    }
}
