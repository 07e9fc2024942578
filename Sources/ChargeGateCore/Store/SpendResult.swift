/// What the store answers to a spend: the decision, the store's clock, and the plan it was
/// decided under.
public struct SpendResult: Sendable, Equatable {
    /// The decision.
    public var outcome: SpendOutcome
    /// The store's clock when it decided (epoch ms).
    public var now: Int64
    /// The plan applied; nil when the request had no plan choice.
    public var plan: PlanUse?

    /// Creates a result.
    public init(_ outcome: SpendOutcome, now: Int64, plan: PlanUse? = nil) {
        self.outcome = outcome
        self.now = now
        self.plan = plan
    }
}
