/// The name of every field in the responder's log lines, in one place: a note's fields
/// (`Response.Note`) and what the server adds (`worker`, `requestId`). Whether a field's value
/// is a subject, and so hashed in log lines unless `serve --log-subjects plain`, is a property
/// of its key (`carriesSubject`), not of how a call site spells it.
public enum LogKey: String, Sendable, CaseIterable {
    /// A pool id.
    case pool
    /// The subject a decision was about (hashed).
    case subject
    /// The route's prefix.
    case route
    /// A plan id.
    case plan
    /// The endpoint a store error cost (`usage`, ...).
    case endpoint
    /// The `CHARGE_GATE_ROLE` of a request the responder could not place (key form).
    case role
    /// The idempotency key of a request (key form).
    case idempotencyKey
    /// How long a denied request must wait, ms.
    case retryAfterMs
    /// A credit pool's balance at a denial.
    case available
    /// What a denied request needed.
    case required
    /// A top-off's amount (`fill` for a full one).
    case amount
    /// A pool's charges after a top-off.
    case current
    /// A stored plan that is no plan of the config (key form).
    case unknownStoredPlan
    /// A plan nginx named that is no plan of the config (key form).
    case unknownNginxPlan
    /// The anchor of a stored plan's billing period (epoch ms, or `none`).
    case periodAnchor
    /// Whether clearing a plan removed a record.
    case removed
    /// The hold a settlement named (nginx's `$request_id` of the request that made it).
    case hold
    /// How many requests the deny cache answered before this one reached the store.
    case deniedFromMemoryBefore
    /// nginx's `$request_id` (key form), added by the server.
    case requestId
    /// The worker thread's index, added by the server.
    case worker

    /// The keys whose values are subjects: hashed in log lines unless told otherwise.
    public static let subjectKeys: Set<LogKey> = [.subject]

    /// Whether the value is a subject (one of `subjectKeys`). A switch, not a set lookup: it is
    /// asked for every field of every logged decision.
    public var carriesSubject: Bool {
        switch self {
        case .subject: true
        default: false
        }
    }
}
