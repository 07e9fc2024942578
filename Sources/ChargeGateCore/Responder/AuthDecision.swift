/// What the gate decided on one auth subrequest, before it is written as FastCGI headers
/// (`response`): the verdict, the route, items and plan it was decided on, the route's
/// `RateLimit-Policy` that goes with it, and the log line. The rendering reads each field only
/// where it renders it, so a field added here (settlement's hold) changes no other answer.
struct AuthDecision {
    /// What was decided.
    enum Verdict: Equatable {
        /// Passed without a route: nothing charged, and nginx asks again for a later pass of the
        /// same request (an internal redirect into a charged route).
        case unrouted
        /// Allowed, with what each item holds after the spend; nil when nothing was spent (an
        /// idempotent repeat, the dev bypass).
        case allowed([ItemResult]?)
        /// Refused; a shadow route passes it, marked.
        case denied(Denial)
    }

    /// What was decided.
    var verdict: Verdict
    /// The route it was decided on; nil when no route decided it (none matched, the path is the
    /// snippets' own, the dev bypass): then metrics do not count it.
    var route: Gate.Route?
    /// The items as the store decided them (under the plan it found); empty when the store was
    /// not asked.
    var items: [SpendItem] = []
    /// The plan they are under: the one the store found, else nginx's or the default (0
    /// without plans).
    var plan = 0
    /// The store's clock when it decided (epoch ms); the worker's for a denial from memory.
    var now: Int64 = 0
    /// The route's `RateLimit-Policy` for this answer ("" when it has none or the answer carries
    /// none).
    var policy = ""
    /// Whether the worker's deny cache answered (a 429 the store was not asked for).
    var fromMemory = false
    /// The last second (epoch seconds) nginx may answer this 429 from its own cache; nil: never.
    var edgeUntil: Int64?
    /// The log line, when the decision is worth one.
    var note: Response.Note?
    /// The hold an allowed spend on a settled route recorded (its id); nil when none.
    var hold: String?

    /// Whether a denial passes, marked (the route is in shadow mode).
    var shadow: Bool { route?.shadow ?? false }

    /// The decision as metrics count it; nil when no route decided it.
    var outcome: Response.Outcome? {
        guard route != nil else { return nil }
        switch verdict {
        case .unrouted:
            return nil
        case .allowed(let results):
            return .allowed(pools: results == nil ? [] : items.map(\.poolId), held: hold != nil)
        case .denied(let denial):
            let denied = Response.Outcome.denied(denial, pools: denial.pool.map { [$0] } ?? items.map(\.poolId), fromMemory: fromMemory)
            return shadow ? .shadow(denied) : denied
        }
    }
}
