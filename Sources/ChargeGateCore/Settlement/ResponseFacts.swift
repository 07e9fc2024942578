/// What nginx's settlement line says about one response, reduced to what settling needs
/// (`SettleLine` parses the line into it).
public struct ResponseFacts: Sendable, Equatable {
    /// The amount the app reported in `amountHeader`.
    public enum ReportedAmount: Sendable, Equatable {
        /// No header (nginx logs `-`).
        case missing
        /// A header that is not a non-negative integer (at most 2^53).
        case invalid
        /// The amount.
        case value(Int64)
    }

    /// The main request's status (`$status`).
    public var status: Int
    /// Whether the upstream received the request: some try sent it bytes
    /// (`$upstream_bytes_sent` above 0).
    public var upstreamReached: Bool
    /// Whether the upstream answered: some try has a status in `$upstream_status`.
    public var upstreamAnswered: Bool
    /// The app's amount header on the response.
    public var amount: ReportedAmount
    /// Body bytes sent to the client (`$body_bytes_sent`).
    public var bytesSent: Int64
    /// Upstream time over every try, in ms (`$upstream_response_time`).
    public var upstreamMs: Int64

    /// Creates the facts.
    public init(
        status: Int, upstreamReached: Bool, upstreamAnswered: Bool, amount: ReportedAmount = .missing, bytesSent: Int64 = 0,
        upstreamMs: Int64 = 0
    ) {
        self.status = status
        self.upstreamReached = upstreamReached
        self.upstreamAnswered = upstreamAnswered
        self.amount = amount
        self.bytesSent = bytesSent
        self.upstreamMs = upstreamMs
    }

    /// Whether the client paid for nothing: the upstream never got the request, or the client
    /// left before it answered (499 without an upstream status).
    public var nothingDelivered: Bool {
        !upstreamReached || (status == 499 && !upstreamAnswered)
    }
}
