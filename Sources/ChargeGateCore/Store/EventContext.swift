/// What a usage event records besides pool and amount.
public struct EventContext: Sendable, Equatable {
    /// Subject in its key form.
    public var subject: String
    /// The matched route's prefix.
    public var route: String
    /// HTTP method.
    public var method: String
    /// The charged (normalised) URI.
    public var uri: String
    /// The idempotency key in its key form, or "".
    public var idempotencyKey: String
    /// The subject's plan when the spend was decided, or "" (no plans configured).
    public var plan: String
    /// The hold the spend opened or the settlement settled (nginx's `$request_id`), or "".
    public var hold: String

    /// Creates a context.
    public init(subject: String, route: String, method: String, uri: String, idempotencyKey: String, plan: String = "", hold: String = "") {
        self.subject = subject
        self.route = route
        self.method = method
        self.uri = uri
        self.idempotencyKey = idempotencyKey
        self.plan = plan
        self.hold = hold
    }
}
