/// A route's `settle:`: what happens to its hold after the response (docs/settlement.md).
public struct SettlePolicy: Sendable, Equatable {
    /// A `refund` entry: one status (`500`) or a class (`5xx`).
    public enum StatusMatch: Sendable, Equatable {
        /// Exactly this status.
        case status(Int)
        /// Every status of this hundred (5 for `5xx`).
        case statusClass(Int)

        /// Whether `status` matches.
        public func matches(_ status: Int) -> Bool {
            switch self {
            case .status(let value): value == status
            case .statusClass(let hundred): status / 100 == hundred
            }
        }

        /// The config's spelling (`500`, `5xx`).
        public var text: String {
            switch self {
            case .status(let value): String(value)
            case .statusClass(let hundred): "\(hundred)xx"
            }
        }
    }

    /// Where the real amount of a request comes from.
    public enum Amount: Sendable, Equatable {
        /// The app's `amountHeader` on its response.
        case header
        /// One charge per `unit` bytes of body sent to the client, rounded up.
        case bytesSent(unit: Int64)
        /// One charge per `unit` ms of upstream time (every try), rounded up.
        case upstreamMs(unit: Int64)
    }

    /// Who settles.
    public enum Settler: String, Sendable, Equatable {
        /// nginx's log line after the response.
        case nginx
        /// Only the app, through `POST /api/usage/settle`: nginx's lines are ignored.
        case app
    }

    /// Statuses given back in full (default `[5xx]`).
    public var refund: [StatusMatch]
    /// The real amount; nil: refunds only (the hold stands otherwise).
    public var amount: Amount?
    /// Who settles (default nginx).
    public var by: Settler

    /// Creates a policy.
    public init(refund: [StatusMatch] = [.statusClass(5)], amount: Amount? = nil, by: Settler = .nginx) {
        self.refund = refund
        self.amount = amount
        self.by = by
    }

    /// Whether a response with `status` is given back in full.
    public func refunds(status: Int) -> Bool {
        refund.contains { $0.matches(status) }
    }
}
