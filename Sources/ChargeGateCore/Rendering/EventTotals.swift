/// Usage events summed per subject and pool (`charge-gate events --sum`): what an invoice
/// needs. A spend adds what it spent (a settled route's hold too), a settlement its signed
/// difference, so each total is what the subject was charged on the pool over the events
/// read. Memory grows with the number of subject and pool pairs, not with the events.
public struct EventTotals: Sendable {
    /// One subject's total on one pool.
    public struct Total: Sendable, Equatable {
        /// The subject, in key form.
        public var subject: String
        /// The pool's id.
        public var pool: String
        /// What was charged: `spent + settled`.
        public var amount: Int64 { spent.saturatingAdding(settled) }
        /// The spend events' amounts summed.
        public var spent: Int64
        /// The settle events' signed differences summed (< 0: given back on balance).
        public var settled: Int64
        /// Spend events: the requests charged on the pool.
        public var requests: Int64
        /// Settle events.
        public var settlements: Int64

        /// Creates a total.
        public init(subject: String, pool: String, spent: Int64 = 0, settled: Int64 = 0, requests: Int64 = 0, settlements: Int64 = 0) {
            self.subject = subject
            self.pool = pool
            self.spent = spent
            self.settled = settled
            self.requests = requests
            self.settlements = settlements
        }
    }

    private struct Key: Hashable {
        var subject: String
        var pool: String
    }

    private var totals: [Key: Total] = [:]

    /// No events yet.
    public init() {}

    /// Counts `event` in its subject's total on its pool (sums saturate: no event can trap).
    public mutating func add(_ event: UsageEvent) {
        let key = Key(subject: event.context.subject, pool: event.pool)
        var total = totals[key] ?? Total(subject: key.subject, pool: key.pool)
        switch event.kind {
        case .spend:
            total.spent = total.spent.saturatingAdding(event.amount)
            total.requests = total.requests.saturatingAdding(1)
        case .settle:
            total.settled = total.settled.saturatingAdding(event.amount)
            total.settlements = total.settlements.saturatingAdding(1)
        }
        totals[key] = total
    }

    /// Every total, by subject then pool (byte order).
    public var rows: [Total] {
        totals.values.sorted { a, b in
            a.subject != b.subject
                ? a.subject.utf8.lexicographicallyPrecedes(b.subject.utf8) : a.pool.utf8.lexicographicallyPrecedes(b.pool.utf8)
        }
    }

    /// The CSV header line of `--sum`.
    public static let csvHeader = "subject,pool,amount,spent,settled,requests,settlements"

    /// `total` as one line of `format`, without the newline.
    public static func line(_ total: Total, format: EventFormat) -> String {
        switch format {
        case .jsonl:
            var w = JSONWriter()
            w.beginObject()
            w.field("subject", total.subject)
            w.field("pool", total.pool)
            w.field("amount", total.amount)
            w.field("spent", total.spent)
            w.field("settled", total.settled)
            w.field("requests", total.requests)
            w.field("settlements", total.settlements)
            w.endObject()
            return w.text
        case .csv:
            return [
                total.subject, total.pool, String(total.amount), String(total.spent), String(total.settled), String(total.requests),
                String(total.settlements),
            ].map(EventFormat.csvField).joined(separator: ",")
        }
    }
}
