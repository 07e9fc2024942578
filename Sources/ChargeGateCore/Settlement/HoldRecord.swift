/// A hold as the store keeps it: what an allowed spend on a settled route charged, pool by
/// pool, until its settlement (or its window's end) makes that final.
public struct HoldRecord: Sendable, Equatable {
    /// One pool of the hold.
    public struct Item: Sendable, Equatable {
        /// The pool's rules and key, as spent (under the plan the store found).
        public var spend: SpendItem
        /// Charges held (the spend's cost).
        public var held: Int64
        /// Whether it is settled to the amount (else it is charged per call).
        public var metered: Bool
        /// For a period pool, the start of the period the hold was spent in (a give-back
        /// lowers that period's use only while it is the current one); nil otherwise.
        public var periodStart: Int64?

        /// Creates an item.
        public init(spend: SpendItem, held: Int64, metered: Bool, periodStart: Int64? = nil) {
            self.spend = spend
            self.held = held
            self.metered = metered
            self.periodStart = periodStart
        }

        /// The pool's id.
        public var poolId: String { spend.poolId }
    }

    /// Where it stands.
    public enum Status: Sendable, Equatable {
        /// Not settled yet.
        case open
        /// Settled (the hold may have stood as held).
        case settled
    }

    /// The hold's id (nginx's `$request_id`).
    public var id: String
    /// When it was made (the store's clock, epoch ms).
    public var createdAt: Int64
    /// The end of its settlement window (epoch ms).
    public var expiresAt: Int64
    /// How it settles.
    public var policy: SettlePolicy
    /// What the spend's events recorded (subject, route, method, URI, plan).
    public var context: EventContext
    /// The pools, in route order.
    public var items: [Item]
    /// Open or settled.
    public var status: Status

    /// Creates a record.
    public init(
        id: String, createdAt: Int64, expiresAt: Int64, policy: SettlePolicy, context: EventContext, items: [Item],
        status: Status = .open
    ) {
        self.id = id
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.policy = policy
        self.context = context
        self.items = items
        self.status = status
    }

    /// The record an allowed spend of `items` (as decided) at `now` makes for `request`.
    public static func opened(_ request: HoldRequest, items: [SpendItem], context: EventContext, now: Int64) -> HoldRecord {
        HoldRecord(
            id: request.id, createdAt: now, expiresAt: now.saturatingAdding(request.windowMs), policy: request.policy, context: context,
            items: items.enumerated().map { index, item in
                Item(
                    spend: item, held: item.cost, metered: index < request.metered.count && request.metered[index],
                    periodStart: item.window(at: now)?.start)
            })
    }
}
