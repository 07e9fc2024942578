/// Everything one gated request spends, decided atomically: all items or none.
public struct SpendRequest: Sendable, Equatable {
    /// The pools, in route order.
    public var items: [SpendItem]
    /// The idempotency record to check and write; nil when the request carries no key or its
    /// route is not idempotent.
    public var idempotency: IdempotencyCheck?
    /// The event stream key; nil when the event log is off.
    public var eventsKey: String?
    /// Approximate cap on the stream's length.
    public var eventsMaxLen: Int
    /// What the events record (the plan's id is filled in by the store).
    public var context: EventContext
    /// The subject's plan, looked up in the same atomic step; nil when no plans are configured
    /// (or none of the items is a per-subject pool).
    public var plan: PlanChoice?
    /// The hold an allowed spend records (a settled route); nil: the spend is final. An
    /// idempotent repeat records none (the first request's hold applies), and a hold already
    /// recorded under the same id (the same request asked again after an internal redirect)
    /// is kept: the later spend is then final.
    public var hold: HoldRequest?

    /// Creates a request.
    public init(
        items: [SpendItem], idempotency: IdempotencyCheck? = nil,
        eventsKey: String? = nil, eventsMaxLen: Int = 0, context: EventContext, plan: PlanChoice? = nil, hold: HoldRequest? = nil
    ) {
        self.items = items
        self.idempotency = idempotency
        self.eventsKey = eventsKey
        self.eventsMaxLen = eventsMaxLen
        self.context = context
        self.plan = plan
        self.hold = hold
    }
}
